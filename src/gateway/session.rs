//! What one connection holds: its principal, its subscriptions, and while it
//! replays, the live events waiting for the replay to finish.
//!
//! The seam between replay and live delivery (no gap, no duplicate):
//! 1. A subscription with `since` enters the index at once, with an *open*
//!    replay window, and the connection enters replay mode.
//! 2. The replay worker (`replay.rs`) reads from `since` to where live
//!    delivery stands, then again to where it has got meanwhile, and so on
//!    (live events the open window covers are not held: the replay reads
//!    them). When little is left it *fixes* the window's `end`, under this
//!    lock, at live delivery's position then, and reads up to it. Any record
//!    at or after `end` is handled by live delivery after that, and waits in
//!    `waiting` (bounded) if a fixed window or a live subscription wants it.
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
//! ([`Session::restart_replay`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::{Client, Gateway};
use crate::auth::Principal;
use crate::domain::Cursor;
use crate::domain::{ActionSet, CrmEvent, RoomKey};
use crate::guard::{Admission, ConnectionSlot, EventRate};
use crate::presence::RoomView;
use crate::protocol::{ClientError, ErrorCode, Outbound, SubscriptionRequest};
use crate::routing::{ClientId, Scope, SubscriptionKey, key_matches};

pub struct Session {
    pub client: ClientId,
    pub principal: Principal,
    // std Mutex: never held across `.await`; live emits happen under it (they
    // never wait), which keeps them ordered with the replay seam.
    state: Mutex<State>,
    /// The inbound event rate (its own lock: charged before any other work).
    events: Mutex<EventRate>,
    /// Cancelled when the connection closes: stops its background tasks.
    pub closing: CancellationToken,
}

#[derive(Default)]
struct State {
    subscriptions: HashMap<SubscriptionKey, Subscription>,
    rooms: HashSet<RoomKey>,
    /// This connection's place in the node's connection counts, held until
    /// the socket is gone.
    slot: Option<ConnectionSlot>,
    closed: bool,
    /// Present while the connection replays.
    replay: Option<ReplayMode>,
    /// Some subscription has a replay window, so live events are checked
    /// against it (see `offer`).
    has_windows: bool,
    /// Numbers replay jobs, so a window knows which replay owns it.
    next_job: u64,
}

/// One key in the index, held by `subscribe`, by a joined room, or both.
#[derive(Default)]
struct Subscription {
    /// The actions `subscribe` asked for; `None` while only a room holds it.
    requested: Option<ActionSet>,
    /// A joined room delivers this key's events, every action.
    room: bool,
    /// Present once the subscription replayed (or waits to): what the replay
    /// covers, so nothing in it is sent twice.
    replay: Option<ReplayWindow>,
}

impl Subscription {
    /// What the index delivers for `key`: the request's actions and a room's.
    fn actions(&self, key: &SubscriptionKey) -> ActionSet {
        let room = match (self.room, key.resource()) {
            (true, Some(kind)) => kind.all_actions(),
            _ => ActionSet::default(),
        };
        self.requested.unwrap_or_default().union(room)
    }
}

/// Offsets `[since, end)` a subscription's replay covers.
struct ReplayWindow {
    /// The replay job that reads it: only that one may fix its end.
    job: u64,
    since: Cursor,
    /// Fixed when the replay has nearly caught up with live delivery; until
    /// then the window is open: the replay will read everything from `since`.
    end: Option<Cursor>,
    /// `LivePositions::epoch` when the window was made: its offsets mean
    /// nothing in a partition reset after that.
    epoch: u64,
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
    pub outbound: Arc<Outbound>,
    /// The reset epoch of the event's partition (`LivePositions::reset_epoch`).
    pub reset_epoch: u64,
}

/// What live delivery should do with an event for this connection.
pub enum Offer {
    /// Emit it (done under the session lock by the caller's closure).
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

pub enum Subscribed {
    New,
    Replaced,
}

impl Session {
    pub fn new(
        client: ClientId,
        principal: Principal,
        events: EventRate,
        slot: ConnectionSlot,
    ) -> Self {
        Self {
            client,
            principal,
            state: Mutex::new(State {
                slot: Some(slot),
                ..State::default()
            }),
            events: Mutex::new(events),
            closing: CancellationToken::new(),
        }
    }

    /// The socket is gone: closes the session if it is not yet, and gives
    /// its place in the connection counts back (a client cut off keeps it
    /// until its socket really closes). True only the first time.
    pub fn end(&self, gateway: &Gateway) -> bool {
        self.close(gateway);
        self.state().slot.take().is_some()
    }

    /// Charges one inbound event to the connection's rate.
    pub fn admit_event(&self) -> Admission {
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        events.admit(Instant::now())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The subscription to the user's own notifications every connection has.
    pub fn inbox_key(&self) -> SubscriptionKey {
        SubscriptionKey {
            org: self.principal.org.clone(),
            scope: Scope::Inbox(self.principal.user.clone()),
        }
    }

    /// Adds a live subscription, or replaces one's actions.
    pub fn subscribe(
        &self,
        gateway: &Gateway,
        client: &Client,
        request: &SubscriptionRequest,
    ) -> Result<Subscribed, ClientError> {
        let mut state = self.state();
        let is_new = self.register(&mut state, gateway, client, request, None)?;
        Ok(if is_new {
            Subscribed::New
        } else {
            Subscribed::Replaced
        })
    }

    /// Adds a subscription that first replays from `since`, replacing the
    /// key's queued or running replay if it has one. Returns true when the
    /// caller must start the connection's replay worker.
    /// `acknowledge` runs once it is accepted and before the replay can
    /// start, so the client hears `replaying: true` before anything the
    /// replay sends, however fast it is (a running worker takes the job as
    /// soon as the session is unlocked).
    pub fn subscribe_replaying(
        &self,
        gateway: &Gateway,
        client: &Client,
        request: SubscriptionRequest,
        since: Cursor,
        acknowledge: impl FnOnce(),
    ) -> Result<bool, ClientError> {
        let mut state = self.state();
        let limit = gateway.replayer.config().max_replays_per_connection;
        if let Some(mode) = &state.replay {
            let replaces = mode.jobs.iter().any(|job| job.request.key == request.key)
                || mode
                    .running
                    .as_ref()
                    .is_some_and(|(key, _)| key == &request.key);
            if !replaces && mode.pending() >= limit {
                return Err(ClientError::new(
                    ErrorCode::RateLimited,
                    format!(
                        "replay limit reached ({limit} queued or running per connection); \
                         wait for a subscription-resumed first"
                    ),
                )
                .with_details(serde_json::json!({ "reason": "replay_limit", "limit": limit })));
            }
        }
        let id = state.next_job;
        let window = ReplayWindow {
            job: id,
            since,
            end: None,
            epoch: gateway.live.epoch(),
        };
        self.register(&mut state, gateway, client, &request, Some(window))?;
        state.next_job += 1;
        acknowledge();
        state.has_windows = true;
        let start_worker = state.replay.is_none();
        let mode = state.replay.get_or_insert_with(ReplayMode::default);
        if mode.cancel(&request.key) {
            gateway.metrics.replays_cancelled.inc("replaced");
        }
        mode.jobs.push_back(ReplayJob {
            request,
            id,
            cancel: self.closing.child_token(),
        });
        Ok(start_worker)
    }

    /// Puts a subscription in the session and the index; true if it is new.
    fn register(
        &self,
        state: &mut State,
        gateway: &Gateway,
        client: &Client,
        request: &SubscriptionRequest,
        replay: Option<ReplayWindow>,
    ) -> Result<bool, ClientError> {
        let is_new = check_capacity(state, gateway, &request.key)?;
        let key = &request.key;
        let subscription = state.subscriptions.entry(key.clone()).or_default();
        subscription.requested = Some(request.actions);
        subscription.replay = replay;
        let actions = subscription.actions(key);
        gateway
            .index
            .insert(key.clone(), self.client, client.clone(), actions);
        if is_new && key.resource().is_some() {
            gateway.metrics.subscriptions.inc();
        }
        Ok(is_new)
    }

    /// True if the subscription existed. A room holding the same key keeps
    /// delivering it.
    pub fn unsubscribe(&self, gateway: &Gateway, client: &Client, key: &SubscriptionKey) -> bool {
        let mut state = self.state();
        let state = &mut *state;
        let Some(subscription) = state.subscriptions.get_mut(key) else {
            return false;
        };
        if subscription.requested.take().is_none() {
            return false;
        }
        subscription.replay = None;
        // Its replay would read for nothing (it could not fix a window).
        if let Some(mode) = &mut state.replay
            && mode.cancel(key)
        {
            gateway.metrics.replays_cancelled.inc("unsubscribed");
        }
        if key.resource().is_some() {
            gateway.metrics.subscriptions.dec();
        }
        if subscription.room {
            let actions = subscription.actions(key);
            gateway
                .index
                .insert(key.clone(), self.client, client.clone(), actions);
        } else {
            state.subscriptions.remove(key);
            gateway.index.remove(key, self.client);
        }
        true
    }

    /// Joins `room`: its presence, and its resource's events. Joining again
    /// only returns the room as it is.
    pub fn join_room(
        &self,
        gateway: &Gateway,
        client: &Client,
        room: &RoomKey,
    ) -> Result<RoomView, ClientError> {
        let mut state = self.state();
        if state.closed {
            return Err(closing());
        }
        let limit = gateway.limits.max_rooms;
        if !state.rooms.contains(room) && state.rooms.len() >= limit {
            return Err(ClientError::new(
                ErrorCode::RateLimited,
                format!("room limit reached ({limit} per connection); leave one first"),
            ));
        }
        if state.rooms.insert(room.clone()) {
            gateway.metrics.room_seats.inc();
            let key = SubscriptionKey::of_room(room);
            let subscription = state.subscriptions.entry(key.clone()).or_default();
            subscription.room = true;
            let actions = subscription.actions(&key);
            gateway
                .index
                .insert(key, self.client, client.clone(), actions);
        }
        // Under the session lock, so a disconnect cannot slip in between
        // and leave the socket seated in the room.
        let (user, name) = (&self.principal.user, &self.principal.name);
        let socket = client.socket.clone();
        Ok(gateway.presence.join(room, self.client, socket, user, name))
    }

    /// False if the connection was not in `room`.
    pub fn leave_room(&self, gateway: &Gateway, client: &Client, room: &RoomKey) -> bool {
        let mut state = self.state();
        if !state.rooms.remove(room) {
            return false;
        }
        self.vacate(&mut state, gateway, room);
        let key = SubscriptionKey::of_room(room);
        if let Some(subscription) = state.subscriptions.get(&key) {
            let actions = subscription.actions(&key);
            gateway
                .index
                .insert(key, self.client, client.clone(), actions);
        }
        true
    }

    /// Leaves `room`'s presence and drops the room's hold on its key (the
    /// key leaves the index when nothing else holds it).
    fn vacate(&self, state: &mut State, gateway: &Gateway, room: &RoomKey) {
        gateway.presence.leave(room, self.client);
        gateway.metrics.room_seats.dec();
        let key = SubscriptionKey::of_room(room);
        if let Some(subscription) = state.subscriptions.get_mut(&key) {
            subscription.room = false;
            if subscription.requested.is_none() {
                state.subscriptions.remove(&key);
                gateway.index.remove(&key, self.client);
            }
        }
    }

    /// Removes everything this connection put in the index and leaves its
    /// rooms. Idempotent: returns true only for the call that closed it.
    pub fn close(&self, gateway: &Gateway) -> bool {
        let mut state = self.state();
        if state.closed {
            return false;
        }
        state.closed = true;
        state.replay = None;
        self.closing.cancel();
        let rooms: Vec<RoomKey> = state.rooms.drain().collect();
        for room in &rooms {
            self.vacate(&mut state, gateway, room);
        }
        for (key, subscription) in state.subscriptions.drain() {
            gateway.index.remove(&key, self.client);
            if subscription.requested.is_some() && key.resource().is_some() {
                gateway.metrics.subscriptions.dec();
            }
        }
        true
    }

    /// Live delivery of one event: emitted now through `emit` (under the
    /// lock, so it cannot overtake a replay seam), held while replaying, or
    /// skipped when a replay sent it or will (live delivery can lag behind
    /// a replay's end, e.g. on a node that just restarted).
    /// `reset_epoch` is that of the event's partition.
    pub fn offer(
        &self,
        limit: usize,
        event: &CrmEvent,
        reset_epoch: u64,
        hold: impl FnOnce() -> Waiting,
        emit: impl FnOnce() -> Offer,
    ) -> Offer {
        let mut state = self.state();
        if state.closed {
            return Offer::Closed;
        }
        let state = &mut *state;
        // A replaying connection always has a window (`subscribe_replaying`).
        if state.has_windows && !wanted_after_replay(&state.subscriptions, event, reset_epoch) {
            return Offer::Skipped;
        }
        match &mut state.replay {
            None => emit(),
            Some(mode) if mode.waiting.len() >= limit => Offer::Overflow,
            Some(mode) => {
                mode.waiting.push_back(Arc::new(hold()));
                Offer::Held
            }
        }
    }

    /// Fixes where job `job`'s replay of `key` ends, at `live_end()` read
    /// under the lock (step 2 of the seam), and returns it. `None` if the
    /// window is no longer that job's (unsubscribed, replaced or closed
    /// meanwhile).
    pub fn fix_replay_end(
        &self,
        key: &SubscriptionKey,
        job: u64,
        live_end: impl FnOnce() -> Cursor,
    ) -> Option<Cursor> {
        let mut state = self.state();
        let window = state.subscriptions.get_mut(key)?.replay.as_mut()?;
        if window.job != job {
            return None;
        }
        let end = live_end();
        window.end = Some(end.clone());
        Some(end)
    }

    /// The replay planned for `key` found its cursor beyond the end of some
    /// partitions' logs (they went backwards): it reads them from the new
    /// log's start, `restarted`'s offsets, and so the window starts there.
    /// Only job `job`'s own window (a replaced job's plan must not move its
    /// successor's), which then belongs to the new log: the epoch of now.
    pub fn restart_replay(&self, key: &SubscriptionKey, job: u64, restarted: &Cursor, epoch: u64) {
        if restarted.iter().next().is_none() {
            return;
        }
        let mut state = self.state();
        let Some(window) = state
            .subscriptions
            .get_mut(key)
            .and_then(|s| s.replay.as_mut())
            .filter(|window| window.job == job)
        else {
            return;
        };
        for (topic, partition, offset) in restarted.iter() {
            window.since.set(topic, partition, offset);
        }
        window.epoch = epoch;
    }

    /// The next thing the replay worker must do. Flushes come in batches, so
    /// a job queued meanwhile runs before the rest of the flush.
    pub fn next_step(&self, batch: usize) -> Step {
        let mut state = self.state();
        let state = &mut *state;
        let Some(mode) = state.replay.as_mut() else {
            return Step::Done;
        };
        // The worker asks for its next step when the last one is over.
        mode.running = None;
        if let Some(job) = mode.jobs.pop_front() {
            mode.running = Some((job.request.key.clone(), job.cancel.clone()));
            return Step::Replay(job);
        }
        if mode.waiting.is_empty() {
            state.replay = None;
            return Step::Done;
        }
        let take = mode.waiting.len().min(batch);
        let flush = mode
            .waiting
            .drain(..take)
            .filter(|w| wanted_after_replay(&state.subscriptions, &w.event, w.reset_epoch))
            .collect();
        Step::Flush(flush)
    }
}

/// Ok(is_new), or the subscription limit's error. Keys only a room holds
/// do not count: rooms have their own limit.
fn check_capacity(
    state: &State,
    gateway: &Gateway,
    key: &SubscriptionKey,
) -> Result<bool, ClientError> {
    if state.closed {
        return Err(closing());
    }
    let requested = |s: Option<&Subscription>| s.is_some_and(|s| s.requested.is_some());
    let is_new = !requested(state.subscriptions.get(key));
    let held = state
        .subscriptions
        .iter()
        .filter(|(k, s)| k.resource().is_some() && requested(Some(s)))
        .count();
    if is_new && key.resource().is_some() && held >= gateway.limits.max_subscriptions {
        return Err(ClientError::new(
            ErrorCode::RateLimited,
            format!(
                "subscription limit reached ({} per connection); unsubscribe first",
                gateway.limits.max_subscriptions
            ),
        ));
    }
    Ok(is_new)
}

fn closing() -> ClientError {
    ClientError::new(ErrorCode::InvalidRequest, "connection is closing")
}

/// Steps 2 and 3 of the seam: whether a live event still has to be sent,
/// or a replay sent it (or will: its window is open), or the client had it.
/// `reset_epoch` is that of the event's partition: a window older than it
/// holds offsets of a log that is gone.
fn wanted_after_replay(
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

#[cfg(test)]
mod tests;
