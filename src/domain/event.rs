//! Typed CRM events, as decoded from Kafka records. One struct per topic.

use serde_json::{Map, Value};

use super::{Action, OrgId, Position, ResourceKind, UserId};

/// One decoded record. `org` is hoisted out of the body because every routing
/// and authorisation decision starts from it.
#[derive(Clone, Debug, PartialEq)]
pub struct CrmEvent {
    pub org: OrgId,
    pub position: Position,
    pub body: EventBody,
}

#[derive(Clone, Debug, PartialEq)]
pub enum EventBody {
    Contact(ContactEvent),
    Deal(DealEvent),
    Email(EmailEvent),
    Notification(NotificationEvent),
}

/// A contact was created, changed, deleted or had activity (topic `crm.contacts`).
#[derive(Clone, Debug, PartialEq)]
pub struct ContactEvent {
    pub contact_id: String,
    pub action: Action,
    pub actor_user_id: String,
    pub occurred_at_ms: i64,
    /// Changed fields and their new values.
    pub changes: Map<String, Value>,
}

/// A deal was created, changed, moved between stages... (topic `crm.deals`).
#[derive(Clone, Debug, PartialEq)]
pub struct DealEvent {
    pub deal_id: String,
    pub pipeline_id: String,
    pub action: Action,
    pub actor_user_id: String,
    pub occurred_at_ms: i64,
    pub previous_stage: Option<String>,
    pub new_stage: Option<String>,
    pub changes: Map<String, Value>,
}

/// An email arrived in a thread (topic `crm.email`).
#[derive(Clone, Debug, PartialEq)]
pub struct EmailEvent {
    pub email_id: String,
    pub thread_id: String,
    pub contact_id: Option<String>,
    pub action: Action,
    pub subject: String,
    pub from: String,
    pub occurred_at_ms: i64,
}

/// A notification for exactly one user (topic `crm.notifications`).
#[derive(Clone, Debug, PartialEq)]
pub struct NotificationEvent {
    pub notification_id: String,
    pub target_user: UserId,
    pub kind: String,
    pub title: String,
    pub message: String,
    pub link: Option<String>,
    pub occurred_at_ms: i64,
}

impl EventBody {
    /// The resource this event is about, with its id and action; `None` for
    /// notifications, which belong to a user rather than a resource.
    pub fn resource(&self) -> Option<(ResourceKind, &str, Action)> {
        match self {
            Self::Contact(e) => Some((ResourceKind::Contact, &e.contact_id, e.action)),
            Self::Deal(e) => Some((ResourceKind::Deal, &e.deal_id, e.action)),
            Self::Email(e) => Some((ResourceKind::EmailThread, &e.thread_id, e.action)),
            Self::Notification(_) => None,
        }
    }
}
