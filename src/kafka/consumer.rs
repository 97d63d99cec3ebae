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
//! - Tracing: a sampled record gets spans `consume` (continuing the
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
//!     reads on from there with no error. [`Partitions::restart_recreated`]
//!     seeks back to the new log's start and skips, once, what was handed
//!     on from the new log meanwhile (see there: no record twice);
//!   - `log_end_behind`: a look-up found the log's end below live delivery;
//!     moved back the same way, as no record may ever come to show it (a
//!     topic recreated empty).
//!
//!   Whichever comes second finds the partition's reset epoch moved on, and
//!   does nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use futures::{FutureExt as _, StreamExt as _};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Message, Offset};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;
use tracing::Span;
use tracing::field::Empty;

use super::assignment::keep_assigned;
use super::dead_letter::DeadLetters;
use super::positions::{LivePartition, LivePositions};
use super::readiness::ReadinessBounds;
use super::watermarks::{Watermarks, keep_watermarks};
use super::{BridgeContext, ConnectionTrouble, KafkaConfig, LiveConsumer, TopicNames};
use crate::decode::{Decoded, Decoder};
use crate::domain::{Position, TopicKind};
use crate::metrics::Metrics;
use crate::telemetry;

/// Where decoded records go. Must not block: it runs on the consume loop.
pub trait Deliver: Send + 'static {
    /// Routes `record` and hands its event to whoever subscribed; true when
    /// anyone did. `span` is the record's `consume` span, disabled unless
    /// the record is traced; the sink's own spans are its children.
    fn deliver(&mut self, record: &Decoded<'_>, span: &Span) -> bool;
}

/// Records handled between two looks at the shutdown signal, which are
/// also the points where the loop lets other tasks on its worker run:
/// reading a backlog, records are always ready and it would never wait.
const RECORDS_PER_TURN: u32 = 256;

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
    let group_id = format!("{}-{node_id}", config.group_prefix);
    let consumer: Arc<LiveConsumer> = Arc::new(
        config
            .consumer_config(&client_id, &group_id, &settings)
            .create_with_context(
                context.for_client(format!("the live consumer (group {group_id})")),
            )?,
    );
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
    tracing::info!(node_id, brokers = %config.bootstrap_servers(), "starting live consumer");
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
            decoder: &decoder,
            dead_letters: dead_letters.as_ref(),
            metrics: &metrics,
            live: &live,
            watermarks: &watermarks,
        };
        consume(&consumer, stages, sink, &shutdown).await;
        // A synchronous commit waits on the coordinator: off the async
        // workers (shutdown bounds how long it is waited for).
        let commit =
            tokio::task::spawn_blocking(move || consumer.commit_consumer_state(CommitMode::Sync));
        if let Ok(Err(e)) = commit.await {
            // Nothing assigned yet, or the broker is gone: nothing to lose.
            tracing::debug!(error = %e, "final offset commit failed");
        }
    });
    Ok(handle)
}

/// What each record passes through on its way to the sink.
struct Stages<'a> {
    topics: &'a HashMap<String, TopicKind>,
    decoder: &'a Decoder,
    dead_letters: Option<&'a DeadLetters>,
    metrics: &'a Metrics,
    live: &'a LivePositions,
    watermarks: &'a Watermarks,
}

/// Each partition's bookkeeping on the consume loop: its live position
/// (kept, not looked up per record) and the last offset handled but not
/// yet stored.
struct Partitions<'a> {
    live: &'a LivePositions,
    /// Few (a partition per topic and partition number): a linear search
    /// beats hashing.
    seen: Vec<Seen<'a>>,
}

struct Seen<'a> {
    topic: TopicKind,
    topic_name: &'a str,
    partition: i32,
    live: LivePartition,
    unstored: Option<i64>,
    /// What live delivery handed on before the topic's new id showed that
    /// its log was new (see [`Partitions::restart_recreated`]): a record of
    /// the new log read again there is skipped once, not delivered twice.
    skip: Option<Skip>,
    /// Sought back to the new log's start; no record of it read yet. Until
    /// one is, the consumer's position may still be the old one.
    restarting: bool,
}

impl<'a> Partitions<'a> {
    fn get(&mut self, position: Position, topic_name: &'a str) -> &mut Seen<'a> {
        let found = self
            .seen
            .iter()
            .position(|s| s.topic == position.topic && s.partition == position.partition);
        let at = found.unwrap_or_else(|| {
            self.seen.push(Seen {
                topic: position.topic,
                topic_name,
                partition: position.partition,
                live: self.live.partition(position),
                unstored: None,
                skip: None,
                restarting: false,
            });
            self.seen.len() - 1
        });
        &mut self.seen[at]
    }

    /// Moves live delivery past what the consumer stepped over without a
    /// record to hand on: a transaction's commit or abort marker, and the
    /// aborted records before an abort marker. librdkafka counts them in the
    /// partition's position once polled; without this, a partition whose
    /// last offset is a marker would stay one short of its last stable
    /// offset for ever (a lag of 1, a committed offset one short, a replay
    /// ending before the marker). Call only when no record is ready: every
    /// record polled has then been handled, none is in flight.
    fn step_over_markers(&mut self, consumer: &LiveConsumer, topics: &[(&'a str, TopicKind)]) {
        let positions = match consumer.position() {
            Ok(positions) => positions,
            Err(e) => {
                tracing::debug!(error = %e, "reading the consumer's positions failed");
                return;
            }
        };
        let live = self.live;
        for element in positions.elements() {
            // Invalid until the partition's first record or marker is polled.
            let Offset::Offset(next) = element.offset() else {
                continue;
            };
            let Some(&(topic_name, topic)) = topics.iter().find(|(n, _)| *n == element.topic())
            else {
                continue;
            };
            let partition = element.partition();
            let position = Position {
                topic,
                partition,
                offset: next,
            };
            let seen = self.get(position, topic_name);
            if seen.restarting {
                continue;
            }
            if seen.live.step_to(next) {
                live.recent.skip_to(topic, partition, next);
                // Stored as handled: the marker at `next - 1` is.
                seen.unstored = Some(next - 1);
            }
        }
    }

    /// Moves the partitions whose topic the watermark look-ups found with a
    /// new id (`watermarks.rs`) back to the new log's start. Call only
    /// between records.
    ///
    /// Offsets below `old_end` (where live delivery stood when the old id
    /// was last seen) were read from the old log; from there to where live
    /// delivery stands now, the consumer switched from the old log to the
    /// new one at an offset nothing reports (librdkafka fetches on at its
    /// position). So the partition is sought to the new log's start and
    /// live delivery restarts there (a reset: a new epoch, memory dropped),
    /// and a record of `[old_end, now)` read again is skipped if the same
    /// payload was handed on at its offset: that was this record, read
    /// from the new log before the id showed it. If the consumer has
    /// restarted the partition by itself since the old id was seen (a fetch
    /// out of range: a new log shorter than the old position), it reads the
    /// new log from its start already.
    fn restart_recreated(
        &mut self,
        consumer: &LiveConsumer,
        stages: &Stages<'_>,
        topics: &[(&'a str, TopicKind)],
    ) {
        for recreated in stages.watermarks.take_recreated() {
            let Some(&(topic_name, topic)) = topics.iter().find(|(_, k)| *k == recreated.topic)
            else {
                continue;
            };
            let partition = recreated.partition;
            // Events of the new log carry its tag from here on, the reset
            // below (or the consumer's own, before) included: cursors of
            // the old log are told by theirs (`replay/plan.rs`).
            let live = self.live;
            let new_log = || {
                if let Some(log) = recreated.log {
                    live.new_log(topic, log);
                }
            };
            if self.live.reset_epoch(topic, partition) != recreated.reset_epoch {
                new_log();
                tracing::info!(
                    topic = topic_name,
                    partition,
                    reason = recreated.reason,
                    "the partition was already re-read from its new log's start"
                );
                continue;
            }
            let position = Position {
                topic,
                partition,
                offset: recreated.old_end,
            };
            let seen = self.get(position, topic_name);
            let handed_on = seen.live.next();
            // Asynchronous (no wait): librdkafka drops what it fetched
            // before the seek, and fetches from the new log's start.
            if let Err(e) = consumer.seek(topic_name, partition, Offset::Offset(0), Duration::ZERO)
            {
                tracing::error!(
                    topic = topic_name,
                    partition,
                    error = %e,
                    "cannot seek a recreated topic's partition to its start"
                );
                continue;
            }
            if !self.live.recent.covers(topic, partition, recreated.old_end) {
                tracing::warn!(
                    topic = topic_name,
                    partition,
                    from = recreated.old_end,
                    to = handed_on,
                    "memory no longer holds all that was handed on since the topic's old \
                     id was last seen: what it does not hold is not delivered again"
                );
            }
            let skip = Skip::read(self.live, topic, partition, recreated.old_end, handed_on);
            let seen = self.get(position, topic_name);
            went_back(stages, seen, 0, recreated.reason);
            seen.skip = (recreated.old_end < handed_on).then_some(skip);
            seen.restarting = true;
            new_log();
        }
    }

    /// Stores the offsets handled since the last call, for librdkafka to
    /// commit. Called every [`RECORDS_PER_TURN`] records, before the loop
    /// waits and when it ends: one store per partition instead of one per
    /// record (each takes the partition's lock in librdkafka).
    fn store(&mut self, consumer: &LiveConsumer) {
        for seen in &mut self.seen {
            if let Some(offset) = seen.unstored.take()
                && let Err(e) = consumer.store_offset(seen.topic_name, seen.partition, offset)
            {
                tracing::warn!(error = %e, "storing offset failed");
            }
        }
    }
}

/// Offsets `[from, to)` of a recreated topic's partition that live
/// delivery handed on before it knew, some maybe from the old log, some
/// from the new one.
#[derive(Debug)]
struct Skip {
    from: i64,
    to: i64,
    /// A hash of each payload handed on in `[from, to)`, as far as memory
    /// held them (`recent.rs`).
    handed: HashMap<i64, u64>,
}

impl Skip {
    /// Reads what memory holds of `[from, to)`. Before the reset.
    fn read(live: &LivePositions, topic: TopicKind, partition: i32, from: i64, to: i64) -> Self {
        let mut handed = HashMap::new();
        let mut next = from;
        while next < to {
            let Some(chunk) = live.recent.read(topic, partition, next, to, 1024) else {
                break; // no longer held (or never): unknown, see `handed_on`
            };
            let Some(last) = chunk.last_offset() else {
                break;
            };
            handed.extend(
                chunk
                    .iter()
                    .map(|(offset, payload)| (offset, hash(payload))),
            );
            next = last + 1;
        }
        Self { from, to, handed }
    }

    /// Whether the new log's record at `offset` was handed on already: the
    /// same payload was, at that offset. One memory did not hold counts as
    /// handed on: no record is delivered twice (at worst one is missed;
    /// `restart_recreated` logs how many may be).
    fn handed_on(&self, offset: i64, payload: &[u8]) -> bool {
        self.handed.get(&offset).is_none_or(|h| *h == hash(payload))
    }
}

fn hash(payload: &[u8]) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::hash::DefaultHasher>::default().hash_one(payload)
}

/// The partition's log went backwards (`reason`): the consumer read
/// `offset`, below where live delivery stands, after librdkafka reset to
/// the new log's start (`offsets_restarted`, see the module doc), or the
/// topic's id changed and the consumer was sought to the start
/// (`topic_recreated`). Says so, and moves live delivery back to `offset`
/// before the next record is handled.
fn went_back(stages: &Stages<'_>, partition: &mut Seen<'_>, offset: i64, reason: &'static str) {
    tracing::error!(
        reason,
        topic = partition.topic_name,
        partition = partition.partition,
        live_position = partition.live.next(),
        new_position = offset,
        "the partition's log went backwards (topic recreated or broker data lost): \
         live delivery restarts at the new log's start; clients resuming from \
         older cursors get a `reset` gap"
    );
    stages
        .metrics
        .partition_resets
        .inc(partition.topic_name, partition.partition, reason);
    stages
        .watermarks
        .went_back(partition.topic, partition.partition, reason);
    stages
        .live
        .reset(partition.topic, partition.partition, offset);
    // Nothing stored from the old log may be committed over the new one.
    partition.unstored = None;
    partition.skip = None;
}

/// Wall-clock time for the latency of records that matched nobody, read
/// once per [`CLOCK_RECORDS`]: a clock read costs as much as routing
/// a record. Read afresh after every wait and every delivery to a socket,
/// so it is never older than a few dozen records that matched nobody (tens
/// of microseconds; the histogram's first bucket is 1 ms).
struct Clock {
    now: SystemTime,
    uses: u32,
}

const CLOCK_RECORDS: u32 = 32;

impl Clock {
    fn new() -> Self {
        Self {
            now: SystemTime::now(),
            uses: 0,
        }
    }

    fn now(&mut self) -> SystemTime {
        self.uses += 1;
        if self.uses >= CLOCK_RECORDS {
            self.refresh();
        }
        self.now
    }

    fn refresh(&mut self) {
        self.now = SystemTime::now();
        self.uses = 0;
    }
}

async fn consume(
    consumer: &LiveConsumer,
    stages: Stages<'_>,
    sink: impl Deliver,
    shutdown: &CancellationToken,
) {
    let topics: Vec<(&str, TopicKind)> = stages
        .topics
        .iter()
        .map(|(n, k)| (n.as_str(), *k))
        .collect();
    let mut partitions = Partitions {
        live: stages.live,
        seen: Vec::new(),
    };
    read(consumer, &stages, &topics, &mut partitions, sink, shutdown).await;
    // What was handled before the loop ended, for the final commit.
    partitions.store(consumer);
}

async fn read<'t>(
    consumer: &LiveConsumer,
    stages: &Stages<'_>,
    topics: &[(&'t str, TopicKind)],
    partitions: &mut Partitions<'t>,
    mut sink: impl Deliver,
    shutdown: &CancellationToken,
) {
    let Stages {
        decoder,
        dead_letters,
        metrics,
        ..
    } = *stages;
    // One stream for the whole loop: `recv()` makes one per call, which
    // registers and unregisters a waker (a mutex each) per record.
    let mut messages = consumer.stream();
    let mut clock = Clock::new();
    let mut turn = 0u32;
    loop {
        turn += 1;
        if turn == RECORDS_PER_TURN {
            turn = 0;
            partitions.restart_recreated(consumer, stages, topics);
            partitions.store(consumer);
            if shutdown.is_cancelled() {
                return;
            }
            tokio::task::yield_now().await;
        }
        // A record that is ready is taken without a `select!` (whose
        // shutdown branch costs a mutex per record); the loop waits on
        // both only when there is none.
        let received = match messages.next().now_or_never() {
            Some(received) => received,
            None => {
                partitions.restart_recreated(consumer, stages, topics);
                partitions.step_over_markers(consumer, topics);
                partitions.store(consumer);
                let received = tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => return,
                    // Checked on the next turn, before waiting again.
                    _ = stages.watermarks.recreated_signal.notified() => continue,
                    received = messages.next() => received,
                };
                clock.refresh();
                received
            }
        };
        let message = match received.expect("kafka streams never end") {
            Ok(message) => message,
            Err(e) => {
                // librdkafka reconnects by itself; this is informational.
                metrics.consume_errors.inc();
                consumer.context().trouble().warn("kafka consume error", &e);
                continue;
            }
        };
        metrics.records_consumed.inc();
        let topic_name = message.topic();
        let Some(&(topic_name, topic)) = topics.iter().find(|(name, _)| *name == topic_name) else {
            unreachable!("only the CRM topics are assigned, got {topic_name}");
        };
        let position = Position {
            topic,
            partition: message.partition(),
            offset: message.offset(),
        };
        let partition = partitions.get(position, topic_name);
        partition.restarting = false;
        if position.offset < partition.live.next() {
            went_back(stages, partition, position.offset, "offsets_restarted");
        }
        stages
            .live
            .received(position, message.payload().unwrap_or_default());
        match &partition.skip {
            Some(skip) if position.offset >= skip.to => partition.skip = None,
            Some(skip)
                if position.offset >= skip.from
                    && skip.handed_on(position.offset, message.payload().unwrap_or_default()) =>
            {
                // Handed on already, before the topic's new id was seen.
                partition.live.handled(position.offset);
                partition.unstored = Some(position.offset);
                continue;
            }
            _ => {}
        }
        let consume = telemetry::consume_span(
            || message.headers(),
            || {
                tracing::info_span!(
                    "consume",
                    otel.kind = "consumer",
                    messaging.system = "kafka",
                    messaging.destination.name = message.topic(),
                    messaging.destination.partition.id = message.partition(),
                    messaging.kafka.offset = message.offset(),
                )
            },
        );
        let traced = !consume.is_disabled();
        let decode = telemetry::child_span(
            &consume,
            || tracing::info_span!(parent: &consume, "decode", error.type = Empty),
        );
        let payload = message.payload();
        let known = if traced {
            decode.in_scope(|| decoder.decode_known(position, payload))
        } else {
            decoder.decode_known(position, payload)
        };
        let decoded = match known {
            Some(decoded) => decoded,
            None => {
                // A writer schema not seen yet: the registry, maybe retries.
                let decoding = decoder.decode_with_retry(position, payload, shutdown);
                let decoded = decoding.instrument(decode.clone()).await;
                clock.refresh();
                let Some(decoded) = decoded else {
                    return; // shutting down; the record stays uncommitted
                };
                decoded
            }
        };
        match decoded {
            Ok(record) => {
                metrics.records_decoded.inc();
                partition.live.routing(position.offset);
                let delivered = if traced {
                    // Logs of the sink carry the record's trace.
                    consume.in_scope(|| sink.deliver(&record, &consume))
                } else {
                    sink.deliver(&record, &consume)
                };
                if delivered {
                    clock.refresh();
                }
                if let Some(created_ms) = message.timestamp().to_millis() {
                    metrics
                        .delivery_latency
                        .observe_between_unix_ms(created_ms, clock.now());
                }
            }
            Err(e) => {
                metrics.decode_failed(e.reason());
                decode.record("error.type", e.reason());
                consume.in_scope(|| {
                    tracing::warn!(
                        topic = message.topic(),
                        partition = message.partition(),
                        offset = message.offset(),
                        reason = e.reason(),
                        error = %e,
                        "skipping a record that cannot be decoded"
                    )
                });
                if let Some(dead_letters) = dead_letters {
                    tokio::select! {
                        biased;
                        // The record stays uncommitted: parked again after a restart.
                        _ = shutdown.cancelled() => return,
                        _ = dead_letters.park(&message, e.reason(), metrics) => {}
                    }
                }
                clock.refresh();
            }
        }
        partition.live.handled(position.offset);
        partition.unstored = Some(position.offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_read_again_is_skipped_only_if_the_same_payload_was_handed_on_there() {
        let live = LivePositions::new(1024);
        live.start_at(TopicKind::Deals, 0, 0);
        for (offset, payload) in [
            (0, &b"old 0"[..]),
            (1, b"old 1"),
            (2, b"new 2"),
            (3, b"new 3"),
        ] {
            let at = Position {
                topic: TopicKind::Deals,
                partition: 0,
                offset,
            };
            live.received(at, payload);
            live.partition(at).handled(offset);
        }
        // The old id was last seen at 1: offset 0 was the old log's.
        let skip = Skip::read(&live, TopicKind::Deals, 0, 1, 4);
        assert_eq!(skip.handed.len(), 3);
        assert!(
            !skip.handed_on(1, b"new 1"),
            "the old log's was handed on at 1"
        );
        assert!(skip.handed_on(2, b"new 2"));
        assert!(skip.handed_on(3, b"new 3"));
        // Not held in memory: not delivered again.
        let forgotten = Skip::read(&LivePositions::new(0), TopicKind::Deals, 0, 1, 4);
        assert!(forgotten.handed_on(1, b"new 1"));
    }
}
