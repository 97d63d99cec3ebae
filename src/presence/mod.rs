//! Collaboration rooms across bridge nodes: who is in a room (presence) and
//! who there is typing, shared through a Kafka topic of the bridge's own so
//! Kafka stays the only engine the nodes share.
//!
//! - `roster.rs`: the state machine: rooms, per-user presence over sockets
//!   and instances, typing throttle and expiry. Pure.
//! - `wire.rs`: the records on the presence topic.
//! - `link.rs`: [`Presence`], the roster behind a lock, wired to Kafka: it
//!   publishes this instance's changes, applies the others', sends heartbeats
//!   and times out instances that stop (a node killed outright).
//!
//! A room also delivers its resource's CRM events; that part is a
//! subscription held by the session (`gateway/session.rs`).

mod link;
mod roster;
mod wire;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use link::Presence;
pub use roster::{NotInRoom, RoomView, Timing};

/// Presence and typing between the bridge's nodes.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PresenceConfig {
    /// The internal topic nodes share presence and typing through. Created
    /// with the CRM topics when `kafka.create_topics` is set; in production,
    /// create it with short retention (minutes): only its tail is ever read.
    pub topic: String,
    /// How often each node says it is alive, in milliseconds.
    pub heartbeat_ms: u64,
    /// A node not heard from for this many milliseconds is gone: its users
    /// leave their rooms. At least twice `heartbeat_ms`.
    pub node_timeout_ms: u64,
    /// At most one `user-typing` per user, room and field per this many
    /// milliseconds.
    pub typing_throttle_ms: u64,
    /// A typing indicator lapses this many milliseconds after the last
    /// `typing`; more than `typing_throttle_ms`.
    pub typing_ttl_ms: u64,
    /// How often each node republishes everything it holds, in seconds,
    /// healing any record another node missed.
    pub resync_seconds: u64,
    /// `fetch.wait.max.ms` of the presence consumer: the most an idle broker
    /// holds a fetch. Apache Kafka answers a held fetch when a record
    /// arrives, so this costs idle requests, not typing latency (on a broker
    /// that holds an idle fetch for its full wait, as tansu did, it bounds
    /// typing latency between nodes).
    pub fetch_wait_ms: u32,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        Self {
            topic: "crm-bridge.presence".into(),
            heartbeat_ms: 1000,
            node_timeout_ms: 5000,
            typing_throttle_ms: 1000,
            typing_ttl_ms: 5000,
            resync_seconds: 60,
            // `make bench-typing` with `BENCH_KAFKA_PROPERTIES=fetch.wait.max.ms=W`,
            // three runs each, 1-min load average 4.0-5.2 on the shared 2-core
            // machine: other-node p50 2.24/2.48/3.27 ms (+1.64/+1.37/+2.05 over
            // the same node) at 2, 2.96/2.28/2.84 ms (+2.02/+1.67/+1.89) at 500,
            // p99 6.8-9.9 ms at 2 and 9.9-25.3 at 500 (same-node p99 reached
            // 10.4 in that run: the machine's noise). The short wait's cost is
            // idle fetches: at rest `make bench-latency` counted 330-355
            // requests/s with every consumer at 5 ms, 12-13 at 500.
            fetch_wait_ms: 500,
        }
    }
}

impl PresenceConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.topic.is_empty(), "presence.topic is empty");
        anyhow::ensure!(
            self.heartbeat_ms > 0,
            "presence.heartbeat_ms must be positive"
        );
        anyhow::ensure!(
            self.node_timeout_ms >= 2 * self.heartbeat_ms,
            "presence.node_timeout_ms must be at least twice heartbeat_ms"
        );
        anyhow::ensure!(
            self.typing_ttl_ms > self.typing_throttle_ms,
            "presence.typing_ttl_ms must exceed typing_throttle_ms, or steady typing flickers"
        );
        Ok(())
    }

    pub fn timing(&self) -> Timing {
        Timing {
            typing_throttle: self.typing_throttle_ms,
            typing_ttl: self.typing_ttl_ms,
            node_timeout: self.node_timeout_ms,
        }
    }
}
