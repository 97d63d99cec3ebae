//! What operators and the load balancer rely on: health, readiness, limits.

mod support;

use crm_bridge::domain::Action;
use crm_bridge::kafka::{BridgeContext, ensure_topics};
use serde_json::json;
use support::{Broker, Clients, TestBridge, eventually, token};

async fn status(url: &str) -> u16 {
    reqwest::get(url).await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_waits_for_every_topic_and_late_topics_are_read_from_the_start() {
    let broker = Broker::start();
    // No topics yet, and the bridge is not asked to create them.
    let mut config = crm_bridge::config::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        internal_listen: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    config.drain.delay_seconds = 0;
    config.kafka.brokers = broker.addr.clone();
    broker.name_topics(&mut config);
    config.kafka.node_id = Some("readiness".into());
    config.schemas.local_dir = support::repo_path("schemas");
    config.auth.jwt.hs_secret = Some(crm_bridge::auth::Secret::new(support::bridge::TEST_SECRET));
    let app = crm_bridge::app::start(config.clone()).await.unwrap();
    let url = format!("http://{}", app.addr);
    let internal = format!("http://{}", app.internal_addr);

    assert_eq!(status(&format!("{url}/healthz")).await, 200);
    assert_eq!(status(&format!("{internal}/healthz")).await, 200);

    // Every topic but the deals topic: once the node has assigned the
    // others' partitions (each has a lag entry from the moment it is), it
    // is still not ready, for want of the last.
    let deals = config.kafka.topics.deals.as_str();
    let mut names: Vec<&str> = config.kafka.topics.all().map(|(_, n)| n).collect();
    names.push(&config.presence.topic);
    names.retain(|name| *name != deals);
    let context = BridgeContext::new(std::sync::Arc::default());
    ensure_topics(&config.kafka, &context, &names, 1)
        .await
        .unwrap();
    let lags = async || support::bridge::stats(&internal).await["consumerLag"].clone();
    let what = "the other CRM topics' partitions to be assigned";
    eventually(what, lags, |lags| {
        lags.as_array().is_some_and(|l| l.len() == 3)
    })
    .await;
    assert_eq!(
        support::bridge::not_ready(&internal).await.as_deref(),
        Some("503 Service Unavailable: waiting for Kafka partitions")
    );

    // A client may connect before readiness; a topic created after start-up
    // is read from its beginning, so this early record is not missed.
    let mut clients = Clients::spawn().await;
    clients
        .connect("early", &url, json!({"token": token("user_e", "org-1")}))
        .await;
    clients
        .subscribe("early", json!({"resource": "deal", "id": "deal_early"}))
        .await;
    ensure_topics(&config.kafka, &context, &[deals], 1)
        .await
        .unwrap();
    let early = support::avro::deal("org-1", "deal_early", "p", Action::Update, None);
    support::Producer::new(&broker)
        .send("crm.deals", "deal_early", &early)
        .await;

    support::bridge::wait_ready(&internal).await;
    assert_eq!(
        clients.event("early", "resource-update").await["id"],
        "deal_early"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscription_limit_refuses_only_the_excess() {
    let broker = Broker::start();
    let bridge = TestBridge::start_with(&broker, |c| c.limits.max_subscriptions = 2).await;
    let mut clients = Clients::spawn().await;
    clients
        .connect("l", &bridge.url, json!({"token": token("user_l", "org-1")}))
        .await;
    clients
        .subscribe("l", json!({"resource": "deal", "id": "d1"}))
        .await;
    clients
        .subscribe("l", json!({"resource": "deal", "id": "d2"}))
        .await;
    // Replacing an existing subscription's events is not a new one.
    clients
        .subscribe(
            "l",
            json!({"resource": "deal", "id": "d2", "events": ["delete"]}),
        )
        .await;
    let third = clients
        .request("l", "subscribe", json!({"resource": "deal", "id": "d3"}))
        .await;
    assert_eq!(third["error"]["code"], "RATE_LIMITED");
    assert_eq!(clients.event("l", "error").await["code"], "RATE_LIMITED");

    let producer = support::Producer::new(&broker);
    producer
        .send(
            "crm.deals",
            "d1",
            &support::avro::deal("org-1", "d1", "p", Action::Update, None),
        )
        .await;
    assert_eq!(clients.event("l", "resource-update").await["id"], "d1");
    let stats = bridge.stats().await;
    assert_eq!(stats["subscriptions"], 2, "{stats}");
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_cannot_keep_up_is_cut_off_with_a_reason() {
    let broker = Broker::start();
    // A tiny queue, so a burst overflows it however fast the client reads.
    let bridge = TestBridge::start_with(&broker, |c| c.limits.socket_buffer = 2).await;
    let mut clients = Clients::spawn().await;
    clients
        .connect(
            "slow",
            &bridge.url,
            json!({"token": token("user_s", "org-1")}),
        )
        .await;
    clients
        .subscribe("slow", json!({"resource": "deal", "id": "d_burst"}))
        .await;

    let producer = support::Producer::new(&broker);
    let record = support::avro::deal("org-1", "d_burst", "p", Action::Update, None);
    futures::future::join_all((0..500).map(|_| producer.send("crm.deals", "d_burst", &record)))
        .await;

    let gone = clients
        .wait_for("slow client disconnected", |o| {
            o["client"] == "slow" && o["type"] == "disconnect"
        })
        .await;
    assert_eq!(gone["reason"], "io server disconnect");
    let told = clients.unclaimed("slow", "error");
    assert_eq!(told.len(), 1, "told once: {told:?}");
    assert_eq!(told[0]["data"]["code"], "RATE_LIMITED");
    assert_eq!(told[0]["data"]["details"]["reason"], "slow_consumer");
    let stats = bridge.stats().await;
    assert!(
        stats["dropped"]["slow_client"].as_u64() >= Some(1),
        "{stats}"
    );
    assert_eq!(stats["subscriptions"], 0, "{stats}");

    // The node lives on for everyone else.
    clients
        .connect(
            "next",
            &bridge.url,
            json!({"token": token("user_n", "org-1")}),
        )
        .await;
    clients
        .subscribe("next", json!({"resource": "deal", "id": "d_after"}))
        .await;
    producer
        .send(
            "crm.deals",
            "d_after",
            &support::avro::deal("org-1", "d_after", "p", Action::Update, None),
        )
        .await;
    assert_eq!(
        clients.event("next", "resource-update").await["id"],
        "d_after"
    );
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_kafka_is_gone_exits_within_the_shutdown_budget() {
    let broker = Broker::dedicated();
    let port = support::free_port();
    let mut bridge = support::process::BridgeProcess::start(&broker, port, "kafka-gone").await;
    let mut clients = Clients::spawn().await;
    clients
        .connect("c", &bridge.url, json!({"token": token("user_g", "org-1")}))
        .await;
    broker.kill();
    let terminating = std::time::Instant::now();
    // Bounded by the budget; generous on a loaded machine. Before the
    // budget, the process never exited (killed by hand after 5.5 minutes).
    let limit = crm_bridge::app::SHUTDOWN_BUDGET * 3;
    tokio::time::timeout(limit, bridge.terminate())
        .await
        .unwrap_or_else(|_| panic!("still running {limit:?} after SIGTERM with Kafka gone"));
    eprintln!("exited {:?} after SIGTERM", terminating.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operational_endpoints_are_internal_only_and_not_readable_cross_origin() {
    let broker = Broker::start();
    let bridge = TestBridge::start(&broker).await;
    let http = reqwest::Client::new();
    let get = |url: String| {
        let request = http.get(url).header("origin", "https://elsewhere.test");
        async move { request.send().await.unwrap() }
    };
    let allowed_origin = |response: &reqwest::Response| {
        response
            .headers()
            .get("access-control-allow-origin")
            .cloned()
    };
    for path in ["/stats", "/metrics", "/readyz"] {
        let public = get(format!("{}{path}", bridge.url)).await;
        assert_eq!(public.status(), 404, "{path} on the public port");
        let internal = get(format!("{}{path}", bridge.internal_url)).await;
        assert_eq!(internal.status(), 200, "{path} on the internal port");
        assert_eq!(allowed_origin(&internal), None, "{path}");
    }
    for url in [&bridge.url, &bridge.internal_url] {
        let healthz = get(format!("{url}/healthz")).await;
        assert_eq!(healthz.status(), 200, "{url}");
        assert_eq!(allowed_origin(&healthz), None, "{url}");
    }
    // Socket.IO's long-polling still works from any origin (none
    // configured), and only on the public port.
    let polling = "/socket.io/?EIO=4&transport=polling";
    let public = get(format!("{}{polling}", bridge.url)).await;
    assert!(allowed_origin(&public).is_some());
    let internal = get(format!("{}{polling}", bridge.internal_url)).await;
    assert_eq!(internal.status(), 404);
    bridge.stop().await;
}
