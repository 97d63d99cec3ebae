//! The CRM's vocabulary: tenants, users, teams, resources, actions, grants,
//! collaboration rooms, the typed events decoded from Kafka, and the resume cursor that
//! says where in Kafka's logs a client stands. Pure data; no I/O.
//! Everything else speaks these types.

mod cursor;
mod event;
mod grant;
mod ids;
mod resource;
mod room;
mod topic;

pub use cursor::{Cursor, CursorError};
pub use event::{
    About, ContactEvent, CrmEvent, DealEvent, EmailEvent, EventBody, EventKeys, NotificationEvent,
};
pub use grant::{Grant, Granted, Grantee};
pub use ids::{OrgId, TeamId, UserId};
pub use resource::{Action, ActionSet, FilterField, ResourceKind};
pub use room::{RoomKey, RoomKind};
pub use topic::{LogTag, Position, TopicKind};
