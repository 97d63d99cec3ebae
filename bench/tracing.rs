//! Tracing overhead: the live delivery rate of 100,000 events with traces
//! off (no `OTEL_*` endpoint: no OpenTelemetry layer) and on at the default
//! sampling (exported over OTLP/HTTP to a receiver that accepts and
//! discards), alternating off/on twice in one run.
//!
//! The trace export is per process, so each measurement runs in a child
//! process of this benchmark (started with `measure off|on`), configured
//! through the environment exactly as `main` is (`TraceExport::from_env`).
//!
//! Run: `make bench-tracing` (or `cargo bench --bench tracing`). Not a test:
//! it asserts only correctness (every event exactly once), never time.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Instant;

use crm_bridge::telemetry::LogConfig;
use crm_bridge::telemetry::{self, TraceExport};
use serde_json::json;
use support::otlp::OtlpReceiver;
use support::{Broker, Clients, Producer, TestBridge, token};

const EVENTS: u64 = 100_000;
const PIPELINE: &str = "pipeline_bench";
const ROUNDS: usize = 2;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, measure, mode] = &args[..]
        && measure == "measure"
    {
        return measure_in_this_process(mode == "on");
    }
    let receiver = OtlpReceiver::discarding();
    let endpoint = receiver.url.trim_end_matches("/v1/traces").to_owned();
    let mut rates = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        rates.0.push(child("off", None));
        rates.1.push(child("on", Some(&endpoint)));
    }
    let best = |rates: &[f64]| rates.iter().cloned().fold(0.0, f64::max);
    println!("tracing benchmark: {EVENTS} events live, one client (socket.io-client via Node)");
    println!("| traces | events/s (each run) | best |");
    println!("|---|---|---|");
    let runs = |rates: &[f64]| {
        rates
            .iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "| off (no OTEL_EXPORTER_OTLP_ENDPOINT) | {} | {:.0} |",
        runs(&rates.0),
        best(&rates.0)
    );
    println!(
        "| on, default sampler (parentbased_traceidratio {}) | {} | {:.0} |",
        telemetry::DEFAULT_RATIO,
        runs(&rates.1),
        best(&rates.1)
    );
    println!(
        "on / off rate (best runs): {:.3}",
        best(&rates.1) / best(&rates.0)
    );
    println!("spans received by the OTLP receiver: {}", receiver.count());
}

/// Runs one measurement in a child process; its events/s.
fn child(mode: &str, endpoint: Option<&str>) -> f64 {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args(["measure", mode]);
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("OTEL_")) {
        command.env_remove(name);
    }
    if let Some(endpoint) = endpoint {
        command.env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint);
    }
    let output = command.output().expect("running a measurement");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "measurement {mode} failed: {stdout}"
    );
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("events/s "))
        .and_then(|rate| rate.parse().ok())
        .expect("a measurement prints its rate")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn measure_in_this_process(traced: bool) {
    let traces = TraceExport::from_env("bench").unwrap();
    assert_eq!(traces.is_some(), traced, "OTEL_* as the parent set them");
    let log = LogConfig {
        filter: "warn".into(),
        ..LogConfig::default()
    };
    telemetry::init(&log, traces.as_ref()).unwrap();
    let broker = Broker::start();
    // A queue deep enough for the whole burst: this measures throughput, not
    // the slow-client policy (see bench/replay.rs).
    let bridge =
        TestBridge::start_with(&broker, |c| c.limits.socket_buffer = 2 * EVENTS as usize).await;
    let producer = Producer::new(&broker);
    let mut clients = Clients::spawn().await;
    clients
        .connect(
            "live",
            &bridge.url,
            json!({"token": token("user_live", "org-1")}),
        )
        .await;
    clients
        .subscribe(
            "live",
            json!({"resource": "deal", "filter": {"pipelineId": PIPELINE}}),
        )
        .await;
    let started = Instant::now();
    producer.send_deal_seqs(PIPELINE, 0..EVENTS).await;
    let live = clients.deliveries("live", EVENTS as usize).await;
    let elapsed = started.elapsed();
    let seqs: BTreeSet<u64> = live
        .iter()
        .map(|e| e["data"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..EVENTS).collect(), "every event exactly once");
    bridge.stop().await;
    telemetry::shutdown_traces();
    println!("events/s {}", EVENTS as f64 / elapsed.as_secs_f64());
}
