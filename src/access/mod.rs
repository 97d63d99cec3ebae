//! Who may see what within an organisation: roles, resource grants and
//! hidden fields.
//!
//! - `policy.rs`: the `[permissions]` configuration, checked into a
//!   [`Policy`]: per role, per resource kind, whether it sees all of the
//!   organisation's resources or only those granted, which events, which
//!   fields hidden.
//! - `viewer.rs`: one connection's [`Viewer`], built from its roles and
//!   teams: decides each event (shown, and what is hidden of it), each
//!   subscription and each room.
//! - `grants.rs`: the permissions topic as a [`Grants`] view (who holds
//!   which resource, who is in which team), and the resources a
//!   revocation asks to recheck.
//! - `hidden.rs`: the fields a policy may hide, and [`Hidden`], what
//!   rendering leaves out for one recipient.
//!
//! Pure: the topic is followed by `kafka::grants`, decisions are applied by
//! the gateway. The organisation stays the first wall (`routing`); this is
//! the second, inside it.

mod grants;
mod hidden;
mod policy;
mod viewer;

pub use grants::{Grants, Held, ResourceRef, View};
pub use hidden::{Hidden, HiddenField, Mask};
pub use policy::{PermissionsConfig, Policy, RoleConfig, RuleConfig, See};
pub use viewer::{Moment, Refusal, Viewer};

#[cfg(test)]
mod tests;
