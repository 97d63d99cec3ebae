//! Scenario 2, broadcast fan-out: every client subscribed to one pipeline,
//! records at 10 and then 25 per second (100k and 250k deliveries/s with
//! 10,000 clients). Measures server CPU per delivery and end-to-end latency
//! (producer stamp to client receipt), with every delivery accounted for,
//! and how much of its core each server used: one that used all of it
//! was saturated, and then its CPU per delivery is only its core divided
//! by the rate, so its latency says more.

use std::time::{Duration, Instant};

use super::{ORG, Scale, check, pipeline_fleet};
use crate::feed::Feed;
use crate::report::{Better, Figure, Report, Row};
use crate::servers::{Kind, Server, generator_cpu_seconds};
use crate::support::Broker;

const PIPELINE: &str = "pipeline_fanout";
const RATES: [u64; 2] = [10, 25];
/// The share of the offered deliveries per second a server must keep up
/// with, the drain after the last record included, to have sustained it.
const SUSTAINED_SHARE: f64 = 0.95;

#[derive(Clone)]
struct Phase {
    cpu_us_per_delivery: f64,
    /// The server's CPU over the phase's wall-clock time: near 100%, the
    /// server was saturated, and its CPU per delivery is a core divided by
    /// the rate it kept up with.
    core_percent: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    delivered_per_second: f64,
    problem: Option<String>,
}

async fn measure(kind: Kind, broker: &Broker, scale: &Scale) -> Vec<Phase> {
    let server = Server::start(kind, broker).await;
    let fleet = pipeline_fleet(&server, scale.clients, PIPELINE).await;
    let mut feed = Feed::new(broker, server.kind);
    let mut phases = Vec::new();
    for rate in RATES {
        fleet.reset_counts();
        let cpu_before = server.cpu_seconds();
        let generator_before = generator_cpu_seconds();
        let started = Instant::now();
        let sent = feed
            .paced(
                rate,
                Duration::from_secs(scale.seconds),
                ORG,
                PIPELINE,
                |seq| format!("deal_{}", seq % 100),
            )
            .await;
        let expected = sent.end - sent.start;
        let all = expected * scale.clients as u64;
        fleet.wait_received(all, Duration::from_secs(30)).await;
        let elapsed = started.elapsed().as_secs_f64();
        let cpu = server.cpu_seconds() - cpu_before;
        let generator = generator_cpu_seconds() - generator_before;
        let delivered = fleet.totals().received;
        phases.push(Phase {
            cpu_us_per_delivery: cpu * 1e6 / delivered.max(1) as f64,
            core_percent: cpu * 100.0 / elapsed,
            p50_ms: fleet.shared.latency.quantile_ms(0.50),
            p99_ms: fleet.shared.latency.quantile_ms(0.99),
            delivered_per_second: delivered as f64 / elapsed,
            problem: check(&fleet, |_| expected),
        });
        // The generator's share of its core says whether it, not the
        // server, set the pace (the broker shares that core).
        println!(
            "  {} at {rate} records/s: {delivered} of {all} delivered in {elapsed:.1} s, \
             {cpu:.2} s server CPU, {generator:.2} s generator CPU",
            kind.label()
        );
    }
    phases
}

pub async fn run(broker: &Broker, scale: &Scale, report: &mut Report) {
    let bridge = measure(Kind::CrmBridge, broker, scale).await;
    let peer = measure(Kind::NodePeer, broker, scale).await;
    let centrifugo = measure(Kind::Centrifugo, broker, scale).await;
    for (index, rate) in RATES.iter().enumerate() {
        let (b, p, c) = (&bridge[index], &peer[index], &centrifugo[index]);
        let load = rate * scale.clients as u64;
        let scenario = format!("2. fan-out, {} clients, {load} deliveries/s", scale.clients);
        let figure =
            |value: Option<f64>, phase: &Phase| Figure::checked(value, phase.problem.clone());
        report.add(Row {
            scenario: scenario.clone(),
            measure: "server CPU per delivery".into(),
            unit: "µs".into(),
            better: Better::Lower,
            bridge: figure(Some(b.cpu_us_per_delivery), b),
            peer: figure(Some(p.cpu_us_per_delivery), p),
            centrifugo: figure(Some(c.cpu_us_per_delivery), c),
            goal: Some((
                "≤ half the peer's".into(),
                b.problem.is_none() && b.cpu_us_per_delivery * 2.0 <= p.cpu_us_per_delivery,
            )),
        });
        report.add(Row {
            scenario: scenario.clone(),
            measure: "server CPU over the phase".into(),
            unit: "% of a core".into(),
            better: Better::Lower,
            bridge: figure(Some(b.core_percent), b),
            peer: figure(Some(p.core_percent), p),
            centrifugo: figure(Some(c.core_percent), c),
            goal: None,
        });
        report.add(Row {
            scenario: scenario.clone(),
            measure: "sustained deliveries".into(),
            unit: "/s".into(),
            better: Better::Higher,
            bridge: figure(Some(b.delivered_per_second), b),
            peer: figure(Some(p.delivered_per_second), p),
            centrifugo: figure(Some(c.delivered_per_second), c),
            goal: (*rate == 25).then(|| {
                let sustained = b.delivered_per_second >= SUSTAINED_SHARE * load as f64;
                (
                    "250k/s with no loss".into(),
                    b.problem.is_none() && sustained,
                )
            }),
        });
        report.add(Row {
            scenario: scenario.clone(),
            measure: "latency p50".into(),
            unit: "ms".into(),
            better: Better::Lower,
            bridge: figure(b.p50_ms, b),
            peer: figure(p.p50_ms, p),
            centrifugo: figure(c.p50_ms, c),
            goal: None,
        });
        let met = matches!((b.p99_ms, p.p99_ms), (Some(b), Some(p)) if b * 2.0 <= p);
        report.add(Row {
            scenario,
            measure: "latency p99".into(),
            unit: "ms".into(),
            better: Better::Lower,
            bridge: figure(b.p99_ms, b),
            peer: figure(p.p99_ms, p),
            centrifugo: figure(c.p99_ms, c),
            goal: Some(("≤ half the peer's".into(), met && b.problem.is_none())),
        });
    }
}
