//! A transactional producer commits some batches and aborts others. Kafka
//! writes a commit or abort marker after each, at an offset of its own, and
//! a `read_committed` consumer (librdkafka's default, the bridge's) never
//! sees aborted records. So: aborted records are never delivered, live or
//! replayed (from memory or from Kafka); cursors and replays step over the
//! markers; and a partition whose last offset is a marker holds no replay
//! open and shows no lag: live delivery stands at its last stable offset,
//! the group's committed offset too, and a client resuming from there (or
//! from the marker, on a node that started after it) is resumed at once.

mod support;

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use support::avro::deal_seq;
use support::semantics::{
    PIPELINE, after_events, assert_exactly_once_in_order, deal_of, deals_cursor, extents, resume,
    subscribe, untagged,
};
use support::{Broker, Clients, TestBridge, eventually};

const TIMEOUT: Duration = Duration::from_secs(30);

/// A producer with a transactional id of its own, ready for transactions.
fn transactional_producer(broker: &Broker) -> FutureProducer {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("transactional.id", format!("test-{}", uuid::Uuid::new_v4()))
        .set("linger.ms", "0")
        .create()
        .expect("a transactional producer");
    tokio::task::block_in_place(|| producer.init_transactions(TIMEOUT)).expect("init");
    producer
}

/// `seqs` in one transaction, committed or aborted.
async fn transaction(
    broker: &Broker,
    producer: &FutureProducer,
    seqs: std::ops::Range<u64>,
    commit: bool,
) {
    producer.begin_transaction().expect("begin");
    let topic = broker.topic("crm.deals");
    for seq in seqs {
        let deal = deal_of(seq);
        let record = deal_seq("org-1", &deal, PIPELINE, seq);
        producer
            .send(
                FutureRecord::to(&topic).key(&deal).payload(&record),
                TIMEOUT,
            )
            .await
            .map_err(|(e, _)| e)
            .expect("produce");
    }
    tokio::task::block_in_place(|| match commit {
        true => producer.commit_transaction(TIMEOUT),
        false => producer.abort_transaction(TIMEOUT),
    })
    .expect("end the transaction");
}

/// Committed 0..15 in three transactions; aborted 100..110 between them.
async fn committed_and_aborted(broker: &Broker, producer: &FutureProducer) {
    transaction(broker, producer, 0..5, true).await;
    transaction(broker, producer, 100..105, false).await;
    transaction(broker, producer, 5..10, true).await;
    transaction(broker, producer, 105..110, false).await;
    transaction(broker, producer, 10..15, true).await;
}

/// The bridge's group's committed offsets in the deals topic.
fn committed(broker: &Broker, group: &str, partitions: usize) -> Vec<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut list = rdkafka::TopicPartitionList::new();
    for p in 0..partitions as i32 {
        list.add_partition(&broker.topic("crm.deals"), p);
    }
    let committed = consumer
        .committed_offsets(list, Duration::from_secs(5))
        .unwrap();
    committed
        .elements()
        .iter()
        .map(|e| e.offset().to_raw().unwrap_or(-1))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_replayed_from_memory_deliver_committed_records_once() {
    let broker = Broker::start();
    let group = format!("crm-bridge-txn-{}", uuid::Uuid::new_v4());
    let bridge = TestBridge::start_with(&broker, |c| {
        c.kafka.node_id = Some(group.trim_start_matches("crm-bridge-").into());
    })
    .await;
    committed_then_resumed(&broker, &bridge, &group).await;
    let reads = bridge.stats().await["replayReads"].clone();
    assert!(reads["memory"].as_u64() > Some(0), "{reads}");
    assert_eq!(reads["kafka"].as_u64().unwrap_or(0), 0, "{reads}");
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_replayed_from_kafka_deliver_committed_records_once() {
    let broker = Broker::start();
    let group = format!("crm-bridge-txn-{}", uuid::Uuid::new_v4());
    let bridge = TestBridge::start_with(&broker, |c| {
        c.kafka.node_id = Some(group.trim_start_matches("crm-bridge-").into());
        c.replay.memory_bytes = 0;
    })
    .await;
    committed_then_resumed(&broker, &bridge, &group).await;
    let reads = bridge.stats().await["replayReads"].clone();
    assert_eq!(reads["memory"].as_u64().unwrap_or(0), 0, "{reads}");
    assert!(reads["kafka"].as_u64() > Some(0), "{reads}");
    bridge.stop().await;
}

/// A live client and a resuming one see exactly the committed records; both
/// end at the last stable offset, past the final markers; resuming from a
/// marker, here or on a node started after it, replays nothing and ends.
async fn committed_then_resumed(broker: &Broker, bridge: &TestBridge, group: &str) {
    let mut clients = Clients::spawn().await;
    let ack = subscribe(&mut clients, "live", &bridge.url, None).await;
    let start = ack["cursor"].as_str().unwrap().to_owned();
    subscribe(&mut clients, "old", &bridge.url, None).await;
    clients
        .send(serde_json::json!({"op": "disconnect", "client": "old"}))
        .await;

    let producer = transactional_producer(broker);
    committed_and_aborted(broker, &producer).await;
    let live = clients.deliveries("live", 15).await;
    assert_exactly_once_in_order(&live, 0..15);

    // Every partition ends in a commit marker (or is empty).
    let deals = broker.topic("crm.deals");
    let stable: Vec<i64> = extents(broker, &deals)
        .iter()
        .map(|(_, end)| *end)
        .collect();
    let at_markers = after_events(&live, &vec![0; stable.len()]);
    for (marker, end) in at_markers.iter().zip(&stable) {
        assert!(
            *marker == 0 || marker + 1 == *end,
            "{at_markers:?} {stable:?}"
        );
    }
    // Live delivery steps over the markers: a live subscription's cursor,
    // and the group's committed offsets, reach the last stable offsets...
    subscribe(&mut clients, "probe", &bridge.url, None).await;
    let live_cursor = async || {
        let request = serde_json::json!({"resource": "deal", "filter": {"pipelineId": PIPELINE}});
        let ack = clients.request("probe", "subscribe", request).await;
        untagged(&ack["cursor"])
    };
    let stable_cursor = deals_cursor(&stable);
    let what = "live delivery to stand at the last stable offsets";
    eventually(what, live_cursor, |cursor| *cursor == stable_cursor).await;
    let what = "the group to commit the last stable offsets";
    let group_committed = async || committed(broker, group, stable.len());
    eventually(what, group_committed, |offsets| *offsets == stable).await;
    // ... so no partition shows a lag (the watermark, however fresh, is at
    // most the last stable offset), and the aborted records never reached
    // the bridge.
    let stats = bridge.stats().await;
    assert_eq!(stats["recordsConsumed"], 15, "{stats}");
    for lag in stats["consumerLag"].as_array().unwrap() {
        assert_eq!(lag["records"], 0, "{stats}");
    }
    assert!(clients.unclaimed_deliveries("live").is_empty());

    // Resuming from before the transactions replays the committed records.
    let (replayed, resumed) = resume(&mut clients, "old", &bridge.url, &start).await;
    assert_exactly_once_in_order(&replayed, 0..15);
    assert_eq!(
        untagged(&resumed["cursor"]),
        deals_cursor(&stable),
        "{resumed}"
    );
    // From the markers (where a client that saw every record stands): an
    // end, not a replay waiting for a record that never comes.
    let at_markers = deals_cursor(&at_markers);
    let (replayed, _) = resume(&mut clients, "marker", &bridge.url, &at_markers).await;
    assert!(replayed.is_empty());
    // So on a node that started after the markers, at the last stable
    // offsets: it has no record at the cursor's offset to read up to.
    let later = TestBridge::start_with(broker, |c| c.replay.memory_bytes = 0).await;
    let (replayed, resumed) = resume(&mut clients, "later", &later.url, &at_markers).await;
    assert!(replayed.is_empty());
    assert_eq!(resumed["gaps"], serde_json::json!([]), "{resumed}");

    // And every client goes on live, past the next transaction's marker.
    transaction(broker, &producer, 15..18, true).await;
    for name in ["live", "old", "marker", "later"] {
        let next = clients.deliveries(name, 3).await;
        assert_exactly_once_in_order(&next, 15..18);
    }
    later.stop().await;
}
