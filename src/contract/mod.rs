//! The client contract as documents machines read, generated from the code
//! that speaks it: an AsyncAPI 3 document ([`asyncapi()`]: the Kafka topics
//! with their Avro schemas, for producer teams, and the Socket.IO events
//! with JSON Schemas, for frontend teams) and the TypeScript declarations
//! of the client package ([`typescript()`]).
//!
//! One list of events ([`server_events`], [`client_events`]); each payload's
//! schema comes from the struct that renders it (`schemars` derives in
//! [`crate::protocol`] and [`crate::gateway`]), a field copied from a
//! record from its Avro schema, the requests' schemas from the tables their
//! parsers read. `tests/contract.rs` holds the checked-in copies
//! (`docs/asyncapi.json`, `client/index.d.ts`) to this and the list to the
//! event names the code emits and handles.

mod asyncapi;
mod typescript;

pub use asyncapi::asyncapi;
pub use typescript::typescript;

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};

use crate::gateway::{
    Connected, Done, Joined, Nothing, Replaying, Subscribed, SubscriptionGap, SubscriptionResumed,
    SubscriptionRevoked, Typed, ack_schema,
};
use crate::protocol::{
    ErrorPayload, PresenceChange, Typing, outbound_schemas, room_schema, subscription_schema,
    typing_schema, unsubscribe_schema,
};

/// An event the bridge emits.
pub struct ServerEvent {
    pub name: &'static str,
    /// Its payload's TypeScript name; `None`: it has no payload.
    pub type_name: Option<&'static str>,
    pub summary: &'static str,
    pub payload: Option<Schema>,
}

/// An event a client sends, answered through its acknowledgement.
pub struct ClientEvent {
    pub name: &'static str,
    /// The TypeScript names of its request (`None`: no payload) and reply.
    pub request_type: Option<&'static str>,
    pub reply_type: &'static str,
    pub summary: &'static str,
    pub request: Option<Schema>,
    pub reply: Schema,
}

/// How the contract's schemas are generated: draft 7 (what AsyncAPI's
/// schema format extends) with every subschema inline, so each payload's
/// schema stands alone; of what is serialised (a field skipped when empty
/// is optional, an `Option` sent as `null` is not).
fn generator() -> SchemaGenerator {
    SchemaSettings::draft07()
        .for_serialize()
        .with(|settings| {
            settings.inline_subschemas = true;
            settings.meta_schema = None;
        })
        .into_generator()
}

/// The schema of `T` as a payload: without the title schemars gives it
/// (the AsyncAPI message and the TypeScript type have names of their own).
fn payload<T: JsonSchema>() -> Schema {
    untitled(generator().into_root_schema_for::<T>())
}

/// An acknowledgement answering with any of `done`, or refusing.
fn ack(done: Vec<Schema>) -> Schema {
    untitled(ack_schema(&mut generator(), done))
}

fn untitled(mut schema: Schema) -> Schema {
    schema.remove("title");
    schema
}

/// Every event the bridge emits, with its payload's schema.
pub fn server_events() -> Vec<ServerEvent> {
    let rendered = outbound_schemas(&mut generator())
        .into_iter()
        .map(|(name, schema)| {
            let (type_name, summary) = match name {
                "resource-update" => ("ResourceUpdate", "A contact or deal changed."),
                "resource-delete" => ("ResourceDelete", "A contact or deal was deleted."),
                "pipeline-update" => ("PipelineUpdate", "A deal moved between stages."),
                "email-received" => ("EmailReceived", "An email arrived in a thread."),
                "notification" => ("Notification", "A notification for the connected user."),
                other => unreachable!("no TypeScript name for {other}"),
            };
            ServerEvent {
                name,
                type_name: Some(type_name),
                summary,
                payload: Some(untitled(schema)),
            }
        });
    let mut events: Vec<ServerEvent> = rendered.collect();
    let event = |name, type_name, summary, payload| ServerEvent {
        name,
        type_name: Some(type_name),
        summary,
        payload: Some(payload),
    };
    events.extend([
        event(
            "connected",
            "Connected",
            "The handshake was accepted: the first event of every accepted connection.",
            payload::<Connected<'_>>(),
        ),
        event(
            "error",
            "ErrorObject",
            "A refused request or handshake, or why the bridge is cutting the connection off.",
            payload::<ErrorPayload<'_>>(),
        ),
        event(
            "subscription-resumed",
            "SubscriptionResumed",
            "A subscription with `since` has replayed what was missed; live delivery continues.",
            payload::<SubscriptionResumed<'_>>(),
        ),
        event(
            "subscription-gap",
            "SubscriptionGap",
            "Kafka no longer held some of what a resumed subscription missed.",
            payload::<SubscriptionGap<'_>>(),
        ),
        event(
            "subscription-revoked",
            "SubscriptionRevoked",
            "A grant was revoked: the connection's subscription to a resource and its seat in the resource's room, whichever it had, have ended.",
            payload::<SubscriptionRevoked>(),
        ),
        event(
            "user-joined",
            "UserJoined",
            "Someone joined a room this connection is in.",
            payload::<PresenceChange<'_>>(),
        ),
        event(
            "user-left",
            "UserLeft",
            "Someone left a room this connection is in.",
            payload::<PresenceChange<'_>>(),
        ),
        event(
            "user-typing",
            "UserTyping",
            "Someone is typing in a room this connection is in.",
            payload::<Typing<'_>>(),
        ),
    ]);
    events.push(ServerEvent {
        name: "pong",
        type_name: None,
        summary: "The answer to `ping`.",
        payload: None,
    });
    events
}

/// Every event a client may send, with its request's and acknowledgement's schemas.
pub fn client_events() -> Vec<ClientEvent> {
    let nothing = payload::<Done<Nothing>>;
    vec![
        ClientEvent {
            name: "subscribe",
            request_type: Some("SubscribeRequest"),
            reply_type: "SubscribeReply",
            summary: "Subscribe to a resource's events, by id or filter; with `since`, replay what was missed first.",
            request: Some(subscription_schema(true)),
            reply: ack(vec![
                payload::<Done<Subscribed>>(),
                payload::<Done<Replaying>>(),
            ]),
        },
        ClientEvent {
            name: "unsubscribe",
            request_type: Some("UnsubscribeRequest"),
            reply_type: "UnsubscribeReply",
            summary: "End a subscription this connection holds.",
            request: Some(unsubscribe_schema()),
            reply: ack(vec![nothing()]),
        },
        ClientEvent {
            name: "join-room",
            request_type: Some("JoinRoomRequest"),
            reply_type: "JoinRoomReply",
            summary: "Join a collaboration room: presence, typing, and the room's resource events.",
            request: Some(room_schema()),
            reply: ack(vec![payload::<Done<Joined>>()]),
        },
        ClientEvent {
            name: "leave-room",
            request_type: Some("LeaveRoomRequest"),
            reply_type: "LeaveRoomReply",
            summary: "Leave a room.",
            request: Some(room_schema()),
            reply: ack(vec![nothing()]),
        },
        ClientEvent {
            name: "typing",
            request_type: Some("TypingRequest"),
            reply_type: "TypingReply",
            summary: "Show the others in a room that this user is typing in a field.",
            request: Some(typing_schema()),
            reply: ack(vec![payload::<Done<Typed>>()]),
        },
        ClientEvent {
            name: "ping",
            request_type: None,
            reply_type: "PingReply",
            summary: "Check the connection: answered with `pong` and the acknowledgement.",
            request: None,
            reply: ack(vec![nothing()]),
        },
    ]
}
