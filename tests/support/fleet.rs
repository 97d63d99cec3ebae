//! Many official socket.io-clients, each wrapped by the project's client
//! module (`client/`: it resumes its subscriptions with `since` after every
//! reconnect), in one Node process: `tests/client/fleet.mjs`, which checks
//! every event as it arrives and reports sums, so thousands of clients cost
//! little. Each client has a source address of its own (nginx hashes it)
//! and subscribes to the deals of one pipeline of a [`SteadyFeed`].
//!
//! [`SteadyFeed`]: super::steady::SteadyFeed

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin};
use tokio::sync::mpsc;

use super::clients::spawn_node_script;

/// One client: who it is, where it connects from, what it subscribes to.
pub struct Member {
    pub token: String,
    pub address: IpAddr,
    pub pipeline: String,
}

/// A distinct loopback source address for client `index` (127.1.0.1,
/// 127.1.0.2, ...): nginx's `hash $remote_addr` spreads them over the nodes,
/// and the bridge's per-address limits count each client on its own.
pub fn source_address(index: usize) -> IpAddr {
    let (high, low) = (index / 250, index % 250);
    let high = u8::try_from(high).expect("at most 64,000 source addresses");
    IpAddr::V4(Ipv4Addr::new(127, 1, high, low as u8 + 1))
}

/// How socket.io-client reconnects: its first delay and the most it grows to.
#[derive(Clone, Copy, Debug)]
pub struct Reconnection {
    pub delay_ms: u64,
    pub delay_max_ms: u64,
}

impl Reconnection {
    /// socket.io-client's defaults (1 s, doubling up to 5 s, each ± 50%).
    pub const STOCK: Self = Self {
        delay_ms: 1000,
        delay_max_ms: 5000,
    };
}

/// Producer-to-client latency of the events received in a phase, in ms.
#[derive(Clone, Debug, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

/// A client's time away in a phase, wall-clock ms (see
/// [`wall_clock_ms`](super::wall_clock_ms)): from its first disconnect to
/// its connection back and to the module's `recovered` (every subscription
/// resumed). A client cut off again before it recovered has one outage with
/// more `disconnects`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outage {
    pub client: usize,
    pub disconnected_at: f64,
    pub connected_at: Option<f64>,
    pub recovered_at: Option<f64>,
    pub disconnects: u32,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Phase {
    pub latency: Latency,
    pub outages: Vec<Outage>,
}

/// What the fleet saw, summed over its clients.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Clients connected now.
    pub connected: usize,
    /// Clients disconnected, or reconnected but not yet recovered.
    pub down: usize,
    /// Per client, the distinct records it received.
    pub received: Vec<u64>,
    /// Records received again.
    pub duplicates: u64,
    /// Events at or before the last position received from their partition.
    pub out_of_order: u64,
    /// Events of another pipeline than the client's.
    pub misrouted: u64,
    /// `error` events and refused subscriptions.
    pub errors: u64,
    /// Reconnects the module reported as not recovered (a gap).
    pub unrecovered: u64,
    /// Failed connection attempts, by the client's error message.
    pub connect_errors: HashMap<String, u64>,
    /// Disconnects, by socket.io-client's reason: after `io server
    /// disconnect` (a Socket.IO DISCONNECT from the server) it does not
    /// reconnect; after `transport close` it does.
    pub disconnect_reasons: HashMap<String, u64>,
    /// By name, if asked for.
    pub phases: HashMap<String, Phase>,
}

pub struct Fleet {
    _child: Child,
    stdin: ChildStdin,
    answers: mpsc::Receiver<Value>,
}

impl Fleet {
    /// Connects every member to `url` (at most 100 between connecting and
    /// subscribed at a time) and returns once all are subscribed, waiting
    /// at most `patience`. `pipelines` is the feed's count.
    pub async fn start(
        url: &str,
        members: &[Member],
        pipelines: usize,
        reconnection: Reconnection,
        patience: Duration,
    ) -> Self {
        let (child, stdin, answers) = spawn_node_script("tests/client/fleet.mjs", 16);
        let mut fleet = Self {
            _child: child,
            stdin,
            answers,
        };
        let clients: Vec<Value> = members
            .iter()
            .map(|m| json!({"token": m.token, "address": m.address.to_string(), "pipeline": m.pipeline}))
            .collect();
        fleet
            .send(json!({
                "op": "start", "url": url, "clients": clients, "pipelines": pipelines,
                "reconnectionDelay": reconnection.delay_ms,
                "reconnectionDelayMax": reconnection.delay_max_ms,
            }))
            .await;
        let subscribed = tokio::time::timeout(patience, fleet.answer("subscribed"))
            .await
            .unwrap_or_else(|_| panic!("{} clients not subscribed in {patience:?}", members.len()));
        assert_eq!(subscribed["count"], members.len());
        fleet
    }

    /// Records what follows (latencies, outages) under phase `name`.
    pub async fn phase(&mut self, name: &str) {
        self.send(json!({"op": "phase", "name": name})).await;
        self.answer("phase").await;
    }

    /// What the fleet saw so far; its phases only if `phases` (each
    /// latency summary sorts every sample of its phase).
    pub async fn report(&mut self, phases: bool) -> Report {
        self.send(json!({"op": "report", "phases": phases})).await;
        serde_json::from_value(self.answer("report").await).expect("a fleet report")
    }

    async fn send(&mut self, command: Value) {
        let mut line = command.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// The next answer, which must be of `kind`.
    async fn answer(&mut self, kind: &str) -> Value {
        let answer = self.answers.recv().await.expect("the fleet exited");
        assert_eq!(answer["type"], kind, "{answer}");
        answer
    }
}
