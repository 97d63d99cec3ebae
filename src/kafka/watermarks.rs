//! The watermark of every assigned partition, and when Kafka last
//! answered. With where live delivery stands ([`LivePositions`]) they give
//! the consumer lag; the answer's age says whether Kafka is reachable (both
//! read in `readiness.rs`).
//!
//! The consumer reads `read_committed`, so librdkafka's look-up answers
//! with the last stable offset, not the high watermark: the end of what it
//! can read, short of a transaction still open. Live delivery steps over
//! transaction markers (`consumer.rs`), so a partition ending in one shows
//! no lag (`tests/transactions.rs`).
//!
//! Cheap and bounded: every `kafka.lag_refresh_seconds`, one `ListOffsets`
//! look-up per assigned partition, each bounded by [`LOOKUP_TIMEOUT`], off
//! the async threads; a round stops at its first failure (timeouts would
//! add up over the rest). A failed round asks the cluster for
//! metadata, which any broker answers: a partition whose leader died has
//! none until the controller elects another (seconds: the broker's session
//! timeout), and that is a leader change, not Kafka gone. Assignment records
//! the watermarks it reads as well, so lag is known from the moment a
//! partition is assigned.
//!
//! A look-up also tells when a partition's log went backwards under live
//! delivery (a topic recreated, a broker that lost its data): a watermark
//! below where live delivery stood *before* the look-up was sent cannot be
//! a stale answer (`log_end_behind`). Each round first asks for the CRM
//! topics' ids (one `DescribeTopics`, `topic_ids.rs`; assignment records
//! them first): a changed id is a topic recreated (`topic_recreated`), even
//! when its new log is longer than the old position and offsets show
//! nothing. Either is handed to the consume loop, which moves live delivery
//! back to the new log's start (`consumer.rs`). Such a partition, and one
//! the consumer reset by itself, keeps `/readyz` failing until a look-up
//! sent after the reset finds live delivery at or behind the new log's end.
//!
//! [`LivePositions`]: super::LivePositions

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rdkafka::TopicPartitionList;
use rdkafka::consumer::Consumer;
use tokio_util::sync::CancellationToken;

use super::topic_ids::{self, TopicId};
use super::{ConnectionTrouble, LiveConsumer, LivePositions};
use crate::domain::{LogTag, TopicKind};

/// One watermark look-up.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// When a partition's log was seen going backwards, and why.
type WentBack = (Instant, &'static str);

#[derive(Default)]
pub struct Watermarks {
    highs: RwLock<HashMap<(TopicKind, i32), i64>>,
    last_answer: Mutex<Option<Instant>>,
    /// Partitions whose log went backwards, since when, and why: until a
    /// look-up sent after that finds live delivery within the log.
    resets: Mutex<HashMap<(TopicKind, i32), WentBack>>,
    /// Each CRM topic's id as last looked up, and per partition where live
    /// delivery stood before that look-up was sent (all of it read from the
    /// topic of that id). Written by the look-up task only.
    ids: Mutex<HashMap<TopicKind, KnownId>>,
    /// Partitions found recreated (a new topic id) or whose log ends below
    /// live delivery, for the consume loop to move back to the new log's
    /// start (`consumer.rs`); `recreated_signal` wakes it when it waits.
    recreated: Mutex<Vec<Recreated>>,
    pub(super) recreated_signal: tokio::sync::Notify,
}

struct KnownId {
    id: TopicId,
    /// Per partition, live delivery's end and reset epoch before the last
    /// look-up that found `id`.
    stood: HashMap<i32, (i64, u64)>,
}

/// A partition whose topic was found with a new id: the log live delivery
/// reads is not the one it read before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Recreated {
    pub topic: TopicKind,
    pub partition: i32,
    /// Where live delivery stood before the last look-up that still found
    /// the old id: every offset below it was read from the old log.
    pub old_end: i64,
    /// The partition's reset epoch then: if it moved since, the consumer
    /// has already restarted at the new log's start (a fetch out of range).
    pub reset_epoch: u64,
    /// `topic_recreated` (a new id) or `log_end_behind` (a log end below
    /// live delivery: the consumer may get no record to show it).
    pub reason: &'static str,
    /// The new log's tag (of the new id), for `topic_recreated`.
    pub log: Option<LogTag>,
}

impl Watermarks {
    /// The broker answered: `high` is the partition's last stable offset now.
    pub fn record(&self, topic: TopicKind, partition: i32, high: i64) {
        self.highs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert((topic, partition), high);
        self.answered();
    }

    /// When Kafka last answered; `None` if it never has.
    pub fn last_answer(&self) -> Option<Instant> {
        *self.last_answer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Kafka answered, without a watermark.
    fn answered(&self) {
        *self.last_answer.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    /// The partition's log went backwards (`reason`): not ready until a
    /// look-up sent from now on finds live delivery within it.
    pub fn went_back(&self, topic: TopicKind, partition: i32, reason: &'static str) {
        self.resets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((topic, partition), (Instant::now(), reason));
    }

    /// A look-up sent at `sent` found live delivery within the partition's
    /// log: a reset noted before then is over.
    pub(super) fn within(&self, topic: TopicKind, partition: i32, sent: Instant) {
        let mut resets = self.resets.lock().unwrap_or_else(|e| e.into_inner());
        if resets
            .get(&(topic, partition))
            .is_some_and(|(at, _)| *at < sent)
        {
            resets.remove(&(topic, partition));
        }
    }

    /// Why the partition's log is noted as gone backwards, if it is.
    fn pending(&self, topic: TopicKind, partition: i32) -> Option<&'static str> {
        let resets = self.resets.lock().unwrap_or_else(|e| e.into_inner());
        resets.get(&(topic, partition)).map(|(_, reason)| *reason)
    }

    /// A partition whose log went backwards and is not known to be read
    /// again from its new start, and why.
    pub fn reset_pending(&self) -> Option<((TopicKind, i32), &'static str)> {
        let resets = self.resets.lock().unwrap_or_else(|e| e.into_inner());
        resets.iter().map(|(k, (_, reason))| (*k, *reason)).min()
    }

    /// Partitions found recreated since the last call.
    pub(super) fn take_recreated(&self) -> Vec<Recreated> {
        std::mem::take(&mut *self.recreated.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// What the look-up sent when live delivery stood at `stood` (per
    /// assigned partition of `topic`: end and reset epoch) found: `id`.
    /// Returns the partitions to move back when the id changed.
    fn saw_id(
        &self,
        topic: TopicKind,
        id: TopicId,
        stood: HashMap<i32, (i64, u64)>,
    ) -> Option<(TopicId, Vec<Recreated>)> {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        let known = ids.insert(topic, KnownId { id, stood })?;
        if known.id == id {
            return None;
        }
        let recreated: Vec<Recreated> = known
            .stood
            .iter()
            .map(|(&partition, &(old_end, reset_epoch))| Recreated {
                topic,
                partition,
                old_end,
                reset_epoch,
                reason: "topic_recreated",
                log: Some(id.tag()),
            })
            .collect();
        self.restart(&recreated);
        Some((known.id, recreated))
    }

    /// Hands `partitions` to the consume loop, to move back to their new
    /// log's start.
    fn restart(&self, partitions: &[Recreated]) {
        self.recreated
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(partitions.iter().copied());
        self.recreated_signal.notify_one();
    }

    /// Assignment looked `topic`'s id up when it assigned its partitions
    /// at `stood`: known from then on, unless a look-up knew it already.
    pub(super) fn assigned_id(
        &self,
        topic: TopicKind,
        id: TopicId,
        stood: HashMap<i32, (i64, u64)>,
    ) {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        ids.entry(topic).or_insert(KnownId { id, stood });
    }

    /// Every partition's last known high watermark.
    pub fn highs(&self) -> Vec<((TopicKind, i32), i64)> {
        let highs = self.highs.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<_> = highs.iter().map(|(k, v)| (*k, *v)).collect();
        out.sort_unstable();
        out
    }

    /// How long since the broker last answered; `None` if it never has.
    pub fn silence(&self) -> Option<Duration> {
        self.last_answer().map(|at| at.elapsed())
    }
}

/// Looks the assigned partitions' watermarks up every `every` until shutdown.
pub async fn keep_watermarks(
    consumer: Arc<LiveConsumer>,
    topics: HashMap<String, TopicKind>,
    watermarks: Arc<Watermarks>,
    live: Arc<LivePositions>,
    trouble: Arc<ConnectionTrouble>,
    every: Duration,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let round = {
            let (consumer, topics, watermarks, live) = (
                consumer.clone(),
                topics.clone(),
                watermarks.clone(),
                live.clone(),
            );
            tokio::task::spawn_blocking(move || look_up(&consumer, &topics, &watermarks, &live))
        };
        // Awaited even at shutdown (each look-up is bounded by
        // LOOKUP_TIMEOUT, and shutdown waits for this task): the round holds
        // a handle on the consumer, and the last handle dropped closes it,
        // which waits on Kafka for ever once Kafka is gone. Dropped here,
        // while shutdown still has Kafka, the consumer closes at once.
        let looked_up = round.await;
        if shutdown.is_cancelled() {
            return;
        }
        if let Some(answer) = watermarks.last_answer() {
            trouble.answered(answer);
        }
        match looked_up {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "watermark look-up failed"),
            Err(e) => tracing::error!(error = %e, "watermark look-up task failed"),
        }
    }
}

/// One round over the current assignment; if it fails, whether the cluster
/// answers at all. Blocking (librdkafka round trips).
fn look_up(
    consumer: &LiveConsumer,
    topics: &HashMap<String, TopicKind>,
    watermarks: &Watermarks,
    live: &LivePositions,
) -> anyhow::Result<()> {
    let assigned = consumer.assignment()?;
    // Ids are asked first, so a recreated topic is told by its id before
    // its log's end is; a failure leaves the watermarks to be read.
    if let Err(e) = read_ids(consumer, topics, &assigned, watermarks, live) {
        tracing::debug!(error = %e, "topic id look-up failed");
    }
    let round = read_highs(consumer, topics, &assigned, watermarks, live);
    if round.is_err()
        && let Some(topic) = topics.keys().next()
        && consumer.fetch_metadata(Some(topic), LOOKUP_TIMEOUT).is_ok()
    {
        watermarks.answered();
    }
    round
}

/// Looks up the id of every topic with partitions assigned (one request);
/// a changed id is handed to the consume loop ([`Watermarks::take_recreated`]).
/// A topic deleted and not recreated yet keeps its old id until it is.
fn read_ids(
    consumer: &LiveConsumer,
    topics: &HashMap<String, TopicKind>,
    assigned: &TopicPartitionList,
    watermarks: &Watermarks,
    live: &LivePositions,
) -> anyhow::Result<()> {
    let mut stood: HashMap<&str, HashMap<i32, (i64, u64)>> = HashMap::new();
    for element in assigned.elements() {
        let Some((name, &kind)) = topics.get_key_value(element.topic()) else {
            continue;
        };
        let partition = element.partition();
        // Read before the look-up is sent, as in `read_highs`.
        let end = live.end(kind, partition).unwrap_or(0);
        let epoch = live.reset_epoch(kind, partition);
        stood
            .entry(name.as_str())
            .or_default()
            .insert(partition, (end, epoch));
    }
    if stood.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = stood.keys().copied().collect();
    let ids = topic_ids::describe(consumer.client(), &names, LOOKUP_TIMEOUT)?;
    watermarks.answered();
    for (name, stood) in stood {
        let kind = topics[name];
        match ids.get(name) {
            Some(Ok(id)) => {
                let Some((old, recreated)) = watermarks.saw_id(kind, *id, stood) else {
                    // Known from here on if assignment's look-up failed.
                    live.known_log(kind, id.tag());
                    continue;
                };
                tracing::error!(
                    topic = name,
                    old_id = %old,
                    new_id = %id,
                    partitions = recreated.len(),
                    "the topic was deleted and recreated (its id changed); live \
                     delivery restarts at the new log's start"
                );
            }
            // Deleted and not recreated yet, or not answered: next round.
            Some(Err(code)) => tracing::debug!(topic = name, error = %code, "no topic id"),
            None => {}
        }
    }
    Ok(())
}

fn read_highs(
    consumer: &LiveConsumer,
    topics: &HashMap<String, TopicKind>,
    assigned: &TopicPartitionList,
    watermarks: &Watermarks,
    live: &LivePositions,
) -> anyhow::Result<()> {
    for element in assigned.elements() {
        let Some(&kind) = topics.get(element.topic()) else {
            continue;
        };
        let partition = element.partition();
        // Read before the look-up is sent: the log held all of it then.
        let (sent, stood) = (Instant::now(), live.end(kind, partition));
        let reset_epoch = live.reset_epoch(kind, partition);
        let (low, high) = consumer.fetch_watermarks(element.topic(), partition, LOOKUP_TIMEOUT)?;
        watermarks.record(kind, partition, high);
        match stood {
            Some(stood) if high < stood => {
                tracing::error!(
                    topic = element.topic(),
                    partition,
                    log_end = high,
                    live_position = stood,
                    "the partition's log went backwards (topic recreated or broker data lost); \
                     waiting for the consumer to re-read it from its new start"
                );
                let again = watermarks.pending(kind, partition) == Some("log_end_behind");
                watermarks.went_back(kind, partition, "log_end_behind");
                // The consumer restarts at the log's start once it reads a
                // record there (`consumer.rs`); with none (a topic
                // recreated empty, a log lost to its end) it never would.
                // Moved back when two look-ups in a row find it, not on one
                // answer alone.
                if again {
                    watermarks.restart(&[Recreated {
                        topic: kind,
                        partition,
                        old_end: low,
                        reset_epoch,
                        reason: "log_end_behind",
                        log: None,
                    }]);
                }
            }
            _ => watermarks.within(kind, partition, sent),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_id_hands_each_partition_to_the_consumer_with_where_the_old_one_was_last_seen() {
        let watermarks = Watermarks::default();
        let (old, new) = (TopicId::from_bits(1, 1), TopicId::from_bits(2, 2));
        let stood = |end| HashMap::from([(0, (end, 0))]);
        watermarks.assigned_id(TopicKind::Deals, old, stood(0));
        // A look-up knew it already: assignment does not move it back.
        watermarks.assigned_id(TopicKind::Deals, new, stood(0));
        assert_eq!(watermarks.saw_id(TopicKind::Deals, old, stood(10)), None);
        assert!(watermarks.take_recreated().is_empty());
        let (was, recreated) = watermarks
            .saw_id(TopicKind::Deals, new, stood(30))
            .expect("a new id");
        let expected = Recreated {
            topic: TopicKind::Deals,
            partition: 0,
            old_end: 10,
            reset_epoch: 0,
            reason: "topic_recreated",
            log: Some(new.tag()),
        };
        assert_eq!((was, recreated), (old, vec![expected]));
        assert_eq!(watermarks.take_recreated(), [expected]);
        assert!(watermarks.take_recreated().is_empty(), "once");
        assert_eq!(watermarks.saw_id(TopicKind::Deals, new, stood(30)), None);
    }
}
