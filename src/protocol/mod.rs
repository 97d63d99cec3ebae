//! The client contract (`docs/websocket-api.md`) as pure code: requests
//! parsed into routing keys, typed events rendered into the seed's payloads,
//! and the seed's error object. No sockets here, so all of it is unit-tested.

mod error;
#[cfg(test)]
mod hostile_input_tests;
mod outbound;
mod request;
mod room;
mod timestamp;

pub use error::{ClientError, ErrorCode};
pub use outbound::{Delivery, Outbound, render};
pub use request::{Caller, SubscriptionRequest, describe_key, parse_subscribe, parse_unsubscribe};
pub use room::{PresenceChange, Typing, describe_room, parse_room, parse_typing};
pub use timestamp::{format_millis, now_rfc3339};
