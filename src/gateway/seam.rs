//! The seam between replay and live delivery for one connection (no gap, no
//! duplicate), as pure state: its subscriptions and rooms, the replays it
//! has queued, and the live events held while it replays. No sockets, no
//! index, no clock: [`super::session`] keeps it under the connection's lock
//! and applies the index and metric changes each call returns.
//!
//! 1. A subscription with `since` enters the index at once, with an *open*
//!    replay window, and the connection enters replay mode.
//! 2. The replay worker (`replay.rs`) reads from `since` to where live
//!    delivery stands, then again to where it has got meanwhile, and so on
//!    (live events the open window covers are not held: the replay reads
//!    them). When little is left it *fixes* the window's `end`, under the
//!    connection's lock, at live delivery's position then, and reads up to
//!    it. Any record at or after `end` is handled by live delivery after
//!    that, and waits in `waiting` (bounded) if a fixed window or a live
//!    subscription wants it.
//! 3. When no replay is left, the waiting events are flushed in order,
//!    skipping those a replay already sent (offset in `[since, end)`) and
//!    those the client already had (offset before `since`), unless another,
//!    live subscription of the connection wants them. Then the connection is
//!    live again, and keeps applying that rule: live delivery may lag behind
//!    a replay's `end` (a node catching up after a restart).
//!
//! So a replay chasing a fast stream holds nothing while it chases: only
//! what arrives during its last, short read waits in the buffer.
//!
//! A connection has at most one replay per key: subscribing again with
//! `since` replaces the key's queued replay, or cancels its running one and
//! queues the new one, and the window becomes the new one's (a cancelled
//! replay cannot fix it). At most `replay.max_replays_per_connection`
//! replays are queued or running at once.
//!
//! A window's offsets belong to the log they were read from. When a
//! partition's log goes backwards (recreated; see `kafka/positions.rs`),
//! its offsets start again, and a window made before that (its `epoch`
//! older than the partition's reset epoch) says nothing about the new log:
//! its events are wanted. A replay planned after the reset from a cursor of
//! the old log starts that partition at the new log's start
//! ([`Seam::restart_replay`]).

mod outcome;
mod window;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::access::Mask;
use crate::domain::{ActionSet, CrmEvent, Cursor, RoomKey};
use crate::protocol::{ClientError, ErrorCode, Outbound, SubscriptionRequest};
use crate::routing::SubscriptionKey;
pub use outcome::{Closed, Indexed, Queued, Subscribed, Unsubscribed};
use window::{ReplayWindow, Subscription, wanted_after_replay};

/// One connection's seam state (see the module doc).
#[derive(Default)]
pub struct Seam {
    subscriptions: HashMap<SubscriptionKey, Subscription>,
    rooms: HashSet<RoomKey>,
    closed: bool,
    /// Present while the connection replays.
    replay: Option<ReplayMode>,
    /// Some subscription has a replay window, so live events are checked
    /// against it (see `offer`).
    has_windows: bool,
    /// Numbers replay jobs, so a window knows which replay owns it.
    next_job: u64,
}

#[derive(Default)]
struct ReplayMode {
    /// At most one per key (see the module doc).
    jobs: VecDeque<ReplayJob>,
    /// The job the worker runs now: its key, and how to cancel it.
    running: Option<(SubscriptionKey, CancellationToken)>,
    waiting: VecDeque<Arc<Waiting>>,
}

impl ReplayMode {
    /// Replays queued or running: what `replay.max_replays_per_connection`
    /// bounds.
    fn pending(&self) -> usize {
        self.jobs.len() + usize::from(self.running.is_some())
    }

    fn has(&self, key: &SubscriptionKey) -> bool {
        self.jobs.iter().any(|job| &job.request.key == key)
            || self
                .running
                .as_ref()
                .is_some_and(|(running, _)| running == key)
    }

    /// Drops the queued replay of `key` and cancels its running one; true
    /// if there was one.
    fn cancel(&mut self, key: &SubscriptionKey) -> bool {
        let queued = self.jobs.len();
        self.jobs.retain(|job| &job.request.key != key);
        let mut cancelled = self.jobs.len() < queued;
        if let Some((running, cancel)) = &self.running
            && running == key
            && !cancel.is_cancelled()
        {
            cancel.cancel();
            cancelled = true;
        }
        cancelled
    }
}

/// A subscription to replay. Its outcome is the `subscription-resumed` event.
pub struct ReplayJob {
    pub request: SubscriptionRequest,
    /// Names the job in its subscription's window (see `fix_replay_end`).
    pub id: u64,
    /// Cancelled when the job is replaced, its subscription removed, or the
    /// connection closes.
    pub cancel: CancellationToken,
}

/// A live event held while the connection replays.
pub struct Waiting {
    pub event: Arc<CrmEvent>,
    /// Rendered for the connection: without the fields `hidden` hid.
    pub outbound: Arc<Outbound>,
    pub hidden: Mask,
    /// The reset epoch of the event's partition (`LivePositions::reset_epoch`).
    pub reset_epoch: u64,
}

/// What live delivery should do with an event for this connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Offer {
    /// Emit it (done under the connection's lock by the caller's closure).
    Emitted,
    /// Held until the replay finishes.
    Held,
    /// A replay already sent it.
    Skipped,
    /// The connection is closing.
    Closed,
    /// Too many events held: the client must be cut off.
    Overflow,
}

/// The replay worker's next step.
pub enum Step {
    Replay(ReplayJob),
    Flush(Vec<Arc<Waiting>>),
    Done,
}

/// The per-connection bounds the seam enforces.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub max_subscriptions: usize,
    pub max_rooms: usize,
    pub max_replays: usize,
}

impl Seam {
    /// Adds a live subscription, or replaces one's actions (and drops a
    /// window it had: it is live now).
    pub fn subscribe(
        &mut self,
        request: &SubscriptionRequest,
        bounds: Bounds,
    ) -> Result<Subscribed, ClientError> {
        self.register(request, None, bounds)
    }

    /// Adds a subscription that first replays from `since`, replacing the
    /// key's queued or running replay if it has one. `epoch` is
    /// `LivePositions::epoch` now; `cancel` stops the job (a child of the
    /// connection's closing token).
    pub fn subscribe_replaying(
        &mut self,
        request: SubscriptionRequest,
        since: Cursor,
        epoch: u64,
        cancel: CancellationToken,
        bounds: Bounds,
    ) -> Result<Queued, ClientError> {
        let limit = bounds.max_replays;
        if let Some(mode) = &self.replay
            && !mode.has(&request.key)
            && mode.pending() >= limit
        {
            return Err(ClientError::new(
                ErrorCode::RateLimited,
                format!(
                    "replay limit reached ({limit} queued or running per connection); \
                     wait for a subscription-resumed first"
                ),
            )
            .with_details(serde_json::json!({ "reason": "replay_limit", "limit": limit })));
        }
        let id = self.next_job;
        let window = ReplayWindow {
            job: id,
            since,
            end: None,
            epoch,
        };
        let subscribed = self.register(&request, Some(window), bounds)?;
        self.next_job += 1;
        self.has_windows = true;
        let start_worker = self.replay.is_none();
        let mode = self.replay.get_or_insert_with(ReplayMode::default);
        let replaced = mode.cancel(&request.key);
        mode.jobs.push_back(ReplayJob {
            request,
            id,
            cancel,
        });
        Ok(Queued {
            subscribed,
            start_worker,
            replaced,
        })
    }

    fn register(
        &mut self,
        request: &SubscriptionRequest,
        replay: Option<ReplayWindow>,
        bounds: Bounds,
    ) -> Result<Subscribed, ClientError> {
        let is_new = self.check_capacity(&request.key, bounds.max_subscriptions)?;
        let key = &request.key;
        let subscription = self.subscriptions.entry(key.clone()).or_default();
        subscription.requested = Some(request.actions);
        subscription.replay = replay;
        Ok(Subscribed {
            actions: subscription.actions(key),
            is_new,
        })
    }

    /// Ok(is_new), or the subscription limit's error. Keys only a room
    /// holds do not count: rooms have their own limit.
    fn check_capacity(&self, key: &SubscriptionKey, limit: usize) -> Result<bool, ClientError> {
        if self.closed {
            return Err(closing());
        }
        let is_new = self
            .subscriptions
            .get(key)
            .is_none_or(|s| s.requested.is_none());
        let held = self
            .subscriptions
            .iter()
            .filter(|(k, s)| s.counted(k))
            .count();
        if is_new && key.resource().is_some() && held >= limit {
            return Err(ClientError::new(
                ErrorCode::RateLimited,
                format!("subscription limit reached ({limit} per connection); unsubscribe first"),
            ));
        }
        Ok(is_new)
    }

    /// `None` if `subscribe` did not hold the key. A room holding the same
    /// key keeps delivering it.
    pub fn unsubscribe(&mut self, key: &SubscriptionKey) -> Option<Unsubscribed> {
        let subscription = self.subscriptions.get_mut(key)?;
        let counted = subscription.counted(key);
        subscription.requested.take()?;
        subscription.replay = None;
        // Its replay would read for nothing (it could not fix a window).
        let cancelled_replay = self.replay.as_mut().is_some_and(|mode| mode.cancel(key));
        let indexed = if subscription.room {
            Indexed::Actions(subscription.actions(key))
        } else {
            self.subscriptions.remove(key);
            Indexed::Removed
        };
        Some(Unsubscribed {
            indexed,
            cancelled_replay,
            counted,
        })
    }

    /// Joins `room`: `Some(actions)` for the index if the connection was
    /// not in it yet, `None` if it was.
    pub fn join_room(
        &mut self,
        room: &RoomKey,
        bounds: Bounds,
    ) -> Result<Option<ActionSet>, ClientError> {
        if self.closed {
            return Err(closing());
        }
        let limit = bounds.max_rooms;
        if !self.rooms.contains(room) && self.rooms.len() >= limit {
            return Err(ClientError::new(
                ErrorCode::RateLimited,
                format!("room limit reached ({limit} per connection); leave one first"),
            ));
        }
        if !self.rooms.insert(room.clone()) {
            return Ok(None);
        }
        let key = SubscriptionKey::of_room(room);
        let subscription = self.subscriptions.entry(key.clone()).or_default();
        subscription.room = true;
        Ok(Some(subscription.actions(&key)))
    }

    /// Leaves `room`: what the index holds for its key now, or `None` if
    /// the connection was not in it.
    pub fn leave_room(&mut self, room: &RoomKey) -> Option<Indexed> {
        if !self.rooms.remove(room) {
            return None;
        }
        let key = SubscriptionKey::of_room(room);
        let Some(subscription) = self.subscriptions.get_mut(&key) else {
            return Some(Indexed::Removed);
        };
        subscription.room = false;
        if subscription.requested.is_some() {
            return Some(Indexed::Actions(subscription.actions(&key)));
        }
        self.subscriptions.remove(&key);
        Some(Indexed::Removed)
    }

    /// Empties the seam for good: what it held, the first time only.
    pub fn close(&mut self) -> Option<Closed> {
        if self.closed {
            return None;
        }
        self.closed = true;
        self.replay = None;
        let rooms = self.rooms.drain().collect();
        let keys = self
            .subscriptions
            .drain()
            .map(|(key, subscription)| {
                let counted = subscription.counted(&key);
                (key, counted)
            })
            .collect();
        Some(Closed { rooms, keys })
    }

    /// Live delivery of one event: emitted now through `emit` (under the
    /// caller's lock, so it cannot overtake a replay seam), held while
    /// replaying (`hold` makes what is held), or skipped when a replay sent
    /// it or will (live delivery can lag behind a replay's end, e.g. on a
    /// node that just restarted). `reset_epoch` is that of the event's
    /// partition; `limit` bounds the events held.
    pub fn offer(
        &mut self,
        limit: usize,
        event: &CrmEvent,
        reset_epoch: u64,
        hold: impl FnOnce() -> Waiting,
        emit: impl FnOnce() -> Offer,
    ) -> Offer {
        if self.closed {
            return Offer::Closed;
        }
        // A replaying connection always has a window (`subscribe_replaying`).
        if self.has_windows && !wanted_after_replay(&self.subscriptions, event, reset_epoch) {
            return Offer::Skipped;
        }
        match &mut self.replay {
            None => emit(),
            Some(mode) if mode.waiting.len() >= limit => Offer::Overflow,
            Some(mode) => {
                mode.waiting.push_back(Arc::new(hold()));
                Offer::Held
            }
        }
    }

    /// Fixes where job `job`'s replay of `key` ends, at `live_end()` read
    /// under the caller's lock (step 2 of the seam), and returns it. `None`
    /// if the window is no longer that job's (unsubscribed, replaced or
    /// closed meanwhile).
    pub fn fix_replay_end(
        &mut self,
        key: &SubscriptionKey,
        job: u64,
        live_end: impl FnOnce() -> Cursor,
    ) -> Option<Cursor> {
        let window = self.window_of(key, job)?;
        let end = live_end();
        window.end = Some(end.clone());
        Some(end)
    }

    /// The replay planned for `key` found its cursor beyond the end of some
    /// partitions' logs (they went backwards): it reads them from the new
    /// log's start, `restarted`'s offsets, and so the window starts there.
    /// Only job `job`'s own window (a replaced job's plan must not move its
    /// successor's), which then belongs to the new log: `epoch`, now.
    pub fn restart_replay(
        &mut self,
        key: &SubscriptionKey,
        job: u64,
        restarted: &Cursor,
        epoch: u64,
    ) {
        if restarted.iter().next().is_none() {
            return;
        }
        let Some(window) = self.window_of(key, job) else {
            return;
        };
        for (topic, partition, offset) in restarted.iter() {
            window.since.set(topic, partition, offset);
        }
        window.epoch = epoch;
    }

    fn window_of(&mut self, key: &SubscriptionKey, job: u64) -> Option<&mut ReplayWindow> {
        let window = self.subscriptions.get_mut(key)?.replay.as_mut()?;
        (window.job == job).then_some(window)
    }

    /// The next thing the replay worker must do. Flushes come in batches of
    /// at most `batch`, so a job queued meanwhile runs before the rest of
    /// the flush.
    pub fn next_step(&mut self, batch: usize) -> Step {
        let Some(mode) = self.replay.as_mut() else {
            return Step::Done;
        };
        // The worker asks for its next step when the last one is over.
        mode.running = None;
        if let Some(job) = mode.jobs.pop_front() {
            mode.running = Some((job.request.key.clone(), job.cancel.clone()));
            return Step::Replay(job);
        }
        if mode.waiting.is_empty() {
            self.replay = None;
            return Step::Done;
        }
        let take = mode.waiting.len().min(batch);
        let flush = mode
            .waiting
            .drain(..take)
            .filter(|w| wanted_after_replay(&self.subscriptions, &w.event, w.reset_epoch))
            .collect();
        Step::Flush(flush)
    }
}

fn closing() -> ClientError {
    ClientError::new(ErrorCode::InvalidRequest, "connection is closing")
}

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;
