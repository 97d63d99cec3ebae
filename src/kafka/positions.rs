//! How far live delivery has got in each partition.
//!
//! The live consumer records the offset after each record it has handed to
//! every matching socket. A new subscription's resume cursor starts there:
//! everything from that offset on reaches it live.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::domain::{Position, TopicKind};

#[derive(Default)]
pub struct LivePositions {
    // The write lock is taken only when a partition is first seen; the hot
    // path takes the read lock and stores into an atomic.
    next: RwLock<HashMap<(TopicKind, i32), AtomicI64>>,
}

impl LivePositions {
    /// Sets where live delivery starts in a partition (on assignment).
    pub fn start_at(&self, topic: TopicKind, partition: i32, offset: i64) {
        let mut next = self.next.write().unwrap_or_else(|e| e.into_inner());
        next.insert((topic, partition), AtomicI64::new(offset));
    }

    /// Records that the record at `position` has been handled.
    pub fn handled(&self, position: Position) {
        let key = (position.topic, position.partition);
        let next = position.offset + 1;
        if let Some(slot) = self
            .next
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            slot.fetch_max(next, Ordering::AcqRel);
            return;
        }
        self.start_at(position.topic, position.partition, next);
    }

    /// The next offset live delivery will handle, per partition of `topic`.
    pub fn of(&self, topic: TopicKind) -> Vec<(i32, i64)> {
        let next = self.next.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<(i32, i64)> = next
            .iter()
            .filter(|((t, _), _)| *t == topic)
            .map(|((_, p), offset)| (*p, offset.load(Ordering::Acquire)))
            .collect();
        out.sort_unstable();
        out
    }
}
