//! Scenario 5, replay: one client that missed 100,000 events resumes from
//! its cursor; then 1,000 clients (`BENCH_CLIENTS` / 10), each 10,000
//! events behind, reconnect at once. Then the same two at the most
//! Centrifugo recovers (300 missed publications, its
//! `client.recovery_max_publication_limit`), which all three servers run:
//! Centrifugo from the history it keeps in memory for its `pipeline:`
//! channels (300 publications each, on a server of its own so its other
//! scenarios keep none). Each is timed from the reconnect, made once the
//! server has consumed every missed record, to the last client's
//! `subscription-resumed` (Centrifugo: its last recovered subscribe
//! reply); every event must arrive exactly once.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{ORG, Scale, check, pipeline_fleet};
use crate::feed::Feed;
use crate::report::{Better, Figure, Report, Row};
use crate::servers::{Kind, Server};
use crate::support::{Broker, eventually};

const SINGLE_MISSED: u64 = 100_000;
const STORM_MISSED: u64 = 10_000;
/// The most Centrifugo recovers: its `client.recovery_max_publication_limit`
/// (300 by default), and so the history its `pipeline:` channels keep here.
const RECOVERY_MOST: u64 = 300;

/// Centrifugo's namespace options for the recovery rows: a history of
/// [`RECOVERY_MOST`] publications, long enough kept, recovery on for every
/// subscriber.
fn centrifugo_history() -> String {
    json!({"history_size": RECOVERY_MOST, "history_ttl": "600s", "force_recovery": true})
        .to_string()
}

/// A catch-up's time until every client resumed (`None`: not all did), the
/// server's CPU seconds over that time, and what went wrong, if anything.
#[derive(Debug, Default)]
struct Timed {
    seconds: Option<f64>,
    cpu_seconds: f64,
    events: u64,
    problem: Option<String>,
}

impl Timed {
    fn time(&self) -> Figure {
        Figure::checked(self.seconds, self.problem.clone())
    }

    fn time_ms(&self) -> Figure {
        Figure::checked(self.seconds.map(|s| s * 1000.0), self.problem.clone())
    }

    /// The server's CPU per event it replayed (or recovered), in µs.
    fn cpu_per_event(&self) -> Figure {
        let per_event = self.cpu_seconds * 1e6 / self.events.max(1) as f64;
        Figure::checked(self.seconds.map(|_| per_event), self.problem.clone())
    }
}

/// Subscribes `clients` to `pipeline`, drops them, produces `missed` events
/// there and waits for the server to consume them, then reconnects them all
/// at once: the time until all have resumed.
async fn catch_up(
    server: &Server,
    broker: &Broker,
    clients: usize,
    missed: u64,
    pipeline: &str,
) -> Timed {
    let mut fleet = pipeline_fleet(server, clients, pipeline).await;
    fleet.disconnect_all();
    let consumed = server.consumed().await + missed;
    Feed::new(broker, server.kind)
        .burst(missed, ORG, pipeline, |seq| format!("deal_{}", seq % 1000));
    eventually(
        "the server to consume the missed records",
        async || server.consumed().await,
        |n| *n >= consumed,
    )
    .await;
    fleet.reset_counts();
    let cpu = server.cpu_seconds();
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
    Timed {
        seconds: all_resumed.then_some(elapsed),
        cpu_seconds: server.cpu_seconds() - cpu,
        events: missed * clients as u64,
        problem: check(&fleet, |_| missed),
    }
}

/// One server's catch-ups: 100,000 and 10,000 behind (none for
/// Centrifugo), then [`RECOVERY_MOST`] behind.
struct Measured {
    single: Option<Timed>,
    storm: Option<Timed>,
    recovery_single: Timed,
    recovery_storm: Timed,
}

async fn measure(kind: Kind, broker: &Broker, scale: &Scale) -> Measured {
    let server = match kind {
        Kind::Centrifugo => Server::start_with(kind, broker, &centrifugo_history()).await,
        _ => Server::start(kind, broker).await,
    };
    let storm_clients = (scale.clients / 10).max(1);
    let label = kind.label();
    let timed = async |clients: usize, missed: u64, pipeline: &str| {
        let result = catch_up(&server, broker, clients, missed, pipeline).await;
        println!("  {label}: {clients} clients, {missed} missed: {result:?}");
        result
    };
    let (single, storm) = match kind {
        Kind::Centrifugo => (None, None),
        _ => (
            Some(timed(1, SINGLE_MISSED, "pipeline_replay").await),
            Some(timed(storm_clients, STORM_MISSED, "pipeline_storm").await),
        ),
    };
    Measured {
        single,
        storm,
        recovery_single: timed(1, RECOVERY_MOST, "pipeline_recovery").await,
        recovery_storm: timed(storm_clients, RECOVERY_MOST, "pipeline_recovery_storm").await,
    }
}

/// Why Centrifugo has no figure for the deeper replays.
const RECOVERY_LIMIT: &str = "recovers at most 300 missed publications \
     (client.recovery_max_publication_limit), all or none, from a history held in its own memory: \
     see the 300-behind rows";

pub async fn run(broker: &Broker, scale: &Scale, report: &mut Report) {
    let b = measure(Kind::CrmBridge, broker, scale).await;
    let p = measure(Kind::NodePeer, broker, scale).await;
    let c = measure(Kind::Centrifugo, broker, scale).await;
    let (b_single, p_single) = (b.single.unwrap_or_default(), p.single.unwrap_or_default());
    let single_ok = b_single.problem.is_none() && b_single.seconds.is_some_and(|t| t <= 1.0);
    let beyond_history = || Figure::not_comparable(RECOVERY_LIMIT);
    let single = format!("5. replay, one client {SINGLE_MISSED} events behind");
    report.add(Row {
        scenario: single,
        measure: "time to catch up".into(),
        unit: "s".into(),
        better: Better::Lower,
        bridge: b_single.time(),
        peer: p_single.time(),
        centrifugo: beyond_history(),
        goal: Some(("≤ 1 s, every event once".into(), single_ok)),
    });
    let storm_clients = (scale.clients / 10).max(1);
    let (b_storm, p_storm) = (b.storm.unwrap_or_default(), p.storm.unwrap_or_default());
    let storm_ok = b_storm.problem.is_none()
        && matches!((b_storm.seconds, p_storm.seconds), (Some(b), Some(p)) if b * 3.0 <= p);
    let storm = format!("5. replay storm, {storm_clients} clients × {STORM_MISSED} behind");
    report.add(Row {
        scenario: storm.clone(),
        measure: "time until all caught up".into(),
        unit: "s".into(),
        better: Better::Lower,
        bridge: b_storm.time(),
        peer: p_storm.time(),
        centrifugo: beyond_history(),
        goal: Some(("≤ a third of the peer's".into(), storm_ok)),
    });
    report.add(Row {
        scenario: storm,
        measure: "server CPU per replayed event".into(),
        unit: "µs".into(),
        better: Better::Lower,
        bridge: b_storm.cpu_per_event(),
        peer: p_storm.cpu_per_event(),
        centrifugo: beyond_history(),
        goal: None,
    });
    let from_history = "from its history in memory";
    let most = "(Centrifugo's most)";
    report.add(Row {
        scenario: format!("5. recovery, one client {RECOVERY_MOST} events behind {most}"),
        measure: "time to catch up".into(),
        unit: "ms".into(),
        better: Better::Lower,
        bridge: b.recovery_single.time_ms(),
        peer: p.recovery_single.time_ms(),
        centrifugo: c.recovery_single.time_ms().noted(from_history),
        goal: None,
    });
    let storm =
        format!("5. recovery storm, {storm_clients} clients × {RECOVERY_MOST} behind {most}");
    report.add(Row {
        scenario: storm.clone(),
        measure: "time until all caught up".into(),
        unit: "s".into(),
        better: Better::Lower,
        bridge: b.recovery_storm.time(),
        peer: p.recovery_storm.time(),
        centrifugo: c.recovery_storm.time().noted(from_history),
        goal: None,
    });
    report.add(Row {
        scenario: storm,
        measure: "server CPU per recovered event".into(),
        unit: "µs".into(),
        better: Better::Lower,
        bridge: b.recovery_storm.cpu_per_event(),
        peer: p.recovery_storm.cpu_per_event(),
        centrifugo: c.recovery_storm.cpu_per_event().noted(from_history),
        goal: None,
    });
}
