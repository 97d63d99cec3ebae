//! A cursor that points before what Kafka still holds: the client is told
//! exactly which subscription lost what (a `retention` gap), gets the rest
//! replayed, and continues live. Kafka's time retention removes whole segments
//! whose newest record is older than `retention.ms`: the expired records are
//! written first with old timestamps, so the first current record rolls a new
//! segment (`segment.ms` is measured between record timestamps) and the old
//! one is deleted at the next retention check (every second in the tests).

mod support;

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::json;
use support::avro::{deal_seq, now_ms};
use support::semantics::create_topics;
use support::{Broker, Clients, Producer, TestBridge, eventually, token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_before_retention_reports_the_lost_range_and_replays_the_rest() {
    let broker = Broker::start();
    // One partition, records older than a minute expire.
    let expiring = [("retention.ms", "60000"), ("segment.ms", "60000")];
    create_topics(&broker, 1, &expiring).await;

    // Replays from Kafka: the node's recent records would still hold what
    // retention removes, and serve it (no gap to report).
    let bridge = TestBridge::start_with(&broker, |c| {
        c.kafka.create_topics = None;
        c.replay.memory_bytes = 0;
    })
    .await;
    let mut clients = Clients::spawn().await;
    clients
        .connect(
            "old",
            &bridge.url,
            json!({"token": token("user_t", "org-1")}),
        )
        .await;
    let request = json!({"resource": "deal", "id": "deal_t"});
    let ack = clients.request("old", "subscribe", request.clone()).await;
    clients
        .send(json!({"op": "disconnect", "client": "old"}))
        .await;

    // Five records from an hour ago (expired), then five current ones.
    let producer = Producer::new(&broker);
    for seq in 0..10 {
        let age = if seq < 5 { 3_600_000 } else { 0 };
        let record = deal_seq("org-1", "deal_t", "p", seq);
        producer
            .send_at("crm.deals", "deal_t", &record, now_ms() - age)
            .await;
    }
    bridge.wait_consumed(10).await;
    wait_for_log_start(&broker, &broker.topic("crm.deals"), 5).await;

    clients
        .connect(
            "new",
            &bridge.url,
            json!({"token": token("user_t", "org-1")}),
        )
        .await;
    let mut resume = request.clone();
    resume["since"] = ack["cursor"].clone();
    clients.request("new", "subscribe", resume).await;
    let told = clients.event("new", "subscription-gap").await;
    let gap = &told["gaps"][0];
    assert_eq!(gap["reason"], "retention", "{told}");
    assert_eq!(
        (gap["from"].clone(), gap["to"].clone()),
        (json!(0), json!(5)),
        "{told}"
    );
    let resumed = clients.event("new", "subscription-resumed").await;
    assert_eq!(resumed["replayed"], 5, "{resumed}");
    let replayed = clients.deliveries("new", 5).await;
    let seqs: Vec<u64> = replayed
        .iter()
        .map(|e| e["data"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [5, 6, 7, 8, 9]);

    // And it continues live.
    producer
        .send("crm.deals", "deal_t", &deal_seq("org-1", "deal_t", "p", 10))
        .await;
    assert_eq!(clients.deliveries("new", 1).await[0]["data"]["seq"], 10);
    bridge.stop().await;
}

/// Waits until retention has moved the start of `topic`'s partition 0 to `offset`.
async fn wait_for_log_start(broker: &Broker, topic: &str, offset: i64) {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .create()
        .unwrap();
    let start = async || {
        let (low, _) = consumer
            .fetch_watermarks(topic, 0, Duration::from_secs(5))
            .unwrap();
        low
    };
    let what = format!("retention to move the start of {topic}/0 to {offset}");
    let low = eventually(&what, start, |low| *low >= offset).await;
    assert_eq!(
        low, offset,
        "retention removed more than the expired segment"
    );
}
