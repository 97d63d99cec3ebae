//! The consume loop: takes records from librdkafka's prefetch queue one at
//! a time and hands each to `record.rs`; between records (every
//! [`RECORDS_PER_TURN`], and whenever no record is ready) it restarts
//! recreated partitions, steps over transaction markers, stores offsets
//! and looks at the shutdown signal.

use futures::{FutureExt as _, StreamExt as _};
use rdkafka::consumer::Consumer as _;
use rdkafka::consumer::stream_consumer::MessageStream;
use rdkafka::error::KafkaResult;
use rdkafka::message::BorrowedMessage;
use tokio_util::sync::CancellationToken;

use super::partitions::Partitions;
use super::record::Records;
use super::{Deliver, Stages};
use crate::domain::TopicKind;
use crate::kafka::{BridgeContext, LiveConsumer};

/// Records handled between two looks at the shutdown signal, which are
/// also the points where the loop lets other tasks on its worker run:
/// reading a backlog, records are always ready and it would never wait.
pub(super) const RECORDS_PER_TURN: u32 = 256;

/// Reads until `shutdown`, then stores what was handled, for the final
/// commit.
pub(super) async fn consume(
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
    let mut partitions = Partitions::new(stages.live);
    let mut records = Records::new(&stages, &topics, sink, shutdown);
    read(consumer, &stages, &topics, &mut partitions, &mut records).await;
    // What was handled before the loop ended, for the final commit.
    partitions.store(consumer);
}

async fn read<'t>(
    consumer: &LiveConsumer,
    stages: &Stages<'_>,
    topics: &[(&'t str, TopicKind)],
    partitions: &mut Partitions<'t>,
    records: &mut Records<'_, 't, impl Deliver>,
) {
    // One stream for the whole loop: `recv()` makes one per call, which
    // registers and unregisters a waker (a mutex each) per record.
    let mut messages = consumer.stream();
    let shutdown = records.shutdown;
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
                match wait(&mut messages, stages, shutdown).await {
                    Waited::Received(received) => {
                        records.clock.refresh();
                        received
                    }
                    // Checked on the next turn, before waiting again.
                    Waited::Recreated => continue,
                    Waited::Shutdown => return,
                }
            }
        };
        let Some(message) = without_error(consumer, stages, received) else {
            continue;
        };
        if records.handle(message, partitions).await.is_break() {
            return;
        }
    }
}

/// What ended a wait for the next record.
enum Waited<'m> {
    Received(Option<KafkaResult<BorrowedMessage<'m>>>),
    /// The watermark look-ups found a topic recreated.
    Recreated,
    Shutdown,
}

async fn wait<'m>(
    messages: &mut MessageStream<'m, BridgeContext>,
    stages: &Stages<'_>,
    shutdown: &CancellationToken,
) -> Waited<'m> {
    tokio::select! {
        biased;
        _ = shutdown.cancelled() => Waited::Shutdown,
        _ = stages.watermarks.recreated_signal.notified() => Waited::Recreated,
        received = messages.next() => Waited::Received(received),
    }
}

/// The message received, or `None` after a consume error: librdkafka
/// reconnects by itself, so the error is counted and reported, no more.
fn without_error<'m>(
    consumer: &LiveConsumer,
    stages: &Stages<'_>,
    received: Option<KafkaResult<BorrowedMessage<'m>>>,
) -> Option<BorrowedMessage<'m>> {
    match received.expect("kafka streams never end") {
        Ok(message) => Some(message),
        Err(e) => {
            stages.metrics.consume_errors.inc();
            consumer.context().trouble().warn("kafka consume error", &e);
            None
        }
    }
}
