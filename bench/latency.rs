//! End-to-end latency: from just before a record is produced to the moment
//! the official socket.io-client receives the event, one record at a time on
//! an idle bridge. Context for "within milliseconds"; issue-7 benchmarks
//! compare against a peer.
//!
//! Run: `make bench-latency` (or `cargo bench --bench latency`).

#[path = "../tests/support/mod.rs"]
mod support;

use serde_json::json;
use support::avro::deal_seq;
use support::{Broker, Clients, Producer, TestBridge, token, wall_clock_ms};

const SAMPLES: usize = 500;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let broker = Broker::start();
    let bridge = TestBridge::start(&broker).await;
    let producer = Producer::new(&broker);
    let mut clients = Clients::spawn().await;
    clients
        .connect("c", &bridge.url, json!({"token": token("user_l", "org-1")}))
        .await;
    clients
        .subscribe("c", json!({"resource": "deal", "id": "deal_latency"}))
        .await;

    let mut latencies = Vec::with_capacity(SAMPLES);
    for seq in 0..SAMPLES as u64 {
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
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!("latency benchmark: {SAMPLES} records, produce → socket.io-client receive (ms)");
    println!("| p50 | p90 | p99 | max |");
    println!("|---|---|---|---|");
    println!(
        "| {:.2} | {:.2} | {:.2} | {:.2} |",
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
    bridge.stop().await;
}
