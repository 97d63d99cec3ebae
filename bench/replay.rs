//! Replay benchmark: how fast a client that missed 100,000 events catches up,
//! beside the live delivery rate measured in the same run with the same
//! client (the official socket.io-client through the test driver), so the
//! ratio means something on a shared, noisy machine.
//!
//! Run: `make bench-replay` (or `cargo bench --bench replay`). Not a test:
//! it asserts only correctness (every event exactly once), never time.

#[path = "common.rs"]
mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Broker, Clients, Producer, TestBridge, token};

const EVENTS: u64 = 100_000;
const PIPELINE: &str = "pipeline_bench";

fn assert_exactly_once(events: &[Value], expected: std::ops::Range<u64>) {
    let seqs: BTreeSet<u64> = events
        .iter()
        .map(|e| e["data"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs.len(), events.len(), "duplicates");
    assert_eq!(seqs, expected.collect::<BTreeSet<u64>>(), "missing events");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let broker = Broker::start();
    // A queue deep enough for the whole burst: this measures throughput, not
    // the slow-client policy (a Node client cannot keep up with a 100k burst).
    let bridge = TestBridge::start_with(&broker, |c| {
        c.limits.socket_buffer = 2 * EVENTS as usize;
        common::kafka_properties_from_env(c);
    })
    .await;
    let producer = Producer::new(&broker);
    let mut clients = Clients::spawn().await;
    let subscription = json!({"resource": "deal", "filter": {"pipelineId": PIPELINE}});

    // Live: a subscribed client receives EVENTS as they are produced.
    clients
        .connect(
            "live",
            &bridge.url,
            json!({"token": token("user_live", "org-1")}),
        )
        .await;
    let ack = clients
        .request("live", "subscribe", subscription.clone())
        .await;
    let started = Instant::now();
    producer.send_deal_seqs(PIPELINE, 0..EVENTS).await;
    let live = clients.deliveries("live", EVENTS as usize).await;
    let live_time = started.elapsed();
    assert_exactly_once(&live, 0..EVENTS);
    bridge.wait_consumed(EVENTS).await;

    // Replay: a client that missed all of them resumes from the cursor the
    // live client had before they were produced.
    clients
        .connect(
            "late",
            &bridge.url,
            json!({"token": token("user_late", "org-1")}),
        )
        .await;
    let mut resume = subscription.clone();
    resume["since"] = ack["cursor"].clone();
    let started = Instant::now();
    clients.request("late", "subscribe", resume).await;
    let replayed = clients.deliveries("late", EVENTS as usize).await;
    let replay_time = started.elapsed();
    let resumed = clients.event("late", "subscription-resumed").await;
    assert_eq!(resumed["replayed"], EVENTS);
    assert_exactly_once(&replayed, 0..EVENTS);

    let rate = |d: Duration| EVENTS as f64 / d.as_secs_f64();
    println!(
        "replay benchmark: {EVENTS} events, one client (socket.io-client via Node; {})",
        common::settings_label()
    );
    println!("| measure | time | events/s |");
    println!("|---|---|---|");
    println!(
        "| live delivery (produce → receive) | {:.2} s | {:.0} |",
        live_time.as_secs_f64(),
        rate(live_time)
    );
    println!(
        "| replay catch-up (subscribe → last) | {:.2} s | {:.0} |",
        replay_time.as_secs_f64(),
        rate(replay_time)
    );
    println!(
        "replay / live rate: {:.2}x",
        rate(replay_time) / rate(live_time)
    );
    bridge.stop().await;
}
