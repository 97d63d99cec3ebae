//! Typing latency between bridge nodes: from just before a `typing` is
//! emitted to the moment another user's socket.io-client receives
//! `user-typing`, for a user on the same node (the peer: no Kafka hop) and
//! one on another node (through the presence topic), in the same run. The
//! ratio is the cost of crossing nodes; absolute times are context.
//!
//! Run: `make bench-typing` (or `cargo bench --bench typing`).

#[path = "common.rs"]
mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use serde_json::{Value, json};
use support::{Broker, Clients, TestBridge, token, wall_clock_ms};

const SAMPLES: usize = 500;

fn quantiles(mut samples: Vec<f64>) -> [f64; 4] {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    [at(0.5), at(0.9), at(0.99), at(1.0)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let broker = Broker::start();
    // The typist emits a typing as soon as the last one arrived, faster than
    // the 100 events/s limit now that a round trip takes ~2 ms: the limit is
    // not what this measures.
    let configure = |c: &mut crm_bridge::config::Config| {
        c.guard.events_per_second = u32::MAX;
        c.guard.event_burst = u32::MAX;
        common::kafka_properties_from_env(c);
    };
    let nodes = [
        TestBridge::start_with(&broker, configure).await,
        TestBridge::start_with(&broker, configure).await,
    ];
    let mut clients = Clients::spawn().await;
    let room = json!({ "type": "deal", "id": "deal_bench" });
    for (client, node) in [("typist", 0), ("same_node", 0), ("other_node", 1)] {
        let auth = json!({ "token": token(&format!("user_{client}"), "org-1") });
        clients.connect(client, &nodes[node].url, auth).await;
        let ack = clients.request(client, "join-room", room.clone()).await;
        assert_eq!(ack["ok"], true, "{ack}");
    }
    // Both nodes know everyone before timing starts.
    clients
        .wait_for("the other node's join", |o| {
            o["event"] == "user-joined" && o["data"]["userId"] == "user_other_node"
        })
        .await;

    let (mut same, mut other) = (Vec::new(), Vec::new());
    for i in 0..SAMPLES {
        // A new field each time: typing is throttled per field.
        let field = format!("field_{i}");
        let typing = json!({ "roomType": "deal", "roomId": "deal_bench", "field": field });
        let sent = wall_clock_ms();
        clients.emit("typist", "typing", typing).await;
        for (client, out) in [("same_node", &mut same), ("other_node", &mut other)] {
            let seen: Value = clients
                .wait_for("user-typing", |o| {
                    o["client"] == client
                        && o["event"] == "user-typing"
                        && o["data"]["field"] == field.as_str()
                })
                .await;
            out.push(seen["at"].as_f64().unwrap() - sent);
        }
    }

    let same = quantiles(same);
    let other = quantiles(other);
    println!(
        "typing benchmark ({}): {SAMPLES} typing events, emit → user-typing received (ms)",
        common::settings_label()
    );
    println!("| recipient | p50 | p90 | p99 | max |");
    println!("|---|---|---|---|---|");
    for (name, q) in [("same node", same), ("other node (via Kafka)", other)] {
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} | {:.2} |",
            q[0], q[1], q[2], q[3]
        );
    }
    println!(
        "other node / same node, p50: {:.2}x (+{:.2} ms for the presence topic)",
        other[0] / same[0],
        other[0] - same[0]
    );
    for node in nodes {
        node.stop().await;
    }
}
