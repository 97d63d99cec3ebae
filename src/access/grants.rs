//! The permissions topic as a view: who holds which resource, and who is in
//! which team, kept current by applying the topic's records in order
//! ([`Grants::apply`]). Every node builds the same view from the same
//! compacted topic, so no node keeps state of its own.
//!
//! A record's key identifies its grant and is opaque here: a value under a
//! key adds or replaces that grant, a tombstone removes it. A removal that
//! takes something away queues the resources it touched for a recheck of
//! the connections that hold them ([`Grants::take_rechecks`]); the queue is
//! a set of resources, so it is bounded by the resources the view holds.
//!
//! Lookups take `&str` ids and allocate nothing. Routing looks a record's
//! resource up once ([`View::about`]) and asks that [`Held`] for each
//! recipient.

use std::cell::OnceCell;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard};

use tokio::sync::Notify;

use crate::domain::{
    About, EventKeys, Grant, Granted, Grantee, OrgId, ResourceKind, TeamId, UserId,
};

/// One resource, named in full: what a revocation asks to recheck.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResourceRef {
    pub org: OrgId,
    pub kind: ResourceKind,
    pub id: Box<str>,
}

/// The view, its pending rechecks, and whether it has caught up with the
/// topic.
#[derive(Default)]
pub struct Grants {
    view: RwLock<View>,
    rechecks: Mutex<HashSet<ResourceRef>>,
    changed: Notify,
    ready: AtomicBool,
}

impl Grants {
    /// Applies one record of the topic: `Some` adds or replaces the grant
    /// under `key`, `None` (a tombstone) removes it.
    pub fn apply(&self, key: &[u8], grant: Option<Grant>) {
        let lost = write(&self.view).apply(key, grant);
        if lost.is_empty() {
            return;
        }
        lock(&self.rechecks).extend(lost);
        self.changed.notify_one();
    }

    /// The view as it is now; hold it only while deciding (a record's
    /// recipients, one request).
    pub fn read(&self) -> RwLockReadGuard<'_, View> {
        self.view.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until a removal queued resources to recheck (at once if one
    /// did since the last [`Self::take_rechecks`]).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// The resources whose grants were cut since the last call.
    pub fn take_rechecks(&self) -> Vec<ResourceRef> {
        lock(&self.rechecks).drain().collect()
    }

    /// The follower read the whole topic as it stood at start-up.
    pub fn mark_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

/// What the view holds of one resource: looked up on the first question,
/// then asked for each recipient of the record, so a record's resource is
/// found once however many connections it is decided for.
pub struct Held<'a> {
    view: &'a View,
    resource: Option<Resource<'a>>,
    found: OnceCell<Option<Found<'a>>>,
}

/// The resource a record is about, as its keys name it.
#[derive(Clone, Copy)]
struct Resource<'a> {
    org: &'a str,
    kind: ResourceKind,
    id: &'a str,
    /// An email thread is also held through its contact.
    contact: Option<&'a str>,
}

/// The resource's organisation in the view, and who holds the resource
/// (and, for an email thread, its contact).
struct Found<'a> {
    org: &'a OrgView,
    holders: [Option<&'a Holders>; 2],
}

impl<'a> Held<'a> {
    /// Since when `user` (in `teams` by their token) has held the resource
    /// through a grant: to them or a team of theirs. `None`: not held, or
    /// a record about no resource.
    pub fn since(&self, user: &UserId, teams: &[TeamId]) -> Option<i64> {
        let found = self.found.get_or_init(|| self.find()).as_ref()?;
        let memberships = || found.org.memberships.get(user);
        let [resource, contact] = found
            .holders
            .map(|holders| holders?.since(user, teams, memberships));
        earliest(resource, contact)
    }

    fn find(&self) -> Option<Found<'a>> {
        let Resource {
            org,
            kind,
            id,
            contact,
        } = self.resource?;
        let org = self.view.orgs.get(org)?;
        let holders = |kind, id: &str| org.resources[kind_index(kind)].get(id);
        let contact = match (kind, contact) {
            (ResourceKind::EmailThread, Some(contact)) => holders(ResourceKind::Contact, contact),
            _ => None,
        };
        Some(Found {
            org,
            holders: [holders(kind, id), contact],
        })
    }
}

/// Every grant of the topic, indexed for the questions routing asks.
#[derive(Default)]
pub struct View {
    /// By record key, to undo what a later record under the key replaces.
    records: HashMap<Box<[u8]>, Grant>,
    orgs: HashMap<Box<str>, OrgView>,
}

#[derive(Default)]
struct OrgView {
    /// Who holds each resource, by kind (indexed as [`kind_index`]).
    resources: [HashMap<Box<str>, Holders>; 3],
    /// The teams each user belongs to, per the topic.
    memberships: HashMap<UserId, HashMap<TeamId, Times>>,
    /// The resources each team holds, to recheck when a member leaves.
    team_resources: HashMap<TeamId, HashSet<(ResourceKind, Box<str>)>>,
}

/// Who holds one resource, and since when.
#[derive(Default)]
struct Holders {
    users: HashMap<UserId, Times>,
    teams: HashMap<TeamId, Times>,
}

/// When each record still in force granted the same thing: two keys may
/// grant it twice, and it holds until both are gone.
type Times = Vec<i64>;

pub(super) const fn kind_index(kind: ResourceKind) -> usize {
    match kind {
        ResourceKind::Contact => 0,
        ResourceKind::Deal => 1,
        ResourceKind::EmailThread => 2,
    }
}

impl View {
    /// What it holds of the resource a record with `keys` is about.
    pub fn about<'a>(&'a self, keys: EventKeys<'a>) -> Held<'a> {
        let resource = match keys.about {
            About::Resource {
                kind,
                id,
                contact_id,
                ..
            } => Some(Resource {
                org: keys.org,
                kind,
                id,
                contact: contact_id,
            }),
            About::Inbox(_) => None,
        };
        self.held(resource)
    }

    /// What it holds of the resource `kind`/`id` of `org` itself.
    pub fn resource<'a>(&'a self, org: &'a str, kind: ResourceKind, id: &'a str) -> Held<'a> {
        let resource = Resource {
            org,
            kind,
            id,
            contact: None,
        };
        self.held(Some(resource))
    }

    fn held<'a>(&'a self, resource: Option<Resource<'a>>) -> Held<'a> {
        Held {
            view: self,
            resource,
            found: OnceCell::new(),
        }
    }

    /// Grants held, for the metrics.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Returns the resources whose holders lost someone.
    fn apply(&mut self, key: &[u8], grant: Option<Grant>) -> Vec<ResourceRef> {
        let old = match &grant {
            Some(grant) => self.records.insert(key.into(), grant.clone()),
            None => self.records.remove(key),
        };
        if old.is_some() && old == grant {
            return Vec::new(); // the same grant again (e.g. read after compaction)
        }
        let lost = old.map(|old| self.unindex(&old)).unwrap_or_default();
        if let Some(grant) = grant {
            self.index(&grant);
        }
        lost
    }

    fn index(&mut self, grant: &Grant) {
        let org = self.orgs.entry(grant.org.as_str().into()).or_default();
        let at = grant.granted_at_ms;
        match (&grant.grantee, &grant.granted) {
            (Grantee::User(user), Granted::Team(team)) => {
                let teams = org.memberships.entry(user.clone()).or_default();
                teams.entry(team.clone()).or_default().push(at);
            }
            // A team in a team is not a thing the topic can say.
            (Grantee::Team(_), Granted::Team(_)) => {}
            (grantee, Granted::Resource(kind, id)) => {
                let holders = org.resources[kind_index(*kind)]
                    .entry(id.clone())
                    .or_default();
                match grantee {
                    Grantee::User(user) => holders.users.entry(user.clone()).or_default(),
                    Grantee::Team(team) => {
                        let held = org.team_resources.entry(team.clone()).or_default();
                        held.insert((*kind, id.clone()));
                        holders.teams.entry(team.clone()).or_default()
                    }
                }
                .push(at);
            }
        }
    }

    fn unindex(&mut self, grant: &Grant) -> Vec<ResourceRef> {
        let Some(org) = self.orgs.get_mut(grant.org.as_str()) else {
            return Vec::new();
        };
        let at = grant.granted_at_ms;
        let named = |kind, id: &str| ResourceRef {
            org: grant.org.clone(),
            kind,
            id: id.into(),
        };
        let lost = match (&grant.grantee, &grant.granted) {
            (Grantee::User(user), Granted::Team(team)) => {
                if let Some(teams) = org.memberships.get_mut(user) {
                    remove_time(teams, team, at);
                    if teams.is_empty() {
                        org.memberships.remove(user);
                    }
                }
                let held = org.team_resources.get(team).into_iter().flatten();
                held.map(|(kind, id)| named(*kind, id)).collect()
            }
            (Grantee::Team(_), Granted::Team(_)) => Vec::new(),
            (grantee, Granted::Resource(kind, id)) => {
                let resources = &mut org.resources[kind_index(*kind)];
                if let Some(holders) = resources.get_mut(id) {
                    match grantee {
                        Grantee::User(user) => remove_time(&mut holders.users, user, at),
                        Grantee::Team(team) => {
                            remove_time(&mut holders.teams, team, at);
                            if !holders.teams.contains_key(team)
                                && let Some(held) = org.team_resources.get_mut(team)
                            {
                                held.remove(&(*kind, id.clone()));
                                if held.is_empty() {
                                    org.team_resources.remove(team);
                                }
                            }
                        }
                    }
                    if holders.users.is_empty() && holders.teams.is_empty() {
                        resources.remove(id);
                    }
                }
                vec![named(*kind, id)]
            }
        };
        if org.resources.iter().all(HashMap::is_empty) && org.memberships.is_empty() {
            self.orgs.remove(grant.org.as_str());
        }
        lost
    }
}

impl Holders {
    /// `memberships`: the user's teams per the topic, looked up only when
    /// the resource is held by a team at all.
    fn since<'a>(
        &self,
        user: &UserId,
        token_teams: &[TeamId],
        memberships: impl FnOnce() -> Option<&'a HashMap<TeamId, Times>>,
    ) -> Option<i64> {
        let direct = self.users.get(user).and_then(|t| first(t));
        if self.teams.is_empty() {
            return direct;
        }
        let from_token = token_teams
            .iter()
            .filter_map(|team| self.teams.get(team).and_then(|t| first(t)))
            .min();
        // Through a membership: held once both the team's grant and the
        // membership were.
        let from_topic = memberships()
            .into_iter()
            .flatten()
            .filter_map(|(team, joined)| {
                let granted = self.teams.get(team).and_then(|t| first(t))?;
                Some(granted.max(first(joined)?))
            })
            .min();
        earliest(earliest(direct, from_token), from_topic)
    }
}

fn first(times: &[i64]) -> Option<i64> {
    times.iter().copied().min()
}

fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Removes one grant time of `holder`, and the holder with its last.
fn remove_time<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Times>, holder: &K, at: i64) {
    let Some(times) = map.get_mut(holder) else {
        return;
    };
    if let Some(i) = times.iter().position(|t| *t == at) {
        times.swap_remove(i);
    }
    if times.is_empty() {
        map.remove(holder);
    }
}

// Each critical section is one map update; a poisoned lock is still sound.
fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
