//! `kafka.dead_letter_topic`: undecodable records are parked there unchanged,
//! with headers naming where they came from and why, in order, and the
//! partition keeps flowing.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use crm_bridge::domain::Action;
use rdkafka::message::{Headers, Message};
use serde_json::json;
use support::avro::{self, deal};
use support::{Broker, Clients, Producer, TestBridge, token};

const DEAD_LETTERS: &str = "crm.dead-letters";

/// One record read back from the dead-letter topic.
#[derive(Debug)]
struct Parked {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: HashMap<String, String>,
}

/// Reads `count` records from every partition of `topic`, from the start.
async fn read_parked(broker: &Broker, topic: &str, count: usize) -> Vec<Parked> {
    let consumer = support::semantics::reader_from_start(broker, topic, "dead-letter-reader");
    let mut parked = Vec::new();
    while parked.len() < count {
        let message = tokio::time::timeout(Duration::from_secs(15), consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} records parked", parked.len()))
            .unwrap();
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| {
                        let value = String::from_utf8_lossy(h.value.unwrap_or_default());
                        (h.key.to_owned(), value.into_owned())
                    })
                    .collect()
            })
            .unwrap_or_default();
        parked.push(Parked {
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            headers,
        });
    }
    parked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_records_are_parked_in_order_and_the_partition_flows_on() {
    let broker = Broker::start();
    let bridge = TestBridge::start_with(&broker, |config| {
        config.kafka.dead_letter_topic = Some(broker.topic(DEAD_LETTERS));
    })
    .await;
    let producer = Producer::new(&broker);
    let mut clients = Clients::spawn().await;
    clients
        .connect("p", &bridge.url, json!({"token": token("user_p", "org-1")}))
        .await;
    clients
        .subscribe("p", json!({"resource": "deal", "id": "deal_p"}))
        .await;

    let good = deal("org-1", "deal_p", "p", Action::Update, None);
    let poison: [(&str, Vec<u8>); 4] = [
        ("bad_magic", [&[1u8][..], &good[1..]].concat()),
        ("unknown_schema", avro::frame(4242, &good[5..])),
        ("avro", good[..good.len() - 3].to_vec()),
        (
            "invalid_field",
            deal("", "deal_p", "p", Action::Update, None),
        ),
    ];
    // Same key: same partition, so the good record waits behind the bad ones.
    for (_, value) in &poison {
        producer.send("crm.deals", "deal_p", value).await;
    }
    producer.send("crm.deals", "deal_p", &good).await;
    let delivered = clients.event("p", "resource-update").await;
    assert_eq!(delivered["id"], "deal_p");

    let parked = read_parked(&broker, &broker.topic(DEAD_LETTERS), poison.len()).await;
    // `<topic>.<partition>.<offset>`, then the log's tag where known.
    let good_offset: u64 = delivered["position"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    let good_partition = delivered["position"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap();
    for (at, ((reason, value), record)) in poison.iter().zip(&parked).enumerate() {
        assert_eq!(record.key.as_deref(), Some(&b"deal_p"[..]), "{record:?}");
        assert_eq!(
            record.value.as_ref(),
            Some(value),
            "{reason}: value unchanged"
        );
        let header = |name: &str| record.headers.get(name).map(String::as_str);
        assert_eq!(header("crm-bridge.error.reason"), Some(*reason));
        assert_eq!(
            header("crm-bridge.source.topic"),
            Some(broker.topic("crm.deals").as_str())
        );
        assert_eq!(header("crm-bridge.source.partition"), Some(good_partition));
        let offset = good_offset - (poison.len() - at) as u64;
        assert_eq!(
            header("crm-bridge.source.offset"),
            Some(offset.to_string().as_str())
        );
        assert!(header("crm-bridge.node").is_some_and(|n| n.starts_with("test-")));
    }

    let stats = bridge.stats().await;
    assert_eq!(stats["deadLettered"], 4, "{stats}");
    assert_eq!(stats["deadLetterFailures"], 0, "{stats}");
    bridge.stop().await;
}
