//! One record of the CRM's permissions topic: who may see which resource,
//! or who belongs to which team. The topic is compacted; each grant has a
//! key of its own, and a tombstone under that key revokes it.

use super::{OrgId, ResourceKind, TeamId, UserId};

/// Who a grant is for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Grantee {
    User(UserId),
    Team(TeamId),
}

/// What a grant gives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Granted {
    /// Seeing one resource (a deal, contact or email thread) and its events.
    Resource(ResourceKind, Box<str>),
    /// Membership of a team: the grantee (a user) holds what the team holds.
    Team(TeamId),
}

/// A grant within one organisation, since `granted_at_ms` (Unix ms).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub org: OrgId,
    pub grantee: Grantee,
    pub granted: Granted,
    pub granted_at_ms: i64,
}
