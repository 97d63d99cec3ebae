//! Subscription keys, and the keys an event matches.
//!
//! Keys are looked up on the hot path for every record, so lookups use
//! borrowed [`KeyRef`]s (no allocation) that hash and compare equal to the
//! owned [`SubscriptionKey`]s stored in the index.

use std::hash::{Hash, Hasher};

use hashbrown::Equivalent;

use crate::domain::{
    About, Action, ActionSet, CrmEvent, EventKeys, FilterField, OrgId, ResourceKind, RoomKey,
    RoomKind, TopicKind, UserId,
};

/// What a subscription selects, always within one organisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionKey {
    pub org: OrgId,
    pub scope: Scope,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Resources of one kind, narrowed by a selector.
    Resource(ResourceKind, Selector),
    /// A user's own notifications. Every connection holds this one implicitly.
    Inbox(UserId),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// `{ id }`: one resource.
    Id(Box<str>),
    /// `{ filter: { pipelineId } }` and the like: resources with that field value.
    Field(FilterField, Box<str>),
    /// `{ filter: { organizationId } }`: every resource of the kind in the organisation.
    Organization,
}

/// A borrowed key, built per event without allocating.
#[derive(Clone, Copy, Debug)]
pub struct KeyRef<'a> {
    org: &'a str,
    scope: ScopeRef<'a>,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
enum ScopeRef<'a> {
    Resource(ResourceKind, SelectorRef<'a>),
    Inbox(&'a str),
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
enum SelectorRef<'a> {
    Id(&'a str),
    Field(FilterField, &'a str),
    Organization,
}

impl SubscriptionKey {
    pub fn as_ref(&self) -> KeyRef<'_> {
        let scope = match &self.scope {
            Scope::Resource(kind, selector) => ScopeRef::Resource(
                *kind,
                match selector {
                    Selector::Id(id) => SelectorRef::Id(id),
                    Selector::Field(field, value) => SelectorRef::Field(*field, value),
                    Selector::Organization => SelectorRef::Organization,
                },
            ),
            Scope::Inbox(user) => ScopeRef::Inbox(user.as_str()),
        };
        KeyRef {
            org: self.org.as_str(),
            scope,
        }
    }

    /// What a room delivers: a pipeline room, its deals (`filter: {
    /// pipelineId }`); a deal, contact or email-thread room, that resource
    /// (`id`), contact rooms with the contact's emails. Every action.
    pub fn of_room(room: &RoomKey) -> Self {
        let (kind, selector) = match room.kind {
            RoomKind::Pipeline => (
                ResourceKind::Deal,
                Selector::Field(FilterField::PipelineId, room.id.clone()),
            ),
            RoomKind::Deal => (ResourceKind::Deal, Selector::Id(room.id.clone())),
            RoomKind::Contact => (ResourceKind::Contact, Selector::Id(room.id.clone())),
            RoomKind::EmailThread => (ResourceKind::EmailThread, Selector::Id(room.id.clone())),
        };
        Self {
            org: room.org.clone(),
            scope: Scope::Resource(kind, selector),
        }
    }

    /// The resource kind this key selects, if it is not the inbox.
    pub fn resource(&self) -> Option<ResourceKind> {
        match self.scope {
            Scope::Resource(kind, _) => Some(kind),
            Scope::Inbox(_) => None,
        }
    }
}

// `SubscriptionKey` hashes exactly as its `KeyRef` does, which is what lets the
// index find owned keys from borrowed ones.
impl Hash for SubscriptionKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_ref().hash(state);
    }
}

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.org.hash(state);
        self.scope.hash(state);
    }
}

impl Equivalent<SubscriptionKey> for KeyRef<'_> {
    fn equivalent(&self, key: &SubscriptionKey) -> bool {
        let other = key.as_ref();
        self.org == other.org && self.scope == other.scope
    }
}

/// One key an event matches, and the action a subscriber's `events` list must
/// contain for it (`None`: the inbox, which takes everything addressed to it).
pub type Match<'a> = (KeyRef<'a>, Option<Action>);

/// Calls `visit` with every key an event with `keys` matches. At most five
/// per event.
pub fn event_matches<'a>(keys: EventKeys<'a>, mut visit: impl FnMut(Match<'a>)) {
    let org = keys.org;
    let resource = |kind, selector| KeyRef {
        org,
        scope: ScopeRef::Resource(kind, selector),
    };
    match keys.about {
        About::Inbox(user) => visit((
            KeyRef {
                org,
                scope: ScopeRef::Inbox(user),
            },
            None,
        )),
        About::Resource {
            kind,
            id,
            action,
            pipeline_id,
            contact_id,
        } => {
            visit((resource(kind, SelectorRef::Id(id)), Some(action)));
            visit((resource(kind, SelectorRef::Organization), Some(action)));
            if let Some(pipeline) = pipeline_id {
                visit((
                    resource(kind, SelectorRef::Field(FilterField::PipelineId, pipeline)),
                    Some(action),
                ));
            }
            if let Some(contact) = contact_id {
                visit((
                    resource(kind, SelectorRef::Field(FilterField::ContactId, contact)),
                    Some(action),
                ));
                // A contact's subscribers asked for its emails with `email`.
                visit((
                    resource(ResourceKind::Contact, SelectorRef::Id(contact)),
                    Some(Action::Email),
                ));
            }
        }
    }
}

/// Whether `event` is one a subscription to `key` with `actions` receives:
/// the same rule the index applies, for one subscription (used by replay).
pub fn key_matches(key: &SubscriptionKey, actions: ActionSet, event: &CrmEvent) -> bool {
    let mut found = false;
    event_matches(event.keys(), |(candidate, action)| {
        if candidate.equivalent(key) && action.is_none_or(|a| actions.contains(a)) {
            found = true;
        }
    });
    found
}

/// The topics whose events a subscription can match.
pub fn topics_of(key: &SubscriptionKey, actions: ActionSet) -> Vec<TopicKind> {
    match &key.scope {
        Scope::Inbox(_) => vec![TopicKind::Notifications],
        Scope::Resource(ResourceKind::Contact, Selector::Id(_))
            if actions.contains(Action::Email) =>
        {
            vec![TopicKind::Contacts, TopicKind::Email]
        }
        Scope::Resource(ResourceKind::Contact, _) => vec![TopicKind::Contacts],
        Scope::Resource(ResourceKind::Deal, _) => vec![TopicKind::Deals],
        Scope::Resource(ResourceKind::EmailThread, _) => vec![TopicKind::Email],
    }
}
