//! Typed events rendered into the seed's server-to-client events.
//!
//! | record                         | client event      |
//! |--------------------------------|-------------------|
//! | contact/deal `delete`          | `resource-delete` |
//! | deal `stage_change`            | `pipeline-update` |
//! | other contact/deal actions     | `resource-update` |
//! | email (any action)             | `email-received`  |
//! | notification                   | `notification`    |
//!
//! Every payload also carries `position` (`d.1.1534`: topic code, partition,
//! offset; then `.AbCd-_12`, the log's tag, where the topic's id is known),
//! from which clients advance their resume cursors, and `replayed: true`
//! when it is sent by a replay rather than live.
//!
//! A payload is rendered once per record and per set of hidden fields
//! ([`Hidden`]: what the permissions policy removes for a recipient's
//! roles), and shared by every recipient that sees the same.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::format_millis;
use crate::access::Hidden;
use crate::decode::changes_json_schema;
use crate::domain::{Action, CrmEvent, EventBody, LogTag, ResourceKind};

/// One server-to-client event, ready to emit to any number of sockets.
#[derive(Debug)]
pub struct Outbound {
    pub name: &'static str,
    pub payload: Box<RawValue>,
}

/// A contact or deal changed (any action but `delete`, and a deal's
/// `stage-change`, which have events of their own).
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct ResourceUpdate<'a> {
    resource: ResourceKind,
    id: &'a str,
    #[schemars(schema_with = "update_actions")]
    action: &'static str,
    /// The changed fields and their new values (the record's `changes`),
    /// without those the policy hides from the recipient's roles.
    #[schemars(schema_with = "changes_json_schema")]
    data: Shown<'a>,
    #[schemars(extend("format" = "date-time"))]
    timestamp: String,
    /// Who made the change.
    user_id: &'a str,
}

/// A contact or deal was deleted.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct ResourceDelete<'a> {
    resource: ResourceKind,
    id: &'a str,
    #[schemars(extend("format" = "date-time"))]
    timestamp: String,
    user_id: &'a str,
}

/// A deal moved between stages.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct PipelineUpdate<'a> {
    pipeline_id: &'a str,
    deal_id: &'a str,
    previous_stage: Option<&'a str>,
    new_stage: Option<&'a str>,
    user_id: &'a str,
    #[schemars(extend("format" = "date-time"))]
    timestamp: String,
}

/// An email arrived in a thread: the seed's fields, plus `threadId` and
/// `action` so a thread view can place it.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct EmailReceived<'a> {
    email_id: &'a str,
    contact_id: Option<&'a str>,
    /// Absent when the policy hides it from the recipient's roles.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    subject: Option<&'a str>,
    /// Sender address; absent when the policy hides it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    from: Option<&'a str>,
    #[schemars(extend("format" = "date-time"))]
    timestamp: String,
    thread_id: &'a str,
    #[schemars(schema_with = "email_actions")]
    action: &'static str,
}

/// A notification for the connected user alone.
#[derive(Serialize, JsonSchema)]
struct Notification<'a> {
    id: &'a str,
    /// `mention`, `assignment`, `reminder`, ...
    #[serde(rename = "type")]
    kind: &'a str,
    title: &'a str,
    message: &'a str,
    link: Option<&'a str>,
    #[schemars(extend("format" = "date-time"))]
    timestamp: String,
}

/// A record's `changes` without the keys a recipient may not see.
struct Shown<'a> {
    changes: &'a Map<String, Value>,
    hidden: Hidden<'a>,
}

impl Serialize for Shown<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.hidden.is_nothing() {
            return self.changes.serialize(s);
        }
        s.collect_map(
            self.changes
                .iter()
                .filter(|(key, _)| !self.hidden.change(key)),
        )
    }
}

impl Serialize for ResourceKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl JsonSchema for ResourceKind {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ResourceKind".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "enum": ResourceKind::ALL.map(ResourceKind::as_str) })
    }
}

/// Which event a contact or deal record with `action` becomes: the rule
/// [`render`] follows, and the contract documents.
const fn resource_event_name(kind: ResourceKind, action: Action) -> &'static str {
    match (kind, action) {
        (_, Action::Delete) => "resource-delete",
        (ResourceKind::Deal, Action::StageChange) => "pipeline-update",
        _ => "resource-update",
    }
}

/// The actions a `resource-update` may carry.
fn update_actions(_: &mut SchemaGenerator) -> Schema {
    let actions: Vec<&str> = [ResourceKind::Contact, ResourceKind::Deal]
        .into_iter()
        .flat_map(|kind| kind.actions().iter().map(move |a| (kind, *a)))
        .filter(|(kind, a)| resource_event_name(*kind, *a) == "resource-update")
        .map(|(_, a)| a.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    json_schema!({ "type": "string", "enum": actions })
}

/// `replayed`: sent only when true.
fn literal_true(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "const": true })
}

/// The actions an `email-received` may carry.
fn email_actions(_: &mut SchemaGenerator) -> Schema {
    let actions = ResourceKind::EmailThread
        .actions()
        .iter()
        .map(|a| a.as_str());
    json_schema!({ "type": "string", "enum": actions.collect::<Vec<_>>() })
}

/// The JSON Schema of each event [`render`] makes, by event name, with
/// `position` and `replayed`.
pub fn outbound_schemas(generator: &mut SchemaGenerator) -> Vec<(&'static str, Schema)> {
    vec![
        (
            "resource-update",
            generator.subschema_for::<Positioned<'_, ResourceUpdate<'_>>>(),
        ),
        (
            "resource-delete",
            generator.subschema_for::<Positioned<'_, ResourceDelete<'_>>>(),
        ),
        (
            "pipeline-update",
            generator.subschema_for::<Positioned<'_, PipelineUpdate<'_>>>(),
        ),
        (
            "email-received",
            generator.subschema_for::<Positioned<'_, EmailReceived<'_>>>(),
        ),
        (
            "notification",
            generator.subschema_for::<Positioned<'_, Notification<'_>>>(),
        ),
    ]
}

/// How an event reaches the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    Live,
    Replayed,
}

/// The seed's fields of one payload, plus where the event sits in Kafka.
#[derive(Serialize, JsonSchema)]
struct Positioned<'a, T> {
    #[serde(flatten)]
    fields: T,
    /// Where the event sits in Kafka (`d.1.1534`, then the log's tag where
    /// known): what a resume cursor advances by.
    position: &'a str,
    /// Present (`true`) when a replay sent it, not live delivery.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[schemars(schema_with = "literal_true")]
    replayed: bool,
}

/// Renders `event` as the client event it becomes, without what `hidden`
/// hides; `log` is the tag of the log it was read from, if known.
pub fn render(
    event: &CrmEvent,
    delivery: Delivery,
    log: Option<LogTag>,
    hidden: Hidden<'_>,
) -> Outbound {
    let stamp = Stamp {
        position: event.position.tagged(log),
        replayed: delivery == Delivery::Replayed,
    };
    let (name, payload) = match &event.body {
        EventBody::Contact(c) => resource_event(
            &stamp,
            ResourceKind::Contact,
            &c.contact_id,
            c.action,
            Shown {
                changes: &c.changes,
                hidden,
            },
            c.occurred_at_ms,
            &c.actor_user_id,
        ),
        EventBody::Deal(d)
            if resource_event_name(ResourceKind::Deal, d.action) == "pipeline-update" =>
        {
            (
                "pipeline-update",
                stamp.apply(PipelineUpdate {
                    pipeline_id: &d.pipeline_id,
                    deal_id: &d.deal_id,
                    previous_stage: d.previous_stage.as_deref(),
                    new_stage: d.new_stage.as_deref(),
                    user_id: &d.actor_user_id,
                    timestamp: format_millis(d.occurred_at_ms),
                }),
            )
        }
        EventBody::Deal(d) => resource_event(
            &stamp,
            ResourceKind::Deal,
            &d.deal_id,
            d.action,
            Shown {
                changes: &d.changes,
                hidden,
            },
            d.occurred_at_ms,
            &d.actor_user_id,
        ),
        EventBody::Email(e) => (
            "email-received",
            stamp.apply(EmailReceived {
                email_id: &e.email_id,
                contact_id: e.contact_id.as_deref(),
                subject: (!hidden.subject()).then_some(&*e.subject),
                from: (!hidden.from()).then_some(&*e.from),
                timestamp: format_millis(e.occurred_at_ms),
                thread_id: &e.thread_id,
                action: e.action.as_str(),
            }),
        ),
        EventBody::Notification(n) => (
            "notification",
            stamp.apply(Notification {
                id: &n.notification_id,
                kind: &n.kind,
                title: &n.title,
                message: &n.message,
                link: n.link.as_deref(),
                timestamp: format_millis(n.occurred_at_ms),
            }),
        ),
    };
    Outbound { name, payload }
}

fn resource_event(
    stamp: &Stamp,
    resource: ResourceKind,
    id: &str,
    action: Action,
    data: Shown<'_>,
    occurred_at_ms: i64,
    user_id: &str,
) -> (&'static str, Box<RawValue>) {
    let timestamp = format_millis(occurred_at_ms);
    if resource_event_name(resource, action) == "resource-delete" {
        let payload = ResourceDelete {
            resource,
            id,
            timestamp,
            user_id,
        };
        ("resource-delete", stamp.apply(payload))
    } else {
        let action = action.as_str();
        let payload = ResourceUpdate {
            resource,
            id,
            action,
            data,
            timestamp,
            user_id,
        };
        ("resource-update", stamp.apply(payload))
    }
}

/// What every payload carries besides the seed's fields.
struct Stamp {
    position: String,
    replayed: bool,
}

impl Stamp {
    fn apply(&self, fields: impl Serialize) -> Box<RawValue> {
        let payload = Positioned {
            fields,
            position: &self.position,
            replayed: self.replayed,
        };
        // Serialising these structs of strings and a JSON map cannot fail.
        serde_json::value::to_raw_value(&payload).expect("payload serialises")
    }
}

#[cfg(test)]
mod tests;
