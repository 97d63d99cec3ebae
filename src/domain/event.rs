//! Typed CRM events, as decoded from Kafka records. One struct per topic.

use serde_json::{Map, Value};

use super::{Action, OrgId, Position, ResourceKind, TopicKind, UserId};

/// What routing looks at in an event: its organisation and what it is about,
/// borrowed. Both a [`CrmEvent`] and a record not yet made into one (see
/// `decode::Decoded`) give one, so a record that matches nobody is routed
/// without building its event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventKeys<'a> {
    pub org: &'a str,
    pub about: About<'a>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum About<'a> {
    /// A notification, for this user alone.
    Inbox(&'a str),
    /// An event about a resource (for an email, its thread), with the fields
    /// subscriptions can filter on: a deal's pipeline, an email's contact.
    Resource {
        kind: ResourceKind,
        id: &'a str,
        action: Action,
        pipeline_id: Option<&'a str>,
        contact_id: Option<&'a str>,
    },
}

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
    /// The topic events of this kind come from.
    pub const fn topic(&self) -> TopicKind {
        match self {
            Self::Contact(_) => TopicKind::Contacts,
            Self::Deal(_) => TopicKind::Deals,
            Self::Email(_) => TopicKind::Email,
            Self::Notification(_) => TopicKind::Notifications,
        }
    }
}

impl CrmEvent {
    /// When the change happened, as its record says (Unix ms).
    pub fn occurred_at_ms(&self) -> i64 {
        match &self.body {
            EventBody::Contact(e) => e.occurred_at_ms,
            EventBody::Deal(e) => e.occurred_at_ms,
            EventBody::Email(e) => e.occurred_at_ms,
            EventBody::Notification(e) => e.occurred_at_ms,
        }
    }

    pub fn keys(&self) -> EventKeys<'_> {
        let about = match &self.body {
            EventBody::Notification(n) => About::Inbox(n.target_user.as_str()),
            EventBody::Contact(e) => About::Resource {
                kind: ResourceKind::Contact,
                id: &e.contact_id,
                action: e.action,
                pipeline_id: None,
                contact_id: None,
            },
            EventBody::Deal(e) => About::Resource {
                kind: ResourceKind::Deal,
                id: &e.deal_id,
                action: e.action,
                pipeline_id: Some(&e.pipeline_id),
                contact_id: None,
            },
            EventBody::Email(e) => About::Resource {
                kind: ResourceKind::EmailThread,
                id: &e.thread_id,
                action: e.action,
                pipeline_id: None,
                contact_id: e.contact_id.as_deref(),
            },
        };
        EventKeys {
            org: self.org.as_str(),
            about,
        }
    }
}
