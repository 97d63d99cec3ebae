//! Keeps every partition of the CRM topics assigned to this node's consumer.
//!
//! Assignment is manual (`incremental_assign`, not a group `subscribe`):
//! every node reads every partition, so a group rebalance would only add
//! delay. At start-up a partition starts at the group's committed offset or,
//! for a new node, at the watermark read then (the last stable offset, for
//! a `read_committed` consumer: a transaction still open is read once it
//! commits, not skipped). Because that position is
//! fixed before `/readyz` turns green, a record produced after readiness is
//! never missed (with `subscribe` + `auto.offset.reset=latest` the position
//! is resolved later, and records produced in between would be skipped).
//!
//! Topics created after start-up, and partitions added to a topic, are found
//! by polling metadata and read from their beginning: all of their records
//! were written after this node started.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use super::context::is_authorization;
use super::topic_ids;
use super::{ConsumerHandle, LiveConsumer};
use crate::domain::TopicKind;
use crate::metrics::Metrics;

/// Metadata and offset look-ups.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Between look-ups while a topic is missing or the broker unreachable.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// Polls until shutdown: every `refresh` once all topics are assigned, every
/// second before that. Publishes readiness on `handle`.
pub async fn keep_assigned(
    consumer: Arc<LiveConsumer>,
    topics: HashMap<String, TopicKind>,
    handle: ConsumerHandle,
    metrics: Arc<Metrics>,
    refresh: Duration,
    shutdown: CancellationToken,
) {
    let mut at_start = true;
    loop {
        let sync = {
            let (consumer, topics, handle, metrics) = (
                consumer.clone(),
                topics.clone(),
                handle.clone(),
                metrics.clone(),
            );
            tokio::task::spawn_blocking(move || {
                assign_missing(&consumer, &topics, &handle, &metrics, at_start)
            })
        };
        let complete = match sync.await {
            Ok(Ok(outcome)) => {
                handle.trouble.answered(Instant::now());
                if outcome.added > 0 {
                    tracing::info!(added = outcome.added, at_start, "assigned partitions");
                }
                at_start = false;
                outcome.complete
            }
            Ok(Err(e)) => {
                handle
                    .trouble
                    .warn("cannot look up partitions; retrying", &e);
                false
            }
            Err(e) => {
                tracing::error!(error = %e, "partition look-up task failed; retrying");
                false
            }
        };
        if complete && !handle.assigned.swap(true, Ordering::AcqRel) {
            tracing::info!("every topic assigned; ready");
        }
        let wait = if complete { refresh } else { RETRY_DELAY };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
    handle.assigned.store(false, Ordering::Release);
}

struct Outcome {
    /// Partitions newly assigned by this call.
    added: usize,
    /// Every topic has at least one partition assigned.
    complete: bool,
}

/// Assigns the partitions of `topics` not assigned yet, and records where
/// live delivery starts in each and its high watermark. Blocking (librdkafka
/// round trips). A topic that does not exist yet is left for a later call.
fn assign_missing(
    consumer: &LiveConsumer,
    topics: &HashMap<String, TopicKind>,
    handle: &ConsumerHandle,
    metrics: &Metrics,
    at_start: bool,
) -> anyhow::Result<Outcome> {
    let assigned = consumer.assignment()?;
    let mut missing = TopicPartitionList::new();
    let mut complete = true;
    for topic in topics.keys() {
        let metadata = consumer.fetch_metadata(Some(topic), LOOKUP_TIMEOUT)?;
        let partitions = match metadata.topics().iter().find(|t| t.name() == topic) {
            Some(t) if t.error().is_none() && !t.partitions().is_empty() => t.partitions(),
            Some(t) => {
                let code = t.error().map(RDKafkaErrorCode::from);
                if let Some(code) = code.filter(|&code| is_authorization(code)) {
                    let client = consumer.context().client();
                    let denial = format!("{client}: topic {topic}: {code}");
                    handle.trouble.denied(denial);
                }
                complete = false;
                continue;
            }
            None => {
                complete = false;
                continue;
            }
        };
        for p in partitions {
            if assigned.find_partition(topic, p.id()).is_none() {
                missing.add_partition(topic, p.id());
            }
        }
    }
    let added = missing.count();
    if added > 0 {
        let positions = starting_offsets(consumer, missing, at_start, topics, handle, metrics)?;
        // Before the first record can arrive, so live positions never move
        // back to the start over records already handled.
        for element in positions.elements() {
            if let Offset::Offset(offset) = element.offset() {
                handle
                    .live
                    .start_at(topics[element.topic()], element.partition(), offset);
            }
        }
        remember_ids(consumer, topics, &positions, handle);
        consumer.incremental_assign(&positions)?;
        // Stored as handled (committed with the rest), so a restarted node
        // resumes here even in a partition that had no records meanwhile,
        // rather than at the head, past records produced while it was down.
        consumer.store_offsets(&positions)?;
    }
    Ok(Outcome { added, complete })
}

/// Looks up the ids of the topics whose partitions are about to be
/// assigned at `positions`, so that a topic recreated from now on is told
/// from the one assigned (`watermarks.rs`). Best effort: if the look-up
/// fails, the first watermark round records the ids.
fn remember_ids(
    consumer: &LiveConsumer,
    topics: &HashMap<String, TopicKind>,
    positions: &TopicPartitionList,
    handle: &ConsumerHandle,
) {
    let mut stood: HashMap<&str, HashMap<i32, (i64, u64)>> = HashMap::new();
    for element in positions.elements() {
        if let Offset::Offset(offset) = element.offset() {
            let (name, &kind) = topics.get_key_value(element.topic()).expect("a CRM topic");
            let epoch = handle.live.reset_epoch(kind, element.partition());
            stood
                .entry(name.as_str())
                .or_default()
                .insert(element.partition(), (offset, epoch));
        }
    }
    let names: Vec<&str> = stood.keys().copied().collect();
    match topic_ids::describe(consumer.client(), &names, LOOKUP_TIMEOUT) {
        Ok(ids) => {
            for (name, stood) in stood {
                if let Some(Ok(id)) = ids.get(name) {
                    handle.live.known_log(topics[name], id.tag());
                    handle.watermarks.assigned_id(topics[name], *id, stood);
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot look up topic ids"),
    }
}

/// At start-up: the committed offset, else the high watermark. Later: the
/// beginning, since the partition is newer than this node. Records the high
/// watermarks it reads on `handle`.
///
/// A committed offset below the partition's oldest record means records
/// were deleted (retention, `DeleteRecords`) before live delivery read
/// them: it starts at the oldest left, and says so (logged, counted as
/// `partition_resets{reason="out_of_range"}`, what librdkafka would call an
/// offset reset); clients resuming from before get a `retention` gap.
fn starting_offsets(
    consumer: &LiveConsumer,
    partitions: TopicPartitionList,
    at_start: bool,
    topics: &HashMap<String, TopicKind>,
    handle: &ConsumerHandle,
    metrics: &Metrics,
) -> anyhow::Result<TopicPartitionList> {
    let committed = match at_start {
        true => consumer.committed_offsets(partitions, LOOKUP_TIMEOUT)?,
        false => partitions,
    };
    let mut positions = TopicPartitionList::new();
    for element in committed.elements() {
        let (low, high) =
            consumer.fetch_watermarks(element.topic(), element.partition(), LOOKUP_TIMEOUT)?;
        handle
            .watermarks
            .record(topics[element.topic()], element.partition(), high);
        let offset = match (at_start, element.offset()) {
            (true, Offset::Offset(committed)) if committed < low => {
                tracing::error!(
                    topic = element.topic(),
                    partition = element.partition(),
                    committed,
                    oldest = low,
                    lost = low - committed,
                    "records were deleted before live delivery read them; starting at the \
                     oldest left"
                );
                metrics
                    .partition_resets
                    .inc(element.topic(), element.partition(), "out_of_range");
                low.min(high)
            }
            (true, Offset::Offset(committed)) => committed.clamp(low, high),
            (true, _) => high,
            (false, _) => low,
        };
        positions.add_partition_offset(
            element.topic(),
            element.partition(),
            Offset::Offset(offset),
        )?;
    }
    Ok(positions)
}
