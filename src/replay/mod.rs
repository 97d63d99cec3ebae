//! Replay: what a client missed, read from the live consumer's recent
//! records when they reach back far enough, else from Kafka with consumers
//! of its own.
//!
//! - `cursor.rs`: the resume cursor clients hold (per-partition offsets).
//! - `plan.rs`: from a cursor and Kafka's extents, the ranges to read and the
//!   gaps to report (retention, limit). Pure.
//! - `reader.rs`: reads ranges from memory (see `kafka/recent.rs`) or with
//!   pooled assign-and-seek consumers, never touching the live consumer;
//!   concurrency is bounded by a semaphore, so a storm of reconnecting
//!   clients queues instead of starving live delivery.
//!
//! The seam with live delivery (no gap, no duplicate) is the gateway's job:
//! see `gateway/replay.rs`.

mod cursor;
mod plan;
mod reader;

use serde::Deserialize;

pub use cursor::{Cursor, CursorError};
pub use plan::{Extent, Gap, GapReason, Plan, Range, catch_up, plan};
pub use reader::{ReadFailed, Replayer};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplayConfig {
    /// How far back one replay reads, per partition; older misses are gaps.
    pub max_records_per_partition: i64,
    /// Replays running at once on this node; more wait their turn.
    pub concurrency: usize,
    /// Live events held for a connection while its replay finishes (a
    /// replay chases the stream until fewer than half this many records are
    /// left to read); beyond this the client is cut off and resumes later
    /// from its cursor.
    pub live_buffer: usize,
    /// A replay still running after this long is abandoned (client cut off).
    pub timeout_seconds: u64,
    /// Bytes of the newest records kept in memory (across partitions), from
    /// which replays that start recently enough are served without Kafka.
    pub memory_bytes: usize,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            // 1M records at ~300 B is ~300 MB of reading: seconds, not minutes.
            max_records_per_partition: 1_000_000,
            // Two cores: a few replays saturate decoding; more only queue.
            concurrency: 4,
            // ~10k events of a few hundred bytes: a few MB per replaying client.
            live_buffer: 10_000,
            timeout_seconds: 120,
            // ~200k records of ~300 B: the last minutes of a busy node.
            memory_bytes: 64 << 20,
        }
    }
}

impl ReplayConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.max_records_per_partition > 0,
            "replay.max_records_per_partition must be positive"
        );
        anyhow::ensure!(self.concurrency > 0, "replay.concurrency must be positive");
        anyhow::ensure!(self.live_buffer > 0, "replay.live_buffer must be positive");
        Ok(())
    }
}
