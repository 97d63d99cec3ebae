//! Follows the CRM's permissions topic (`permissions.topic`) into the
//! [`Grants`] view: every partition from its beginning, for as long as the
//! bridge runs, with no consumer group and no committed offsets. The topic
//! is compacted, so reading it whole is reading every grant that stands,
//! and each node holds the same view: nodes stay stateless.
//!
//! - A record with a value adds or replaces the grant under its key; a
//!   tombstone revokes it ([`Grants::apply`]). A value that cannot be
//!   decoded is counted, logged and skipped: it grants nothing (failing
//!   closed), and it does not revoke what the key held before either, since
//!   only the producer knows what it meant.
//! - Ready ([`Grants::mark_ready`], and so `/readyz`) once every partition's
//!   position has reached the high watermark it had when the follower
//!   started: until then a user could be refused what they may see.
//!   Positions, not the last record's offset, so that a log ending in a
//!   transaction marker or a compacted-away tombstone is reached too.
//! - A registry that cannot be reached holds the record, as for events: a
//!   grant skipped would be a user wrongly refused for ever.
//! - Partitions added to the topic later are looked for every
//!   `kafka.partition_refresh_seconds` and read from their beginning.
//! - Revocation latency is Kafka's: `fetch.wait.max.ms` is kept low
//!   ([`FETCH_WAIT_MS`]), and the record is applied the moment it arrives.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::admin::partitions_of;
use super::{BridgeContext, KafkaConfig};
use crate::access::Grants;
use crate::decode::Decoder;
use crate::metrics::Metrics;

/// How long a fetch waits for records when there are none: the bound on
/// how late a revocation is seen, past Kafka's own produce latency.
const FETCH_WAIT_MS: &str = "50";
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
const RETRY_EVERY: Duration = Duration::from_millis(500);
/// How often positions are compared with the start-up watermarks, until
/// they are reached.
const CATCH_UP_CHECK: Duration = Duration::from_millis(100);

type GrantsConsumer = StreamConsumer<BridgeContext>;

/// What the follower reads with and into.
pub struct GrantSources {
    pub decoder: Arc<Decoder>,
    pub grants: Arc<Grants>,
    pub metrics: Arc<Metrics>,
}

/// Starts following `topic` into `sources.grants` until `shutdown`.
pub fn follow_grants(
    config: &KafkaConfig,
    context: &BridgeContext,
    topic: &str,
    sources: GrantSources,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let node = config.node_id();
    // The group is never joined (partitions are assigned by hand) and
    // nothing is committed; librdkafka wants one all the same.
    let group = format!("{}-{node}-grants", config.group_prefix);
    let settings = [
        ("enable.auto.commit", "false"),
        ("fetch.wait.max.ms", FETCH_WAIT_MS),
    ];
    let consumer: GrantsConsumer = config
        .consumer_config(&format!("crm-bridge-grants-{node}"), &group, &settings)
        .create_with_context(context.for_client("the permissions topic follower"))?;
    let refresh = Duration::from_secs(config.partition_refresh_seconds.max(1));
    tasks.spawn(follow(
        Arc::new(consumer),
        topic.to_owned(),
        refresh,
        sources,
        shutdown,
    ));
    Ok(())
}

/// Reads `topic` into the view; looks for added partitions every `refresh`.
async fn follow(
    consumer: Arc<GrantsConsumer>,
    topic: String,
    refresh: Duration,
    sources: GrantSources,
    shutdown: CancellationToken,
) {
    let Some((mut assigned, mut catching_up)) =
        assign_from_start(&consumer, &topic, &shutdown).await
    else {
        return;
    };
    let mut added = tokio::time::interval(refresh);
    added.reset();
    let mut check = tokio::time::interval(CATCH_UP_CHECK);
    loop {
        if !sources.grants.is_ready() && caught_up(&consumer, &topic, &mut catching_up) {
            tracing::info!(
                grants = sources.grants.read().len(),
                "permissions topic read"
            );
            sources.grants.mark_ready();
        }
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            received = consumer.recv() => match received {
                Ok(record) => {
                    let key = record.key().unwrap_or_default().to_vec();
                    let value = record.payload().map(<[u8]>::to_vec);
                    drop(record);
                    if !apply(&sources, &key, value.as_deref(), &shutdown).await {
                        return;
                    }
                }
                Err(e) => consumer
                    .context()
                    .trouble()
                    .warn("permissions topic consume error", &e),
            },
            _ = check.tick(), if !sources.grants.is_ready() => {}
            _ = added.tick() => assign_added(&consumer, &topic, &mut assigned).await,
        }
    }
}

/// Applies one record; false if shut down while the registry was down.
async fn apply(
    sources: &GrantSources,
    key: &[u8],
    value: Option<&[u8]>,
    shutdown: &CancellationToken,
) -> bool {
    let grant = match value {
        None => None,
        Some(value) => match sources
            .decoder
            .decode_grant_with_retry(value, shutdown)
            .await
        {
            None => return false,
            Some(Ok(grant)) => Some(grant),
            Some(Err(e)) => {
                sources.metrics.grant_records.inc("undecodable");
                tracing::warn!(error = %e, reason = e.reason(), "skipping a permissions record");
                return true;
            }
        },
    };
    let outcome = if grant.is_some() {
        "granted"
    } else {
        "revoked"
    };
    sources.metrics.grant_records.inc(outcome);
    sources.grants.apply(key, grant);
    sources
        .metrics
        .grants
        .set(sources.grants.read().len() as i64);
    true
}

/// Whether every partition still catching up has reached its start-up
/// high watermark; drops those that have.
fn caught_up(consumer: &GrantsConsumer, topic: &str, catching_up: &mut HashMap<i32, i64>) -> bool {
    if catching_up.is_empty() {
        return true;
    }
    if let Ok(positions) = consumer.position() {
        for element in positions.elements_for_topic(topic) {
            if let Offset::Offset(next) = element.offset()
                && catching_up
                    .get(&element.partition())
                    .is_some_and(|high| next >= *high)
            {
                catching_up.remove(&element.partition());
            }
        }
    }
    catching_up.is_empty()
}

/// Adds the partitions of `topic` not yet in `assigned`, from their
/// beginning.
async fn assign_added(consumer: &Arc<GrantsConsumer>, topic: &str, assigned: &mut Vec<i32>) {
    let lookup = {
        let (consumer, topic) = (consumer.clone(), topic.to_owned());
        tokio::task::spawn_blocking(move || partitions_of(&consumer, &topic, LOOKUP_TIMEOUT)).await
    };
    let Ok(Ok(partitions)) = lookup else {
        return; // looked for again at the next refresh
    };
    let mut added = TopicPartitionList::new();
    for partition in partitions.iter().filter(|p| !assigned.contains(p)) {
        if let Err(e) = added.add_partition_offset(topic, *partition, Offset::Beginning) {
            tracing::warn!(error = %e, "cannot add a permissions topic partition");
            return;
        }
    }
    if added.count() == 0 {
        return;
    }
    match consumer.incremental_assign(&added) {
        Ok(()) => {
            tracing::info!(
                partitions = added.count(),
                "following added permissions topic partitions"
            );
            *assigned = partitions;
        }
        Err(e) => tracing::warn!(error = %e, "cannot assign added permissions topic partitions"),
    }
}

/// Assigns every partition of `topic` at its beginning, waiting for the
/// topic to exist; returns the partitions, and each one's high watermark
/// for those that hold records. `None` if shut down first.
async fn assign_from_start(
    consumer: &Arc<GrantsConsumer>,
    topic: &str,
    shutdown: &CancellationToken,
) -> Option<(Vec<i32>, HashMap<i32, i64>)> {
    loop {
        let lookup = {
            let (consumer, topic) = (consumer.clone(), topic.to_owned());
            tokio::task::spawn_blocking(move || start_and_ends(&consumer, &topic)).await
        };
        match lookup {
            Ok(Ok((assignment, ends))) => match consumer.assign(&assignment) {
                Ok(()) => {
                    let partitions = assignment
                        .elements()
                        .iter()
                        .map(|e| e.partition())
                        .collect();
                    return Some((partitions, ends));
                }
                Err(e) => tracing::warn!(error = %e, "cannot assign the permissions topic"),
            },
            Ok(Err(e)) => consumer
                .context()
                .trouble()
                .warn("waiting for the permissions topic", &e),
            Err(e) => tracing::warn!(error = %e, "permissions topic lookup failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(RETRY_EVERY) => {}
        }
    }
}

/// The assignment of every partition at its beginning, and the high
/// watermark of each that is not empty.
fn start_and_ends(
    consumer: &GrantsConsumer,
    topic: &str,
) -> anyhow::Result<(TopicPartitionList, HashMap<i32, i64>)> {
    let partitions = partitions_of(consumer, topic, LOOKUP_TIMEOUT)?;
    let mut assignment = TopicPartitionList::new();
    let mut ends = HashMap::new();
    for partition in partitions {
        let (low, high) = consumer.fetch_watermarks(topic, partition, LOOKUP_TIMEOUT)?;
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
        if high > low {
            ends.insert(partition, high);
        }
    }
    Ok((assignment, ends))
}
