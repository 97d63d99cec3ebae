//! The per-connection replay worker: runs the connection's queued replays one
//! at a time, each chasing live delivery until it has caught up, then flushes
//! the live events held meanwhile (see `session.rs` for the seam). Emits at
//! the client's pace: a full socket queue makes it wait, not drop, until
//! `replay.timeout_seconds`.
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

use super::session::{ReplayJob, Step, Waiting};
use super::{Client, Gateway, overflow};
use crate::domain::TopicKind;
use crate::protocol::{
    ClientError, Delivery, ErrorCode, SubscriptionRequest, describe_key, render,
};
use crate::replay::{Cursor, Plan, Range, catch_up, plan};
use crate::routing::{key_matches, topics_of};
use crate::telemetry;

/// Held live events flushed per lock acquisition.
const FLUSH_BATCH: usize = 256;
/// Pause while waiting for live delivery to start on a partition.
const LIVE_NOT_STARTED_PAUSE: Duration = Duration::from_millis(50);
/// Pause before retrying an emit into a full socket queue.
const FULL_QUEUE_PAUSE: Duration = Duration::from_millis(2);

/// Why a replay stopped short.
enum Failed {
    /// The socket went away or stayed full past the deadline.
    Gone,
    /// Kafka could not be read (or live delivery never started) in time.
    Unavailable,
}

use Failed::{Gone, Unavailable};

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
                    };
                    span.record("error.type", reason);
                }
                result
            }
            Step::Flush(batch) => flush(&client.socket, &batch, deadline).await,
        };
        match result {
            Ok(()) => {}
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

async fn flush(
    socket: &SocketRef,
    batch: &[Arc<Waiting>],
    deadline: Instant,
) -> Result<(), Failed> {
    for waiting in batch {
        emit_patiently(
            socket,
            waiting.outbound.name,
            &waiting.outbound.payload,
            deadline,
        )
        .await?;
    }
    Ok(())
}

async fn replay(
    gateway: &Arc<Gateway>,
    client: &Client,
    job: ReplayJob,
    deadline: Instant,
) -> Result<(), Failed> {
    let ReplayJob { request } = job;
    let since = request.since.clone().unwrap_or_default();
    let _permit = gateway.replayer.permit().await;
    gateway.metrics.replay_requests.inc();
    let topics = topics_of(&request.key, request.actions);
    let plan = first_plan(gateway, &since, &topics, deadline).await?;
    // A cursor of a log that went backwards: the window starts afresh too.
    client.session.restart_replay(&request.key, &plan.restarted);
    let span = Span::current();
    span.record("partitions", plan.ranges.len());
    span.record("gaps", plan.gaps.len());
    let replaying = Replaying {
        gateway,
        client,
        request: &request,
        topics: &topics,
        deadline,
    };
    let Some((end, replayed)) = replaying.chase(plan.ranges, plan.end).await? else {
        return Ok(()); // unsubscribed meanwhile
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
        emit_patiently(&client.socket, "subscription-gap", &payload, deadline).await?;
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
    emit_patiently(&client.socket, "subscription-resumed", &payload, deadline).await?;
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
        None => match replayer.extents(topics.to_vec()).await {
            Ok(extents) => extents,
            Err(e) => {
                tracing::warn!(error = %e, "replay cannot read partition extents");
                return Err(Unavailable);
            }
        },
    };
    // A node that just started may not have assigned every partition yet.
    for extent in &mut extents {
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

/// One replay under way: whose, of what, and until when.
struct Replaying<'a> {
    gateway: &'a Arc<Gateway>,
    client: &'a Client,
    request: &'a SubscriptionRequest,
    /// The topics `request` reads.
    topics: &'a [TopicKind],
    deadline: Instant,
}

impl Replaying<'_> {
    /// Reads `ranges`, then what live delivery handled meanwhile, and
    /// again, until little is left: then fixes the subscription's replay end
    /// at live delivery's position (step 2 of the seam in `session.rs`) and
    /// reads up to it. Live events the replay will read are not held
    /// meanwhile, so a replay chasing a fast stream does not fill the
    /// connection's held-events buffer; one that cannot catch up runs into
    /// its deadline. Returns the replay's end and how many events it sent,
    /// or `None` if the subscription went away.
    async fn chase(
        &self,
        mut ranges: Vec<Range>,
        mut reached: Cursor,
    ) -> Result<Option<(Cursor, u64)>, Failed> {
        let slack = (self.gateway.replayer.config().live_buffer / 2).max(1) as i64;
        let live_end = || live_cursor(self.gateway, self.topics);
        let mut replayed = 0;
        let mut fixed = false;
        loop {
            replayed += self.send(ranges).await?;
            if fixed {
                return Ok(Some((reached, replayed)));
            }
            let ahead = live_end();
            ranges = catch_up(&reached, &ahead);
            let left: i64 = ranges.iter().map(|r| r.to - r.from).sum();
            let ahead = if left <= slack {
                fixed = true;
                let session = &self.client.session;
                let Some(end) = session.fix_replay_end(&self.request.key, live_end) else {
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
    /// client's pace; returns how many.
    async fn send(&self, ranges: Vec<Range>) -> Result<u64, Failed> {
        if ranges.is_empty() {
            return Ok(0);
        }
        let cancel = CancellationToken::new();
        let _stop_reader = cancel.clone().drop_guard();
        let mut events = self.gateway.replayer.read(ranges, cancel);
        let request = self.request;
        let mut sent = 0u64;
        while let Some(read) = events.recv().await {
            let Ok(event) = read else {
                return Err(Unavailable);
            };
            if key_matches(&request.key, request.actions, &event) {
                let outbound = render(&event, Delivery::Replayed);
                let socket = &self.client.socket;
                emit_patiently(socket, outbound.name, &outbound.payload, self.deadline).await?;
                sent += 1;
            }
        }
        Ok(sent)
    }
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
    }
    cursor
}

async fn emit_patiently(
    socket: &SocketRef,
    name: &str,
    payload: &serde_json::value::RawValue,
    deadline: Instant,
) -> Result<(), Failed> {
    loop {
        match socket.emit(name, payload) {
            Ok(()) => return Ok(()),
            Err(socketioxide::SendError::Socket(SocketError::InternalChannelFull))
                if Instant::now() < deadline =>
            {
                tracing::trace!(sid = %socket.id, "replay waits for the socket");
                tokio::time::sleep(FULL_QUEUE_PAUSE).await;
            }
            Err(e) => {
                tracing::debug!(sid = %socket.id, error = %e, "replay cannot emit");
                return Err(Gone);
            }
        }
    }
}
