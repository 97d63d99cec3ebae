//! The dead-letter topic (`kafka.dead_letter_topic`): where the live consumer
//! parks a record it cannot decode, so no poison record is lost to a log line.
//!
//! The record goes out unchanged (key, value, its own headers), plus headers
//! saying where it came from and why:
//!
//! | header | value |
//! |---|---|
//! | `crm-bridge.source.topic` | the CRM topic it was read from |
//! | `crm-bridge.source.partition` | partition, decimal |
//! | `crm-bridge.source.offset` | offset, decimal |
//! | `crm-bridge.error.reason` | [`DecodeError::reason`](crate::decode::DecodeError::reason) |
//! | `crm-bridge.node` | the node that parked it (every node reads every record) |
//!
//! Each record is awaited before the consumer stores its offset, so parked
//! records keep their partition's order. One that cannot be parked within
//! [`DELIVERY_TIMEOUT`] is logged and counted, and its offset is stored all
//! the same: the record is still in its source topic at the logged position.
//! After such a failure, parking is skipped (counted, logged) for
//! [`BACK_OFF`]: a dead-letter topic that is missing or down must not stall
//! live delivery for every poison record that follows.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

use super::{BridgeContext, KafkaConfig};
use crate::metrics::Metrics;

/// How long one record may take to reach the dead-letter topic, retries
/// included, before it is given up (and its partition moves on).
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long parking is skipped after a record could not be parked.
pub const BACK_OFF: Duration = Duration::from_secs(60);

pub struct DeadLetters {
    producer: FutureProducer<BridgeContext>,
    topic: String,
    node: String,
    /// Parking is skipped until then, after a failure.
    skip_until: Mutex<Option<Instant>>,
}

impl DeadLetters {
    /// `None` when no dead-letter topic is configured.
    pub fn new(config: &KafkaConfig, context: &BridgeContext) -> anyhow::Result<Option<Self>> {
        let Some(topic) = &config.dead_letter_topic else {
            return Ok(None);
        };
        let node = config.node_id();
        let producer = config
            .client_config()
            .set("client.id", format!("crm-bridge-dead-letters-{node}"))
            .set("linger.ms", "0")
            // One request in flight: parked records keep their order through retries.
            .set("max.in.flight.requests.per.connection", "1")
            .set(
                "message.timeout.ms",
                DELIVERY_TIMEOUT.as_millis().to_string(),
            )
            .create_with_context(context.for_client("the dead-letter producer"))?;
        Ok(Some(Self {
            producer,
            topic: topic.clone(),
            node,
            skip_until: Mutex::new(None),
        }))
    }

    fn skipping(&self) -> bool {
        let skip_until = self.skip_until.lock().unwrap_or_else(|e| e.into_inner());
        skip_until.is_some_and(|until| Instant::now() < until)
    }

    /// Produces `message` to the dead-letter topic and waits for the broker;
    /// counts the outcome. Never fails: the caller moves on either way.
    pub async fn park(
        &self,
        message: &BorrowedMessage<'_>,
        reason: &'static str,
        metrics: &Metrics,
    ) {
        if self.skipping() {
            metrics.dead_letter_failures.inc();
            tracing::warn!(
                topic = message.topic(),
                partition = message.partition(),
                offset = message.offset(),
                reason,
                "dead-letter topic failed recently; skipping an undecodable record"
            );
            return;
        }
        let partition = message.partition().to_string();
        let offset = message.offset().to_string();
        let mut headers = OwnedHeaders::new();
        if let Some(original) = message.headers() {
            for header in original.iter() {
                headers = headers.insert(header);
            }
        }
        let ours = [
            ("crm-bridge.source.topic", message.topic()),
            ("crm-bridge.source.partition", partition.as_str()),
            ("crm-bridge.source.offset", offset.as_str()),
            ("crm-bridge.error.reason", reason),
            ("crm-bridge.node", self.node.as_str()),
        ];
        for (key, value) in ours {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&self.topic).headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(value) = message.payload() {
            record = record.payload(value);
        }
        match self
            .producer
            .send(record, Timeout::After(Duration::ZERO))
            .await
        {
            Ok(_) => metrics.dead_lettered.inc(),
            Err((e, _)) => {
                metrics.dead_letter_failures.inc();
                *self.skip_until.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(Instant::now() + BACK_OFF);
                tracing::error!(
                    error = %e,
                    dead_letter_topic = %self.topic,
                    topic = message.topic(),
                    partition = message.partition(),
                    offset = message.offset(),
                    "cannot park an undecodable record; skipping it anyway"
                );
            }
        }
    }
}
