//! Scenario 1, idle connections: `clients` connected and subscribed, doing
//! nothing. Measures resident memory per connection (after the ramp, once
//! the server settled), CPU per handshake (connect, auth, subscribe), and
//! the CPU the connections cost at rest (pings, timers).

use std::time::Duration;

use super::{Scale, client, pipeline_subscription};
use crate::load::{Fleet, RAMP};
use crate::report::{Better, Figure, Report, Row};
use crate::servers::{Kind, Server};
use crate::support::Broker;

struct Measured {
    bytes_per_connection: f64,
    handshake_cpu_us: f64,
    handshakes_per_second: f64,
    resting_core_share: f64,
    problem: Option<String>,
}

async fn measure(kind: Kind, broker: &Broker, scale: &Scale) -> Measured {
    let server = Server::start(kind, broker).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_before, cpu_before) = (server.rss_bytes(), server.cpu_seconds());
    let specs = (0..scale.clients)
        .map(|i| client(i, vec![pipeline_subscription("pipeline_idle")], None))
        .collect();
    let mut fleet = Fleet::new(&server.url, server.protocol(), specs);
    let ramp = fleet
        .connect_all(false, RAMP, Duration::from_secs(180))
        .await;
    let cpu_after = server.cpu_seconds();
    // 15 s: CPU time is read in 10 ms ticks, so this resolves 0.07% of a core.
    let rest = Duration::from_secs(15);
    tokio::time::sleep(rest).await;
    let rss_after = server.rss_bytes();
    let resting_core_share = (server.cpu_seconds() - cpu_after) / rest.as_secs_f64();
    if let Ok(hold) = std::env::var("BENCH_HOLD_SECONDS") {
        eprintln!(
            "holding {} (pid {}) for {hold} s",
            kind.label(),
            server.pid()
        );
        tokio::time::sleep(Duration::from_secs(hold.parse().unwrap())).await;
    }
    let n = scale.clients as f64;
    let problem = match ramp {
        None => Some(format!(
            "only {} of {} connected",
            fleet
                .shared
                .ready
                .load(std::sync::atomic::Ordering::Relaxed),
            scale.clients
        )),
        Some(_) => None,
    };
    Measured {
        bytes_per_connection: rss_after.saturating_sub(rss_before) as f64 / n,
        handshake_cpu_us: (cpu_after - cpu_before) * 1e6 / n,
        handshakes_per_second: ramp.map_or(0.0, |t| n / t.as_secs_f64()),
        resting_core_share,
        problem,
    }
}

pub async fn run(broker: &Broker, scale: &Scale, report: &mut Report) {
    let bridge = measure(Kind::CrmBridge, broker, scale).await;
    let peer = measure(Kind::NodePeer, broker, scale).await;
    let centrifugo = measure(Kind::Centrifugo, broker, scale).await;
    let scenario = format!("1. idle, {} clients", scale.clients);
    let kb =
        |m: &Measured| Figure::checked(Some(m.bytes_per_connection / 1000.0), m.problem.clone());
    let bridge_kb = bridge.bytes_per_connection / 1000.0;
    report.add(Row {
        scenario: scenario.clone(),
        measure: "resident memory per connection".into(),
        unit: "KB".into(),
        better: Better::Lower,
        bridge: kb(&bridge),
        peer: kb(&peer),
        centrifugo: kb(&centrifugo),
        goal: Some((
            "≤ 10 KB".into(),
            bridge_kb <= 10.0 && bridge.problem.is_none(),
        )),
    });
    report.add(Row {
        scenario: scenario.clone(),
        measure: "CPU per handshake (connect, auth, subscribe)".into(),
        unit: "µs".into(),
        better: Better::Lower,
        bridge: Figure::of(bridge.handshake_cpu_us),
        peer: Figure::of(peer.handshake_cpu_us),
        centrifugo: Figure::of(centrifugo.handshake_cpu_us),
        goal: None,
    });
    report.add(Row {
        scenario: scenario.clone(),
        measure: "CPU at rest, all connected".into(),
        unit: "% of a core".into(),
        better: Better::Lower,
        bridge: Figure::of(bridge.resting_core_share * 100.0),
        peer: Figure::of(peer.resting_core_share * 100.0),
        centrifugo: Figure::of(centrifugo.resting_core_share * 100.0),
        goal: None,
    });
    report.add(Row {
        scenario,
        measure: "ramp rate (200 handshakes in flight)".into(),
        unit: "conn/s".into(),
        better: Better::Higher,
        bridge: Figure::of(bridge.handshakes_per_second),
        peer: Figure::of(peer.handshakes_per_second),
        centrifugo: Figure::of(centrifugo.handshakes_per_second),
        goal: None,
    });
}
