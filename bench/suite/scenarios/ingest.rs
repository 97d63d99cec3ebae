//! Scenario 4, ingest ceiling: the server holds 50,000 subscriptions (10,000
//! clients × 5, or `BENCH_CLIENTS` × 5) and none matches. It is frozen
//! (SIGSTOP) while `BENCH_INGEST_RECORDS` (1,000,000) records are produced,
//! then thawed: how fast does it read the backlog, Avro decoding included?
//! Measured as records per CPU-second (one core's worth) and wall-clock.

use std::time::{Duration, Instant};

use super::{ORG, Scale, client, deal_subscription};
use crate::feed::Feed;
use crate::load::{Fleet, RAMP};
use crate::report::{Better, Figure, Report, Row};
use crate::servers::{Kind, Server};
use crate::support::Broker;

const PER_CLIENT: usize = 5;

fn records() -> u64 {
    std::env::var("BENCH_INGEST_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

struct Measured {
    records_per_cpu_second: f64,
    records_per_second: f64,
    problem: Option<String>,
}

async fn measure(kind: Kind, broker: &Broker, scale: &Scale) -> Measured {
    let server = Server::start(kind, broker).await;
    let specs = (0..scale.clients)
        .map(|i| {
            let subscriptions = (0..PER_CLIENT)
                .map(|k| deal_subscription(&format!("quiet_deal_{}", i * PER_CLIENT + k)))
                .collect();
            client(i, subscriptions, Some(Vec::new()))
        })
        .collect();
    let mut fleet = Fleet::new(&server.url, server.protocol(), specs);
    fleet
        .connect_all(false, RAMP, Duration::from_secs(180))
        .await;
    let count = records();
    let consumed_before = server.consumed().await;
    server.freeze(true);
    Feed::new(broker, server.kind).burst(count, ORG, "pipeline_ingest", |seq| {
        format!("deal_{}", seq % 10_000)
    });
    let cpu_before = server.cpu_seconds();
    let started = Instant::now();
    server.freeze(false);
    let deadline = started + Duration::from_secs(600);
    let mut consumed = 0;
    while consumed < count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        consumed = server.consumed().await.saturating_sub(consumed_before);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = server.cpu_seconds() - cpu_before;
    println!(
        "  {}: {consumed} of {count} records in {elapsed:.2} s, {cpu:.2} s CPU",
        kind.label()
    );
    let totals = fleet.totals();
    let problem = if consumed < count {
        Some(format!("only {consumed} of {count} read"))
    } else if totals.received + totals.misrouted > 0 {
        Some(format!(
            "LOSSY: {} unexpected deliveries",
            totals.received + totals.misrouted
        ))
    } else {
        None
    };
    Measured {
        records_per_cpu_second: consumed as f64 / cpu,
        records_per_second: consumed as f64 / elapsed,
        problem,
    }
}

/// Centrifugo reads JSON, with its channels in a header: it decodes no Avro
/// and routes by channel name, not by the record's fields.
const JSON_NOTE: &str = "JSON, channels in a header: no Avro to decode";

pub async fn run(broker: &Broker, scale: &Scale, report: &mut Report) {
    let b = measure(Kind::CrmBridge, broker, scale).await;
    let p = measure(Kind::NodePeer, broker, scale).await;
    let c = measure(Kind::Centrifugo, broker, scale).await;
    let scenario = format!(
        "4. ingest, {} subscriptions, none matching, {} records",
        scale.clients * PER_CLIENT,
        records()
    );
    let ok = b.problem.is_none();
    report.add(Row {
        scenario: scenario.clone(),
        measure: "records per CPU-second, Avro decoding included".into(),
        unit: "/s".into(),
        better: Better::Higher,
        bridge: Figure::checked(Some(b.records_per_cpu_second), b.problem.clone()),
        peer: Figure::checked(Some(p.records_per_cpu_second), p.problem.clone()),
        centrifugo: Figure::checked(Some(c.records_per_cpu_second), c.problem.clone())
            .noted(JSON_NOTE),
        goal: Some((
            "≥ 500,000/s and ≥ 6× the peer's".into(),
            ok && b.records_per_cpu_second >= 500_000.0
                && b.records_per_cpu_second >= 6.0 * p.records_per_cpu_second,
        )),
    });
    report.add(Row {
        scenario: scenario.clone(),
        measure: "CPU per non-matching record".into(),
        unit: "µs".into(),
        better: Better::Lower,
        bridge: Figure::checked(Some(1e6 / b.records_per_cpu_second), b.problem.clone()),
        peer: Figure::checked(Some(1e6 / p.records_per_cpu_second), p.problem.clone()),
        centrifugo: Figure::checked(Some(1e6 / c.records_per_cpu_second), c.problem.clone())
            .noted(JSON_NOTE),
        goal: Some(("≤ 1 µs".into(), ok && b.records_per_cpu_second >= 1e6)),
    });
    report.add(Row {
        scenario,
        measure: "records per second, wall clock".into(),
        unit: "/s".into(),
        better: Better::Higher,
        bridge: Figure::checked(Some(b.records_per_second), b.problem),
        peer: Figure::checked(Some(p.records_per_second), p.problem),
        centrifugo: Figure::checked(Some(c.records_per_second), c.problem),
        goal: None,
    });
}
