//! A rolling restart, one node at a time, of two bridge processes behind
//! nginx (the production template), while a [`SteadyFeed`] produces and a
//! [`Fleet`] of clients with the client module's resume stays subscribed.
//! Each node is stopped with SIGTERM (the binary's own signal path: drain,
//! then shutdown), started again with the same node id and configuration
//! (so it resumes its consumer group), and once it is ready and every
//! client has resumed, the other node likewise. What each client received
//! is then compared with what was produced for it. Run by
//! `tests/rolling_restart.rs` (does it lose or repeat anything) and
//! `bench/rolling_restart.rs` (how long until every client resumed).

use std::net::SocketAddr;
use std::time::Duration;

use super::fleet::{Fleet, Member, Outage, Reconnection, Report, source_address};
use super::process::BridgeProcess;
use super::steady::{SteadyFeed, pipeline, records_of};
use super::{Broker, Nginx, eventually, free_port, token, wall_clock_ms};

/// The organisation every client belongs to.
const ORG: &str = "org-rolling";
/// The node ids: fixed, as a StatefulSet's pod names are.
pub const NODES: [&str; 2] = ["node-a", "node-b"];

/// What to run.
pub struct Plan {
    pub clients: usize,
    /// Pipelines the feed spreads its records over; client `i` subscribes
    /// to pipeline `i % pipelines`.
    pub pipelines: usize,
    /// Records per second, over all pipelines.
    pub rate: u64,
    /// How long the feed runs before the first restart (the steady state's
    /// latency is measured over it).
    pub steady: Duration,
    /// Environment of every node process (e.g. its `[drain]` settings).
    pub env: Vec<(String, String)>,
    pub reconnection: Reconnection,
    /// How long connecting and subscribing every client may take.
    pub connect_patience: Duration,
}

/// One node's restart, wall-clock ms (see [`wall_clock_ms`]).
pub struct Restart {
    pub node: &'static str,
    pub sigterm_at: f64,
    /// When the process had exited.
    pub exited_at: f64,
    /// When the node started again was ready.
    pub ready_at: f64,
    /// Every client cut off by this restart.
    pub outages: Vec<Outage>,
}

impl Restart {
    /// From SIGTERM until the last of its clients had resumed, in ms.
    pub fn until_all_resumed(&self) -> f64 {
        self.outages
            .iter()
            .filter_map(|o| o.recovered_at)
            .fold(self.sigterm_at, f64::max)
            - self.sigterm_at
    }
}

/// What a run measured; nothing is asserted here.
pub struct Outcome {
    /// Records produced, over all pipelines.
    pub produced: u64,
    /// Records each client should have received and did not.
    pub lost: u64,
    pub restarts: Vec<Restart>,
    /// The fleet's final report, with every phase: `steady`, then
    /// `restart-<node>` for each node.
    pub report: Report,
}

/// `[guard]`: the client address is nginx's `X-Real-IP` (each client has
/// its own), so the per-address limits apply per client, not to nginx.
const NODE_TOML: &str = "[guard]\nclient_address_header = \"x-real-ip\"\n";

/// Every upstream stays eligible (nginx's default is `max_fails=1
/// fail_timeout=10s`): a refused connection goes on to the other node
/// either way. Measured with the default: node B restarted within 10 s of
/// node A's restart left both marked failed, and nginx answered "no live
/// upstreams" for over 60 s with both nodes ready, as each refused request
/// marked a node failed again (the `hash` balancer never clears them).
const UPSTREAM_PARAMETERS: &str = "max_fails=0";

async fn start_node(broker: &Broker, port: u16, node: &str, plan: &Plan) -> BridgeProcess {
    let env: Vec<(&str, &str)> = plan
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    BridgeProcess::start_with_env(broker, port, node, NODE_TOML, &env).await
}

pub async fn run(broker: &Broker, plan: &Plan) -> Outcome {
    let ports = [free_port(), free_port()];
    let mut nodes = Vec::new();
    for (port, node) in ports.iter().zip(NODES) {
        nodes.push(start_node(broker, *port, node, plan).await);
    }
    let upstreams: Vec<SocketAddr> = ports
        .iter()
        .map(|port| SocketAddr::from(([127, 0, 0, 1], *port)))
        .collect();
    let nginx = Nginx::start_for(&upstreams, plan.clients, UPSTREAM_PARAMETERS);
    let members: Vec<Member> = (0..plan.clients)
        .map(|i| Member {
            token: token(&format!("user_{i}"), ORG),
            address: source_address(i),
            pipeline: pipeline(i % plan.pipelines),
        })
        .collect();
    let mut fleet = Fleet::start(
        &nginx.url(),
        &members,
        plan.pipelines,
        plan.reconnection,
        plan.connect_patience,
    )
    .await;

    fleet.phase("steady").await;
    let feed = SteadyFeed::start(broker, ORG, plan.pipelines, plan.rate);
    // The scenario's own duration: the steady state it measures.
    tokio::time::sleep(plan.steady).await;

    let mut restarts = Vec::new();
    for (index, node) in NODES.into_iter().enumerate() {
        fleet.phase(&format!("restart-{node}")).await;
        let sigterm_at = wall_clock_ms();
        nodes[index].terminate().await;
        let exited_at = wall_clock_ms();
        nodes[index] = start_node(broker, ports[index], node, plan).await;
        let ready_at = wall_clock_ms();
        let what = format!(
            "every client to have resumed after {node}'s restart (connected, down, \
             disconnect reasons, failed connection attempts)"
        );
        let away = async || {
            let r = fleet.report(false).await;
            (r.connected, r.down, r.disconnect_reasons, r.connect_errors)
        };
        eventually(&what, away, |(connected, down, ..)| {
            *down == 0 && *connected == plan.clients
        })
        .await;
        restarts.push(Restart {
            node,
            sigterm_at,
            exited_at,
            ready_at,
            outages: Vec::new(),
        });
    }

    fleet.phase("end").await;
    let produced = feed.stop().await;
    let expected = |client: usize| records_of(client % plan.pipelines, plan.pipelines, produced);
    let all: u64 = (0..plan.clients).map(expected).sum();
    let what = format!("the clients to hold all {all} records they should");
    eventually(
        &what,
        async || fleet.report(false).await.received.iter().sum::<u64>(),
        |received| *received >= all,
    )
    .await;

    let report = fleet.report(true).await;
    let lost = report
        .received
        .iter()
        .enumerate()
        .map(|(client, got)| expected(client).saturating_sub(*got))
        .sum();
    for restart in &mut restarts {
        restart.outages = report.phases[&format!("restart-{}", restart.node)]
            .outages
            .clone();
    }
    drop(fleet);
    drop(nginx);
    Outcome {
        produced,
        lost,
        restarts,
        report,
    }
}
