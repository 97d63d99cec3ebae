//! Abuse guards, as pure state: how fast a client may send, and how many
//! connections a user, an address and the node may hold. The gateway asks
//! before doing any work; nothing here touches sockets.
//!
//! - `bucket.rs`: the token bucket every rate here is made of.
//! - `events.rs`: one connection's inbound event rate, and flood detection.
//! - `connections.rs`: connection counts and the handshake rate per address.

mod bucket;
mod connections;
mod events;

use serde::Deserialize;

pub use bucket::TokenBucket;
pub use connections::{ConnectionGate, ConnectionSlot, Refusal};
pub use events::{Admission, EventRate};

/// The abuse limits (`[guard]`), per node.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuardConfig {
    /// Inbound events one connection may send per second (the seed's 100).
    pub events_per_second: u32,
    /// Events a connection may send at once before the rate applies.
    pub event_burst: u32,
    /// A connection refused this many events within `flood_window_seconds`
    /// is flooding, and is disconnected.
    pub flood_refusals: u32,
    pub flood_window_seconds: u64,
    /// Socket.IO connections on this node.
    pub max_connections: usize,
    pub max_connections_per_user: usize,
    pub max_connections_per_address: usize,
    /// New connections per second from one address, and its burst.
    pub handshakes_per_second_per_address: u32,
    pub handshake_burst: u32,
    /// A header that carries the client's address, set by the load balancer
    /// (`x-real-ip` with `deploy/nginx`); unset: the TCP peer's address,
    /// which behind a proxy is the proxy's. Only set it when every request
    /// comes through a proxy that overwrites it; of a list, the last entry
    /// counts.
    pub client_address_header: Option<String>,
    /// Browser origins allowed to connect (`https://app.example.com`); empty:
    /// any. A handshake whose `Origin` is not listed is refused.
    pub allowed_origins: Vec<String>,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            events_per_second: 100,
            event_burst: 100,
            flood_refusals: 500,
            flood_window_seconds: 10,
            // Below the ~20,000 open files a process may hold, with room for
            // Kafka connections, replay consumers and logs.
            max_connections: 15_000,
            max_connections_per_user: 50,
            max_connections_per_address: 500,
            handshakes_per_second_per_address: 20,
            handshake_burst: 50,
            client_address_header: None,
            allowed_origins: Vec::new(),
        }
    }
}

impl GuardConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        for (name, value) in [
            ("events_per_second", self.events_per_second as usize),
            ("event_burst", self.event_burst as usize),
            ("flood_refusals", self.flood_refusals as usize),
            ("flood_window_seconds", self.flood_window_seconds as usize),
            ("max_connections", self.max_connections),
            ("max_connections_per_user", self.max_connections_per_user),
            (
                "max_connections_per_address",
                self.max_connections_per_address,
            ),
            (
                "handshakes_per_second_per_address",
                self.handshakes_per_second_per_address as usize,
            ),
            ("handshake_burst", self.handshake_burst as usize),
        ] {
            anyhow::ensure!(value > 0, "guard.{name} must be positive");
        }
        for origin in &self.allowed_origins {
            anyhow::ensure!(
                axum::http::HeaderValue::from_str(origin).is_ok() && origin.contains("://"),
                "guard.allowed_origins: `{origin}` is not an origin such as https://app.example.com"
            );
        }
        Ok(())
    }
}
