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
//! A payload is rendered once per record and shared by every recipient.

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::format_millis;
use crate::domain::{Action, CrmEvent, EventBody, LogTag, ResourceKind};

/// One server-to-client event, ready to emit to any number of sockets.
#[derive(Debug)]
pub struct Outbound {
    pub name: &'static str,
    pub payload: Box<RawValue>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResourceUpdate<'a> {
    resource: ResourceKind,
    id: &'a str,
    action: &'static str,
    data: &'a Map<String, Value>,
    timestamp: String,
    user_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResourceDelete<'a> {
    resource: ResourceKind,
    id: &'a str,
    timestamp: String,
    user_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PipelineUpdate<'a> {
    pipeline_id: &'a str,
    deal_id: &'a str,
    previous_stage: Option<&'a str>,
    new_stage: Option<&'a str>,
    user_id: &'a str,
    timestamp: String,
}

/// The seed's fields, plus `threadId` and `action` so a thread view can place it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EmailReceived<'a> {
    email_id: &'a str,
    contact_id: Option<&'a str>,
    subject: &'a str,
    from: &'a str,
    timestamp: String,
    thread_id: &'a str,
    action: &'static str,
}

#[derive(Serialize)]
struct Notification<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    title: &'a str,
    message: &'a str,
    link: Option<&'a str>,
    timestamp: String,
}

impl Serialize for ResourceKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// How an event reaches the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    Live,
    Replayed,
}

/// The seed's fields of one payload, plus where the event sits in Kafka.
#[derive(Serialize)]
struct Positioned<'a, T> {
    #[serde(flatten)]
    fields: T,
    position: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    replayed: bool,
}

/// Renders `event` as the client event it becomes; `log` is the tag of the
/// log it was read from, if known.
pub fn render(event: &CrmEvent, delivery: Delivery, log: Option<LogTag>) -> Outbound {
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
            &c.changes,
            c.occurred_at_ms,
            &c.actor_user_id,
        ),
        EventBody::Deal(d) if d.action == Action::StageChange => (
            "pipeline-update",
            stamp.apply(PipelineUpdate {
                pipeline_id: &d.pipeline_id,
                deal_id: &d.deal_id,
                previous_stage: d.previous_stage.as_deref(),
                new_stage: d.new_stage.as_deref(),
                user_id: &d.actor_user_id,
                timestamp: format_millis(d.occurred_at_ms),
            }),
        ),
        EventBody::Deal(d) => resource_event(
            &stamp,
            ResourceKind::Deal,
            &d.deal_id,
            d.action,
            &d.changes,
            d.occurred_at_ms,
            &d.actor_user_id,
        ),
        EventBody::Email(e) => (
            "email-received",
            stamp.apply(EmailReceived {
                email_id: &e.email_id,
                contact_id: e.contact_id.as_deref(),
                subject: &e.subject,
                from: &e.from,
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
    data: &Map<String, Value>,
    occurred_at_ms: i64,
    user_id: &str,
) -> (&'static str, Box<RawValue>) {
    let timestamp = format_millis(occurred_at_ms);
    if action == Action::Delete {
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
