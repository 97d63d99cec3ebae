//! How far live delivery has got in each partition.
//!
//! Replay ends where live delivery stands: a record before that point may
//! have been routed before a replaying subscription existed (so the replay
//! must send it), a record after it will be routed after (so live delivery
//! holds it). Both sides are read from here, never from the broker's high
//! watermark, which can run ahead of (or, on some Kafka-compatible brokers,
//! lag behind) what live delivery has handled.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::domain::{Position, TopicKind};

/// No record in flight.
const IDLE: i64 = -1;

#[derive(Default)]
struct Partition {
    /// Every record before this offset has been handled.
    next: AtomicI64,
    /// The record being routed right now, or `IDLE`.
    in_flight: AtomicI64,
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

#[derive(Default)]
pub struct LivePositions {
    // The write lock is taken only when a partition is first seen; the hot
    // path takes the read lock and stores into atomics.
    partitions: RwLock<HashMap<(TopicKind, i32), Partition>>,
}

impl LivePositions {
    /// Sets where live delivery starts in a partition (on assignment).
    pub fn start_at(&self, topic: TopicKind, partition: i32, offset: i64) {
        let mut partitions = self.partitions.write().unwrap_or_else(|e| e.into_inner());
        let slot = partitions.entry((topic, partition)).or_default();
        slot.next.store(offset, Ordering::SeqCst);
        slot.in_flight.store(IDLE, Ordering::SeqCst);
    }

    fn with<R>(&self, position: Position, f: impl Fn(&Partition) -> R) -> R {
        let key = (position.topic, position.partition);
        if let Some(slot) = self
            .partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return f(slot);
        }
        self.start_at(position.topic, position.partition, position.offset);
        f(&self.partitions.read().unwrap_or_else(|e| e.into_inner())[&key])
    }

    /// The record at `position` is about to be routed.
    pub fn routing(&self, position: Position) {
        self.with(position, |p| {
            p.in_flight.store(position.offset, Ordering::SeqCst)
        });
    }

    /// The record at `position` has been handled.
    pub fn handled(&self, position: Position) {
        self.with(position, |p| {
            p.next.fetch_max(position.offset + 1, Ordering::SeqCst);
            p.in_flight.store(IDLE, Ordering::SeqCst);
        });
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
        partitions.get(&(topic, partition)).map(Partition::end)
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
        let live = LivePositions::default();
        live.start_at(TopicKind::Deals, 0, 10);
        assert_eq!(live.end_of(TopicKind::Deals), [(0, 10)]);
        live.routing(at(10));
        assert_eq!(live.end_of(TopicKind::Deals), [(0, 11)]);
        live.handled(at(10));
        assert_eq!(live.end_of(TopicKind::Deals), [(0, 11)]);
        assert!(live.end_of(TopicKind::Email).is_empty());
    }
}
