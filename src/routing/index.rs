//! The sharded subscription index.
//!
//! Keys are spread over shards by hash, each behind its own `RwLock`, so routing
//! (reads) and subscribing (writes) on different keys never contend on one global
//! lock. Routing one event costs one lookup per key it matches (at most five)
//! plus one step per matching subscriber: it does not grow with the number of
//! subscriptions held. A key is hashed once per lookup: the same hash picks
//! its shard (upper bits) and its bucket in the shard's table (lower bits).
//!
//! `std::sync::RwLock` rather than Tokio's: no `.await` happens while a guard is
//! held, and every critical section is a hash lookup or a short copy.

use std::hash::{BuildHasher, Hash};
use std::sync::RwLock;

use hashbrown::{DefaultHashBuilder, Equivalent, HashMap, HashTable};

use super::SubscriptionKey;
use super::key::{KeyRef, event_matches};
use crate::domain::{ActionSet, EventKeys};

/// Identifies one connection for the lifetime of the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub u64);

/// One subscriber of one key: the handle to deliver to and what it asked for.
struct Entry<C> {
    handle: C,
    actions: ActionSet,
}

/// A key held by at least one subscriber. Its hash is kept to be compared
/// first: a lookup that lands on another key's slot reads no strings of it.
struct Slot<C> {
    hash: u64,
    key: SubscriptionKey,
    subscribers: HashMap<ClientId, Entry<C>>,
}

impl<C> Slot<C> {
    fn holds(&self, hash: u64, key: KeyRef<'_>) -> bool {
        self.hash == hash && key.equivalent(&self.key)
    }
}

/// One shard's keys, found by the hash that picked the shard.
type Shard<C> = HashTable<Slot<C>>;

/// Maps subscription keys to the clients holding them. `C` is the handle used
/// to deliver to a client; the index only clones it.
pub struct SubscriptionIndex<C> {
    shards: Box<[RwLock<Shard<C>>]>,
    hasher: DefaultHashBuilder,
}

impl<C: Clone> SubscriptionIndex<C> {
    /// `shards` is rounded up to at least one.
    pub fn new(shards: usize) -> Self {
        Self {
            shards: (0..shards.max(1)).map(|_| RwLock::default()).collect(),
            hasher: DefaultHashBuilder::default(),
        }
    }

    fn hash(&self, key: &impl Hash) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The shard of a key with `hash`, chosen by the hash's upper half: the
    /// table inside picks buckets by the lower bits, which must not be the
    /// same for every key of a shard.
    fn shard(&self, hash: u64) -> &RwLock<Shard<C>> {
        &self.shards[((hash >> 32) % self.shards.len() as u64) as usize]
    }

    /// Adds or replaces `client`'s subscription to `key`. Returns true when it
    /// is new, false when an existing one had its action set replaced.
    pub fn insert(
        &self,
        key: SubscriptionKey,
        client: ClientId,
        handle: C,
        actions: ActionSet,
    ) -> bool {
        let hash = self.hash(&key);
        let mut shard = write(self.shard(hash));
        let slot = shard
            .entry(
                hash,
                |slot| slot.holds(hash, key.as_ref()),
                |slot| slot.hash,
            )
            .or_insert_with(|| Slot {
                hash,
                key,
                subscribers: HashMap::new(),
            })
            .into_mut();
        slot.subscribers
            .insert(client, Entry { handle, actions })
            .is_none()
    }

    /// Removes `client`'s subscription to `key`; true if there was one.
    pub fn remove(&self, key: &SubscriptionKey, client: ClientId) -> bool {
        let hash = self.hash(key);
        let mut shard = write(self.shard(hash));
        let Ok(mut found) = shard.find_entry(hash, |slot| slot.holds(hash, key.as_ref())) else {
            return false;
        };
        let subscribers = &mut found.get_mut().subscribers;
        let removed = subscribers.remove(&client).is_some();
        if subscribers.is_empty() {
            found.remove();
        }
        removed
    }

    /// Appends to `out` every client that subscribed to an event with
    /// `keys`, once each, however many of its subscriptions match.
    pub fn route(&self, keys: EventKeys<'_>, out: &mut Vec<(ClientId, C)>) {
        let start = out.len();
        let mut keys_with_subscribers = 0;
        event_matches(keys, |(key, action): (KeyRef<'_>, _)| {
            let hash = self.hash(&key);
            let shard = read(self.shard(hash));
            let Some(slot) = shard.find(hash, |slot| slot.holds(hash, key)) else {
                return;
            };
            keys_with_subscribers += 1;
            out.extend(
                slot.subscribers
                    .iter()
                    .filter(|(_, e)| action.is_none_or(|a| e.actions.contains(a)))
                    .map(|(id, e)| (*id, e.handle.clone())),
            );
        });
        // Only a client matched through two keys can appear twice.
        if keys_with_subscribers > 1 {
            out[start..].sort_unstable_by_key(|(id, _)| *id);
            let mut seen = start;
            for i in start..out.len() {
                if i == start || out[i].0 != out[seen - 1].0 {
                    out.swap(seen, i);
                    seen += 1;
                }
            }
            out.truncate(seen);
        }
    }

    /// Every client subscribed to exactly `key`, whatever its actions.
    pub fn subscribers(&self, key: &SubscriptionKey) -> Vec<(ClientId, C)> {
        let hash = self.hash(key);
        let shard = read(self.shard(hash));
        shard
            .find(hash, |slot| slot.holds(hash, key.as_ref()))
            .map(|slot| {
                let subscribers = slot.subscribers.iter();
                subscribers.map(|(id, e)| (*id, e.handle.clone())).collect()
            })
            .unwrap_or_default()
    }

    /// Number of distinct keys with at least one subscriber.
    pub fn key_count(&self) -> usize {
        self.shards.iter().map(|s| read(s).len()).sum()
    }
}

// A panic while holding a guard cannot leave a shard half-updated (each
// mutation is a single map operation), so a poisoned lock is still sound.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests;
