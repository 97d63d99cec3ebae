//! How far live delivery has got in each partition, and the records it read
//! most recently there (see `recent.rs`).
//!
//! Replay ends where live delivery stands: a record before that point may
//! have been routed before a replaying subscription existed (so the replay
//! must send it), a record after it will be routed after (so live delivery
//! holds it). Both sides are read from here, never from the broker's
//! watermarks, which run ahead of what live delivery has handled.
//!
//! Offsets are not contiguous: a transaction's commit or abort marker takes
//! an offset, aborted records are never handed to a `read_committed`
//! consumer, and compaction removes records. So a position is "one past the
//! last offset handled *or stepped over*" ([`LivePartition::step_to`]), and
//! nothing here assumes that every offset below it held a record.
//!
//! A log can also go backwards: a topic deleted and recreated under the
//! same name, or a broker that lost its data, restarts its offsets. The
//! consumer then reads a record below live delivery's position (it resets
//! to the new log's start, `auto.offset.reset = earliest`), or is told so
//! by the watermark look-ups (a new topic id, a log end below the
//! position: `consumer.rs`), and calls [`LivePositions::reset`]: the position moves back, memory drops the old
//! log's records, and the partition's *reset epoch* moves on, so that
//! offsets remembered from the old log (a session's replay windows, see
//! `gateway/seam.rs`) are known to mean nothing in the new one.
//!
//! Each topic's *log tag* (a short tag of its id, [`LogTag`]) says which log
//! live delivery reads, for events' positions and cursors to carry: set
//! when the id is first known (assignment, or the first look-up), and
//! changed by the consume loop right after it moved live delivery back to a
//! recreated topic's new log, so that the tag and the reset epoch change
//! together between records.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::recent::RecentRecords;
use crate::domain::{LogTag, Position, TopicKind};

/// No record in flight.
const IDLE: i64 = -1;

#[derive(Default)]
struct Partition {
    /// Every record before this offset has been handled.
    next: AtomicI64,
    /// The record being routed right now, or `IDLE`.
    in_flight: AtomicI64,
    /// [`LivePositions::epoch`] when the partition's log last went
    /// backwards; 0 if it never did.
    reset_epoch: AtomicU64,
}

impl Partition {
    /// `next`, or one past a record in flight. Reading `in_flight` before
    /// `next` keeps this from ever being too low.
    fn end(&self) -> i64 {
        let in_flight = self.in_flight.load(Ordering::SeqCst);
        let next = self.next.load(Ordering::SeqCst);
        next.max(in_flight + 1)
    }
}

pub struct LivePositions {
    // The write lock is taken only when a partition is first seen. Entries
    // are never removed, so the consumer keeps each partition's
    // [`LivePartition`] and updates its atomics with no lookup per record.
    partitions: RwLock<HashMap<(TopicKind, i32), Arc<Partition>>>,
    /// Every record live delivery reads is kept here first, so a replay
    /// ending at [`Self::end`] may read it from memory.
    pub recent: RecentRecords,
    /// How many resets this node has seen, in any partition.
    epoch: AtomicU64,
    /// Each topic's log tag, where its id is known. Read for every event
    /// rendered, written once per topic and again per recreation.
    logs: RwLock<HashMap<TopicKind, LogTag>>,
}

/// Live delivery's position in one partition, as the consumer updates it.
#[derive(Clone)]
pub struct LivePartition(Arc<Partition>);

impl LivePartition {
    /// The record at `offset` is about to be routed.
    pub fn routing(&self, offset: i64) {
        self.0.in_flight.store(offset, Ordering::SeqCst);
    }

    /// The consumer stepped over everything before `next` without a record
    /// to hand on (transaction markers, aborted records): live delivery
    /// stands there. True if that moved it. Only the consume loop calls
    /// this, between records, so no record is in flight.
    pub fn step_to(&self, next: i64) -> bool {
        self.0.next.fetch_max(next, Ordering::SeqCst) < next
    }

    /// One past the last offset handled or stepped over.
    pub fn next(&self) -> i64 {
        self.0.next.load(Ordering::SeqCst)
    }

    /// The record at `offset` has been handled.
    pub fn handled(&self, offset: i64) {
        self.0.next.fetch_max(offset + 1, Ordering::SeqCst);
        self.0.in_flight.store(IDLE, Ordering::SeqCst);
    }
}

impl LivePositions {
    /// Keeps up to `recent_bytes` of the newest records in memory.
    pub fn new(recent_bytes: usize) -> Self {
        Self {
            partitions: RwLock::default(),
            recent: RecentRecords::new(recent_bytes),
            epoch: AtomicU64::new(0),
            logs: RwLock::default(),
        }
    }

    /// The tag of the log live delivery reads in `topic`, if its id is known.
    pub fn log(&self, topic: TopicKind) -> Option<LogTag> {
        let logs = self.logs.read().unwrap_or_else(|e| e.into_inner());
        logs.get(&topic).copied()
    }

    /// The topic's id is known: its tag, unless one is known already (a
    /// change of id is [`Self::new_log`]'s, once live delivery reads it).
    pub fn known_log(&self, topic: TopicKind, log: LogTag) {
        let mut logs = self.logs.write().unwrap_or_else(|e| e.into_inner());
        logs.entry(topic).or_insert(log);
    }

    /// Live delivery reads a recreated topic's new log, of tag `log`. Only
    /// the consume loop calls this, right after [`Self::reset`].
    pub fn new_log(&self, topic: TopicKind, log: LogTag) {
        let mut logs = self.logs.write().unwrap_or_else(|e| e.into_inner());
        logs.insert(topic, log);
    }

    /// The partition's log went backwards: live delivery restarts at
    /// `offset` of the new log, memory forgets the old log's records, and
    /// the partition's reset epoch moves to a new [`Self::epoch`]. Only the
    /// consume loop calls this, between records.
    pub fn reset(&self, topic: TopicKind, partition: i32, offset: i64) {
        self.recent.reset(topic, partition, offset);
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        let mut partitions = self.partitions.write().unwrap_or_else(|e| e.into_inner());
        let slot = partitions.entry((topic, partition)).or_default();
        slot.next.store(offset, Ordering::SeqCst);
        slot.in_flight.store(IDLE, Ordering::SeqCst);
        slot.reset_epoch.store(epoch, Ordering::SeqCst);
    }

    /// How many resets this node has seen: offsets remembered now are stale
    /// in a partition whose [`Self::reset_epoch`] later exceeds this.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// [`Self::epoch`] when the partition's log last went backwards; 0 if
    /// it never did.
    pub fn reset_epoch(&self, topic: TopicKind, partition: i32) -> u64 {
        let partitions = self.partitions.read().unwrap_or_else(|e| e.into_inner());
        partitions
            .get(&(topic, partition))
            .map_or(0, |p| p.reset_epoch.load(Ordering::SeqCst))
    }

    /// Sets where live delivery starts in a partition (on assignment).
    pub fn start_at(&self, topic: TopicKind, partition: i32, offset: i64) {
        self.recent.start_at(topic, partition, offset);
        self.set_next(topic, partition, offset);
    }

    fn set_next(&self, topic: TopicKind, partition: i32, offset: i64) {
        let mut partitions = self.partitions.write().unwrap_or_else(|e| e.into_inner());
        let slot = partitions.entry((topic, partition)).or_default();
        slot.next.store(offset, Ordering::SeqCst);
        slot.in_flight.store(IDLE, Ordering::SeqCst);
    }

    /// The partition of `position`; a partition not seen before starts at
    /// `position`.
    pub fn partition(&self, position: Position) -> LivePartition {
        let key = (position.topic, position.partition);
        if let Some(slot) = self
            .partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return LivePartition(slot.clone());
        }
        self.set_next(position.topic, position.partition, position.offset);
        LivePartition(self.partitions.read().unwrap_or_else(|e| e.into_inner())[&key].clone())
    }

    /// Live delivery read `payload` at `position`: it is kept in
    /// [`Self::recent`]. Called for every record, decodable or not, before
    /// its partition's [`LivePartition::routing`] or
    /// [`LivePartition::handled`], so that whatever lies before
    /// [`Self::end`] is held.
    pub fn received(&self, position: Position, payload: &[u8]) {
        self.recent.append(position, payload);
    }

    /// Per partition of `topic`, where live delivery stands (see [`Self::end`]).
    pub fn end_of(&self, topic: TopicKind) -> Vec<(i32, i64)> {
        let partitions = self.partitions.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<(i32, i64)> = partitions
            .iter()
            .filter(|((t, _), _)| *t == topic)
            .map(|((_, partition), p)| (*partition, p.end()))
            .collect();
        out.sort_unstable();
        out
    }

    /// The offset before which live delivery may have routed records in one
    /// partition, or `None` if live delivery has not started there.
    pub fn end(&self, topic: TopicKind, partition: i32) -> Option<i64> {
        let partitions = self.partitions.read().unwrap_or_else(|e| e.into_inner());
        partitions.get(&(topic, partition)).map(|p| p.end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(offset: i64) -> Position {
        Position {
            topic: TopicKind::Deals,
            partition: 0,
            offset,
        }
    }

    #[test]
    fn the_end_covers_a_record_in_flight() {
        let live = LivePositions::new(1024);
        live.start_at(TopicKind::Deals, 0, 10);
        assert_eq!(live.end_of(TopicKind::Deals), [(0, 10)]);
        live.received(at(10), b"record");
        live.partition(at(10)).routing(10);
        assert!(live.recent.read(TopicKind::Deals, 0, 10, 11, 8).is_some());
        assert_eq!(live.end_of(TopicKind::Deals), [(0, 11)]);
        live.partition(at(10)).handled(10);
        assert_eq!(live.end_of(TopicKind::Deals), [(0, 11)]);
        assert!(live.end_of(TopicKind::Email).is_empty());
    }

    #[test]
    fn stepping_over_a_marker_moves_the_end_forward_only() {
        let live = LivePositions::new(0);
        live.start_at(TopicKind::Deals, 0, 10);
        let partition = live.partition(at(10));
        partition.handled(10);
        assert!(partition.step_to(12), "a commit marker at 11");
        assert_eq!(live.end_of(TopicKind::Deals), [(0, 12)]);
        assert!(!partition.step_to(12));
        assert!(!partition.step_to(5), "never back");
        assert_eq!(live.end_of(TopicKind::Deals), [(0, 12)]);
    }

    #[test]
    fn a_reset_moves_the_position_back_and_the_epoch_on() {
        let live = LivePositions::new(1024);
        live.start_at(TopicKind::Deals, 0, 0);
        for offset in 0..5 {
            live.received(at(offset), b"old");
            live.partition(at(offset)).handled(offset);
        }
        assert_eq!(
            (live.epoch(), live.reset_epoch(TopicKind::Deals, 0)),
            (0, 0)
        );
        live.reset(TopicKind::Deals, 0, 0);
        assert_eq!(live.end(TopicKind::Deals, 0), Some(0));
        assert_eq!(
            (live.epoch(), live.reset_epoch(TopicKind::Deals, 0)),
            (1, 1)
        );
        assert_eq!(live.reset_epoch(TopicKind::Deals, 1), 0);
        assert_eq!(
            live.recent
                .read(TopicKind::Deals, 0, 0, 0, 8)
                .map(|c| c.len()),
            Some(0),
            "the old log's records are gone from memory"
        );
        live.received(at(0), b"new");
        live.partition(at(0)).handled(0);
        let chunk = live.recent.read(TopicKind::Deals, 0, 0, 1, 8).unwrap();
        assert_eq!(chunk.iter().collect::<Vec<_>>(), [(0, &b"new"[..])]);
    }
}
