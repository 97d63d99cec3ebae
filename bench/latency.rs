//! End-to-end latency: from just before a record is produced to the moment
//! the official socket.io-client receives the event, one record at a time.
//! Measured twice in one run: on a quiet bridge (the peer), then while
//! another client on the same node floods it with events far over its rate
//! limit (kept connected, so the flood lasts). The ratio is what a flood
//! costs its neighbours; absolute times are context. Before either, the
//! bridge's cost at rest: requests to the broker per second, and CPU.
//!
//! Run: `make bench-latency` (or `cargo bench --bench latency`); to compare
//! a setting, e.g. `BENCH_KAFKA_PROPERTIES=fetch.wait.max.ms=5` (see
//! `bench/common.rs`).

#[path = "common.rs"]
mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use serde_json::json;
use support::avro::deal_seq;
use support::{Broker, Clients, Producer, TestBridge, token, wall_clock_ms};
use tokio_util::sync::CancellationToken;

const SAMPLES: usize = 500;
/// The flooder's pace: this many pings every 10 ms, 50x the 100/s limit.
const FLOOD_BATCH: u32 = 50;

async fn measure(clients: &mut Clients, producer: &Producer, first_seq: u64) -> Vec<f64> {
    let mut latencies = Vec::with_capacity(SAMPLES);
    for seq in first_seq..first_seq + SAMPLES as u64 {
        let record = deal_seq("org-1", "deal_latency", "p", seq);
        let sent = wall_clock_ms();
        producer.send("crm.deals", "deal_latency", &record).await;
        let received = clients
            .wait_for("delivery", |o| {
                o["type"] == "event" && o["data"]["data"]["seq"] == seq
            })
            .await;
        latencies.push(received["at"].as_f64().unwrap() - sent);
    }
    latencies.sort_by(f64::total_cmp);
    latencies
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q) as usize]
}

/// A client in its own Node process flooding pings until `stop`.
async fn flood(url: String, stop: CancellationToken) {
    let mut flooder = Clients::spawn().await;
    flooder
        .connect(
            "flood",
            &url,
            json!({"token": token("user_flood", "org-1")}),
        )
        .await;
    let command = json!({"op": "flood", "client": "flood", "event": "ping", "count": FLOOD_BATCH});
    while !stop.is_cancelled() {
        flooder.send(command.clone()).await;
        flooder.settle(Duration::from_millis(10)).await;
        flooder.seen.clear();
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let broker = Broker::start();
    // The flooder stays connected, so the rate limiter works the whole run.
    let bridge = TestBridge::start_with(&broker, |c| {
        c.guard.flood_refusals = u32::MAX;
        common::kafka_properties_from_env(c);
    })
    .await;
    let producer = Producer::new(&broker);
    let mut clients = Clients::spawn().await;
    clients
        .connect("c", &bridge.url, json!({"token": token("user_l", "org-1")}))
        .await;
    clients
        .subscribe("c", json!({"resource": "deal", "id": "deal_latency"}))
        .await;

    let rest = common::at_rest(&broker.addr, Duration::from_secs(10)).await;
    let quiet = measure(&mut clients, &producer, 0).await;
    let stop = CancellationToken::new();
    let flooding = tokio::spawn(flood(bridge.url.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let flooded = measure(&mut clients, &producer, SAMPLES as u64).await;
    stop.cancel();
    flooding.await.unwrap();
    let refused = bridge.stats().await["inboundRateLimited"].clone();

    println!("latency benchmark ({})", common::settings_label());
    println!(
        "at rest (10 s, nothing produced): {:.0} requests/s to the broker; CPU: bridge {:.1}%, broker {:.1}% of a core",
        rest.requests_per_second,
        rest.bridge_core_share * 100.0,
        rest.broker_core_share * 100.0
    );
    println!("{SAMPLES} records each, produce → socket.io-client receive (ms)");
    println!("| neighbour | p50 | p90 | p99 | max |");
    println!("|---|---|---|---|---|");
    for (name, sorted) in [("quiet", &quiet), ("flooding at 50x the limit", &flooded)] {
        let q = |p| quantile(sorted, p);
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} | {:.2} |",
            q(0.5),
            q(0.9),
            q(0.99),
            q(1.0)
        );
    }
    println!(
        "flooded / quiet: p50 {:.2}x, p99 {:.2}x ({refused} flood events refused)",
        quantile(&flooded, 0.5) / quantile(&quiet, 0.5),
        quantile(&flooded, 0.99) / quantile(&quiet, 0.99)
    );
    bridge.stop().await;
}
