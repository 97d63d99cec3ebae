//! Leaving gracefully: the `[drain]` settings, and the register of client
//! connections that a leaving node closes in paced batches, so that its
//! clients' reconnects spread out over time instead of all reaching the
//! other nodes in the same instant.
//!
//! The order, run by `app::RunningApp::shutdown`: `/readyz` answers 503 at
//! once; the node waits [`DrainConfig::delay_seconds`] for load balancers to
//! notice, serving as before; it stops accepting connections and stops its
//! consumer; then [`OpenConnections::close_paced`] closes what is left.
//!
//! Why connections are closed here, under Socket.IO: socketioxide closes one
//! socket only by sending Socket.IO's DISCONNECT, after which socket.io-client
//! does not reconnect ("io server disconnect"), and its `SocketIo::close`
//! closes every socket at once. A connection whose stream ends is, to the
//! client, a node gone away ("transport close"): it reconnects by itself,
//! through the load balancer to another node, and resumes from its cursors.
//!
//! - `stream.rs`: [`DrainableStream`], a TCP stream that can be ended from
//!   outside.
//!
//! A leaf: imports nothing of the crate.

mod stream;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

pub use stream::DrainableStream;

/// How a node leaves (`[drain]`), on SIGTERM.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DrainConfig {
    /// Seconds from SIGTERM (when `/readyz` starts answering 503) until the
    /// node stops accepting and closes its connections: the time load
    /// balancers take to stop sending it clients (Kubernetes: the readiness
    /// probe's period times its failure threshold, plus the endpoint update).
    pub delay_seconds: u64,
    /// Client connections closed at once.
    pub batch_size: usize,
    /// Milliseconds between two batches: with the defaults, 2,000 closes a
    /// second, so the 15,000 connections of `guard.max_connections` take
    /// 7.5 s.
    pub batch_interval_ms: u64,
}

impl Default for DrainConfig {
    fn default() -> Self {
        Self {
            delay_seconds: 5,
            batch_size: 200,
            batch_interval_ms: 100,
        }
    }
}

impl DrainConfig {
    pub fn delay(&self) -> Duration {
        Duration::from_secs(self.delay_seconds)
    }

    /// How long closing `connections` takes at this pace: no wait before
    /// the first batch nor after the last.
    pub fn close_time(&self, connections: usize) -> Duration {
        let batches = connections.div_ceil(self.batch_size.max(1));
        let gaps = u32::try_from(batches.saturating_sub(1)).unwrap_or(u32::MAX);
        Duration::from_millis(self.batch_interval_ms).saturating_mul(gaps)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.batch_size >= 1, "drain.batch_size must be at least 1");
        Ok(())
    }
}

/// The client connections open on a listener, each able to be ended.
#[derive(Debug, Default)]
pub struct OpenConnections {
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, CancellationToken>>,
}

impl OpenConnections {
    /// Registers `tcp`; it leaves the register when the stream is dropped.
    /// The [`ConnectionEnd`] ends this one connection.
    pub fn track(self: &Arc<Self>, tcp: TcpStream) -> (DrainableStream, ConnectionEnd) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let end = CancellationToken::new();
        self.lock().insert(id, end.clone());
        let registration = Registration {
            register: self.clone(),
            id,
        };
        let stream = DrainableStream::new(tcp, end.clone(), registration);
        (stream, ConnectionEnd(end))
    }

    /// How many connections are open.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    /// Ends every connection open now, `batch_size` at a time with
    /// `batch_interval_ms` between batches; how many it ended.
    pub async fn close_paced(&self, config: &DrainConfig) -> usize {
        let ends: Vec<CancellationToken> = self.lock().values().cloned().collect();
        let interval = Duration::from_millis(config.batch_interval_ms);
        for (i, batch) in ends.chunks(config.batch_size.max(1)).enumerate() {
            if i > 0 {
                tokio::time::sleep(interval).await;
            }
            batch.iter().for_each(CancellationToken::cancel);
        }
        ends.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, CancellationToken>> {
        // The map stays consistent whatever panicked while holding it.
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Ends one tracked connection as the drain would, from wherever its
/// requests are handled (each request's extensions carry its connection's):
/// the gateway ends the connection under a refused socket with it.
#[derive(Clone, Debug)]
pub struct ConnectionEnd(CancellationToken);

impl ConnectionEnd {
    pub fn end(&self) {
        self.0.cancel();
    }
}

/// A connection's place in [`OpenConnections`], given up on drop.
#[derive(Debug)]
struct Registration {
    register: Arc<OpenConnections>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.register.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests;
