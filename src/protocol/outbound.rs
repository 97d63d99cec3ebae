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
//! A payload is rendered once per record and shared by every recipient.

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::format_millis;
use crate::domain::{Action, CrmEvent, EventBody, ResourceKind};

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

/// Renders `event` as the client event it becomes.
pub fn render(event: &CrmEvent) -> Outbound {
    let (name, payload) = match &event.body {
        EventBody::Contact(c) => resource_event(
            ResourceKind::Contact,
            &c.contact_id,
            c.action,
            &c.changes,
            c.occurred_at_ms,
            &c.actor_user_id,
        ),
        EventBody::Deal(d) if d.action == Action::StageChange => (
            "pipeline-update",
            to_raw(&PipelineUpdate {
                pipeline_id: &d.pipeline_id,
                deal_id: &d.deal_id,
                previous_stage: d.previous_stage.as_deref(),
                new_stage: d.new_stage.as_deref(),
                user_id: &d.actor_user_id,
                timestamp: format_millis(d.occurred_at_ms),
            }),
        ),
        EventBody::Deal(d) => resource_event(
            ResourceKind::Deal,
            &d.deal_id,
            d.action,
            &d.changes,
            d.occurred_at_ms,
            &d.actor_user_id,
        ),
        EventBody::Email(e) => (
            "email-received",
            to_raw(&EmailReceived {
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
            to_raw(&Notification {
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
        ("resource-delete", to_raw(&payload))
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
        ("resource-update", to_raw(&payload))
    }
}

fn to_raw(payload: &impl Serialize) -> Box<RawValue> {
    // Serialising these structs of strings and a JSON map cannot fail.
    serde_json::value::to_raw_value(payload).expect("payload serialises")
}

#[cfg(test)]
mod tests;
