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

use std::net::IpAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use bucket::TokenBucket;
pub use connections::{ConnectionGate, ConnectionSlot, Refusal};
pub use events::{Admission, EventRate};

/// The abuse limits (`[guard]`), per node.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GuardConfig {
    /// Inbound events one connection may send per second (a token bucket;
    /// the seed's 100).
    pub events_per_second: u32,
    /// Events a connection may send at once before `events_per_second`
    /// applies.
    pub event_burst: u32,
    /// A connection refused this many events within `flood_window_seconds`
    /// is flooding, and is disconnected.
    pub flood_refusals: u32,
    /// The window of `flood_refusals`, in seconds.
    pub flood_window_seconds: u64,
    /// Socket.IO connections on this node (the default stays below the
    /// ~20,000 open files a process may hold).
    pub max_connections: usize,
    /// Socket.IO connections one user (organisation and user id) may hold
    /// on this node.
    pub max_connections_per_user: usize,
    /// Socket.IO connections one client address may hold on this node
    /// (offices share addresses behind NAT).
    pub max_connections_per_address: usize,
    /// New connections per second from one client address.
    pub handshakes_per_second_per_address: u32,
    /// New connections one client address may open at once before
    /// `handshakes_per_second_per_address` applies.
    pub handshake_burst: u32,
    /// New Engine.IO sessions per second from one address, counted before
    /// any Socket.IO CONNECT (beyond: HTTP 429 with `Retry-After`). Twice
    /// the handshake rate: a client that goes on to connect meets the
    /// contract's own limit first; only sessions that never connect meet
    /// this one.
    pub engine_opens_per_second_per_address: u32,
    /// New Engine.IO sessions one address may open at once before
    /// `engine_opens_per_second_per_address` applies.
    pub engine_open_burst: u32,
    /// An Engine.IO session that sends no Socket.IO CONNECT within this
    /// many seconds is closed. With `engine_opens_per_second_per_address`
    /// and `max_request_head_bytes` it bounds what unauthenticated sessions
    /// can hold: at most `(burst + rate × timeout) × head bytes` per
    /// address, 11 MB by default.
    pub connect_timeout_seconds: u64,
    /// A request head must arrive within this many seconds (so must the
    /// next one on an idle keep-alive connection): a client that sends
    /// headers slowly (slowloris) is cut off.
    pub header_read_timeout_seconds: u64,
    /// The largest request head (request line and headers) read, in bytes:
    /// a larger one is answered 431. nginx's default header buffers hold as
    /// much.
    pub max_request_head_bytes: usize,
    /// A header that carries the client's address, set by the load balancer
    /// (`x-real-ip` with `deploy/nginx`); unset: the TCP peer's address,
    /// which behind a proxy is the proxy's. Only set it when every request
    /// comes through a proxy that overwrites it; of a list, the last entry
    /// counts.
    #[schemars(example = &"x-real-ip")]
    pub client_address_header: Option<String>,
    /// Browser origins allowed to connect (`https://app.example.com`): CORS
    /// for long-polling, and an `Origin` check for every handshake, which
    /// refuses an origin not listed. Empty: any.
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
            engine_opens_per_second_per_address: 40,
            engine_open_burst: 100,
            // socket.io-client sends CONNECT right after the Engine.IO open:
            // a round trip, not seconds (socketioxide's default is 45 s).
            connect_timeout_seconds: 10,
            header_read_timeout_seconds: 10,
            max_request_head_bytes: 32 * 1024,
            client_address_header: None,
            allowed_origins: Vec::new(),
        }
    }
}

impl GuardConfig {
    /// The address limits apply to: the configured address header, else the
    /// TCP peer. Of a list (`X-Forwarded-For`), the last entry: the one our
    /// own proxy appended; the ones before it are whatever the client sent.
    pub fn client_address(
        &self,
        headers: &axum::http::HeaderMap,
        peer: Option<std::net::SocketAddr>,
    ) -> IpAddr {
        let from_header = self.client_address_header.as_ref().and_then(|name| {
            let value = headers.get(name.as_str())?.to_str().ok()?;
            value.rsplit(',').next()?.trim().parse().ok()
        });
        from_header
            .or_else(|| peer.map(|peer| peer.ip()))
            .unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

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
            (
                "engine_opens_per_second_per_address",
                self.engine_opens_per_second_per_address as usize,
            ),
            ("engine_open_burst", self.engine_open_burst as usize),
            (
                "connect_timeout_seconds",
                self.connect_timeout_seconds as usize,
            ),
            (
                "header_read_timeout_seconds",
                self.header_read_timeout_seconds as usize,
            ),
        ] {
            anyhow::ensure!(value > 0, "guard.{name} must be positive");
        }
        anyhow::ensure!(
            self.max_request_head_bytes >= 8192,
            "guard.max_request_head_bytes must be at least 8192 (hyper's smallest read buffer)"
        );
        for origin in &self.allowed_origins {
            anyhow::ensure!(
                axum::http::HeaderValue::from_str(origin).is_ok() && origin.contains("://"),
                "guard.allowed_origins: `{origin}` is not an origin such as https://app.example.com"
            );
        }
        Ok(())
    }
}
