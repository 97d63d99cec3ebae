//! Rolling-restart benchmark: 2,000 clients (the official socket.io-client
//! with the client module's resume, stock reconnection delays) behind nginx
//! over two bridge processes, a feed of 200 records/s over 20 pipelines
//! (each client subscribed to one: 20,000 deliveries/s), and node A, then
//! node B, restarted with SIGTERM (`tests/support/rolling.rs`). Measured
//! twice in one run: with the drain at its defaults, and with it off (no
//! delay, every socket closed at once: how a node left before the drain),
//! the peer its ratios are against.
//!
//! Prints, per restart: the clients it cut off, each one's time away (its
//! disconnect to its `recovered`), SIGTERM until the last had resumed, over
//! how long the disconnects and reconnects spread, and the producer-to-client
//! latency during it against the steady state before; then the ratios. A
//! record lost or repeated fails the run (exit non-zero); time is never
//! asserted. Writes the section to `target/bench-logs/rolling-restart.md`.
//!
//! Run: `make bench-rolling-restart` (or `cargo bench --bench
//! rolling_restart`). `ROLLING_CLIENTS` and `ROLLING_RATE` scale it.

#[path = "../tests/support/mod.rs"]
mod support;

use std::fmt::Write as _;
use std::time::Duration;

use crm_bridge::config::Config;
use support::Broker;
use support::fleet::{Latency, Reconnection};
use support::rolling::{Outcome, Plan, Restart, run};

const PIPELINES: usize = 20;
const STEADY: Duration = Duration::from_secs(10);

/// One way to leave: a label and the nodes' `[drain]` environment.
struct Variant {
    label: String,
    env: Vec<(String, String)>,
}

fn drain_env(
    delay_seconds: u64,
    batch_size: usize,
    batch_interval_ms: u64,
) -> Vec<(String, String)> {
    [
        ("DELAY_SECONDS", delay_seconds.to_string()),
        ("BATCH_SIZE", batch_size.to_string()),
        ("BATCH_INTERVAL_MS", batch_interval_ms.to_string()),
    ]
    .into_iter()
    .map(|(key, value)| (format!("CRM_BRIDGE_DRAIN__{key}"), value))
    .collect()
}

fn variants(clients: usize) -> [Variant; 2] {
    let drain = Config::default().drain;
    [
        Variant {
            label: format!(
                "drain on (defaults: {} s delay, {} sockets every {} ms)",
                drain.delay_seconds, drain.batch_size, drain.batch_interval_ms
            ),
            env: drain_env(
                drain.delay_seconds,
                drain.batch_size,
                drain.batch_interval_ms,
            ),
        },
        Variant {
            label: "drain off (no delay, every socket at once)".into(),
            env: drain_env(0, clients, drain.batch_interval_ms),
        },
    ]
}

fn read(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `q` quantile of `values` (sorted here).
fn quantile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() as f64 * q).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

/// What one restart measured, in seconds (latencies in ms).
struct Figures {
    cut_off: usize,
    away_p50: f64,
    away_p99: f64,
    away_max: f64,
    until_all_resumed: f64,
    until_exit: f64,
    disconnect_spread: f64,
    reconnect_spread: f64,
    latency: Latency,
}

fn figures(restart: &Restart, outcome: &Outcome) -> Figures {
    let outages = &restart.outages;
    let mut away: Vec<f64> = outages
        .iter()
        .map(|o| (o.recovered_at.expect("every client resumed") - o.disconnected_at) / 1000.0)
        .collect();
    let spread = |times: Vec<f64>| {
        let (first, last) = times
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), t| (lo.min(*t), hi.max(*t)));
        (last - first) / 1000.0
    };
    let phase = &outcome.report.phases[&format!("restart-{}", restart.node)];
    Figures {
        cut_off: outages.len(),
        away_p50: quantile(&mut away, 0.5),
        away_p99: quantile(&mut away, 0.99),
        away_max: quantile(&mut away, 1.0),
        until_all_resumed: restart.until_all_resumed() / 1000.0,
        until_exit: (restart.exited_at - restart.sigterm_at) / 1000.0,
        disconnect_spread: spread(outages.iter().map(|o| o.disconnected_at).collect()),
        reconnect_spread: spread(outages.iter().filter_map(|o| o.connected_at).collect()),
        latency: phase.latency.clone(),
    }
}

fn ms(value: Option<f64>) -> String {
    value.map_or("n/a".into(), |v| format!("{v:.0} ms"))
}

/// Fails the run (exit non-zero) on anything lost, repeated or misrouted.
fn assert_exactly_once(label: &str, outcome: &Outcome) {
    let r = &outcome.report;
    for (count, what) in [
        (outcome.lost, "lost"),
        (r.duplicates, "duplicated"),
        (r.out_of_order, "out of order"),
        (r.misrouted, "misrouted"),
        (r.errors, "errors"),
        (r.unrecovered, "reconnects with a gap"),
    ] {
        assert_eq!(count, 0, "{label}: {count} {what}");
    }
}

fn section(clients: usize, rate: u64, runs: &[(Variant, Outcome)]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Rolling restart behind nginx, {clients} clients\n\n\
         `make bench-rolling-restart`: two bridge processes (release build) behind nginx \
         (`deploy/nginx`), {clients} socket.io-clients with the client module's resume and \
         stock reconnection delays, {rate} records/s over {PIPELINES} pipelines (each client \
         on one); node A then node B stopped with SIGTERM, started again with the same node \
         id and readied, the next once every client had resumed. Time away: a client's \
         disconnect to its `recovered`.\n"
    );
    let _ = writeln!(
        out,
        "| variant | node | produced | lost | duplicated | clients cut off | SIGTERM → exit | \
         SIGTERM → all resumed | time away p50 / p99 / max | disconnects spread over | \
         reconnects spread over | latency p50 / p99 steady | latency p50 / p99 during |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for (variant, outcome) in runs {
        let steady = &outcome.report.phases["steady"].latency;
        for restart in &outcome.restarts {
            let f = figures(restart, outcome);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {:.1} s | {:.1} s | {:.2} / {:.2} / {:.2} s | \
                 {:.2} s | {:.2} s | {} / {} | {} / {} |",
                variant.label,
                restart.node,
                outcome.produced,
                outcome.lost,
                outcome.report.duplicates,
                f.cut_off,
                f.until_exit,
                f.until_all_resumed,
                f.away_p50,
                f.away_p99,
                f.away_max,
                f.disconnect_spread,
                f.reconnect_spread,
                ms(steady.p50),
                ms(steady.p99),
                ms(f.latency.p50),
                ms(f.latency.p99),
            );
        }
    }
    let [(on_variant, on), (off_variant, off)] = runs else {
        return out;
    };
    let _ = writeln!(
        out,
        "\nRatios, drain on against drain off (the peer, measured in the same run; \
         >1: on is higher):\n\n| node | measure | {} | {} | on / off |\n|---|---|---|---|---|",
        on_variant.label, off_variant.label
    );
    for (a, b) in on.restarts.iter().zip(&off.restarts) {
        let (fa, fb) = (figures(a, on), figures(b, off));
        let rows = [
            (
                "SIGTERM → all resumed",
                fa.until_all_resumed,
                fb.until_all_resumed,
                "s",
            ),
            ("time away p99", fa.away_p99, fb.away_p99, "s"),
            (
                "reconnects spread over",
                fa.reconnect_spread,
                fb.reconnect_spread,
                "s",
            ),
            (
                "latency p99 during the restart",
                fa.latency.p99.unwrap_or(f64::NAN),
                fb.latency.p99.unwrap_or(f64::NAN),
                "ms",
            ),
        ];
        for (measure, x, y, unit) in rows {
            let _ = writeln!(
                out,
                "| {} | {measure} | {x:.2} {unit} | {y:.2} {unit} | {:.2}× |",
                a.node,
                x / y
            );
        }
    }
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let clients = read("ROLLING_CLIENTS", 2000) as usize;
    let rate = read("ROLLING_RATE", 200);
    let mut runs = Vec::new();
    for variant in variants(clients) {
        println!(
            "rolling restart, {}: {clients} clients, {rate} records/s",
            variant.label
        );
        let plan = Plan {
            clients,
            pipelines: PIPELINES,
            rate,
            steady: STEADY,
            env: variant.env.clone(),
            reconnection: Reconnection::STOCK,
            connect_patience: Duration::from_secs(300),
        };
        // Topics of its own for each variant (`Broker::start` names them afresh).
        let outcome = run(&Broker::start(), &plan).await;
        assert_exactly_once(&variant.label, &outcome);
        runs.push((variant, outcome));
    }
    let text = section(clients, rate, &runs);
    println!("\n{text}");
    let path = support::repo_path("target/bench-logs/rolling-restart.md");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    println!("written to {}", path.display());
}
