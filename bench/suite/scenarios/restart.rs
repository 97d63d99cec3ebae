//! Scenario 6, restart storm: `clients` connected and subscribed, the
//! server restarted (SIGTERM, then started again on the same port) while
//! records keep coming. Every client reconnects on its own schedule (as
//! socket.io-client does) and resumes from its cursor. Timed from the
//! SIGTERM until every client has resumed and holds every record.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::{ORG, Scale, check, pipeline_fleet};
use crate::feed::Feed;
use crate::load::Shared;
use crate::report::{Better, Figure, Report, Row};
use crate::servers::{Kind, Server};
use crate::support::Broker;

const PIPELINE: &str = "pipeline_restart";
/// Records produced while the server restarts, per second: with every
/// client on the pipeline, 100,000 deliveries/s, a load both servers sustain
/// (scenario 2). At 100/s (a million deliveries/s) the figure would measure
/// the backlog, not the restart: shutdown drains each socket's queue first.
const RATE: u64 = 10;

struct Measured {
    seconds: Option<f64>,
    problem: Option<String>,
}

async fn measure(kind: Kind, broker: &Broker, scale: &Scale) -> Measured {
    let server = Server::start(kind, broker).await;
    let mut fleet = pipeline_fleet(&server, scale.clients, PIPELINE).await;
    fleet.shared.reconnect.store(true, Relaxed);
    fleet.reset_counts();

    let started = Instant::now();
    let mut feed = Feed::new(broker, server.kind);
    let producing = tokio::spawn(async move {
        feed.paced(RATE, Duration::from_secs(5), ORG, PIPELINE, |seq| {
            format!("deal_{}", seq % 100)
        })
        .await
    });
    let server = server.restart(broker).await;
    let sent = producing.await.unwrap();
    let records = sent.end - sent.start;
    let clients = scale.clients;
    let resumed = fleet
        .wait(
            |s| s.resumed.load(Relaxed) >= clients,
            Duration::from_secs(120),
        )
        .await;
    let resumed_count = fleet.shared.resumed.load(Relaxed);
    let all = fleet
        .wait_received(records * clients as u64, Duration::from_secs(60))
        .await;
    let seconds = started.elapsed().as_secs_f64();
    let delivered = format!(
        "{} of {} records delivered",
        fleet.totals().received,
        records * clients as u64
    );
    println!(
        "  {}: {resumed_count} of {clients} resumed, {delivered}, {seconds:.2} s; {}",
        kind.label(),
        timeline(&fleet.shared, started, clients)
    );
    fleet.disconnect_all();
    drop(server);
    let problem = if resumed && all {
        check(&fleet, |_| records)
    } else {
        Some(format!(
            "{resumed_count} of {clients} resumed, {delivered} in {seconds:.0} s"
        ))
    };
    Measured {
        seconds: (resumed && all).then_some(seconds),
        problem,
    }
}

/// When the clients came back: the moments 50%, 90%, 99% and all of them
/// had resumed after `started`, and how many connection attempts failed.
fn timeline(shared: &Shared, started: Instant, clients: usize) -> String {
    let mut resumed: Vec<Duration> = shared
        .resumed_at
        .lock()
        .unwrap()
        .iter()
        .filter_map(|at| at.checked_duration_since(started))
        .collect();
    resumed.sort();
    let at = |share: f64| {
        let wanted = (clients as f64 * share).ceil() as usize;
        resumed
            .get(wanted.saturating_sub(1))
            .map_or("never".to_owned(), |t| format!("{:.1} s", t.as_secs_f64()))
    };
    format!(
        "resumed: 50% at {}, 90% at {}, 99% at {}, all at {}; {} failed connection attempts",
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0),
        shared.failures.load(Relaxed)
    )
}

pub async fn run(broker: &Broker, scale: &Scale, report: &mut Report) {
    let b = measure(Kind::CrmBridge, broker, scale).await;
    let p = measure(Kind::NodePeer, broker, scale).await;
    report.add(Row {
        scenario: format!("6. restart storm, {} clients", scale.clients),
        measure: "SIGTERM to every client resumed with every record".into(),
        unit: "s".into(),
        better: Better::Lower,
        bridge: Figure::checked(b.seconds, b.problem.clone()),
        peer: Figure::checked(p.seconds, p.problem),
        centrifugo: Figure::not_comparable(
            "its memory engine's history does not outlive a restart: nothing to resume from",
        ),
        goal: Some((
            "≤ 10 s".into(),
            b.problem.is_none() && b.seconds.is_some_and(|s| s <= 10.0),
        )),
    });
}
