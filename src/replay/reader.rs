//! Reads offset ranges with consumers of its own (assign + seek; no group
//! membership, no commits), so replay never disturbs live consumption.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::{Extent, Range, ReplayConfig};
use crate::decode::Decoder;
use crate::domain::{CrmEvent, Position, TopicKind};
use crate::kafka::KafkaConfig;
use crate::metrics::Metrics;

/// Metadata and watermark look-ups.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Decoded events a reader may run ahead of the socket it feeds.
const READ_AHEAD: usize = 1024;

pub struct Replayer {
    config: ReplayConfig,
    kafka: KafkaConfig,
    node_id: String,
    decoder: Arc<Decoder>,
    metrics: Arc<Metrics>,
    permits: Arc<Semaphore>,
    /// Idle consumers, reused so a replay does not pay for a new connection.
    // std Mutex: held only to push or pop.
    idle: Mutex<Vec<StreamConsumer>>,
}

impl Replayer {
    pub fn new(
        config: ReplayConfig,
        kafka: KafkaConfig,
        decoder: Arc<Decoder>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(config.concurrency)),
            node_id: kafka.node_id(),
            config,
            kafka,
            decoder,
            metrics,
            idle: Mutex::default(),
        }
    }

    pub fn config(&self) -> &ReplayConfig {
        &self.config
    }

    /// Waits for one of the `replay.concurrency` slots.
    pub async fn permit(&self) -> OwnedSemaphorePermit {
        self.permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }

    fn take_consumer(&self) -> anyhow::Result<StreamConsumer> {
        if let Some(consumer) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(consumer);
        }
        let mut config = self.kafka.client_config();
        config
            .set("client.id", format!("crm-bridge-replay-{}", self.node_id))
            .set(
                "group.id",
                format!("{}-replay-{}", self.kafka.group_prefix, self.node_id),
            )
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "10")
            .set("fetch.max.bytes", "52428800")
            .set("max.partition.fetch.bytes", "10485760");
        Ok(config.create()?)
    }

    fn give_back(&self, consumer: StreamConsumer) {
        if consumer.unassign().is_ok() {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(consumer);
        }
    }

    /// Oldest and next offsets of every partition of `topics`.
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
                        });
                    }
                }
            }
            this.give_back(consumer);
            Ok(extents)
        })
        .await?
    }

    /// Reads `ranges` in offset order per partition and sends each decoded
    /// event down the returned channel; it ends when every range is read,
    /// `cancel` fires or the receiver is dropped. Records that cannot be
    /// decoded are skipped, as live delivery skipped them.
    pub fn read(
        self: &Arc<Self>,
        ranges: Vec<Range>,
        cancel: CancellationToken,
    ) -> mpsc::Receiver<CrmEvent> {
        let (tx, rx) = mpsc::channel(READ_AHEAD);
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this.read_into(&ranges, &tx, &cancel).await {
                tracing::warn!(error = %e, "replay read failed");
                this.metrics.dropped.inc("replay_read_failed");
            }
        });
        rx
    }

    async fn read_into(
        &self,
        ranges: &[Range],
        tx: &mpsc::Sender<CrmEvent>,
        cancel: &CancellationToken,
    ) -> anyhow::Result<()> {
        if ranges.is_empty() {
            return Ok(());
        }
        let consumer = self.take_consumer()?;
        let mut assignment = TopicPartitionList::new();
        let mut remaining: HashMap<(TopicKind, i32), Range> = HashMap::new();
        let kinds: HashMap<&str, TopicKind> =
            self.kafka.topics.all().map(|(k, n)| (n, k)).collect();
        for r in ranges {
            assignment.add_partition_offset(
                self.kafka.topics.name(r.topic),
                r.partition,
                Offset::Offset(r.from),
            )?;
            remaining.insert((r.topic, r.partition), *r);
        }
        consumer.assign(&assignment)?;
        while !remaining.is_empty() {
            let message = tokio::select! {
                _ = cancel.cancelled() => break,
                m = consumer.recv() => m?,
            };
            let Some(&topic) = kinds.get(message.topic()) else {
                continue;
            };
            let key = (topic, message.partition());
            // Anything outside the ranges (a stale prefetch) is ignored.
            let Some(range) = remaining.get(&key).copied() else {
                continue;
            };
            let offset = message.offset();
            if offset < range.from {
                continue;
            }
            if offset + 1 >= range.to {
                remaining.remove(&key);
            }
            if offset >= range.to {
                continue;
            }
            let position = Position {
                topic,
                partition: message.partition(),
                offset,
            };
            match self
                .decoder
                .decode_with_retry(position, message.payload(), cancel)
                .await
            {
                Some(Ok(event)) => {
                    if tx.send(event).await.is_err() {
                        break;
                    }
                }
                Some(Err(e)) => {
                    tracing::debug!(%position, error = %e, "replay skips an undecodable record")
                }
                None => break,
            }
        }
        self.give_back(consumer);
        Ok(())
    }
}
