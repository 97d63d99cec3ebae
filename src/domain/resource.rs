//! Resource kinds clients subscribe to, the actions (event names in a
//! subscription's `events` list) each kind has, and the fields a filter may use.

use std::fmt;

/// A kind of CRM resource, as named in `subscribe { resource }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceKind {
    Contact,
    Deal,
    EmailThread,
}

impl ResourceKind {
    pub const ALL: [ResourceKind; 3] = [Self::Contact, Self::Deal, Self::EmailThread];

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Contact => "contact",
            Self::Deal => "deal",
            Self::EmailThread => "email-thread",
        }
    }

    /// The actions a subscription to this kind may list in `events`, in
    /// the order of the symbols of its schema's `action` enum (the one
    /// table of them: the decoder reads enum indexes with it, and a test in
    /// `decode` holds each `schemas/*.avsc` to it).
    pub const fn actions(self) -> &'static [Action] {
        use Action::*;
        match self {
            Self::Contact => &[Create, Update, Delete, Activity, Email, Note],
            Self::Deal => &[Create, Update, Delete, StageChange, Assignment, Comment],
            Self::EmailThread => &[NewEmail, Reply, Forward],
        }
    }

    /// The fields a `filter` subscription to this kind may name.
    pub const fn filter_fields(self) -> &'static [FilterField] {
        use FilterField::*;
        match self {
            Self::Contact => &[OrganizationId],
            Self::Deal => &[OrganizationId, PipelineId],
            Self::EmailThread => &[OrganizationId, ContactId],
        }
    }

    pub fn all_actions(self) -> ActionSet {
        self.actions().iter().copied().collect()
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened to a resource. The wire names are the seed's event names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Action {
    Create,
    Update,
    Delete,
    Activity,
    Email,
    Note,
    StageChange,
    Assignment,
    Comment,
    NewEmail,
    Reply,
    Forward,
}

impl Action {
    pub const ALL: [Action; 12] = [
        Self::Create,
        Self::Update,
        Self::Delete,
        Self::Activity,
        Self::Email,
        Self::Note,
        Self::StageChange,
        Self::Assignment,
        Self::Comment,
        Self::NewEmail,
        Self::Reply,
        Self::Forward,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Activity => "activity",
            Self::Email => "email",
            Self::Note => "note",
            Self::StageChange => "stage-change",
            Self::Assignment => "assignment",
            Self::Comment => "comment",
            Self::NewEmail => "new-email",
            Self::Reply => "reply",
            Self::Forward => "forward",
        }
    }

    /// Parses an action that `kind` has; `None` for a name it does not have.
    pub fn parse_for(kind: ResourceKind, name: &str) -> Option<Self> {
        kind.actions().iter().copied().find(|a| a.as_str() == name)
    }

    const fn bit(self) -> u16 {
        1 << self as u8
    }
}

/// A set of actions as a bitmask: the `events` list of one subscription.
/// Two bytes, so the index can hold one per subscriber without allocating.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ActionSet(u16);

impl ActionSet {
    pub const fn contains(self, action: Action) -> bool {
        self.0 & action.bit() != 0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    pub fn iter(self) -> impl Iterator<Item = Action> {
        Action::ALL.into_iter().filter(move |a| self.contains(*a))
    }
}

impl FromIterator<Action> for ActionSet {
    fn from_iter<I: IntoIterator<Item = Action>>(iter: I) -> Self {
        Self(iter.into_iter().fold(0, |mask, a| mask | a.bit()))
    }
}

/// A field a `filter` subscription matches on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FilterField {
    OrganizationId,
    PipelineId,
    ContactId,
}

impl FilterField {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OrganizationId => "organizationId",
            Self::PipelineId => "pipelineId",
            Self::ContactId => "contactId",
        }
    }

    pub fn parse_for(kind: ResourceKind, name: &str) -> Option<Self> {
        kind.filter_fields()
            .iter()
            .copied()
            .find(|f| f.as_str() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_parse_only_for_their_kind() {
        assert_eq!(
            Action::parse_for(ResourceKind::Deal, "stage-change"),
            Some(Action::StageChange)
        );
        assert_eq!(
            Action::parse_for(ResourceKind::Contact, "stage-change"),
            None
        );
        assert_eq!(
            Action::parse_for(ResourceKind::EmailThread, "new-email"),
            Some(Action::NewEmail)
        );
    }

    #[test]
    fn action_set_holds_exactly_what_was_put_in() {
        let set: ActionSet = [Action::Update, Action::Forward].into_iter().collect();
        assert!(set.contains(Action::Update) && set.contains(Action::Forward));
        assert!(!set.contains(Action::Delete));
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            [Action::Update, Action::Forward]
        );
        assert!(ActionSet::default().is_empty());
    }

    #[test]
    fn every_kind_round_trips_by_name() {
        for kind in ResourceKind::ALL {
            assert_eq!(ResourceKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ResourceKind::parse("invoice"), None);
    }
}
