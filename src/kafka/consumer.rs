//! The live consumer: Kafka → decode → [`Deliver`], one record at a time.
//!
//! - Assignment is manual (`assign`, not `subscribe`): this node reads every
//!   partition, starting from its group's committed offset or, for a new node,
//!   the high watermark read at start-up. Because that position is fixed before
//!   `/readyz` turns green, a record produced after readiness is never missed
//!   (with `subscribe` + `auto.offset.reset=latest` the position is resolved
//!   later, and records produced in between would be skipped).
//! - One task reads all partitions in order, so per-partition (per-resource)
//!   order is kept. Delivery never waits on a socket, so one task suffices.
//! - An offset is stored only after its record was delivered (or skipped as
//!   undecodable); librdkafka commits stored offsets every second and at
//!   shutdown. A poison record is counted, logged, skipped and committed:
//!   redelivering it could not make it decodable.
//! - Backpressure: `recv` pulls from librdkafka's bounded prefetch queue
//!   (`queued.max.messages.kbytes`); if delivery is slow, Kafka holds the rest.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::KafkaConfig;
use crate::decode::{Decoder, TopicKind};
use crate::domain::CrmEvent;
use crate::metrics::Metrics;

/// Where decoded events go. Must not block: it runs on the consume loop.
pub trait Deliver: Send + 'static {
    fn deliver(&mut self, event: &CrmEvent);
}

/// Observes the consumer from outside.
#[derive(Clone, Default)]
pub struct ConsumerHandle {
    assigned: Arc<AtomicBool>,
}

impl ConsumerHandle {
    /// True once every partition is assigned at a known position.
    pub fn is_assigned(&self) -> bool {
        self.assigned.load(Ordering::Acquire)
    }
}

/// Metadata and offset look-ups at start-up.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Between attempts to assign while the broker or a topic is missing.
const RETRY_DELAY: Duration = Duration::from_secs(1);

pub fn spawn_consumer(
    config: &KafkaConfig,
    decoder: Arc<Decoder>,
    sink: impl Deliver,
    metrics: Arc<Metrics>,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> anyhow::Result<ConsumerHandle> {
    let node_id = config.node_id();
    let consumer: Arc<StreamConsumer> = Arc::new(config.consumer_config(&node_id).create()?);
    let topics: HashMap<String, TopicKind> = config
        .topics
        .all()
        .map(|(kind, name)| (name.to_owned(), kind))
        .collect();
    let handle = ConsumerHandle::default();
    let assigned = handle.assigned.clone();
    tracing::info!(node_id, brokers = %config.brokers, "starting live consumer");
    tasks.spawn(async move {
        if assign_all(&consumer, &topics, &shutdown).await {
            assigned.store(true, Ordering::Release);
            consume(&consumer, &topics, &decoder, sink, &metrics, &shutdown).await;
            assigned.store(false, Ordering::Release);
            if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
                tracing::warn!(error = %e, "final offset commit failed");
            }
        }
    });
    Ok(handle)
}

/// Retries until every topic's partitions are assigned, or shutdown (false).
async fn assign_all(
    consumer: &Arc<StreamConsumer>,
    topics: &HashMap<String, TopicKind>,
    shutdown: &CancellationToken,
) -> bool {
    loop {
        let lookup = {
            let consumer = consumer.clone();
            let names: Vec<String> = topics.keys().cloned().collect();
            tokio::task::spawn_blocking(move || starting_positions(&consumer, &names))
        };
        match lookup.await {
            Ok(Ok(positions)) => match consumer.assign(&positions) {
                Ok(()) => {
                    tracing::info!(partitions = positions.count(), "assigned all partitions");
                    return true;
                }
                Err(e) => tracing::warn!(error = %e, "assign failed; retrying"),
            },
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot assign partitions yet; retrying"),
            Err(e) => tracing::error!(error = %e, "position look-up task failed; retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(RETRY_DELAY) => {}
        }
    }
}

/// Every partition of `topics`, at the group's committed offset or else the
/// current high watermark. Blocking (librdkafka round trips).
fn starting_positions(
    consumer: &StreamConsumer,
    topics: &[String],
) -> anyhow::Result<TopicPartitionList> {
    let mut partitions = TopicPartitionList::new();
    for topic in topics {
        let metadata = consumer.fetch_metadata(Some(topic), LOOKUP_TIMEOUT)?;
        let found = metadata.topics().iter().find(|t| t.name() == topic);
        match found {
            Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                for p in t.partitions() {
                    partitions.add_partition(topic, p.id());
                }
            }
            _ => anyhow::bail!("topic {topic} does not exist (yet)"),
        }
    }
    let committed = consumer.committed_offsets(partitions, LOOKUP_TIMEOUT)?;
    let mut positions = TopicPartitionList::new();
    for element in committed.elements() {
        let offset = match element.offset() {
            Offset::Offset(committed) => committed,
            _ => {
                consumer
                    .fetch_watermarks(element.topic(), element.partition(), LOOKUP_TIMEOUT)?
                    .1
            }
        };
        positions.add_partition_offset(
            element.topic(),
            element.partition(),
            Offset::Offset(offset),
        )?;
    }
    Ok(positions)
}

async fn consume(
    consumer: &StreamConsumer,
    topics: &HashMap<String, TopicKind>,
    decoder: &Decoder,
    mut sink: impl Deliver,
    metrics: &Metrics,
    shutdown: &CancellationToken,
) {
    loop {
        let received = tokio::select! {
            // Stop promptly even when records keep coming.
            biased;
            _ = shutdown.cancelled() => return,
            received = consumer.recv() => received,
        };
        let message = match received {
            Ok(message) => message,
            Err(e) => {
                // librdkafka reconnects by itself; this is informational.
                metrics.consume_errors.inc();
                tracing::warn!(error = %e, "kafka consume error");
                continue;
            }
        };
        metrics.records_consumed.inc();
        let kind = topics[message.topic()];
        match decoder.decode(kind, message.payload()).await {
            Ok(event) => {
                metrics.records_decoded.inc();
                sink.deliver(&event);
            }
            Err(e) => {
                metrics.decode_failed(e.reason());
                tracing::warn!(
                    topic = message.topic(),
                    partition = message.partition(),
                    offset = message.offset(),
                    reason = e.reason(),
                    error = %e,
                    "skipping a record that cannot be decoded"
                );
            }
        }
        if let Err(e) = consumer.store_offset_from_message(&message) {
            tracing::warn!(error = %e, "storing offset failed");
        }
    }
}
