//! Records removed by `DeleteRecords` before a client's cursor: the client
//! is told exactly what it lost (a `retention` gap: Kafka no longer holds
//! it), gets the rest replayed, and continues live. Replays read Kafka here
//! (`replay.memory_bytes = 0`): the node's recent records would still hold
//! the deleted ones and serve them, with no gap to report. (Time retention:
//! `tests/retention.rs`.)

mod support;

use std::time::Duration;

use rdkafka::admin::AdminOptions;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;
use support::semantics::{
    admin, assert_exactly_once_in_order, deal_of, deals_cursor, extents, producer, resume,
    send_deal, subscribe, untagged,
};
use support::{Broker, Clients, TestBridge};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_deleted_before_a_cursor_are_reported_and_the_rest_replayed() {
    let broker = Broker::start();
    let bridge = TestBridge::start_with(&broker, |c| {
        c.kafka.create_topics = Some(1);
        c.replay.memory_bytes = 0;
    })
    .await;
    let mut clients = Clients::spawn().await;
    subscribe(&mut clients, "live", &bridge.url, None).await;
    let ack = subscribe(&mut clients, "old", &bridge.url, None).await;
    let start = ack["cursor"].as_str().unwrap().to_owned();
    assert_eq!(untagged(&ack["cursor"]), deals_cursor(&[0]));
    clients
        .send(json!({"op": "disconnect", "client": "old"}))
        .await;

    let producer = producer(&broker, &[]);
    for seq in 0..10 {
        send_deal(&producer, &broker, &deal_of(seq), seq, None).await;
    }
    assert_exactly_once_in_order(&clients.deliveries("live", 10).await, 0..10);

    // Everything before offset 4 goes.
    let deals = broker.topic("crm.deals");
    let mut before = TopicPartitionList::new();
    before
        .add_partition_offset(&deals, 0, Offset::Offset(4))
        .unwrap();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let deleted = admin(&broker)
        .delete_records(&before, &options)
        .await
        .expect("records deleted");
    assert_eq!(deleted.elements()[0].error(), Ok(()));
    assert_eq!(extents(&broker, &deals), [(4, 10)]);

    let (replayed, resumed) = resume(&mut clients, "old", &bridge.url, &start).await;
    assert_eq!(
        resumed["gaps"],
        json!([{"topic": "deals", "partition": 0, "from": 0, "to": 4, "reason": "retention"}]),
        "{resumed}"
    );
    let gap = clients.event("old", "subscription-gap").await;
    assert_eq!(gap["gaps"], resumed["gaps"], "{gap}");
    assert_exactly_once_in_order(&replayed, 4..10);
    // A cursor past the deleted records has nothing to report.
    let (replayed, resumed) = resume(&mut clients, "later", &bridge.url, &deals_cursor(&[6])).await;
    assert_eq!(resumed["gaps"], json!([]), "{resumed}");
    assert_exactly_once_in_order(&replayed, 6..10);

    send_deal(&producer, &broker, &deal_of(10), 10, None).await;
    for name in ["live", "old", "later"] {
        assert_exactly_once_in_order(&clients.deliveries(name, 1).await, 10..11);
    }
    bridge.stop().await;
}
