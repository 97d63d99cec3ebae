//! The live consumer: Kafka → decode → [`Deliver`], one record at a time.
//!
//! - Partitions are assigned by `assignment.rs`, not by a consumer group
//!   rebalance: this node reads every partition of the CRM topics.
//! - One task reads all partitions in order, so per-partition (per-resource)
//!   order is kept. Delivery never waits on a socket, so one task suffices.
//! - An offset is stored only after its record was delivered (or skipped as
//!   undecodable), a few hundred records at a time (and whenever the loop
//!   waits or ends); librdkafka commits stored offsets every second and at
//!   shutdown. A poison record is counted, logged, parked in the dead-letter
//!   topic when one is configured (`dead_letter.rs`), skipped and committed:
//!   redelivering it could not make it decodable.
//! - A schema registry that cannot be reached is retried with backoff, holding
//!   the record (and so consumption) rather than skipping data that is fine.
//! - Each record's end-to-end latency (its Kafka timestamp to the hand-off
//!   to every matching socket) is observed once, after delivery.
//! - Tracing: a sampled record gets spans `process <topic>` (continuing the
//!   producer's trace from its `traceparent` header) and `decode`; see
//!   [`crate::telemetry`]. An unsampled one gets none, and costs no span
//!   work at all: the loop runs once per record, a million times a second
//!   when it reads a backlog.
//! - A record is decoded as far as routing needs ([`Decoded`]); the sink
//!   builds its event only when someone receives it. A record that cannot
//!   be decoded fails here all the same.
//! - Backpressure: `recv` pulls from librdkafka's bounded prefetch queue
//!   (`queued.max.messages.kbytes`); if delivery is slow, Kafka holds the rest.
//! - Transactions: the consumer reads `read_committed` (librdkafka's
//!   default), so aborted records never arrive. Commit and abort markers take
//!   offsets of their own; whenever the loop waits, each partition's live
//!   position (and stored offset) moves past the markers librdkafka stepped
//!   over, so a partition ending in one shows no lag and a replay ends where
//!   Kafka's last stable offset does (`tests/transactions.rs`).
//! - A log that went backwards (a topic deleted and recreated under the same
//!   name, a broker that lost its data) is seen three ways, whichever comes
//!   first, and is one reset either way: logged as an error, counted
//!   (`crm_bridge_partition_resets_total{reason}`), `/readyz` failing until
//!   a watermark look-up confirms the new position, live delivery moved back
//!   ([`LivePositions::reset`]) so that every record of the new log reaches
//!   its subscribers (`tests/broker_reset.rs`):
//!   - `offsets_restarted`: fetching at live delivery's position is out of
//!     range, librdkafka resets to the new log's start (`auto.offset.reset
//!     = earliest`; `latest` would skip what was written to the new log
//!     meanwhile), and the first record below the position shows it;
//!   - `topic_recreated`: the watermark look-ups found the topic with a new
//!     id (`watermarks.rs`, `topic_ids.rs`). The only sign when the new log
//!     had grown past the old position before librdkafka fetched it: it
//!     reads on from there with no error. [`Partitions::restart_recreated`](partitions::Partitions::restart_recreated)
//!     seeks back to the new log's start and skips, once, what was handed
//!     on from the new log meanwhile (see there: no record twice);
//!   - `log_end_behind`: a look-up found the log's end below live delivery;
//!     moved back the same way, as no record may ever come to show it (a
//!     topic recreated empty).
//!
//!   Whichever comes second finds the partition's reset epoch moved on, and
//!   does nothing.
//!
//! Here: the consumer's settings, its tasks and [`Deliver`]. The loop is in
//! `read.rs`, one record's path in `record.rs`, each partition's
//! bookkeeping and offset stores in `partitions.rs`, a recreated topic's
//! restart in `recreated.rs`.

mod clock;
mod partitions;
mod read;
mod record;
mod recreated;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Span;

use super::assignment::keep_assigned;
use super::dead_letter::DeadLetters;
use super::positions::LivePositions;
use super::readiness::ReadinessBounds;
use super::watermarks::{Watermarks, keep_watermarks};
use super::{BridgeContext, ConnectionTrouble, KafkaConfig, LiveConsumer, TopicNames};
use crate::decode::{Decoded, Decoder};
use crate::domain::TopicKind;
use crate::metrics::Metrics;

/// Where decoded records go. Must not block: it runs on the consume loop.
pub trait Deliver: Send + 'static {
    /// Routes `record` and hands its event to whoever subscribed; true when
    /// anyone did. `span` is the record's `process <topic>` span, disabled unless
    /// the record is traced; the sink's own spans are its children.
    fn deliver(&mut self, record: &Decoded<'_>, span: &Span) -> bool;
}

/// Observes the consumer from outside.
#[derive(Clone)]
pub struct ConsumerHandle {
    pub(super) assigned: Arc<AtomicBool>,
    /// How far live delivery has got, per partition.
    pub live: Arc<LivePositions>,
    pub(super) watermarks: Arc<Watermarks>,
    pub(super) topic_names: TopicNames,
    pub(super) readiness: ReadinessBounds,
    /// Whether Kafka refuses to let the bridge in (`context.rs`).
    pub(super) trouble: Arc<ConnectionTrouble>,
    /// Cancelled once the consumer has stopped and committed its offsets.
    pub(super) stopped: CancellationToken,
}

impl ConsumerHandle {
    /// Waits until the consumer has stopped (after its `shutdown` token is
    /// cancelled): no record is delivered after this.
    pub async fn stopped(&self) {
        self.stopped.cancelled().await
    }

    /// True once every topic's partitions are assigned at a known position.
    pub fn is_assigned(&self) -> bool {
        self.assigned.load(Ordering::Acquire)
    }
}

/// Starts the live consumer and the tasks that keep its partitions
/// assigned and its watermarks looked up; it delivers to `sink` until
/// `shutdown`, then commits its offsets.
pub fn spawn_consumer(
    config: &KafkaConfig,
    context: &BridgeContext,
    decoder: Arc<Decoder>,
    sink: impl Deliver,
    live: Arc<LivePositions>,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> anyhow::Result<ConsumerHandle> {
    let metrics = context.metrics().clone();
    let node_id = config.node_id();
    let group = format!("{}-{node_id}", config.group_prefix);
    let consumer = create_consumer(config, &node_id, &group, context)?;
    let dead_letters = DeadLetters::new(config, context)?;
    let topics: HashMap<String, TopicKind> = config
        .topics
        .all()
        .map(|(kind, name)| (name.to_owned(), kind))
        .collect();
    let handle = ConsumerHandle {
        assigned: Arc::default(),
        live,
        watermarks: Arc::default(),
        topic_names: config.topics.clone(),
        readiness: ReadinessBounds::new(config),
        trouble: context.trouble().clone(),
        stopped: CancellationToken::new(),
    };
    tracing::info!(
        node_id,
        group,
        brokers = %config.bootstrap_servers(),
        "starting live consumer"
    );
    let refresh = Duration::from_secs(config.partition_refresh_seconds.max(1));
    tasks.spawn(keep_assigned(
        consumer.clone(),
        topics.clone(),
        handle.clone(),
        metrics.clone(),
        refresh,
        shutdown.clone(),
    ));
    tasks.spawn(keep_watermarks(
        consumer.clone(),
        topics.clone(),
        handle.watermarks.clone(),
        handle.live.clone(),
        handle.trouble.clone(),
        Duration::from_secs(config.lag_refresh_seconds),
        shutdown.clone(),
    ));
    let live = handle.live.clone();
    let watermarks = handle.watermarks.clone();
    let stopped = handle.stopped.clone().drop_guard();
    tasks.spawn(async move {
        let _stopped = stopped;
        let stages = Stages {
            topics: &topics,
            group: &group,
            decoder: &decoder,
            dead_letters: dead_letters.as_ref(),
            metrics: &metrics,
            live: &live,
            watermarks: &watermarks,
        };
        read::consume(&consumer, stages, sink, &shutdown).await;
        commit_at_exit(consumer).await;
    });
    Ok(handle)
}

/// The consumer of this node's own group `group_id`, storing offsets by hand.
fn create_consumer(
    config: &KafkaConfig,
    node_id: &str,
    group_id: &str,
    context: &BridgeContext,
) -> anyhow::Result<Arc<LiveConsumer>> {
    let settings = [
        // Offsets are stored by hand once an event has been handed to every
        // socket, and committed from there in the background.
        ("enable.auto.offset.store", "false"),
        ("enable.auto.commit", "true"),
        ("auto.commit.interval.ms", "1000"),
        // Consulted only when a fetch is out of range: assignment always
        // gives an offset. Out of range means records were deleted before
        // live delivery read them (the start is the oldest left) or the log
        // went backwards (the start is the new log's, all of it new).
        ("auto.offset.reset", "earliest"),
    ];
    let client_id = format!("crm-bridge-{node_id}");
    let consumer = config
        .consumer_config(&client_id, group_id, &settings)
        .create_with_context(context.for_client(format!("the live consumer (group {group_id})")))?;
    Ok(Arc::new(consumer))
}

/// Commits the offsets stored, once the loop has ended.
async fn commit_at_exit(consumer: Arc<LiveConsumer>) {
    // A synchronous commit waits on the coordinator: off the async
    // workers (shutdown bounds how long it is waited for).
    let commit =
        tokio::task::spawn_blocking(move || consumer.commit_consumer_state(CommitMode::Sync));
    if let Ok(Err(e)) = commit.await {
        // Nothing assigned yet, or the broker is gone: nothing to lose.
        tracing::debug!(error = %e, "final offset commit failed");
    }
}

/// What each record passes through on its way to the sink.
struct Stages<'a> {
    topics: &'a HashMap<String, TopicKind>,
    /// The consumer group (`<group_prefix>-<node_id>`), which traced
    /// records' spans name.
    group: &'a str,
    decoder: &'a Decoder,
    dead_letters: Option<&'a DeadLetters>,
    metrics: &'a Metrics,
    live: &'a LivePositions,
    watermarks: &'a Watermarks,
}
