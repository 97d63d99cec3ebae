//! Scenario 5, replay: one client that missed 100,000 events resumes from
//! its cursor; then 1,000 clients (`BENCH_CLIENTS` / 10), each 10,000
//! events behind, reconnect at once. Timed from the reconnect to the last
//! `subscription-resumed`; every event must arrive exactly once.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::{ORG, Scale, check, pipeline_fleet};
use crate::feed::Feed;
use crate::report::{Better, Figure, Report, Row};
use crate::servers::{Kind, Server};
use crate::support::Broker;

const SINGLE_MISSED: u64 = 100_000;
const STORM_MISSED: u64 = 10_000;

/// Subscribes `clients` to `pipeline`, drops them, produces `missed` events
/// there, reconnects them all at once: the time until all have resumed.
async fn catch_up(
    server: &Server,
    broker: &Broker,
    clients: usize,
    missed: u64,
    pipeline: &str,
) -> (Option<f64>, Option<String>) {
    let mut fleet = pipeline_fleet(server, clients, pipeline).await;
    fleet.disconnect_all();
    Feed::new(broker, server.kind)
        .burst(missed, ORG, pipeline, |seq| format!("deal_{}", seq % 1000));
    fleet.reset_counts();
    let started = Instant::now();
    fleet
        .connect_all(true, clients, Duration::from_secs(600))
        .await;
    let all_resumed = fleet
        .wait(
            |s| s.resumed.load(Relaxed) >= clients,
            Duration::from_secs(600),
        )
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    let problem = check(&fleet, |_| missed);
    (all_resumed.then_some(elapsed), problem)
}

struct Measured {
    single: (Option<f64>, Option<String>),
    storm: (Option<f64>, Option<String>),
}

async fn measure(kind: Kind, broker: &Broker, scale: &Scale) -> Measured {
    let server = Server::start(kind, broker).await;
    let single = catch_up(&server, broker, 1, SINGLE_MISSED, "pipeline_replay").await;
    println!(
        "  {}: one client, {SINGLE_MISSED} missed: {:?}",
        kind.label(),
        single
    );
    let storm_clients = (scale.clients / 10).max(1);
    let storm = catch_up(
        &server,
        broker,
        storm_clients,
        STORM_MISSED,
        "pipeline_storm",
    )
    .await;
    println!("  {}: {storm_clients} clients: {:?}", kind.label(), storm);
    Measured { single, storm }
}

/// Why Centrifugo has no figure here.
const RECOVERY_LIMIT: &str = "recovers at most 300 missed publications \
     (client.recovery_max_publication_limit), all or none, from a history held in its own memory";

pub async fn run(broker: &Broker, scale: &Scale, report: &mut Report) {
    let b = measure(Kind::CrmBridge, broker, scale).await;
    let p = measure(Kind::NodePeer, broker, scale).await;
    let figure =
        |(time, problem): &(Option<f64>, Option<String>)| Figure::checked(*time, problem.clone());
    let single_ok = b.single.1.is_none() && b.single.0.is_some_and(|t| t <= 1.0);
    report.add(Row {
        scenario: format!("5. replay, one client {SINGLE_MISSED} events behind"),
        measure: "time to catch up".into(),
        unit: "s".into(),
        better: Better::Lower,
        bridge: figure(&b.single),
        peer: figure(&p.single),
        centrifugo: Figure::not_comparable(RECOVERY_LIMIT),
        goal: Some(("≤ 1 s, every event once".into(), single_ok)),
    });
    let storm_clients = (scale.clients / 10).max(1);
    let storm_ok =
        b.storm.1.is_none() && matches!((b.storm.0, p.storm.0), (Some(b), Some(p)) if b * 3.0 <= p);
    report.add(Row {
        scenario: format!("5. replay storm, {storm_clients} clients × {STORM_MISSED} behind"),
        measure: "time until all caught up".into(),
        unit: "s".into(),
        better: Better::Lower,
        bridge: figure(&b.storm),
        peer: figure(&p.storm),
        centrifugo: Figure::not_comparable(RECOVERY_LIMIT),
        goal: Some(("≤ a third of the peer's".into(), storm_ok)),
    });
}
