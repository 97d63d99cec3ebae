//! Each partition's bookkeeping on the consume loop: its live position,
//! the last offset handled but not yet stored, and storing offsets for
//! librdkafka to commit. A log found going backwards is handled here
//! ([`went_back`]); a recreated topic's restart is in `recreated.rs`.

use rdkafka::Offset;
use rdkafka::consumer::Consumer;

use super::Stages;
use super::recreated::Skip;
use crate::domain::{Position, TopicKind};
use crate::kafka::LiveConsumer;
use crate::kafka::positions::{LivePartition, LivePositions};

/// The partitions the consume loop has seen; their live position is kept
/// here, not looked up per record.
pub(super) struct Partitions<'a> {
    pub(super) live: &'a LivePositions,
    /// Few (a partition per topic and partition number): a linear search
    /// beats hashing.
    seen: Vec<Seen<'a>>,
}

pub(super) struct Seen<'a> {
    pub(super) topic: TopicKind,
    pub(super) topic_name: &'a str,
    pub(super) partition: i32,
    pub(super) live: LivePartition,
    unstored: Option<i64>,
    /// What live delivery handed on before the topic's new id showed that
    /// its log was new (see [`Partitions::restart_recreated`]): a record of
    /// the new log read again there is skipped once, not delivered twice.
    pub(super) skip: Option<Skip>,
    /// Sought back to the new log's start; no record of it read yet. Until
    /// one is, the consumer's position may still be the old one.
    pub(super) restarting: bool,
}

impl<'a> Partitions<'a> {
    pub(super) fn new(live: &'a LivePositions) -> Self {
        Self {
            live,
            seen: Vec::new(),
        }
    }

    pub(super) fn get(&mut self, position: Position, topic_name: &'a str) -> &mut Seen<'a> {
        let found = self
            .seen
            .iter()
            .position(|s| s.topic == position.topic && s.partition == position.partition);
        let at = found.unwrap_or_else(|| {
            self.seen.push(Seen {
                topic: position.topic,
                topic_name,
                partition: position.partition,
                live: self.live.partition(position),
                unstored: None,
                skip: None,
                restarting: false,
            });
            self.seen.len() - 1
        });
        &mut self.seen[at]
    }

    /// The partition of a record just read at `position`: a record below
    /// live delivery's position shows that librdkafka restarted the log
    /// (`offsets_restarted`, see the module doc), and live delivery moves
    /// back to it. Notes the payload as received.
    pub(super) fn receive(
        &mut self,
        stages: &Stages<'_>,
        position: Position,
        topic_name: &'a str,
        payload: &[u8],
    ) -> &mut Seen<'a> {
        let partition = self.get(position, topic_name);
        partition.restarting = false;
        if position.offset < partition.live.next() {
            went_back(stages, partition, position.offset, "offsets_restarted");
        }
        stages.live.received(position, payload);
        partition
    }

    /// Moves live delivery past what the consumer stepped over without a
    /// record to hand on: a transaction's commit or abort marker, and the
    /// aborted records before an abort marker. librdkafka counts them in the
    /// partition's position once polled; without this, a partition whose
    /// last offset is a marker would stay one short of its last stable
    /// offset for ever (a lag of 1, a committed offset one short, a replay
    /// ending before the marker). Call only when no record is ready: every
    /// record polled has then been handled, none is in flight.
    pub(super) fn step_over_markers(
        &mut self,
        consumer: &LiveConsumer,
        topics: &[(&'a str, TopicKind)],
    ) {
        let positions = match consumer.position() {
            Ok(positions) => positions,
            Err(e) => {
                tracing::debug!(error = %e, "reading the consumer's positions failed");
                return;
            }
        };
        let live = self.live;
        for element in positions.elements() {
            // Invalid until the partition's first record or marker is polled.
            let Offset::Offset(next) = element.offset() else {
                continue;
            };
            let Some(&(topic_name, topic)) = topics.iter().find(|(n, _)| *n == element.topic())
            else {
                continue;
            };
            let partition = element.partition();
            let position = Position {
                topic,
                partition,
                offset: next,
            };
            let seen = self.get(position, topic_name);
            if seen.restarting {
                continue;
            }
            if seen.live.step_to(next) {
                live.recent.skip_to(topic, partition, next);
                // Stored as handled: the marker at `next - 1` is.
                seen.unstored = Some(next - 1);
            }
        }
    }

    /// Stores the offsets handled since the last call, for librdkafka to
    /// commit. Called every [`RECORDS_PER_TURN`](super::read::RECORDS_PER_TURN)
    /// records, before the loop waits and when it ends: one store per
    /// partition instead of one per record (each takes the partition's lock
    /// in librdkafka).
    pub(super) fn store(&mut self, consumer: &LiveConsumer) {
        for seen in &mut self.seen {
            if let Some(offset) = seen.unstored.take()
                && let Err(e) = consumer.store_offset(seen.topic_name, seen.partition, offset)
            {
                tracing::warn!(error = %e, "storing offset failed");
            }
        }
    }
}

impl Seen<'_> {
    /// The record at `offset` was delivered, or skipped: its offset is
    /// stored at the next [`Partitions::store`].
    pub(super) fn handled(&mut self, offset: i64) {
        self.live.handled(offset);
        self.unstored = Some(offset);
    }
}

/// The partition's log went backwards (`reason`): the consumer read
/// `offset`, below where live delivery stands, after librdkafka reset to
/// the new log's start (`offsets_restarted`, see the module doc), or the
/// topic's id changed and the consumer was sought to the start
/// (`topic_recreated`). Says so, and moves live delivery back to `offset`
/// before the next record is handled.
pub(super) fn went_back(
    stages: &Stages<'_>,
    partition: &mut Seen<'_>,
    offset: i64,
    reason: &'static str,
) {
    tracing::error!(
        reason,
        topic = partition.topic_name,
        partition = partition.partition,
        live_position = partition.live.next(),
        new_position = offset,
        "the partition's log went backwards (topic recreated or broker data lost): \
         live delivery restarts at the new log's start; clients resuming from \
         older cursors get a `reset` gap"
    );
    stages
        .metrics
        .partition_resets
        .inc(partition.topic_name, partition.partition, reason);
    stages
        .watermarks
        .went_back(partition.topic, partition.partition, reason);
    stages
        .live
        .reset(partition.topic, partition.partition, offset);
    // Nothing stored from the old log may be committed over the new one.
    partition.unstored = None;
    partition.skip = None;
}
