//! The client contract (`docs/websocket-api.md`) as pure code: requests
//! parsed into routing keys, typed events rendered into the seed's payloads,
//! and the seed's error object, with the JSON Schemas of all of it for the
//! client contract. No sockets here, so all of it is unit-tested.

mod error;
#[cfg(test)]
mod hostile_input_tests;
mod outbound;
mod request;
mod request_schema;
mod room;
mod timestamp;

pub use error::{ClientError, ErrorCode, ErrorPayload};
pub use outbound::{Delivery, Outbound, outbound_schemas, render};
pub use request::{Caller, SubscriptionRequest, describe_key, parse_subscribe, parse_unsubscribe};
pub use request_schema::{
    room_echo_schema, room_schema, subscription_schema, typing_schema, unsubscribe_schema,
};
pub use room::{PresenceChange, Typing, describe_room, parse_room, parse_typing};
pub use timestamp::{format_millis, now_rfc3339};
