//! What a connection's subscriptions hold, and the seam's rule over them:
//! which live event is still wanted, given the offsets each replay window
//! covers.

use std::collections::HashMap;

use crate::domain::{ActionSet, CrmEvent, Cursor};
use crate::routing::{SubscriptionKey, key_matches};

/// One key in the index, held by `subscribe`, by a joined room, or both.
#[derive(Default)]
pub(super) struct Subscription {
    /// The actions `subscribe` asked for; `None` while only a room holds it.
    pub(super) requested: Option<ActionSet>,
    /// A joined room delivers this key's events, every action.
    pub(super) room: bool,
    /// Present once the subscription replayed (or waits to): what the replay
    /// covers, so nothing in it is sent twice.
    pub(super) replay: Option<ReplayWindow>,
}

impl Subscription {
    /// What the index delivers for `key`: the request's actions and a room's.
    pub(super) fn actions(&self, key: &SubscriptionKey) -> ActionSet {
        let room = match (self.room, key.resource()) {
            (true, Some(kind)) => kind.all_actions(),
            _ => ActionSet::default(),
        };
        self.requested.unwrap_or_default().union(room)
    }

    /// Whether `subscribe` holds it on a resource: what the subscription
    /// limit and the `subscriptions` gauge count (rooms have their own).
    pub(super) fn counted(&self, key: &SubscriptionKey) -> bool {
        self.requested.is_some() && key.resource().is_some()
    }
}

/// Offsets `[since, end)` a subscription's replay covers.
pub(super) struct ReplayWindow {
    /// The replay job that reads it: only that one may fix its end.
    pub(super) job: u64,
    pub(super) since: Cursor,
    /// Fixed when the replay has nearly caught up with live delivery; until
    /// then the window is open: the replay will read everything from `since`.
    pub(super) end: Option<Cursor>,
    /// `LivePositions::epoch` when the window was made: its offsets mean
    /// nothing in a partition reset after that.
    pub(super) epoch: u64,
}

/// Steps 2 and 3 of the seam: whether a live event still has to be sent,
/// or a replay sent it (or will: its window is open), or the client had it.
/// `reset_epoch` is that of the event's partition: a window older than it
/// holds offsets of a log that is gone.
pub(super) fn wanted_after_replay(
    subscriptions: &HashMap<SubscriptionKey, Subscription>,
    event: &CrmEvent,
    reset_epoch: u64,
) -> bool {
    let p = event.position;
    let mut wanted = false;
    for (key, subscription) in subscriptions {
        let requested = subscription.requested.unwrap_or_default();
        if !key_matches(key, requested, event) {
            // A room's actions beyond the request are live only.
            wanted |= subscription.room && key_matches(key, subscription.actions(key), event);
            continue;
        }
        let Some(window) = subscription
            .replay
            .as_ref()
            .filter(|w| w.epoch >= reset_epoch)
        else {
            wanted = true; // a live subscription wants it, or one whose window was of the old log
            continue;
        };
        let since = window.since.get(p.topic, p.partition).unwrap_or(0);
        let end = match &window.end {
            Some(end) => end.get(p.topic, p.partition).unwrap_or(0),
            None => i64::MAX,
        };
        if p.offset < since {
            continue; // the client had it (live delivery may lag behind it)
        }
        if p.offset < end {
            return false; // the replay sent it (or will: its window is open)
        }
        wanted = true; // after the replay's end: only live has it
    }
    wanted
}
