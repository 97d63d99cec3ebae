//! The per-connection replay worker: runs the connection's queued replays one
//! at a time, each chasing live delivery until it has caught up, then flushes
//! the live events held meanwhile (see `seam.rs`). Emits at
//! the client's pace: a full socket queue makes it wait, not drop, until
//! `replay.timeout_seconds`.
//!
//! A replay reads only while it holds a replay slot (`replay/slots.rs`: the
//! node's, its organisation's and its user's shares). A socket that stays
//! full for [`SLOW_SOCKET`] costs no slot: the reader stops, the slot goes
//! to the next replay waiting, and once the socket has room again the
//! replay queues for a slot and reads on from the next offset. So clients
//! that resume and never read hold sockets, not replay capacity.
//!
//! A sampled replay (see [`crate::telemetry`]) is one `replay` span, the root
//! of its own trace, with `partitions` read, events `replayed`, `gaps`, and
//! `error.type` when it stopped short.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use socketioxide::SocketError;
use socketioxide::extract::SocketRef;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::field::Empty;
use tracing::{Instrument as _, Span};

use super::seam::{ReplayJob, Step, Waiting};
use super::session::Session;
use super::{Client, Gateway, overflow};
use crate::domain::Cursor;
use crate::domain::Position;
use crate::domain::TopicKind;
use crate::protocol::{
    ClientError, Delivery, ErrorCode, SubscriptionRequest, describe_key, render,
};
use crate::replay::{Extent, Plan, Range, Slot, catch_up, plan};
use crate::routing::{key_matches, topics_of};
use crate::telemetry;

/// Held live events flushed per lock acquisition.
const FLUSH_BATCH: usize = 256;
/// Pause while waiting for live delivery to start on a partition.
const LIVE_NOT_STARTED_PAUSE: Duration = Duration::from_millis(50);
/// First and longest pause between look-ups of Kafka's extents.
const EXTENTS_RETRY_FIRST: Duration = Duration::from_millis(100);
const EXTENTS_RETRY_MAX: Duration = Duration::from_secs(2);
/// Pause before retrying an emit into a full socket queue.
const FULL_QUEUE_PAUSE: Duration = Duration::from_millis(2);
/// How long a replay keeps its slot while the socket is full: a client that
/// reads drains its queue within milliseconds; one still full after this is
/// slow or not reading, and waits without a slot.
const SLOW_SOCKET: Duration = Duration::from_millis(250);
/// Pause between emit retries into a slow socket, once the slot is given
/// up: a stuck client costs a wake-up per this, not per `FULL_QUEUE_PAUSE`.
const SLOW_SOCKET_PAUSE: Duration = Duration::from_millis(20);

/// Why a replay stopped short.
enum Failed {
    /// The socket went away or stayed full past the deadline.
    Gone,
    /// Kafka could not be read (or live delivery never started) by the
    /// deadline.
    Unavailable,
    /// The client replaced or removed the subscription, or went away: not
    /// a failure, the worker goes on with the next step.
    Cancelled,
}

use Failed::{Cancelled, Gone, Unavailable};

pub async fn run(gateway: Arc<Gateway>, client: Client) {
    let timeout = Duration::from_secs(gateway.replayer.config().timeout_seconds);
    loop {
        // Each replay, and each flushed batch, gets the whole timeout.
        let deadline = Instant::now() + timeout;
        let result = match client.session.next_step(FLUSH_BATCH) {
            Step::Done => return,
            Step::Replay(job) => {
                tracing::debug!(key = ?job.request.key, "replay starts");
                let span = telemetry::root_span(|| {
                    tracing::info_span!(
                        "replay",
                        partitions = Empty,
                        replayed = Empty,
                        gaps = Empty,
                        error.type = Empty,
                    )
                });
                let result = replay(&gateway, &client, job, deadline)
                    .instrument(span.clone())
                    .await;
                if let Err(failed) = &result {
                    let reason = match failed {
                        Gone => "client_gone",
                        Unavailable => "kafka_unavailable",
                        Cancelled => "cancelled",
                    };
                    span.record("error.type", reason);
                }
                result
            }
            Step::Flush(batch) => flush(&client, &batch, deadline).await,
        };
        match result {
            Ok(()) | Err(Cancelled) => {}
            Err(Gone) => {
                gateway.metrics.dropped.inc("replay_abandoned");
                return overflow::cut_off_slow(&gateway, &client);
            }
            Err(Unavailable) => return cut_off_unavailable(&gateway, &client),
        }
    }
}

/// Kafka failed the replay: the client is told `SERVER_ERROR` and cut off,
/// to resume from its cursor when it reconnects (to this or another node).
fn cut_off_unavailable(gateway: &Arc<Gateway>, client: &Client) {
    let error = ClientError::new(
        ErrorCode::ServerError,
        "missed events cannot be read right now; reconnect to resume",
    )
    .with_details(json!({ "reason": "replay_unavailable" }));
    overflow::cut_off(gateway, client, error, "replay_unavailable");
}

async fn flush(client: &Client, batch: &[Arc<Waiting>], deadline: Instant) -> Result<(), Failed> {
    for waiting in batch {
        let outbound = &waiting.outbound;
        let closing = &client.session.closing;
        emit_patiently(
            &client.socket,
            outbound.name,
            &outbound.payload,
            deadline,
            closing,
        )
        .await?;
    }
    Ok(())
}

/// A replay's hold on a replay slot: given up while it waits for a slow
/// socket, taken again to read on.
struct Turn<'a> {
    gateway: &'a Gateway,
    session: &'a Session,
    slot: Option<Slot>,
}

impl Turn<'_> {
    /// Waits for a slot unless it holds one; `Cancelled` if the replay is.
    async fn take(&mut self, cancel: &CancellationToken) -> Result<(), Failed> {
        if self.slot.is_some() {
            return Ok(());
        }
        let _queued = self.gateway.metrics.replays_waiting_for_slot.hold();
        let principal = &self.session.principal;
        let slots = &self.gateway.replay_slots;
        tokio::select! {
            slot = slots.acquire(&principal.org, &principal.user) => {
                self.slot = Some(slot);
                Ok(())
            }
            () = cancel.cancelled() => Err(Cancelled),
        }
    }

    fn give_up(&mut self) {
        self.slot = None;
    }
}

async fn replay(
    gateway: &Arc<Gateway>,
    client: &Client,
    job: ReplayJob,
    deadline: Instant,
) -> Result<(), Failed> {
    let ReplayJob {
        request,
        id,
        cancel,
    } = job;
    let since = request.since.clone().unwrap_or_default();
    let mut turn = Turn {
        gateway,
        session: &client.session,
        slot: None,
    };
    turn.take(&cancel).await?;
    gateway.metrics.replay_requests.inc();
    let topics = topics_of(&request.key, request.actions);
    let plan = first_plan(gateway, &since, &topics, deadline).await?;
    // A cursor of a log that went backwards: the window starts afresh too.
    let epoch = gateway.live.epoch();
    client
        .session
        .restart_replay(&request.key, id, &plan.restarted, epoch);
    let span = Span::current();
    span.record("partitions", plan.ranges.len());
    span.record("gaps", plan.gaps.len());
    let replaying = Replaying {
        gateway,
        client,
        request: &request,
        job: id,
        cancel: &cancel,
        topics: &topics,
        deadline,
    };
    let chased = replaying.chase(&mut turn, plan.ranges, plan.end).await?;
    // What is left is telling the client: no reading.
    turn.give_up();
    let Some((end, replayed)) = chased else {
        return Ok(()); // unsubscribed or replaced meanwhile
    };
    gateway.metrics.replayed_events.add(replayed);
    span.record("replayed", replayed);
    tracing::debug!(replayed, "replay sent");
    let subscription = describe_key(
        &request.key,
        request.key.resource().map(|_| request.actions),
    );
    if !plan.gaps.is_empty() {
        gateway.metrics.dropped.inc("replay_gap");
        let gap = json!({ "subscription": subscription, "gaps": plan.gaps });
        let payload = serde_json::value::to_raw_value(&gap).expect("JSON values serialise");
        emit_patiently(
            &client.socket,
            "subscription-gap",
            &payload,
            deadline,
            &cancel,
        )
        .await?;
    }
    // An event rather than the acknowledgement (already sent): an emit can
    // wait for room in a full socket queue, an acknowledgement cannot.
    let resumed = json!({
        "subscription": subscription,
        "cursor": end.to_string(),
        "replayed": replayed,
        "gaps": plan.gaps,
    });
    let payload = serde_json::value::to_raw_value(&resumed).expect("JSON values serialise");
    emit_patiently(
        &client.socket,
        "subscription-resumed",
        &payload,
        deadline,
        &cancel,
    )
    .await?;
    Ok(())
}

/// The replay's first reads and its gaps: from `since` to where live
/// delivery stands (see `kafka/positions.rs`), planned from memory when it
/// holds everything since then, else from Kafka's extents.
async fn first_plan(
    gateway: &Arc<Gateway>,
    since: &Cursor,
    topics: &[TopicKind],
    deadline: Instant,
) -> Result<Plan, Failed> {
    let replayer = &gateway.replayer;
    live_started(gateway, topics, deadline).await;
    let mut extents = match replayer.extents_in_memory(since, topics) {
        Some(extents) => extents,
        None => extents_from_kafka(gateway, topics, deadline).await?,
    };
    // A node that just started may not have assigned every partition yet.
    for extent in &mut extents {
        extent.log = gateway.live.log(extent.topic);
        extent.high = loop {
            match gateway.live.end(extent.topic, extent.partition) {
                Some(end) => break end,
                None if Instant::now() < deadline => {
                    tokio::time::sleep(LIVE_NOT_STARTED_PAUSE).await
                }
                None => return Err(Unavailable),
            }
        };
    }
    Ok(plan(
        since,
        &extents,
        replayer.config().max_records_per_partition,
    ))
}

/// Kafka's extents of `topics`, asked again while a look-up fails (a
/// partition without a leader for a moment, a broker gone from the
/// metadata) for as long as readiness waits out Kafka's silence
/// (`kafka.ready_broker_silence_seconds`), and within `deadline`: then the
/// client is told, and resumes later.
async fn extents_from_kafka(
    gateway: &Arc<Gateway>,
    topics: &[TopicKind],
    deadline: Instant,
) -> Result<Vec<Extent>, Failed> {
    let mut pause = EXTENTS_RETRY_FIRST;
    let mut failing_since = None;
    loop {
        match gateway.replayer.extents(topics.to_vec()).await {
            Ok(extents) => return Ok(extents),
            Err(e)
                if Instant::now() + pause < deadline
                    && failing_since.get_or_insert_with(Instant::now).elapsed()
                        < gateway.replayer.kafka_patience() =>
            {
                tracing::debug!(error = %e, "replay asks Kafka for partition extents again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(EXTENTS_RETRY_MAX);
            }
            Err(e) => {
                tracing::warn!(error = %e, "replay cannot read partition extents");
                return Err(Unavailable);
            }
        }
    }
}

/// One replay under way: whose, of what, and until when.
struct Replaying<'a> {
    gateway: &'a Arc<Gateway>,
    client: &'a Client,
    request: &'a SubscriptionRequest,
    /// The job's id: it may fix only its own window's end.
    job: u64,
    cancel: &'a CancellationToken,
    /// The topics `request` reads.
    topics: &'a [TopicKind],
    deadline: Instant,
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
    async fn chase(
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
                let outbound = render(&event, Delivery::Replayed, log);
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

/// Waits (until `deadline`) for live delivery to have started on every
/// topic: a node that just started may not have assigned its partitions,
/// and memory holds everything from where it starts.
async fn live_started(gateway: &Gateway, topics: &[TopicKind], deadline: Instant) {
    let waiting = || topics.iter().any(|t| gateway.live.end_of(*t).is_empty());
    while waiting() && Instant::now() < deadline {
        tokio::time::sleep(LIVE_NOT_STARTED_PAUSE).await;
    }
}

/// The live consumer's position in each partition of `topics`: where a
/// subscription that starts live now stands.
pub fn live_cursor(gateway: &Gateway, topics: &[TopicKind]) -> Cursor {
    let mut cursor = Cursor::default();
    for &topic in topics {
        for (partition, offset) in gateway.live.end_of(topic) {
            cursor.set(topic, partition, offset);
        }
        if let Some(log) = gateway.live.log(topic) {
            cursor.set_log(topic, log);
        }
    }
    cursor
}

/// Emits, waiting for room in a full socket queue until `deadline`;
/// `Gone` if the socket stays full past it or goes away.
async fn emit_patiently(
    socket: &SocketRef,
    name: &str,
    payload: &serde_json::value::RawValue,
    deadline: Instant,
    cancel: &CancellationToken,
) -> Result<(), Failed> {
    match emit_until(socket, name, payload, deadline, FULL_QUEUE_PAUSE, cancel).await? {
        true => Ok(()),
        false => Err(Gone),
    }
}

/// Emits, retrying every `pause` while the socket queue is full; false if
/// it is still full at `until`.
async fn emit_until(
    socket: &SocketRef,
    name: &str,
    payload: &serde_json::value::RawValue,
    until: Instant,
    pause: Duration,
    cancel: &CancellationToken,
) -> Result<bool, Failed> {
    loop {
        match socket.emit(name, payload) {
            Ok(()) => return Ok(true),
            Err(socketioxide::SendError::Socket(SocketError::InternalChannelFull)) => {
                if Instant::now() >= until {
                    return Ok(false);
                }
                tracing::trace!(sid = %socket.id, "replay waits for the socket");
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = cancel.cancelled() => return Err(Cancelled),
                }
            }
            Err(e) => {
                tracing::debug!(sid = %socket.id, error = %e, "replay cannot emit");
                return Err(Gone);
            }
        }
    }
}
