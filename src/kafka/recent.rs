//! The newest records of every partition, kept in memory as live delivery
//! reads them, so that a replay starting near the live position (a client
//! reconnecting, every client after a restart) reads memory, not Kafka.
//!
//! Records are kept as Kafka's bytes (decoded again by the replay that needs
//! them), appended into segments of up to 64 KiB per partition: no
//! allocation per record, and eviction drops a whole segment, the node's
//! oldest first, once `replay.memory_bytes` is exceeded (the segment each
//! partition is filling is never evicted, so that much may come on top).
//!
//! Each partition knows the offset from which it holds *every* record up to
//! live delivery's position (`covered_from`): where live delivery started
//! (its assignment), moved past each segment evicted. A replay may read a
//! range from memory only when it starts at or after that offset; anything
//! older is read from Kafka.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::sync::{Mutex, MutexGuard};

use crate::domain::{Position, TopicKind};

/// Largest segment; a small budget gets smaller ones (a sixteenth of it).
const SEGMENT_BYTES: usize = 64 << 10;
/// What a record's place in a segment's index costs.
const INDEX_BYTES: usize = 12;

type PartitionKey = (TopicKind, i32);

pub struct RecentRecords {
    budget: usize,
    segment_bytes: usize,
    // std Mutex: held to append one record or copy out one chunk.
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    partitions: HashMap<PartitionKey, Tail>,
    /// Full segments in the order they filled up, named by partition: the
    /// front is the node's oldest.
    sealed: VecDeque<PartitionKey>,
    /// Capacity of every segment held, plus their indexes.
    bytes: usize,
}

struct Tail {
    /// Every record from this offset to `next` is in `segments`.
    covered_from: i64,
    /// One past the last offset appended.
    next: i64,
    /// Oldest first; the last is the one being filled.
    segments: VecDeque<Segment>,
}

impl Tail {
    fn starting_at(offset: i64) -> Self {
        Self {
            covered_from: offset,
            next: offset,
            segments: VecDeque::new(),
        }
    }
}

/// Records back to back in one buffer, never empty.
struct Segment {
    data: Vec<u8>,
    /// Each record's offset, and where its bytes start in `data`.
    offsets: Vec<i64>,
    starts: Vec<u32>,
}

impl Segment {
    fn cost(&self) -> usize {
        self.data.capacity() + self.offsets.len() * INDEX_BYTES
    }

    fn fits(&self, len: usize) -> bool {
        self.data.len() + len <= self.data.capacity()
    }

    fn push(&mut self, offset: i64, payload: &[u8]) {
        self.offsets.push(offset);
        self.starts.push(self.data.len() as u32);
        self.data.extend_from_slice(payload);
    }

    fn record(&self, i: usize) -> &[u8] {
        let end = self
            .starts
            .get(i + 1)
            .map_or(self.data.len(), |end| *end as usize);
        &self.data[self.starts[i] as usize..end]
    }
}

/// Records copied out of memory: offsets and bytes, oldest first.
#[derive(Debug, Default, PartialEq)]
pub struct RecentChunk {
    bytes: Vec<u8>,
    records: Vec<(i64, Range<usize>)>,
}

impl RecentChunk {
    fn push(&mut self, offset: i64, payload: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(payload);
        self.records.push((offset, start..self.bytes.len()));
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn last_offset(&self) -> Option<i64> {
        self.records.last().map(|(offset, _)| *offset)
    }

    pub fn iter(&self) -> impl Iterator<Item = (i64, &[u8])> {
        self.records
            .iter()
            .map(|(offset, range)| (*offset, &self.bytes[range.clone()]))
    }
}

impl RecentRecords {
    /// Keeps about `budget` bytes; zero keeps nothing (every replay reads
    /// Kafka).
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            segment_bytes: (budget / 16).clamp(1, SEGMENT_BYTES),
            state: Mutex::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Live delivery (re)starts in a partition at `offset`. What is held
    /// stays unless `offset` lies beyond it (the records in between will
    /// never be read): the consumer may have read its first records before
    /// this is called, and if it reads older ones again, `append` starts
    /// over there.
    pub fn start_at(&self, topic: TopicKind, partition: i32, offset: i64) {
        if self.budget == 0 {
            return;
        }
        let mut state = self.state();
        match state.partitions.get(&(topic, partition)) {
            Some(tail) if offset <= tail.next => {}
            _ => state.restart((topic, partition), offset),
        }
    }

    /// The partition's log went backwards (recreated, or the broker lost
    /// it): everything held is from the old log and goes; memory holds the
    /// new log from `offset` on.
    pub fn reset(&self, topic: TopicKind, partition: i32, offset: i64) {
        if self.budget == 0 {
            return;
        }
        self.state().restart((topic, partition), offset);
    }

    /// Keeps the record live delivery is about to handle. Call before live
    /// delivery marks it in flight, so that any replay ending at live
    /// delivery's position finds it here.
    pub fn append(&self, position: Position, payload: &[u8]) {
        if self.budget == 0 {
            return;
        }
        let key = (position.topic, position.partition);
        let mut guard = self.state();
        match guard.partitions.get(&key) {
            // Read again (a seek back): what is held no longer joins up.
            Some(tail) if position.offset < tail.next => guard.restart(key, position.offset),
            Some(_) => {}
            None => guard.restart(key, position.offset),
        }
        let State {
            partitions,
            sealed,
            bytes,
        } = &mut *guard;
        let tail = partitions.get_mut(&key).expect("the tail was just ensured");
        if !tail.segments.back().is_some_and(|s| s.fits(payload.len())) {
            if !tail.segments.is_empty() {
                sealed.push_back(key);
            }
            let capacity = self.segment_bytes.max(payload.len());
            tail.segments.push_back(Segment {
                data: Vec::with_capacity(capacity),
                offsets: Vec::new(),
                starts: Vec::new(),
            });
            *bytes += capacity;
        }
        let segment = tail
            .segments
            .back_mut()
            .expect("a segment was just ensured");
        segment.push(position.offset, payload);
        *bytes += INDEX_BYTES;
        tail.next = position.offset + 1;
        while guard.bytes > self.budget && guard.evict_oldest() {}
    }

    /// Live delivery stepped over everything before `next` without a record
    /// (transaction markers, aborted records): memory holds that stretch,
    /// which has nothing to read, so a replay ending there still reads
    /// memory.
    pub fn skip_to(&self, topic: TopicKind, partition: i32, next: i64) {
        if self.budget == 0 {
            return;
        }
        if let Some(tail) = self.state().partitions.get_mut(&(topic, partition)) {
            tail.next = tail.next.max(next);
        }
    }

    /// Whether every record of the partition from `from` on is held.
    pub fn covers(&self, topic: TopicKind, partition: i32, from: i64) -> bool {
        self.state()
            .partitions
            .get(&(topic, partition))
            .is_some_and(|tail| tail.covered_from <= from)
    }

    /// The held records of a partition in `[from, to)`, at most `max` of
    /// them, oldest first; `None` if some of that range is no longer (or not
    /// yet) held, and must be read from Kafka.
    pub fn read(
        &self,
        topic: TopicKind,
        partition: i32,
        from: i64,
        to: i64,
        max: usize,
    ) -> Option<RecentChunk> {
        let state = self.state();
        let tail = state.partitions.get(&(topic, partition))?;
        if from < tail.covered_from || to > tail.next {
            return None;
        }
        let mut chunk = RecentChunk::default();
        // The last segment starting at or before `from` holds it, if any does.
        let first = tail
            .segments
            .partition_point(|s| s.offsets[0] <= from)
            .saturating_sub(1);
        for segment in tail.segments.range(first..) {
            let start = segment.offsets.partition_point(|offset| *offset < from);
            for (i, &offset) in segment.offsets.iter().enumerate().skip(start) {
                if offset >= to || chunk.len() == max {
                    return Some(chunk);
                }
                chunk.push(offset, segment.record(i));
            }
        }
        Some(chunk)
    }

    /// Bytes held now: segments' capacity plus their indexes.
    pub fn bytes(&self) -> usize {
        self.state().bytes
    }
}

impl State {
    /// Drops what is held for a partition: it is held from `offset` on.
    fn restart(&mut self, key: PartitionKey, offset: i64) {
        if let Some(dropped) = self.partitions.insert(key, Tail::starting_at(offset)) {
            self.bytes -= dropped.segments.iter().map(Segment::cost).sum::<usize>();
            self.sealed.retain(|sealed| *sealed != key);
        }
    }

    /// Drops the node's oldest full segment; false if there is none.
    fn evict_oldest(&mut self) -> bool {
        let Some(key) = self.sealed.pop_front() else {
            return false;
        };
        let tail = self
            .partitions
            .get_mut(&key)
            .expect("every sealed segment's partition has a tail");
        let segment = tail
            .segments
            .pop_front()
            .expect("a sealed segment is never the one being filled");
        self.bytes -= segment.cost();
        tail.covered_from = tail.segments.front().map_or(tail.next, |s| s.offsets[0]);
        true
    }
}

#[cfg(test)]
mod tests;
