//! Partitions added to a CRM topic while the bridge runs (`CreatePartitions`):
//! the bridge finds them (every `kafka.partition_refresh_seconds`), reads
//! them from their start, delivers their events live, and replays them to a
//! client whose cursor predates them (it names only the old partitions) as
//! to one whose cursor names them, from memory or from Kafka.
//!
//! Adding partitions moves keys to other partitions, so Kafka keeps a
//! resource's order only within a partition: the deals written to the new
//! partitions here are new ones.

mod support;

use rdkafka::admin::{AdminOptions, NewPartitions};
use serde_json::json;
use support::semantics::{
    admin, assert_exactly_once_in_order, deal_of, producer, resume, send_deal, subscribe, untagged,
};
use support::{Broker, Clients, TestBridge, eventually};

/// Deal `seq` goes to partition `seq % 3`: the old deals stay on 0.
async fn send_spread(producer: &rdkafka::producer::FutureProducer, broker: &Broker, seq: u64) {
    let partition = (seq % 3) as i32;
    let deal = match partition {
        0 => deal_of(seq),
        p => format!("deal_new{p}"),
    };
    send_deal(producer, broker, &deal, seq, Some(partition)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_partitions_are_delivered_and_replayed_from_memory() {
    let broker = Broker::start();
    let bridge = TestBridge::start_with(&broker, |c| {
        c.kafka.create_topics = Some(1);
        c.kafka.partition_refresh_seconds = 1;
    })
    .await;
    added_partitions(&broker, &bridge).await;
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_partitions_are_delivered_and_replayed_from_kafka() {
    let broker = Broker::start();
    let bridge = TestBridge::start_with(&broker, |c| {
        c.kafka.create_topics = Some(1);
        c.kafka.partition_refresh_seconds = 1;
        c.replay.memory_bytes = 0;
    })
    .await;
    added_partitions(&broker, &bridge).await;
    assert!(bridge.stats().await["replayReads"]["kafka"].as_u64() > Some(0));
    bridge.stop().await;
}

async fn added_partitions(broker: &Broker, bridge: &TestBridge) {
    let mut clients = Clients::spawn().await;
    subscribe(&mut clients, "live", &bridge.url, None).await;
    let ack = subscribe(&mut clients, "old", &bridge.url, None).await;
    let before = ack["cursor"].as_str().unwrap().to_owned();
    clients
        .send(json!({"op": "disconnect", "client": "old"}))
        .await;
    let producer = producer(broker, &[]);
    for seq in 0..10 {
        send_deal(&producer, broker, &deal_of(seq), seq, None).await;
    }
    assert_exactly_once_in_order(&clients.deliveries("live", 10).await, 0..10);

    let deals = broker.topic("crm.deals");
    let options = AdminOptions::new();
    for result in admin(broker)
        .create_partitions(&[NewPartitions::new(&deals, 3)], &options)
        .await
        .unwrap()
    {
        result.expect("partitions added");
    }
    // Assigned: each has a lag entry from the moment it is.
    let deal_partitions = async || {
        let stats = bridge.stats().await;
        let lags = stats["consumerLag"].as_array().unwrap();
        lags.iter()
            .filter(|lag| lag["topic"] == deals.as_str())
            .count()
    };
    eventually("the new partitions to be assigned", deal_partitions, |n| {
        *n == 3
    })
    .await;

    let ack = subscribe(&mut clients, "middle", &bridge.url, None).await;
    let middle = ack["cursor"].as_str().unwrap().to_owned();
    let deal_partitions = untagged(&ack["cursor"])[2..]
        .split(',')
        .filter(|entry| entry.starts_with('d'))
        .count();
    assert_eq!(deal_partitions, 3, "{middle}");
    clients
        .send(json!({"op": "disconnect", "client": "middle"}))
        .await;
    // A producer that learns the topic's partitions now.
    let producer = support::semantics::producer(broker, &[]);
    for seq in 10..40 {
        send_spread(&producer, broker, seq).await;
    }
    assert_exactly_once_in_order(&clients.deliveries("live", 30).await, 10..40);
    bridge.wait_consumed(40).await;

    // A cursor from before the partitions existed reads them from the start.
    let (replayed, resumed) = resume(&mut clients, "old", &bridge.url, &before).await;
    assert_exactly_once_in_order(&replayed, 0..40);
    assert_eq!(resumed["gaps"], json!([]), "{resumed}");
    let (replayed, _) = resume(&mut clients, "middle", &bridge.url, &middle).await;
    assert_exactly_once_in_order(&replayed, 10..40);

    for seq in 40..43 {
        send_spread(&producer, broker, seq).await;
    }
    for name in ["live", "old", "middle"] {
        assert_exactly_once_in_order(&clients.deliveries(name, 3).await, 40..43);
    }
}
