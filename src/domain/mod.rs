//! The CRM's vocabulary: tenants, users, resources, actions, collaboration
//! rooms and the typed events decoded from Kafka. Pure data; no I/O. Everything else speaks these types.

mod event;
mod ids;
mod resource;
mod room;
mod topic;

pub use event::{
    About, ContactEvent, CrmEvent, DealEvent, EmailEvent, EventBody, EventKeys, NotificationEvent,
};
pub use ids::{OrgId, UserId};
pub use resource::{Action, ActionSet, FilterField, ResourceKind};
pub use room::{RoomKey, RoomKind};
pub use topic::{LogTag, Position, TopicKind};
