//! A cursor that points before what Kafka still holds: the client is told
//! exactly which subscription lost what (a `retention` gap), gets the rest
//! replayed, and continues live. Kafka's time retention removes whole segments
//! whose newest record is older than `retention.ms`: the expired records are
//! written first with old timestamps, so the first current record rolls a new
//! segment (`segment.ms` is measured between record timestamps) and the old
//! one is deleted at the next retention check (every second in the tests).

mod support;

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::json;
use support::avro::{deal_seq, now_ms};
use support::{Broker, Clients, Producer, TestBridge, token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_before_retention_reports_the_lost_range_and_replays_the_rest() {
    let broker = Broker::start();
    // One partition, records older than a minute expire.
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .create()
        .unwrap();
    let names = [
        "crm.contacts",
        "crm.deals",
        "crm.email",
        "crm.notifications",
        "crm-bridge.presence",
    ]
    .map(|name| broker.topic(name));
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| {
            NewTopic::new(name, 1, TopicReplication::Fixed(1))
                .set("cleanup.policy", "delete")
                .set("retention.ms", "60000")
                .set("segment.ms", "60000")
        })
        .collect();
    for result in admin
        .create_topics(&topics, &AdminOptions::new())
        .await
        .unwrap()
    {
        result.expect("topic created");
    }

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
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (low, _) = consumer
            .fetch_watermarks(topic, 0, Duration::from_secs(5))
            .unwrap();
        if low >= offset {
            assert_eq!(
                low, offset,
                "retention removed more than the expired segment"
            );
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the log still starts at {low}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
