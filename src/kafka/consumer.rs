//! The live consumer: Kafka → decode → [`Deliver`], one record at a time.
//!
//! - Partitions are assigned by `assignment.rs`, not by a consumer group
//!   rebalance: this node reads every partition of the CRM topics.
//! - One task reads all partitions in order, so per-partition (per-resource)
//!   order is kept. Delivery never waits on a socket, so one task suffices.
//! - An offset is stored only after its record was delivered (or skipped as
//!   undecodable); librdkafka commits stored offsets every second and at
//!   shutdown. A poison record is counted, logged, parked in the dead-letter
//!   topic when one is configured (`dead_letter.rs`), skipped and committed:
//!   redelivering it could not make it decodable.
//! - A schema registry that cannot be reached is retried with backoff, holding
//!   the record (and so consumption) rather than skipping data that is fine.
//! - Each record's end-to-end latency (its Kafka timestamp to the hand-off
//!   to every matching socket) is observed once, after delivery.
//! - Tracing: a sampled record gets spans `consume` (continuing the
//!   producer's trace from its `traceparent` header) and `decode`; see
//!   [`crate::telemetry`]. An unsampled one gets none.
//! - Backpressure: `recv` pulls from librdkafka's bounded prefetch queue
//!   (`queued.max.messages.kbytes`); if delivery is slow, Kafka holds the rest.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;
use tracing::field::Empty;

use super::assignment::keep_assigned;
use super::dead_letter::DeadLetters;
use super::positions::LivePositions;
use super::readiness::ReadinessBounds;
use super::watermarks::{Watermarks, keep_watermarks};
use super::{KafkaConfig, TopicNames};
use crate::decode::Decoder;
use crate::domain::CrmEvent;
use crate::domain::{Position, TopicKind};
use crate::metrics::Metrics;
use crate::telemetry;

/// Where decoded events go. Must not block: it runs on the consume loop.
pub trait Deliver: Send + 'static {
    fn deliver(&mut self, event: &CrmEvent);
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
}

impl ConsumerHandle {
    /// True once every topic's partitions are assigned at a known position.
    pub fn is_assigned(&self) -> bool {
        self.assigned.load(Ordering::Acquire)
    }
}

pub fn spawn_consumer(
    config: &KafkaConfig,
    decoder: Arc<Decoder>,
    sink: impl Deliver,
    live: Arc<LivePositions>,
    metrics: Arc<Metrics>,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> anyhow::Result<ConsumerHandle> {
    let node_id = config.node_id();
    let settings = [
        // Offsets are stored by hand once an event has been handed to every
        // socket, and committed from there in the background.
        ("enable.auto.offset.store", "false"),
        ("enable.auto.commit", "true"),
        ("auto.commit.interval.ms", "1000"),
        // A new node starts at the head: its clients connect from now on.
        ("auto.offset.reset", "latest"),
    ];
    let client_id = format!("crm-bridge-{node_id}");
    let group_id = format!("{}-{node_id}", config.group_prefix);
    let consumer: Arc<StreamConsumer> = Arc::new(
        config
            .consumer_config(&client_id, &group_id, &settings)
            .create()?,
    );
    let dead_letters = DeadLetters::new(config)?;
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
    };
    tracing::info!(node_id, brokers = %config.brokers, "starting live consumer");
    let refresh = Duration::from_secs(config.partition_refresh_seconds.max(1));
    tasks.spawn(keep_assigned(
        consumer.clone(),
        topics.clone(),
        handle.clone(),
        refresh,
        shutdown.clone(),
    ));
    tasks.spawn(keep_watermarks(
        consumer.clone(),
        topics.clone(),
        handle.watermarks.clone(),
        Duration::from_secs(config.lag_refresh_seconds),
        shutdown.clone(),
    ));
    let live = handle.live.clone();
    tasks.spawn(async move {
        let stages = Stages {
            topics: &topics,
            decoder: &decoder,
            dead_letters: dead_letters.as_ref(),
            metrics: &metrics,
            live: &live,
        };
        consume(&consumer, stages, sink, &shutdown).await;
        if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
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
}

async fn consume(
    consumer: &StreamConsumer,
    stages: Stages<'_>,
    mut sink: impl Deliver,
    shutdown: &CancellationToken,
) {
    let Stages {
        topics,
        decoder,
        dead_letters,
        metrics,
        live,
    } = stages;
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
        let position = Position {
            topic: topics[message.topic()],
            partition: message.partition(),
            offset: message.offset(),
        };
        let consume = telemetry::consume_span(message.headers(), || {
            tracing::info_span!(
                "consume",
                otel.kind = "consumer",
                messaging.system = "kafka",
                messaging.destination.name = message.topic(),
                messaging.destination.partition.id = message.partition(),
                messaging.kafka.offset = message.offset(),
            )
        });
        let decode = telemetry::child_span(
            &consume,
            || tracing::info_span!(parent: &consume, "decode", error.type = Empty),
        );
        let Some(decoded) = decoder
            .decode_with_retry(position, message.payload(), shutdown)
            .instrument(decode.clone())
            .await
        else {
            return; // shutting down; the record stays uncommitted
        };
        match decoded {
            Ok(event) => {
                metrics.records_decoded.inc();
                live.routing(position);
                // The sink's spans (route, emit) are children of `consume`.
                consume.in_scope(|| sink.deliver(&event));
                if let Some(created_ms) = message.timestamp().to_millis() {
                    metrics.delivery_latency.observe_since_unix_ms(created_ms);
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
            }
        }
        live.handled(position);
        if let Err(e) = consumer.store_offset_from_message(&message) {
            tracing::warn!(error = %e, "storing offset failed");
        }
    }
}
