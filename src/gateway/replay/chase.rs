//! One replay's reads: chasing live delivery until it has caught up, with
//! a replay slot while it reads, at the client's pace.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Failed::{self, Cancelled, Gone, Unavailable};
use super::emit::{FULL_QUEUE_PAUSE, emit_until};
use super::live_cursor;
use crate::domain::{Cursor, Position, TopicKind};
use crate::gateway::permits;
use crate::gateway::session::Session;
use crate::gateway::{Client, Gateway};
use crate::metrics::GaugeHold;
use crate::protocol::{Delivery, SubscriptionRequest, render};
use crate::replay::{Range, Slot, catch_up};
use crate::routing::key_matches;

/// How long a replay keeps its slot while the socket is full: a client that
/// reads drains its queue within milliseconds; one still full after this is
/// slow or not reading, and waits without a slot.
pub(super) const SLOW_SOCKET: Duration = Duration::from_millis(250);
/// Pause between emit retries into a slow socket, once the slot is given
/// up: a stuck client costs a wake-up per this, not per `FULL_QUEUE_PAUSE`.
const SLOW_SOCKET_PAUSE: Duration = Duration::from_millis(20);

/// A replay's hold on a replay slot: given up while it waits for a slow
/// socket, taken again to read on.
pub(super) struct Turn<'a> {
    gateway: &'a Gateway,
    session: &'a Session,
    /// The slot, and the replay's count in `replays_running` while held.
    slot: Option<(Slot, GaugeHold<'a>)>,
}

impl<'a> Turn<'a> {
    /// No slot held yet.
    pub(super) fn new(gateway: &'a Gateway, session: &'a Session) -> Self {
        Self {
            gateway,
            session,
            slot: None,
        }
    }

    /// Waits for a slot unless it holds one; `Cancelled` if the replay is.
    pub(super) async fn take(&mut self, cancel: &CancellationToken) -> Result<(), Failed> {
        if self.slot.is_some() {
            return Ok(());
        }
        let _queued = self.gateway.metrics.replays_waiting_for_slot.hold();
        let principal = &self.session.principal;
        let slots = &self.gateway.replay_slots;
        tokio::select! {
            slot = slots.acquire(&principal.org, &principal.user) => {
                let running = self.gateway.metrics.replays_running.hold();
                self.slot = Some((slot, running));
                Ok(())
            }
            () = cancel.cancelled() => Err(Cancelled),
        }
    }

    pub(super) fn give_up(&mut self) {
        self.slot = None;
    }
}

/// One replay under way: whose, of what, and until when.
pub(super) struct Replaying<'a> {
    pub(super) gateway: &'a Arc<Gateway>,
    pub(super) client: &'a Client,
    pub(super) request: &'a SubscriptionRequest,
    /// The job's id: it may fix only its own window's end.
    pub(super) job: u64,
    pub(super) cancel: &'a CancellationToken,
    /// The topics `request` reads.
    pub(super) topics: &'a [TopicKind],
    pub(super) deadline: Instant,
}

impl Replaying<'_> {
    /// Reads `ranges`, then what live delivery handled meanwhile, and
    /// again, until little is left: then fixes the subscription's replay end
    /// at live delivery's position (step 2 of the seam in `seam.rs`) and
    /// reads up to it. Live events the replay will read are not held
    /// meanwhile, so a replay chasing a fast stream does not fill the
    /// connection's held-events buffer; one that cannot catch up runs into
    /// its deadline. Returns the replay's end and how many events it sent,
    /// or `None` if the subscription went away or is another replay's now.
    pub(super) async fn chase(
        &self,
        turn: &mut Turn<'_>,
        mut ranges: Vec<Range>,
        mut reached: Cursor,
    ) -> Result<Option<(Cursor, u64)>, Failed> {
        let slack = (self.gateway.replayer.config().live_buffer / 2).max(1) as i64;
        let live_end = || live_cursor(self.gateway, self.topics);
        let mut replayed = 0;
        let mut fixed = false;
        loop {
            replayed += self.send(turn, ranges).await?;
            if fixed {
                return Ok(Some((reached, replayed)));
            }
            let ahead = live_end();
            ranges = catch_up(&reached, &ahead);
            let left: i64 = ranges.iter().map(|r| r.to - r.from).sum();
            let ahead = if left <= slack {
                fixed = true;
                let session = &self.client.session;
                let key = &self.request.key;
                let Some(end) = session.fix_replay_end(key, self.job, live_end) else {
                    return Ok(None);
                };
                ranges = catch_up(&reached, &end);
                end
            } else if Instant::now() < self.deadline {
                ahead
            } else {
                return Err(Gone); // never caught up: too slow for the stream
            };
            reached.advance_to(&ahead);
        }
    }

    /// Reads `ranges` and emits the events the request matches, at the
    /// client's pace; returns how many. Reads only with a slot: each pass
    /// reads until the socket stays full for [`SLOW_SOCKET`], then stops its
    /// reader, gives the slot up, waits for room, and the next pass takes a
    /// slot again and reads on from the next offset.
    async fn send(&self, turn: &mut Turn<'_>, mut ranges: Vec<Range>) -> Result<u64, Failed> {
        let request = self.request;
        let socket = &self.client.socket;
        let mut sent = 0u64;
        while !ranges.is_empty() {
            turn.take(self.cancel).await?;
            let stop = self.cancel.child_token();
            let _stop_reader = stop.clone().drop_guard();
            let mut events = self.gateway.replayer.read(ranges.clone(), stop);
            loop {
                // A reader waits out a broker that went away; not past
                // the deadline.
                let read = tokio::select! {
                    read = events.recv() => read,
                    () = self.cancel.cancelled() => return Err(Cancelled),
                    () = tokio::time::sleep_until(self.deadline) => return Err(Unavailable),
                };
                let Some(read) = read else {
                    return Ok(sent); // everything in `ranges` was read
                };
                let Ok(event) = read else {
                    return Err(Unavailable);
                };
                read_past(&mut ranges, event.position);
                if !key_matches(&request.key, request.actions, &event) {
                    continue;
                }
                // The log live delivery reads: the one a replay reads too
                // (a reset while it reads may repeat events, see docs/kafka.md).
                let log = self.gateway.live.log(event.position.topic);
                // Today's permissions, not those of when it was written.
                let session = &self.client.session;
                let Some(outbound) = permits::replayed(self.gateway, session, &event, |hidden| {
                    render(&event, Delivery::Replayed, log, hidden)
                }) else {
                    continue;
                };
                let (name, payload) = (outbound.name, &outbound.payload);
                sent += 1;
                let patience = (Instant::now() + SLOW_SOCKET).min(self.deadline);
                if emit_until(
                    socket,
                    name,
                    payload,
                    patience,
                    FULL_QUEUE_PAUSE,
                    self.cancel,
                )
                .await?
                {
                    continue;
                }
                // A slow socket: nothing read ahead for it, no slot held.
                drop(events);
                turn.give_up();
                let _waiting = self.gateway.metrics.replays_waiting_for_socket.hold();
                let pause = SLOW_SOCKET_PAUSE;
                if !emit_until(socket, name, payload, self.deadline, pause, self.cancel).await? {
                    return Err(Gone);
                }
                break;
            }
        }
        Ok(sent)
    }
}

/// Narrows `ranges` to what is left after the event at `position` was read:
/// a reader sends each partition's records in offset order.
fn read_past(ranges: &mut Vec<Range>, position: Position) {
    for range in ranges.iter_mut() {
        if range.topic == position.topic && range.partition == position.partition {
            range.from = range.from.max(position.offset + 1);
        }
    }
    ranges.retain(|range| range.from < range.to);
}
