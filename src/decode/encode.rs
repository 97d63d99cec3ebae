//! Typed event (or grant) → Kafka record value: the decoder's inverse, writing records
//! the way the CRM's producers do (Avro with a writer schema, framed with
//! its id). The demo producer, the tests, the benchmarks and the fuzz seeds
//! all write their records with it; a property test checks that decoding
//! what it writes gives the event back.
//!
//! It builds an Avro value and leaves the bytes to apache-avro's writer,
//! never running the fast path ([`super::direct`]) in reverse: the round
//! trip checks the decoder against an independent writer. The value is
//! resolved against the writer schema by field and symbol name, so any
//! compatible version can write it: fields the event has no value for (a
//! later version's) take the writer schema's defaults, fields the writer
//! schema lacks are left out.

use std::collections::HashMap;
use std::sync::Arc;

use apache_avro::Schema;
use apache_avro::types::Value;
use serde_json::{Map, Value as Json};

use super::mapping::{TEAM, USER, resource_symbol};
use super::{LocalRegistry, frame};
use crate::domain::{Action, EventBody, Grant, Granted, Grantee, TopicKind};

/// Why an event could not be written.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("no writer schema for {} records", .0.label())]
    NoWriter(TopicKind),
    #[error("no writer schema for grants")]
    NoGrantWriter,
    #[error("avro: {0}")]
    Avro(#[from] apache_avro::Error),
}

/// Writes each topic's events with its writer schema, framed with that
/// schema's id. Cheap to share.
pub struct Encoder {
    writers: HashMap<TopicKind, (u32, Arc<Schema>)>,
    grants: Option<(u32, Arc<Schema>)>,
}

impl Encoder {
    /// Writes `kind`'s events with the schema `writers` gives it (id and
    /// schema); a topic it does not name cannot be written.
    pub fn new(writers: HashMap<TopicKind, (u32, Arc<Schema>)>) -> Self {
        Self {
            writers,
            grants: None,
        }
    }

    /// Writes grants too, with `writer` (id and schema).
    pub fn with_grant_writer(self, writer: (u32, Arc<Schema>)) -> Self {
        Self {
            grants: Some(writer),
            ..self
        }
    }

    /// Writes every topic's events with its latest schema in `registry`.
    pub fn latest(registry: &LocalRegistry) -> Result<Self, EncodeError> {
        let writer = |kind| {
            let writer = registry
                .latest_of(kind)
                .ok_or(EncodeError::NoWriter(kind))?;
            Ok((kind, writer))
        };
        let writers = TopicKind::ALL
            .into_iter()
            .map(writer)
            .collect::<Result<_, EncodeError>>()?;
        let grants = registry
            .latest(GRANT_SUBJECT)
            .ok_or(EncodeError::NoGrantWriter)?;
        Ok(Self::new(writers).with_grant_writer(grants))
    }

    /// The id of the schema `kind`'s records are written with.
    pub fn schema_id(&self, kind: TopicKind) -> Option<u32> {
        self.writers.get(&kind).map(|(id, _)| *id)
    }

    /// The framed record value of an event of `org` with `body`, under
    /// `event_id` (the record's `eventId`, which the bridge does not read;
    /// notifications have none). `org` is text, as a producer sends it: an
    /// empty one is written, and the bridge refuses it.
    ///
    /// `changes` values that are arrays or objects are written as their JSON
    /// text (the schemas' convention), integers beyond `i64` as doubles;
    /// their order in the record is apache-avro's hash order, not fixed.
    pub fn encode(
        &self,
        event_id: &str,
        org: &str,
        body: &EventBody,
    ) -> Result<Vec<u8>, EncodeError> {
        let kind = body.topic();
        let (id, schema) = self.writers.get(&kind).ok_or(EncodeError::NoWriter(kind))?;
        let value = Value::Record(fields(event_id, org, body)).resolve(schema)?;
        Ok(frame(*id, &apache_avro::to_avro_datum(schema, value)?))
    }

    /// The framed record value of a grant, as the CRM writes it to the
    /// permissions topic (its revocation is a tombstone: no value at all).
    pub fn encode_grant(&self, grant: &Grant) -> Result<Vec<u8>, EncodeError> {
        let (id, schema) = self.grants.as_ref().ok_or(EncodeError::NoGrantWriter)?;
        let value = Value::Record(grant_fields(grant)).resolve(schema)?;
        Ok(frame(*id, &apache_avro::to_avro_datum(schema, value)?))
    }
}

/// The subject of the permissions topic's schema in the local registry.
const GRANT_SUBJECT: &str = "crm.access-value";

/// A grant's record fields by name.
fn grant_fields(grant: &Grant) -> Vec<(String, Value)> {
    let text = |text: &str| Value::String(text.to_owned());
    let (principal_type, principal) = match &grant.grantee {
        Grantee::User(user) => (USER, user.as_str()),
        Grantee::Team(team) => (TEAM, team.as_str()),
    };
    let (resource_type, resource) = match &grant.granted {
        Granted::Resource(kind, id) => (resource_symbol(*kind), &**id),
        Granted::Team(team) => (TEAM, team.as_str()),
    };
    [
        ("organizationId", text(grant.org.as_str())),
        ("principalType", Value::Enum(0, principal_type.to_owned())),
        ("principalId", text(principal)),
        ("resourceType", Value::Enum(0, resource_type.to_owned())),
        ("resourceId", text(resource)),
        ("grantedAt", Value::Long(grant.granted_at_ms)),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}

/// The Avro symbol of an action in its resource's `action` enum: its
/// client name in snake case (a test holds every schema to this).
pub(super) fn symbol(action: Action) -> String {
    action.as_str().replace('-', "_")
}

/// An event's record fields by name, not yet resolved against a schema
/// (so without union branches or enum indexes).
fn fields(event_id: &str, org: &str, body: &EventBody) -> Vec<(String, Value)> {
    let text = |text: &str| Value::String(text.to_owned());
    let optional = |value: &Option<String>| value.as_deref().map_or(Value::Null, text);
    let action = |action: Action| Value::String(symbol(action));
    let fields = match body {
        EventBody::Contact(e) => vec![
            ("eventId", text(event_id)),
            ("contactId", text(&e.contact_id)),
            ("organizationId", text(org)),
            ("action", action(e.action)),
            ("actorUserId", text(&e.actor_user_id)),
            ("occurredAt", Value::Long(e.occurred_at_ms)),
            ("changes", changes(&e.changes)),
        ],
        EventBody::Deal(e) => vec![
            ("eventId", text(event_id)),
            ("dealId", text(&e.deal_id)),
            ("organizationId", text(org)),
            ("pipelineId", text(&e.pipeline_id)),
            ("action", action(e.action)),
            ("actorUserId", text(&e.actor_user_id)),
            ("occurredAt", Value::Long(e.occurred_at_ms)),
            ("previousStage", optional(&e.previous_stage)),
            ("newStage", optional(&e.new_stage)),
            ("changes", changes(&e.changes)),
        ],
        EventBody::Email(e) => vec![
            ("eventId", text(event_id)),
            ("emailId", text(&e.email_id)),
            ("threadId", text(&e.thread_id)),
            ("organizationId", text(org)),
            ("contactId", optional(&e.contact_id)),
            ("action", action(e.action)),
            ("subject", text(&e.subject)),
            ("from", text(&e.from)),
            ("occurredAt", Value::Long(e.occurred_at_ms)),
        ],
        EventBody::Notification(e) => vec![
            ("notificationId", text(&e.notification_id)),
            ("organizationId", text(org)),
            ("targetUserId", text(e.target_user.as_str())),
            ("type", text(&e.kind)),
            ("title", text(&e.title)),
            ("message", text(&e.message)),
            ("link", optional(&e.link)),
            ("occurredAt", Value::Long(e.occurred_at_ms)),
        ],
    };
    fields
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}

/// `changes`: each JSON value as the scalar of the same meaning.
fn changes(changes: &Map<String, Json>) -> Value {
    let scalar = |value: &Json| match value {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => n.as_i64().map_or_else(
            || Value::Double(n.as_f64().expect("serde_json numbers are f64s at most")),
            Value::Long,
        ),
        Json::String(s) => Value::String(s.clone()),
        nested => Value::String(nested.to_string()),
    };
    Value::Map(
        changes
            .iter()
            .map(|(k, v)| (k.clone(), scalar(v)))
            .collect(),
    )
}
