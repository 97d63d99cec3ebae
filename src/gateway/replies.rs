//! The payloads the gateway composes from several layers' parts:
//! acknowledgements (`{ ok: true, ... }` or `{ ok: false, error }`),
//! `connected`, `subscription-resumed`, `subscription-gap` and
//! `subscription-revoked`. Structs, so
//! the client contract (`crate::contract`) derives their JSON Schemas from
//! what is sent.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Serialize;
use serde_json::Value;

use crate::presence::RoomView;
use crate::protocol::{ErrorCode, ErrorPayload, room_echo_schema, subscription_schema};
use crate::replay::Gap;

/// An acknowledgement of a request done: `{ ok: true, ...reply }`.
#[derive(Serialize, JsonSchema)]
pub struct Done<T> {
    #[schemars(schema_with = "literal_true")]
    ok: bool,
    #[serde(flatten)]
    reply: T,
}

impl<T> Done<T> {
    pub fn new(reply: T) -> Self {
        Self { ok: true, reply }
    }
}

/// An acknowledgement of a refused request: `{ ok: false, error }` (the
/// same error also goes out as an `error` event).
#[derive(Serialize, JsonSchema)]
pub struct Refused<'a> {
    #[schemars(schema_with = "literal_false")]
    ok: bool,
    error: &'a ErrorPayload<'a>,
}

impl<'a> Refused<'a> {
    pub fn new(error: &'a ErrorPayload<'a>) -> Self {
        Self { ok: false, error }
    }
}

/// Nothing besides `ok`: `unsubscribe`, `leave-room`, `ping`.
#[derive(Serialize, JsonSchema)]
pub struct Nothing {}

/// `subscribe` without `since`: live at once.
#[derive(Serialize, JsonSchema)]
pub struct Subscribed {
    #[schemars(schema_with = "subscription_echo")]
    pub subscription: Value,
    /// This connection already had the subscription; its `events` were replaced.
    pub replaced: bool,
    /// Where live delivery stands: `since` for a later resume.
    pub cursor: String,
    /// Always 0: nothing is replayed without `since`.
    pub replayed: u64,
}

/// `subscribe` with `since`: replaying; `subscription-resumed` follows.
#[derive(Serialize, JsonSchema)]
pub struct Replaying {
    #[schemars(schema_with = "subscription_echo")]
    pub subscription: Value,
    /// The request's `since`.
    pub cursor: String,
    #[schemars(schema_with = "literal_true")]
    pub replaying: bool,
}

/// `join-room`: the others already in the room, who is typing there, and
/// the subscription the room holds for its resource's events.
#[derive(Serialize, JsonSchema)]
pub struct Joined {
    #[schemars(schema_with = "room_echo")]
    pub room: Value,
    #[serde(flatten)]
    pub view: RoomView,
    #[schemars(schema_with = "subscription_echo")]
    pub subscription: Value,
}

/// `typing`: `throttled` when the indicator was shown less than the
/// throttle interval ago (nothing was sent then).
#[derive(Serialize, JsonSchema)]
pub struct Typed {
    pub throttled: bool,
}

/// `connected`: the handshake was accepted.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Connected<'a> {
    pub session_id: String,
    pub user_id: &'a str,
    #[schemars(extend("format" = "date-time"))]
    pub timestamp: String,
    /// Where the user's notifications stand: `auth.notificationsSince` for
    /// the next connection.
    pub notifications_cursor: String,
}

/// `subscription-resumed`: a replay is done; live delivery continues.
#[derive(Serialize, JsonSchema)]
pub struct SubscriptionResumed<'a> {
    #[schemars(schema_with = "subscription_echo")]
    pub subscription: &'a Value,
    /// `since` for the next resume.
    pub cursor: String,
    /// How many events the replay sent.
    pub replayed: u64,
    /// What Kafka no longer held (empty when nothing was lost).
    pub gaps: &'a [Gap],
}

/// `subscription-gap`: Kafka no longer held some of what was missed.
#[derive(Serialize, JsonSchema)]
pub struct SubscriptionGap<'a> {
    #[schemars(schema_with = "subscription_echo")]
    pub subscription: &'a Value,
    pub gaps: &'a [Gap],
}

/// `subscription-revoked`: a grant was revoked, and the connection may no
/// longer see a resource. Its subscription to it (`subscription`) and its
/// seat in the room about it (`room`), whichever it had, have ended; ask
/// again once access is granted again.
#[derive(Serialize, JsonSchema)]
pub struct SubscriptionRevoked {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "subscription_echo")]
    pub subscription: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "room_echo")]
    pub room: Option<Value>,
    /// Always `FORBIDDEN`: what subscribing again would answer.
    pub code: ErrorCode,
    pub message: String,
    #[schemars(extend("format" = "date-time"))]
    pub timestamp: String,
}

/// The JSON Schema of the acknowledgement of a request answered with any
/// of `done` (each a `Done<_>` schema) or refused.
pub fn ack_schema(generator: &mut SchemaGenerator, done: Vec<Schema>) -> Schema {
    let mut any_of = done;
    any_of.push(generator.subschema_for::<Refused<'_>>());
    json_schema!({ "anyOf": any_of })
}

fn literal_true(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "const": true })
}

fn literal_false(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "const": false })
}

fn subscription_echo(_: &mut SchemaGenerator) -> Schema {
    subscription_schema(false)
}

fn room_echo(_: &mut SchemaGenerator) -> Schema {
    room_echo_schema()
}
