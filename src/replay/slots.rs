//! Fair shares of a node's replay capacity. A replay holds a [`Slot`] only
//! while it reads (memory or Kafka) and sends into a socket with room; the
//! node has `replay.concurrency` slots, of which one organisation holds at
//! most `replay.concurrency_per_organization` and one user at most
//! `replay.concurrency_per_user`. So a tenant resuming many connections, or
//! resuming them and never reading, cannot take all of it: the rest of the
//! node's slots stay for the other organisations.
//!
//! A slot that frees goes to the waiter whose organisation, then user, holds
//! the fewest slots, the longest-waiting first among equals: an organisation
//! with a thousand queued resumes does not stand in front of one with a
//! single resume. Pure policy: no I/O, no clock.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::domain::{OrgId, UserId};

/// How many slots the node, one organisation and one user may hold at once.
#[derive(Clone, Copy, Debug)]
pub struct Shares {
    pub node: usize,
    pub organization: usize,
    pub user: usize,
}

pub struct Slots {
    shares: Shares,
    // std Mutex: held only to count and pick, never across `.await`.
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    held: usize,
    by_org: HashMap<OrgId, usize>,
    by_user: HashMap<(OrgId, UserId), usize>,
    /// By arrival order, so the oldest wins among equals.
    waiting: BTreeMap<u64, Waiter>,
    next_waiter: u64,
}

struct Waiter {
    org: OrgId,
    user: UserId,
    grant: oneshot::Sender<Slot>,
}

/// One replay's right to read; dropping it frees it for the next waiter.
pub struct Slot {
    slots: Arc<Slots>,
    org: OrgId,
    user: UserId,
}

impl Slots {
    /// Shares above the node's are the node's (a share cannot exceed it);
    /// zero counts as one, so a replay always runs eventually.
    pub fn new(shares: Shares) -> Arc<Self> {
        let node = shares.node.max(1);
        let shares = Shares {
            node,
            organization: shares.organization.clamp(1, node),
            user: shares.user.clamp(1, node),
        };
        Arc::new(Self {
            shares,
            state: Mutex::default(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a slot for `user` of `org`. Cancel-safe: a waiter dropped
    /// before its turn leaves the queue, and one dropped just after it was
    /// granted gives the slot back.
    pub async fn acquire(self: &Arc<Self>, org: &OrgId, user: &UserId) -> Slot {
        let (waiting, id) = {
            let mut state = self.state();
            // Nobody eligible waits (every release grants all it can), so an
            // eligible arrival overtakes no one.
            if state.eligible(&self.shares, org, user) {
                return self.grant(&mut state, org.clone(), user.clone());
            }
            let (grant, waiting) = oneshot::channel();
            let id = state.next_waiter;
            state.next_waiter += 1;
            let (org, user) = (org.clone(), user.clone());
            state.waiting.insert(id, Waiter { org, user, grant });
            (waiting, id)
        };
        let _leave = LeaveQueue { slots: self, id };
        waiting
            .await
            .expect("a waiter is granted or leaves the queue")
    }

    fn grant(self: &Arc<Self>, state: &mut State, org: OrgId, user: UserId) -> Slot {
        state.held += 1;
        *state.by_org.entry(org.clone()).or_default() += 1;
        *state
            .by_user
            .entry((org.clone(), user.clone()))
            .or_default() += 1;
        Slot {
            slots: self.clone(),
            org,
            user,
        }
    }

    fn release(self: &Arc<Self>, org: &OrgId, user: &UserId) {
        let granted = {
            let mut state = self.state();
            state.held -= 1;
            decrement(&mut state.by_org, org);
            decrement(&mut state.by_user, &(org.clone(), user.clone()));
            let mut granted = Vec::new();
            while let Some(id) = state.next_turn(&self.shares) {
                let waiter = state.waiting.remove(&id).expect("picked from the queue");
                let slot = self.grant(&mut state, waiter.org, waiter.user);
                granted.push((waiter.grant, slot));
            }
            granted
        };
        // Outside the lock: a slot whose waiter has just gone comes back
        // through `release` again.
        for (grant, slot) in granted {
            drop(grant.send(slot));
        }
    }
}

impl State {
    fn eligible(&self, shares: &Shares, org: &OrgId, user: &UserId) -> bool {
        self.held < shares.node
            && self.org_holds(org) < shares.organization
            && self.user_holds(org, user) < shares.user
    }

    fn org_holds(&self, org: &OrgId) -> usize {
        self.by_org.get(org).copied().unwrap_or(0)
    }

    fn user_holds(&self, org: &OrgId, user: &UserId) -> usize {
        // A lookup key without cloning would need a borrowed pair type; the
        // ids are `Arc<str>`, so these clones are reference counts.
        let key = (org.clone(), user.clone());
        self.by_user.get(&key).copied().unwrap_or(0)
    }

    /// The eligible waiter whose organisation, then user, holds the fewest
    /// slots; the oldest among equals. `None` when the node is full or
    /// nobody waiting may run.
    fn next_turn(&self, shares: &Shares) -> Option<u64> {
        if self.held >= shares.node {
            return None;
        }
        self.waiting
            .iter()
            .filter(|(_, w)| self.eligible(shares, &w.org, &w.user))
            .min_by_key(|(id, w)| {
                (
                    self.org_holds(&w.org),
                    self.user_holds(&w.org, &w.user),
                    **id,
                )
            })
            .map(|(id, _)| *id)
    }
}

fn decrement<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = counts.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            counts.remove(key);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.release(&self.org, &self.user);
    }
}

/// Takes a waiter out of the queue if it goes before its turn.
struct LeaveQueue<'a> {
    slots: &'a Arc<Slots>,
    id: u64,
}

impl Drop for LeaveQueue<'_> {
    fn drop(&mut self) {
        // Removed under the lock, dropped after it: the sender holds no slot.
        let left = self.slots.state().waiting.remove(&self.id);
        drop(left);
    }
}

#[cfg(test)]
mod tests;
