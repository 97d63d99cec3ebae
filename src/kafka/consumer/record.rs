//! One record on the consume loop: decoded as far as routing needs, handed
//! to the sink, or skipped as undecodable (counted, logged, parked in the
//! dead-letter topic when one is configured), then marked handled; with
//! its spans when it is traced, and its delivery latency observed.

use std::ops::ControlFlow;

use opentelemetry_semantic_conventions::attribute::{
    ERROR_TYPE, MESSAGING_CONSUMER_GROUP_NAME, MESSAGING_DESTINATION_NAME,
    MESSAGING_DESTINATION_PARTITION_ID, MESSAGING_KAFKA_OFFSET, MESSAGING_OPERATION_NAME,
    MESSAGING_OPERATION_TYPE, MESSAGING_SYSTEM,
};
use rdkafka::Message;
use rdkafka::message::BorrowedMessage;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use tracing::Span;
use tracing::field::Empty;

use super::clock::Clock;
use super::partitions::{Partitions, Seen};
use super::{Deliver, Stages};
use crate::decode::{DecodeError, Decoded};
use crate::domain::{Position, TopicKind};
use crate::telemetry;

/// What handles each record the loop reads, the sink included.
pub(super) struct Records<'s, 't, D> {
    stages: &'s Stages<'s>,
    topics: &'s [(&'t str, TopicKind)],
    sink: D,
    pub(super) clock: Clock,
    pub(super) shutdown: &'s CancellationToken,
}

impl<'s, 't, D: Deliver> Records<'s, 't, D> {
    pub(super) fn new(
        stages: &'s Stages<'s>,
        topics: &'s [(&'t str, TopicKind)],
        sink: D,
        shutdown: &'s CancellationToken,
    ) -> Self {
        Self {
            stages,
            topics,
            sink,
            clock: Clock::new(),
            shutdown,
        }
    }

    /// Handles `message`: `Break` when shutdown came first, the record
    /// left unhandled (and uncommitted).
    pub(super) async fn handle(
        &mut self,
        message: BorrowedMessage<'_>,
        partitions: &mut Partitions<'t>,
    ) -> ControlFlow<()> {
        self.stages.metrics.records_consumed.inc();
        let topic_name = message.topic();
        let Some(&(topic_name, topic)) = self.topics.iter().find(|(name, _)| *name == topic_name)
        else {
            unreachable!("only the CRM topics are assigned, got {topic_name}");
        };
        let position = Position {
            topic,
            partition: message.partition(),
            offset: message.offset(),
        };
        let payload = message.payload();
        let partition = partitions.receive(
            self.stages,
            position,
            topic_name,
            payload.unwrap_or_default(),
        );
        if partition.skip_handed_on(position.offset, payload.unwrap_or_default()) {
            return ControlFlow::Continue(());
        }
        let spans = RecordSpans::new(&message, self.stages.group);
        let Some(decoded) = self.decode(position, payload, &spans).await else {
            return ControlFlow::Break(()); // shutting down
        };
        match decoded {
            Ok(record) => self.deliver(&record, &message, partition, &spans),
            Err(e) => self.skip_undecodable(&message, &e, &spans).await?,
        }
        partition.handled(position.offset);
        ControlFlow::Continue(())
    }

    /// Decodes with the writer schemas known, else fetches the one missing
    /// (retried while the registry cannot be reached); `None` when shutdown
    /// came first.
    async fn decode<'m>(
        &mut self,
        position: Position,
        payload: Option<&'m [u8]>,
        spans: &RecordSpans,
    ) -> Option<Result<Decoded<'m>, DecodeError>> {
        let decoder = self.stages.decoder;
        let known = if spans.traced {
            spans
                .decode
                .in_scope(|| decoder.decode_known(position, payload))
        } else {
            decoder.decode_known(position, payload)
        };
        if known.is_some() {
            return known;
        }
        // A writer schema not seen yet: the registry, maybe retries.
        let decoding = decoder.decode_with_retry(position, payload, self.shutdown);
        let decoded = decoding.instrument(spans.decode.clone()).await;
        self.clock.refresh();
        decoded
    }

    /// Hands `record` to the sink and observes its end-to-end latency.
    fn deliver(
        &mut self,
        record: &Decoded<'_>,
        message: &BorrowedMessage<'_>,
        partition: &mut Seen<'_>,
        spans: &RecordSpans,
    ) {
        let metrics = self.stages.metrics;
        metrics.records_decoded.inc();
        partition.live.routing(message.offset());
        let delivered = if spans.traced {
            // Logs of the sink carry the record's trace.
            spans
                .consume
                .in_scope(|| self.sink.deliver(record, &spans.consume))
        } else {
            self.sink.deliver(record, &spans.consume)
        };
        if delivered {
            self.clock.refresh();
        }
        if let Some(created_ms) = message.timestamp().to_millis() {
            metrics
                .delivery_latency
                .observe_between_unix_ms(created_ms, self.clock.now());
        }
    }

    /// A poison record: counted, logged, parked in the dead-letter topic
    /// when there is one. `Break` when shutdown came first: the record
    /// stays uncommitted, parked again after a restart.
    async fn skip_undecodable(
        &mut self,
        message: &BorrowedMessage<'_>,
        e: &DecodeError,
        spans: &RecordSpans,
    ) -> ControlFlow<()> {
        let Stages {
            dead_letters,
            metrics,
            ..
        } = *self.stages;
        metrics.decode_failed(e.reason());
        spans.decode.record(ERROR_TYPE, e.reason());
        spans.consume.in_scope(|| {
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
                _ = self.shutdown.cancelled() => return ControlFlow::Break(()),
                _ = dead_letters.park(message, e.reason(), metrics) => {}
            }
        }
        self.clock.refresh();
        ControlFlow::Continue(())
    }
}

/// A record's spans, by the OpenTelemetry messaging conventions: `process
/// <topic>` (a consumer span continuing the producer's trace from its
/// `traceparent` header) and its child `decode`. Both are disabled for a
/// record that is not sampled, and cost no span work then.
struct RecordSpans {
    consume: Span,
    decode: Span,
    traced: bool,
}

impl RecordSpans {
    fn new(message: &BorrowedMessage<'_>, group: &str) -> Self {
        let consume = telemetry::consume_span(
            || message.headers(),
            || {
                let topic = message.topic();
                tracing::info_span!(
                    "process",
                    otel.name = format!("process {topic}"),
                    otel.kind = "consumer",
                    { MESSAGING_SYSTEM } = "kafka",
                    { MESSAGING_OPERATION_NAME } = "process",
                    { MESSAGING_OPERATION_TYPE } = "process",
                    { MESSAGING_DESTINATION_NAME } = topic,
                    { MESSAGING_CONSUMER_GROUP_NAME } = group,
                    // A string, as the conventions have it.
                    { MESSAGING_DESTINATION_PARTITION_ID } = %message.partition(),
                    { MESSAGING_KAFKA_OFFSET } = message.offset(),
                )
            },
        );
        let traced = !consume.is_disabled();
        let decode = telemetry::child_span(
            &consume,
            || tracing::info_span!(parent: &consume, "decode", { ERROR_TYPE } = Empty),
        );
        Self {
            consume,
            decode,
            traced,
        }
    }
}
