//! What one connection holds: its principal, its place in the connection
//! counts, and its [`Seam`] (subscriptions, rooms, replays, held live
//! events) under one lock. Each method here runs one seam step under that
//! lock and applies what it returns to the node: the subscription index,
//! presence and the metrics.

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::seam::{Bounds, Indexed, Offer, Queued, Seam, Step, Subscribed, Waiting};
use super::{Client, Gateway};
use crate::access::Viewer;
use crate::auth::Principal;
use crate::domain::{CrmEvent, Cursor, RoomKey};
use crate::guard::{Admission, ConnectionSlot, EventRate};
use crate::presence::RoomView;
use crate::protocol::{ClientError, SubscriptionRequest};
use crate::routing::{ClientId, Scope, SubscriptionKey};

pub struct Session {
    pub client: ClientId,
    pub principal: Principal,
    /// What the principal's roles and teams may see (see [`crate::access`]).
    pub viewer: Viewer,
    // std Mutex: never held across `.await`; live emits happen under it (they
    // never wait), which keeps them ordered with the replay seam.
    seam: Mutex<Seam>,
    /// This connection's place in the node's connection counts, held until
    /// the socket is gone.
    slot: Mutex<Option<ConnectionSlot>>,
    /// The inbound event rate (its own lock: charged before any other work).
    events: Mutex<EventRate>,
    /// Cancelled when the connection closes: stops its background tasks.
    pub closing: CancellationToken,
}

/// A poisoned lock still guards consistent state: every critical section
/// here finishes its changes before anything that could panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Session {
    pub fn new(
        client: ClientId,
        principal: Principal,
        viewer: Viewer,
        events: EventRate,
        slot: ConnectionSlot,
    ) -> Self {
        Self {
            client,
            principal,
            viewer,
            seam: Mutex::default(),
            slot: Mutex::new(Some(slot)),
            events: Mutex::new(events),
            closing: CancellationToken::new(),
        }
    }

    /// The socket is gone: closes the session if it is not yet, and gives
    /// its place in the connection counts back (a client cut off keeps it
    /// until its socket really closes). True only the first time.
    pub fn end(&self, gateway: &Gateway) -> bool {
        self.close(gateway);
        lock(&self.slot).take().is_some()
    }

    /// Charges one inbound event to the connection's rate.
    pub fn admit_event(&self) -> Admission {
        lock(&self.events).admit(Instant::now())
    }

    /// The subscription to the user's own notifications every connection has.
    pub fn inbox_key(&self) -> SubscriptionKey {
        SubscriptionKey {
            org: self.principal.org.clone(),
            scope: Scope::Inbox(self.principal.user.clone()),
        }
    }

    /// Adds a live subscription, or replaces one's actions; true if it is new.
    pub fn subscribe(
        &self,
        gateway: &Gateway,
        client: &Client,
        request: &SubscriptionRequest,
    ) -> Result<bool, ClientError> {
        let mut seam = lock(&self.seam);
        let subscribed = seam.subscribe(request, bounds(gateway))?;
        self.index(gateway, client, &request.key, &subscribed);
        Ok(subscribed.is_new)
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
        let mut seam = lock(&self.seam);
        let key = request.key.clone();
        let epoch = gateway.live.epoch();
        let cancel = self.closing.child_token();
        let Queued {
            subscribed,
            start_worker,
            replaced,
        } = seam.subscribe_replaying(request, since, epoch, cancel, bounds(gateway))?;
        self.index(gateway, client, &key, &subscribed);
        acknowledge();
        if replaced {
            gateway.metrics.replays_cancelled.inc("replaced");
        }
        Ok(start_worker)
    }

    fn index(&self, gateway: &Gateway, client: &Client, key: &SubscriptionKey, s: &Subscribed) {
        gateway
            .index
            .insert(key.clone(), self.client, client.clone(), s.actions);
        if s.is_new && key.resource().is_some() {
            gateway.metrics.subscriptions.inc();
        }
    }

    fn reindex(&self, gateway: &Gateway, client: &Client, key: SubscriptionKey, to: Indexed) {
        match to {
            Indexed::Actions(actions) => {
                gateway
                    .index
                    .insert(key, self.client, client.clone(), actions);
            }
            Indexed::Removed => {
                gateway.index.remove(&key, self.client);
            }
        }
    }

    /// True if the subscription existed. A room holding the same key keeps
    /// delivering it.
    pub fn unsubscribe(&self, gateway: &Gateway, client: &Client, key: &SubscriptionKey) -> bool {
        let mut seam = lock(&self.seam);
        let Some(unsubscribed) = seam.unsubscribe(key) else {
            return false;
        };
        if unsubscribed.cancelled_replay {
            gateway.metrics.replays_cancelled.inc("unsubscribed");
        }
        if unsubscribed.counted {
            gateway.metrics.subscriptions.dec();
        }
        self.reindex(gateway, client, key.clone(), unsubscribed.indexed);
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
        let mut seam = lock(&self.seam);
        if let Some(actions) = seam.join_room(room, bounds(gateway))? {
            gateway.metrics.room_seats.inc();
            let key = SubscriptionKey::of_room(room);
            self.reindex(gateway, client, key, Indexed::Actions(actions));
        }
        // Under the session lock, so a disconnect cannot slip in between
        // and leave the socket seated in the room.
        let (user, name) = (&self.principal.user, &self.principal.name);
        let socket = client.socket.clone();
        Ok(gateway.presence.join(room, self.client, socket, user, name))
    }

    /// False if the connection was not in `room`.
    pub fn leave_room(&self, gateway: &Gateway, client: &Client, room: &RoomKey) -> bool {
        let mut seam = lock(&self.seam);
        let Some(indexed) = seam.leave_room(room) else {
            return false;
        };
        gateway.presence.leave(room, self.client);
        gateway.metrics.room_seats.dec();
        self.reindex(gateway, client, SubscriptionKey::of_room(room), indexed);
        true
    }

    /// Ends what this connection holds of a resource it may no longer see:
    /// its subscription to `key` and its seat in `room`. Returns which it had.
    pub fn revoke(
        &self,
        gateway: &Gateway,
        client: &Client,
        key: &SubscriptionKey,
        room: &RoomKey,
    ) -> (bool, bool) {
        let subscription = self.unsubscribe(gateway, client, key);
        let seat = self.leave_room(gateway, client, room);
        (subscription, seat)
    }

    /// Removes everything this connection put in the index and leaves its
    /// rooms. Idempotent: returns true only for the call that closed it.
    pub fn close(&self, gateway: &Gateway) -> bool {
        let mut seam = lock(&self.seam);
        let Some(closed) = seam.close() else {
            return false;
        };
        self.closing.cancel();
        for room in &closed.rooms {
            gateway.presence.leave(room, self.client);
            gateway.metrics.room_seats.dec();
        }
        for (key, counted) in &closed.keys {
            gateway.index.remove(key, self.client);
            if *counted {
                gateway.metrics.subscriptions.dec();
            }
        }
        true
    }

    /// Live delivery of one event (see [`Seam::offer`]), under the lock.
    pub fn offer(
        &self,
        limit: usize,
        event: &CrmEvent,
        reset_epoch: u64,
        hold: impl FnOnce() -> Waiting,
        emit: impl FnOnce() -> Offer,
    ) -> Offer {
        lock(&self.seam).offer(limit, event, reset_epoch, hold, emit)
    }

    /// See [`Seam::fix_replay_end`]: `live_end` is read under the lock.
    pub fn fix_replay_end(
        &self,
        key: &SubscriptionKey,
        job: u64,
        live_end: impl FnOnce() -> Cursor,
    ) -> Option<Cursor> {
        lock(&self.seam).fix_replay_end(key, job, live_end)
    }

    /// See [`Seam::restart_replay`].
    pub fn restart_replay(&self, key: &SubscriptionKey, job: u64, restarted: &Cursor, epoch: u64) {
        lock(&self.seam).restart_replay(key, job, restarted, epoch);
    }

    /// See [`Seam::next_step`].
    pub fn next_step(&self, batch: usize) -> Step {
        lock(&self.seam).next_step(batch)
    }
}

fn bounds(gateway: &Gateway) -> Bounds {
    Bounds {
        max_subscriptions: gateway.limits.max_subscriptions,
        max_rooms: gateway.limits.max_rooms,
        max_replays: gateway.replayer.config().max_replays_per_connection,
    }
}
