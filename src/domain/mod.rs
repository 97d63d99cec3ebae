//! The CRM's vocabulary: tenants, users, resources, actions, collaboration
//! rooms, the typed events decoded from Kafka, and the resume cursor that
//! says where in Kafka's logs a client stands. Pure data; no I/O.
//! Everything else speaks these types.

mod cursor;
mod event;
mod ids;
mod resource;
mod room;
mod topic;

pub use cursor::{Cursor, CursorError};
pub use event::{
    About, ContactEvent, CrmEvent, DealEvent, EmailEvent, EventBody, EventKeys, NotificationEvent,
};
pub use ids::{OrgId, UserId};
pub use resource::{Action, ActionSet, FilterField, ResourceKind};
pub use room::{RoomKey, RoomKind};
pub use topic::{LogTag, Position, TopicKind};
