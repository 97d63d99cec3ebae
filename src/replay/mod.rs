//! Replay: what a client missed since its cursor (`domain/cursor.rs`), read from the live consumer's recent
//! records when they reach back far enough, else from Kafka with consumers
//! of its own.
//!
//! - `plan.rs`: from a cursor and Kafka's extents, the ranges to read and the
//!   gaps to report (retention, limit, reset). Pure.
//! - `reader.rs`: reads ranges from memory (see `kafka/recent.rs`) or with
//!   pooled assign-and-seek consumers, never touching the live consumer.
//! - `slots.rs`: how many replays read at once, node-wide and per
//!   organisation and user (the gateway's replay worker holds a slot while
//!   it reads), so a storm of reconnecting clients queues instead of
//!   starving live delivery, and one tenant cannot take it all. Pure.
//!
//! The seam with live delivery (no gap, no duplicate) is the gateway's job:
//! see `gateway/replay.rs`.

mod plan;
mod reader;
mod slots;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use plan::{Extent, Gap, GapReason, Plan, Range, catch_up, plan};
pub use reader::{ReadFailed, Replayer};
pub use slots::{Shares, Slot, Slots};

/// How replays read what a resuming client missed, and how many at once.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ReplayConfig {
    /// How far back one replay reads, per partition; older misses are gaps.
    pub max_records_per_partition: i64,
    /// Replays reading at once on this node; more wait their turn (see
    /// `slots.rs`). A replay waiting for room in a full socket gives its
    /// slot up and queues again to read on.
    pub concurrency: usize,
    /// Of `concurrency`, how many one organisation's replays may hold at
    /// once (capped at `concurrency`): below the node's total, so one
    /// tenant's resumes leave room for the others'. A freed slot goes to the
    /// waiting organisation holding fewest.
    pub concurrency_per_organization: usize,
    /// Of `concurrency`, how many one user's replays may hold at once
    /// (capped at `concurrency`): a user's many tabs resume one after another.
    pub concurrency_per_user: usize,
    /// Replays one connection may have queued or running at once; one more
    /// is refused with `RATE_LIMITED` (`details.reason: "replay_limit"`).
    /// Re-subscribing with `since` to a key that already replays replaces
    /// that replay and counts once, so this bounds the work one connection
    /// can queue to this many replays (the 1,000-subscription limit alone
    /// counts only new keys).
    pub max_replays_per_connection: usize,
    /// Live events held for a connection while its replay finishes (a
    /// replay chases the stream until fewer than half this many records are
    /// left to read); beyond this the client is cut off and resumes later
    /// from its cursor.
    pub live_buffer: usize,
    /// A replay still running after this many seconds is abandoned (the
    /// client is cut off, and resumes later).
    pub timeout_seconds: u64,
    /// Bytes of the newest records kept in memory (across partitions), from
    /// which replays that start recently enough are served without Kafka;
    /// `0` reads every replay from Kafka.
    pub memory_bytes: usize,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            // 1M records at ~300 B is ~300 MB of reading: seconds, not minutes.
            max_records_per_partition: 1_000_000,
            // Two cores: a few replays saturate decoding; more only queue.
            concurrency: 4,
            // Half the node: two organisations resuming at once each get half.
            concurrency_per_organization: 2,
            // One: a user's tabs take turns; its other slots go to colleagues.
            concurrency_per_user: 1,
            // `limits.max_subscriptions`: a page resuming every subscription
            // it may hold at once (the client module does, on reconnect) is
            // never refused; with one replay per key, the limit binds only
            // when that one is lowered.
            max_replays_per_connection: 1000,
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
        anyhow::ensure!(
            self.concurrency_per_organization > 0 && self.concurrency_per_user > 0,
            "replay.concurrency_per_organization and replay.concurrency_per_user must be positive"
        );
        anyhow::ensure!(
            self.max_replays_per_connection > 0,
            "replay.max_replays_per_connection must be positive"
        );
        anyhow::ensure!(self.live_buffer > 0, "replay.live_buffer must be positive");
        Ok(())
    }
}
