//! Reads offset ranges: from the live consumer's recent records when they
//! reach back to a range's start, else with consumers of its own (assign +
//! seek; no group membership, no commits), so replay never disturbs live
//! consumption.
//!
//! A range's offsets need not all hold records: compaction leaves holes
//! (`tests/compaction.rs`), a `read_committed` consumer never sees aborted
//! records, and commit or abort markers take offsets of their own
//! (`tests/transactions.rs`); live delivery's position, where ranges end,
//! steps over markers. So a Kafka read of a range ends at its first record
//! at or after the range's last offset, or when the partition's end is
//! reached (`enable.partition.eof`) with the consumer's position, which
//! counts markers, at or past the range's end.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Extent, Range, ReplayConfig};
use crate::decode::Decoder;
use crate::domain::Cursor;
use crate::domain::{CrmEvent, Position, TopicKind};
use crate::kafka::{BridgeContext, KafkaConfig, LivePositions};
use crate::metrics::Metrics;

/// Metadata and watermark look-ups.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Decoded events a reader may run ahead of the socket it feeds.
const READ_AHEAD: usize = 1024;
/// Records copied out of memory per lock.
const MEMORY_CHUNK: usize = 256;

/// Whether librdkafka gets past a consumer error by itself: it reconnects
/// to a broker that went away and finds a partition's new leader (a killed
/// leader, `tests/broker_failover.rs`), so a read waits on. Refusals
/// (authentication, authorisation) and fatal errors end the read.
fn recovers_by_itself(error: &KafkaError) -> bool {
    use RDKafkaErrorCode::*;
    match error {
        KafkaError::MessageConsumption(code) => !matches!(
            code,
            Authentication
                | SaslAuthenticationFailed
                | TopicAuthorizationFailed
                | GroupAuthorizationFailed
                | ClusterAuthorizationFailed
        ),
        _ => false,
    }
}

/// A replay read stopped before its end because Kafka failed.
#[derive(Debug)]
pub struct ReadFailed;

/// Where a reader sends what it decodes.
type Events = mpsc::Sender<Result<CrmEvent, ReadFailed>>;

/// A replay consumer.
type ReplayConsumer = StreamConsumer<BridgeContext>;

/// What is left to read of each partition's range.
type Remaining = HashMap<(TopicKind, i32), Range>;

pub struct Replayer {
    config: ReplayConfig,
    kafka: KafkaConfig,
    context: BridgeContext,
    node_id: String,
    decoder: Arc<Decoder>,
    metrics: Arc<Metrics>,
    /// Where live delivery stands, and the records it read recently.
    live: Arc<LivePositions>,
    /// Idle consumers, reused so a replay does not pay for a new connection.
    // std Mutex: held only to push or pop.
    idle: Mutex<Vec<ReplayConsumer>>,
}

impl Replayer {
    pub fn new(
        config: ReplayConfig,
        kafka: KafkaConfig,
        context: BridgeContext,
        decoder: Arc<Decoder>,
        metrics: Arc<Metrics>,
        live: Arc<LivePositions>,
    ) -> Self {
        Self {
            node_id: kafka.node_id(),
            config,
            kafka,
            context,
            decoder,
            metrics,
            live,
            idle: Mutex::default(),
        }
    }

    pub fn config(&self) -> &ReplayConfig {
        &self.config
    }

    /// How long Kafka may fail a replay's look-ups before the replay gives
    /// up: as long as readiness waits out its silence.
    pub fn kafka_patience(&self) -> Duration {
        Duration::from_secs(self.kafka.ready_broker_silence_seconds)
    }

    fn take_consumer(&self) -> anyhow::Result<ReplayConsumer> {
        if let Some(consumer) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(consumer);
        }
        // Reads only what it is assigned, from where it is told; commits
        // nothing. Says when it reaches a partition's end: a range ending
        // in a marker has no record at its end to wait for. librdkafka says
        // so on the fetch after the one that reached the end, which an idle
        // Apache Kafka holds for `fetch.wait.max.ms`: a short wait, not the
        // live consumer's 500 ms, ends such a replay promptly (a pooled
        // consumer is unassigned, so it never idles at a partition's end).
        let settings = [
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            ("enable.partition.eof", "true"),
            ("fetch.wait.max.ms", "5"),
        ];
        let client_id = format!("crm-bridge-replay-{}", self.node_id);
        let group_id = format!("{}-replay-{}", self.kafka.group_prefix, self.node_id);
        let config = self.kafka.consumer_config(&client_id, &group_id, &settings);
        let context = self
            .context
            .for_client(format!("a replay consumer (group {group_id})"));
        Ok(config.create_with_context(context)?)
    }

    fn give_back(&self, consumer: ReplayConsumer) {
        if consumer.unassign().is_ok() {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(consumer);
        }
    }

    /// The extents of `topics` as far as memory holds them, when that is
    /// enough for a replay from `since`: the cursor names exactly the
    /// partitions live delivery reads, and memory holds each from the
    /// cursor's offset on, and no further than live delivery (a cursor
    /// beyond it may be of a log that went backwards: only Kafka's end
    /// tells), and of the log live delivery reads (a cursor naming another
    /// is read from the new log's start, which only Kafka tells). `low` is
    /// then where memory's records start (Kafka may hold older ones, which
    /// this replay does not need).
    pub fn extents_in_memory(&self, since: &Cursor, topics: &[TopicKind]) -> Option<Vec<Extent>> {
        let mut extents = Vec::new();
        for &topic in topics {
            let partitions = self.live.end_of(topic);
            if partitions.is_empty() || since.partitions(topic) != partitions.len() {
                return None;
            }
            if let (Some(theirs), Some(ours)) = (since.log(topic), self.live.log(topic))
                && theirs != ours
            {
                return None;
            }
            for (partition, high) in partitions {
                let from = since.get(topic, partition)?;
                if from > high || !self.live.recent.covers(topic, partition, from) {
                    return None;
                }
                extents.push(Extent {
                    topic,
                    partition,
                    low: from,
                    high,
                    log_end: high,
                    // The caller's to know (`LivePositions::log`).
                    log: None,
                });
            }
        }
        Some(extents)
    }

    /// Oldest and next offsets of every partition of `topics`, from Kafka.
    pub async fn extents(self: &Arc<Self>, topics: Vec<TopicKind>) -> anyhow::Result<Vec<Extent>> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let consumer = this.take_consumer()?;
            let mut extents = Vec::new();
            for topic in topics {
                let name = this.kafka.topics.name(topic);
                let metadata = consumer.fetch_metadata(Some(name), LOOKUP_TIMEOUT)?;
                for t in metadata
                    .topics()
                    .iter()
                    .filter(|t| t.name() == name && t.error().is_none())
                {
                    for p in t.partitions() {
                        let (low, high) =
                            consumer.fetch_watermarks(name, p.id(), LOOKUP_TIMEOUT)?;
                        extents.push(Extent {
                            topic,
                            partition: p.id(),
                            low,
                            high,
                            log_end: high,
                            log: None,
                        });
                    }
                }
            }
            this.give_back(consumer);
            Ok(extents)
        })
        .await?
    }

    /// Reads `ranges` in offset order per partition, from memory where it
    /// holds them, and sends each decoded event down the returned channel;
    /// it ends when every range is read, `cancel` fires or the receiver is
    /// dropped. Records that cannot be
    /// decoded are skipped, as live delivery skipped them. If Kafka fails
    /// first, the last item is `Err(ReadFailed)`: a replay is never cut
    /// short silently.
    pub fn read(
        self: &Arc<Self>,
        ranges: Vec<Range>,
        cancel: CancellationToken,
    ) -> mpsc::Receiver<Result<CrmEvent, ReadFailed>> {
        let (tx, rx) = mpsc::channel(READ_AHEAD);
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this.read_into(&ranges, &tx, &cancel).await {
                tracing::warn!(error = %e, "replay read failed");
                this.metrics.dropped.inc("replay_read_failed");
                let _ = tx.send(Err(ReadFailed)).await;
            }
        });
        rx
    }

    async fn read_into(
        &self,
        ranges: &[Range],
        tx: &Events,
        cancel: &CancellationToken,
    ) -> anyhow::Result<()> {
        let recent = &self.live.recent;
        let (in_memory, in_kafka): (Vec<Range>, Vec<Range>) = ranges
            .iter()
            .partition(|r| recent.covers(r.topic, r.partition, r.from));
        if self.read_kafka(&in_kafka, tx, cancel).await?.is_break() {
            return Ok(());
        }
        for range in in_memory {
            if self.read_memory(range, tx, cancel).await?.is_break() {
                break;
            }
        }
        Ok(())
    }

    /// Reads `range` from memory. What memory no longer holds by the time
    /// the reader gets there (evicted by newer records) is read from Kafka.
    async fn read_memory(
        &self,
        range: Range,
        tx: &Events,
        cancel: &CancellationToken,
    ) -> anyhow::Result<ControlFlow<()>> {
        let recent = &self.live.recent;
        let mut from = range.from;
        while from < range.to {
            let Some(chunk) =
                recent.read(range.topic, range.partition, from, range.to, MEMORY_CHUNK)
            else {
                return self
                    .read_kafka(&[Range { from, ..range }], tx, cancel)
                    .await;
            };
            from = match chunk.last_offset() {
                Some(last) if chunk.len() == MEMORY_CHUNK => last + 1,
                _ => range.to,
            };
            for (offset, payload) in chunk.iter() {
                let position = Position {
                    topic: range.topic,
                    partition: range.partition,
                    offset,
                };
                if self
                    .forward(position, Some(payload), tx, cancel)
                    .await
                    .is_break()
                {
                    return Ok(ControlFlow::Break(()));
                }
            }
        }
        self.metrics.replay_reads.inc("memory");
        Ok(ControlFlow::Continue(()))
    }

    /// Decodes one record and sends it on; `Break` when the replay stops
    /// (cancelled, or nobody is listening). Records that cannot be decoded
    /// are skipped, as live delivery skipped them.
    async fn forward(
        &self,
        position: Position,
        payload: Option<&[u8]>,
        tx: &Events,
        cancel: &CancellationToken,
    ) -> ControlFlow<()> {
        match self
            .decoder
            .decode_with_retry(position, payload, cancel)
            .await
        {
            Some(Ok(event)) => match tx.send(Ok(event.into_event())).await {
                Ok(()) => ControlFlow::Continue(()),
                Err(_) => ControlFlow::Break(()),
            },
            Some(Err(e)) => {
                tracing::debug!(%position, error = %e, "replay skips an undecodable record");
                ControlFlow::Continue(())
            }
            None => ControlFlow::Break(()),
        }
    }

    /// Reads `ranges` from Kafka; `Break` when the replay stops early.
    async fn read_kafka(
        &self,
        ranges: &[Range],
        tx: &Events,
        cancel: &CancellationToken,
    ) -> anyhow::Result<ControlFlow<()>> {
        if ranges.is_empty() {
            return Ok(ControlFlow::Continue(()));
        }
        self.metrics.replay_reads.add("kafka", ranges.len() as u64);
        let consumer = self.take_consumer()?;
        let mut remaining = self.assign(&consumer, ranges)?;
        tracing::debug!(?ranges, "replay reading");
        let flow = self
            .read_assigned(&consumer, &mut remaining, tx, cancel)
            .await?;
        tracing::debug!(unfinished = ?remaining, "replay read done");
        self.give_back(consumer);
        Ok(flow)
    }

    /// Assigns `consumer` each range's partition from the range's start;
    /// what is left to read, per partition.
    fn assign(&self, consumer: &ReplayConsumer, ranges: &[Range]) -> anyhow::Result<Remaining> {
        let mut assignment = TopicPartitionList::new();
        let mut remaining = Remaining::new();
        for r in ranges {
            assignment.add_partition_offset(
                self.kafka.topics.name(r.topic),
                r.partition,
                Offset::Offset(r.from),
            )?;
            remaining.insert((r.topic, r.partition), *r);
        }
        consumer.assign(&assignment)?;
        Ok(remaining)
    }

    /// Reads until every range of `remaining` is read to its end (each is
    /// removed then); `Break` when the replay stops early.
    async fn read_assigned(
        &self,
        consumer: &ReplayConsumer,
        remaining: &mut Remaining,
        tx: &Events,
        cancel: &CancellationToken,
    ) -> anyhow::Result<ControlFlow<()>> {
        let kinds: HashMap<&str, TopicKind> =
            self.kafka.topics.all().map(|(k, n)| (n, k)).collect();
        while !remaining.is_empty() {
            let received = tokio::select! {
                _ = cancel.cancelled() => return Ok(ControlFlow::Break(())),
                m = consumer.recv() => m,
            };
            let message = match received {
                Ok(message) => message,
                Err(KafkaError::PartitionEOF(partition)) => {
                    self.finish_at_end(consumer, remaining, partition)?;
                    continue;
                }
                Err(e) if recovers_by_itself(&e) => {
                    // Bounded by the replay's deadline (`gateway/replay.rs`).
                    self.metrics.consume_errors.inc();
                    tracing::debug!(error = %e, "replay read waits for Kafka");
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let Some(&topic) = kinds.get(message.topic()) else {
                continue;
            };
            let Some(position) = within_range(remaining, topic, &message) else {
                continue;
            };
            let flow = self.forward(position, message.payload(), tx, cancel).await;
            if flow.is_break() {
                return Ok(flow);
            }
        }
        Ok(ControlFlow::Continue(()))
    }

    /// The end of `partition` (of one topic or another: the error names
    /// only its number) was reached: what was read up to it, markers
    /// included, may finish its ranges.
    fn finish_at_end(
        &self,
        consumer: &ReplayConsumer,
        remaining: &mut Remaining,
        partition: i32,
    ) -> anyhow::Result<()> {
        let positions = consumer.position()?;
        remaining.retain(|&(topic, p), range| {
            p != partition
                || !matches!(
                    positions
                        .find_partition(self.kafka.topics.name(topic), p)
                        .map(|e| e.offset()),
                    Some(Offset::Offset(next)) if next >= range.to
                )
        });
        Ok(())
    }
}

/// The position of `message` (of `topic`) if it lies in what is left of
/// its partition's range; the range is removed once read to its end.
fn within_range(
    remaining: &mut Remaining,
    topic: TopicKind,
    message: &impl Message,
) -> Option<Position> {
    let key = (topic, message.partition());
    let range = remaining.get(&key).copied()?;
    // librdkafka hands on nothing before the offset it was told to
    // read from; holes (compaction, aborted records, markers) may
    // put the first record after it, or past the range's end.
    let offset = message.offset();
    if offset + 1 >= range.to {
        remaining.remove(&key);
    }
    if offset >= range.to {
        return None;
    }
    Some(Position {
        topic,
        partition: message.partition(),
        offset,
    })
}
