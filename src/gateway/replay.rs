//! The per-connection replay worker: runs the connection's queued replays one
//! at a time, each chasing live delivery until it has caught up, then flushes
//! the live events held meanwhile (see `seam.rs`). Emits at
//! the client's pace: a full socket queue makes it wait, not drop, until
//! `replay.timeout_seconds`.
//!
//! A replay reads only while it holds a replay slot (`replay/slots.rs`: the
//! node's, its organisation's and its user's shares). A socket that stays
//! full for [`chase::SLOW_SOCKET`] costs no slot: the reader stops, the slot goes
//! to the next replay waiting, and once the socket has room again the
//! replay queues for a slot and reads on from the next offset. So clients
//! that resume and never read hold sockets, not replay capacity.
//!
//! A sampled replay (see [`crate::telemetry`]) is one `replay` span, the root
//! of its own trace, with `partitions` read, events `replayed`, `gaps`, and
//! `error.type` when it stopped short.

mod chase;
mod emit;
mod patience;

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_semantic_conventions::attribute::ERROR_TYPE;
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::field::Empty;
use tracing::{Instrument as _, Span};

use super::overflow::{self, Disconnect};
use super::replies::{SubscriptionGap, SubscriptionResumed};
use super::seam::{ReplayJob, Step, Waiting};
use super::session::Session;
use super::{Client, Gateway, permits};
use crate::access::Moment;
use crate::domain::{Cursor, TopicKind};
use crate::protocol::{
    ClientError, Delivery, ErrorCode, Outbound, SubscriptionRequest, describe_key, render,
};
use crate::replay::{Gap, Plan, plan};
use crate::routing::topics_of;
use crate::telemetry;
use chase::{Replaying, Turn};
use emit::emit_patiently;

/// Held live events flushed per lock acquisition.
const FLUSH_BATCH: usize = 256;
/// Pause while waiting for live delivery to start on a partition.
const LIVE_NOT_STARTED_PAUSE: Duration = Duration::from_millis(50);

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

impl Failed {
    /// The replay span's `error.type`, and the outcome it is timed under.
    fn reason(&self) -> &'static str {
        match self {
            Gone => "client_gone",
            Unavailable => "kafka_unavailable",
            Cancelled => "cancelled",
        }
    }
}

pub async fn run(gateway: Arc<Gateway>, client: Client) {
    let timeout = Duration::from_secs(gateway.replayer.config().timeout_seconds);
    loop {
        // Each replay, and each flushed batch, gets the whole timeout.
        let deadline = Instant::now() + timeout;
        let result = match client.session.next_step(FLUSH_BATCH) {
            Step::Done => return,
            Step::Replay(job) => {
                let started = Instant::now();
                tracing::debug!(key = ?job.request.key, "replay starts");
                let span = telemetry::root_span(|| {
                    tracing::info_span!(
                        "replay",
                        partitions = Empty,
                        replayed = Empty,
                        gaps = Empty,
                        { ERROR_TYPE } = Empty,
                    )
                });
                let result = replay(&gateway, &client, job, deadline)
                    .instrument(span.clone())
                    .await;
                let outcome = match &result {
                    Ok(()) => "resumed",
                    Err(failed) => {
                        span.record(ERROR_TYPE, failed.reason());
                        failed.reason()
                    }
                };
                let duration = &gateway.metrics.replay_duration;
                duration.observe(outcome, started.elapsed());
                result
            }
            Step::Flush(batch) => flush(&gateway, &client, &batch, deadline).await,
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
    overflow::cut_off(
        gateway,
        client,
        error,
        "replay_unavailable",
        Disconnect::AfterItsPackets,
    );
}

/// Sends live events held during a replay, each only if the connection
/// may still see it: a grant may have been revoked while it waited.
async fn flush(
    gateway: &Gateway,
    client: &Client,
    batch: &[Arc<Waiting>],
    deadline: Instant,
) -> Result<(), Failed> {
    for waiting in batch {
        let Some(outbound) = still_shown(gateway, &client.session, waiting) else {
            continue;
        };
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

/// `waiting`'s payload as the connection may see it now.
fn still_shown(gateway: &Gateway, session: &Session, waiting: &Waiting) -> Option<Arc<Outbound>> {
    let event = &waiting.event;
    let view = gateway.grants.read();
    let (live, delivery) = (Moment::Live, Delivery::Live);
    let mask = permits::decide(
        gateway,
        session,
        event,
        &view.about(event.keys()),
        live,
        delivery,
    )?;
    if mask == waiting.hidden {
        return Some(waiting.outbound.clone());
    }
    let log = gateway.live.log(event.position.topic);
    let hidden = permits::hidden(gateway, event, mask);
    Some(Arc::new(render(event, delivery, log, hidden)))
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
    let mut turn = Turn::new(gateway, &client.session);
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
    let Plan {
        ranges, end, gaps, ..
    } = plan;
    let chased = replaying.chase(&mut turn, ranges, end).await?;
    // What is left is telling the client: no reading.
    turn.give_up();
    let Some((end, replayed)) = chased else {
        return Err(Cancelled); // unsubscribed or replaced meanwhile
    };
    gateway.metrics.replayed_events.add(replayed);
    span.record("replayed", replayed);
    tracing::debug!(replayed, "replay sent");
    let outcome = Resumed {
        request: &request,
        end,
        replayed,
        gaps: &gaps,
    };
    outcome.tell(gateway, client, deadline, &cancel).await
}

/// A replay done: what the client is told.
struct Resumed<'a> {
    request: &'a SubscriptionRequest,
    end: Cursor,
    replayed: u64,
    gaps: &'a [Gap],
}

impl Resumed<'_> {
    /// `subscription-gap` if Kafka no longer held some of it, then
    /// `subscription-resumed`: events rather than the acknowledgement
    /// (already sent), since an emit can wait for room in a full socket
    /// queue and an acknowledgement cannot.
    async fn tell(
        &self,
        gateway: &Gateway,
        client: &Client,
        deadline: Instant,
        cancel: &CancellationToken,
    ) -> Result<(), Failed> {
        let request = self.request;
        let subscription = describe_key(
            &request.key,
            request.key.resource().map(|_| request.actions),
        );
        let gaps = self.gaps;
        let socket = &client.socket;
        if !gaps.is_empty() {
            gateway.metrics.dropped.inc("replay_gap");
            let gap = SubscriptionGap {
                subscription: &subscription,
                gaps,
            };
            let payload = serde_json::value::to_raw_value(&gap).expect("JSON values serialise");
            emit_patiently(socket, "subscription-gap", &payload, deadline, cancel).await?;
        }
        let resumed = SubscriptionResumed {
            subscription: &subscription,
            cursor: self.end.to_string(),
            replayed: self.replayed,
            gaps,
        };
        let payload = serde_json::value::to_raw_value(&resumed).expect("JSON values serialise");
        emit_patiently(socket, "subscription-resumed", &payload, deadline, cancel).await
    }
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
        None => {
            let patience = replayer.kafka_patience();
            let look_up = || replayer.extents(topics.to_vec());
            patience::patiently(patience, deadline, look_up).await?
        }
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
