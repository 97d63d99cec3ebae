//! The contract's limits and the abuse guards, with the real broker and the
//! official socket.io-client: the event rate (a flooding client beside a
//! normal one), connection limits, the handshake rate, allowed origins, and
//! the message size.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::avro::deal_seq;
use support::{Broker, Clients, Producer, TestBridge, token};

/// Waits for `count` acknowledgements with reference `reference`.
async fn acks(clients: &mut Clients, client: &str, reference: &str, count: usize) -> Vec<Value> {
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let ack = clients
            .wait_for("a flood acknowledgement", |o| {
                o["client"] == client && o["type"] == "ack" && o["ref"] == reference
            })
            .await;
        out.push(ack["data"].clone());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_client_is_limited_then_cut_off_while_its_neighbour_is_untouched() {
    let broker = Broker::start();
    let bridge = TestBridge::start_with(&broker, |c| c.guard.flood_refusals = 400).await;
    let producer = Producer::new(&broker);
    let mut c = Clients::spawn().await;
    c.connect(
        "calm",
        &bridge.url,
        json!({ "token": token("user_calm", "org-1") }),
    )
    .await;
    c.connect(
        "flood",
        &bridge.url,
        json!({ "token": token("user_flood", "org-1") }),
    )
    .await;
    c.subscribe("calm", json!({ "resource": "deal", "id": "deal_calm" }))
        .await;

    c.send(json!({ "op": "flood", "client": "flood", "event": "ping", "count": 300, "ack": "f" }))
        .await;
    for seq in 0..20 {
        let record = deal_seq("org-1", "deal_calm", "p", seq);
        producer.send("crm.deals", "deal_calm", &record).await;
    }
    let replies = acks(&mut c, "flood", "f", 300).await;
    let admitted = replies.iter().filter(|r| r["ok"] == true).count();
    assert!(
        (100..200).contains(&admitted),
        "a burst of 100, then 100/s: {admitted} admitted"
    );
    let refused: Vec<&Value> = replies.iter().filter(|r| r["ok"] != true).collect();
    for reply in &refused {
        assert_eq!(reply["error"]["code"], "RATE_LIMITED", "{reply}");
        assert!(reply["error"]["retryAfter"].as_u64() >= Some(1), "{reply}");
    }
    c.settle(Duration::from_millis(300)).await;
    let told = c.unclaimed("flood", "error").len();
    assert!(
        told >= 1 && told * 10 < refused.len(),
        "told {told} times for {} refusals: a flood is not mirrored back",
        refused.len()
    );

    // The neighbour got every event and is not limited.
    assert_eq!(c.deliveries("calm", 20).await.len(), 20);
    for _ in 0..5 {
        assert_eq!(c.request("calm", "ping", json!({})).await["ok"], true);
    }

    // Keeping it up crosses the flood threshold: cut off.
    c.send(json!({ "op": "flood", "client": "flood", "event": "subscribe", "count": 600 }))
        .await;
    let cut = c
        .wait_for("the flood cut-off", |o| {
            o["client"] == "flood"
                && o["event"] == "error"
                && o["data"]["details"]["reason"] == "flood"
        })
        .await;
    assert_eq!(cut["data"]["code"], "RATE_LIMITED");
    let gone = c
        .wait_for("flood disconnected", |o| {
            o["client"] == "flood" && o["type"] == "disconnect"
        })
        .await;
    assert_eq!(gone["reason"], "io server disconnect");
    let record = deal_seq("org-1", "deal_calm", "p", 20);
    producer.send("crm.deals", "deal_calm", &record).await;
    assert_eq!(c.deliveries("calm", 1).await.len(), 1);
    assert_eq!(bridge.stats().await["cutOff"]["flood"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_limited_per_user_and_per_address() {
    let broker = Broker::start();
    let bridge = TestBridge::start_with(&broker, |c| {
        c.guard.max_connections_per_user = 2;
        c.guard.max_connections_per_address = 3;
    })
    .await;
    let mut c = Clients::spawn().await;
    let auth = |user: &str| json!({ "token": token(user, "org-1") });
    c.connect("u1a", &bridge.url, auth("user_1")).await;
    c.connect("u1b", &bridge.url, auth("user_1")).await;
    c.send(json!({ "op": "connect", "client": "u1c", "url": bridge.url, "auth": auth("user_1") }))
        .await;
    let refused = c.refusal("u1c").await;
    assert_eq!(refused["code"], "RATE_LIMITED", "{refused}");
    assert_eq!(refused["details"]["reason"], "user_connections");
    assert!(refused["retryAfter"].as_u64() > Some(0));

    c.connect("u2", &bridge.url, auth("user_2")).await;
    c.send(json!({ "op": "connect", "client": "u3", "url": bridge.url, "auth": auth("user_3") }))
        .await;
    let refused = c.refusal("u3").await;
    assert_eq!(
        refused["details"]["reason"], "address_connections",
        "{refused}"
    );

    // A place freed is a place taken.
    c.send(json!({ "op": "disconnect", "client": "u1a" })).await;
    bridge
        .stats_until("u1a's place to be freed", |s| s["clientsConnected"] == 2)
        .await;
    c.connect("u3again", &bridge.url, auth("user_3")).await;
    let stats = bridge.stats().await;
    // Counted by the reason the client was told, as docs/operations.md's metrics table lists.
    let refused = &stats["connectionsRefused"];
    assert_eq!(refused["user_connections"], 1, "{stats}");
    assert_eq!(refused["address_connections"], 1, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_are_rate_limited_per_address() {
    let broker = Broker::start();
    let bridge = TestBridge::start_with(&broker, |c| {
        c.guard.handshakes_per_second_per_address = 1;
        c.guard.handshake_burst = 3;
    })
    .await;
    let mut c = Clients::spawn().await;
    for i in 0..3 {
        let auth = json!({ "token": token(&format!("user_{i}"), "org-1") });
        c.connect(&format!("c{i}"), &bridge.url, auth).await;
    }
    let auth = json!({ "token": token("user_3", "org-1") });
    c.send(json!({ "op": "connect", "client": "c3", "url": bridge.url, "auth": auth }))
        .await;
    let refused = c.refusal("c3").await;
    assert_eq!(refused["code"], "RATE_LIMITED", "{refused}");
    assert_eq!(refused["details"]["reason"], "handshake_rate");
    let wait = refused["retryAfter"].as_u64().unwrap();
    assert!((1..=1000).contains(&wait), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_allowed_origins_connect_from_browsers() {
    let broker = Broker::start();
    let allowed = "https://app.example.com";
    let bridge = TestBridge::start_with(&broker, |c| {
        c.guard.allowed_origins = vec![allowed.into()];
    })
    .await;
    let mut c = Clients::spawn().await;
    let auth = json!({ "token": token("user_o", "org-1") });
    let connect = |client: &str, origin: Option<&str>| {
        let headers = origin.map_or(json!({}), |o| json!({ "Origin": o }));
        json!({ "op": "connect", "client": client, "url": bridge.url, "auth": auth, "headers": headers })
    };
    c.send(connect("evil", Some("https://evil.example.com")))
        .await;
    let refused = c.refusal("evil").await;
    assert_eq!(refused["code"], "FORBIDDEN", "{refused}");
    c.send(connect("app", Some(allowed))).await;
    c.event("app", "connected").await;
    c.send(connect("server_side", None)).await;
    c.event("server_side", "connected").await;

    // CORS for long-polling: only the allowed origin is granted.
    let preflight = |origin: &'static str| {
        reqwest::Client::new()
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/socket.io/?EIO=4&transport=polling", bridge.url),
            )
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .send()
    };
    let granted = preflight(allowed).await.unwrap();
    assert_eq!(granted.headers()["access-control-allow-origin"], allowed);
    let denied = preflight("https://evil.example.com").await.unwrap();
    assert!(
        denied
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_1_mb_is_refused_and_the_node_lives_on() {
    let broker = Broker::start();
    let bridge = TestBridge::start(&broker).await;
    let mut c = Clients::spawn().await;
    c.connect(
        "big",
        &bridge.url,
        json!({ "token": token("user_big", "org-1") }),
    )
    .await;
    c.connect(
        "other",
        &bridge.url,
        json!({ "token": token("user_other", "org-1") }),
    )
    .await;
    let huge = "x".repeat(1_500_000);
    c.emit(
        "big",
        "subscribe",
        json!({ "resource": "deal", "id": huge }),
    )
    .await;
    let gone = c
        .wait_for("the oversized sender closed", |o| {
            o["client"] == "big" && o["type"] == "disconnect"
        })
        .await;
    assert_eq!(gone["reason"], "transport close", "{gone}");
    assert_eq!(c.request("other", "ping", json!({})).await["ok"], true);
    c.connect(
        "big_again",
        &bridge.url,
        json!({ "token": token("user_big", "org-1") }),
    )
    .await;
    assert_eq!(c.request("big_again", "ping", json!({})).await["ok"], true);
}
