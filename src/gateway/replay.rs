//! The per-connection replay worker: runs the connection's queued replays one
//! at a time, then flushes the live events held meanwhile (see `session.rs`
//! for the seam). Emits at the client's pace: a full socket queue makes it
//! wait, not drop, until `replay.timeout_seconds`.
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
use crate::protocol::{ClientError, Delivery, ErrorCode, describe_key, render};
use crate::replay::{Cursor, plan};
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
    let replayer = &gateway.replayer;
    let _permit = replayer.permit().await;
    gateway.metrics.replay_requests.inc();
    let topics = topics_of(&request.key, request.actions);
    let mut extents = match replayer.extents(topics.clone()).await {
        Ok(extents) => extents,
        Err(e) => {
            tracing::warn!(error = %e, "replay cannot read partition extents");
            return Err(Unavailable);
        }
    };
    // The replay ends where live delivery stands (see `kafka/positions.rs`),
    // so it waits until live delivery has started on every partition (a
    // node that just started may not have assigned them yet).
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
    let plan = plan(
        &since,
        &extents,
        replayer.config().max_records_per_partition,
    );
    if !client
        .session
        .set_replay_end(&request.key, plan.end.clone())
    {
        return Ok(()); // unsubscribed meanwhile
    }
    let cancel = CancellationToken::new();
    let _stop_reader = cancel.clone().drop_guard();
    let span = Span::current();
    span.record("partitions", plan.ranges.len());
    span.record("gaps", plan.gaps.len());
    let mut events = replayer.read(plan.ranges.clone(), cancel);
    let mut replayed = 0u64;
    while let Some(read) = events.recv().await {
        let Ok(event) = read else {
            return Err(Unavailable);
        };
        if key_matches(&request.key, request.actions, &event) {
            let outbound = render(&event, Delivery::Replayed);
            emit_patiently(&client.socket, outbound.name, &outbound.payload, deadline).await?;
            replayed += 1;
        }
    }
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
        "cursor": plan.end.to_string(),
        "replayed": replayed,
        "gaps": plan.gaps,
    });
    let payload = serde_json::value::to_raw_value(&resumed).expect("JSON values serialise");
    emit_patiently(&client.socket, "subscription-resumed", &payload, deadline).await?;
    Ok(())
}

/// A cursor for a subscription that starts live now: the live consumer's
/// position in each partition of its topics.
pub fn live_cursor(gateway: &Gateway, request: &crate::protocol::SubscriptionRequest) -> Cursor {
    let mut cursor = Cursor::default();
    for topic in topics_of(&request.key, request.actions) {
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
