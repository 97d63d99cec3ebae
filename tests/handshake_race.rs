//! A client that asks for something the moment it is told it is connected
//! gets an answer, however many connect at once.
//!
//! socketioxide sends CONNECT and then spawns the connect handler; request
//! handlers registered in that task raced the client's first requests, and
//! under load some subscribes were dropped unanswered (1–4 of 2,000 clients
//! in the benchmark's ramp). They are now registered before CONNECT is sent.
//! Driven at the wire level, as the benchmark's load generator does, because
//! no client library is fast enough to hit the window reliably.

mod support;

#[allow(dead_code)] // the codec also has what only the load generator reads
#[path = "../bench/suite/load/wire.rs"]
mod wire;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::json;
use support::{Broker, TestBridge, token};
use tokio_tungstenite::tungstenite::Message;
use wire::Inbound;

const CLIENTS: usize = 1000;

/// Connects, subscribes as soon as CONNECT arrives, and returns the ack.
async fn subscribe_at_once(url: String, token: String) -> serde_json::Value {
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let subscription = json!({"resource": "deal", "filter": {"pipelineId": "pipeline_1"}});
    while let Some(frame) = ws.next().await {
        let Message::Text(text) = frame.unwrap() else {
            continue;
        };
        let reply = match wire::classify(text.as_str()) {
            Inbound::Open => wire::connect(&json!({ "token": token })),
            Inbound::Connected => wire::emit_with_ack(0, "subscribe", &subscription),
            Inbound::Ping => wire::PONG.to_owned(),
            Inbound::Ack { args, .. } => return wire::arg(args, 0).unwrap(),
            Inbound::Event { name: "error", raw } => panic!("refused: {raw}"),
            Inbound::Event { .. } | Inbound::Other => continue,
        };
        ws.send(Message::text(reply)).await.unwrap();
    }
    panic!("the connection closed before the subscribe was answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_sent_right_after_connect_are_all_answered() {
    let broker = Broker::start();
    let bridge = TestBridge::start_with(&broker, |c| {
        c.guard.max_connections_per_address = 2 * CLIENTS;
        c.guard.handshake_burst = 2 * CLIENTS as u32;
        c.guard.engine_open_burst = 2 * CLIENTS as u32;
    })
    .await;
    let url = wire::websocket_url(&bridge.url);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let token = token(&format!("user_{i}"), "org-1");
            tokio::spawn(subscribe_at_once(url.clone(), token))
        })
        .collect();
    for client in clients {
        let ack = tokio::time::timeout(Duration::from_secs(30), client)
            .await
            .expect("a subscribe went unanswered")
            .unwrap();
        assert_eq!(ack["ok"], true, "{ack}");
    }
    bridge.stop().await;
}
