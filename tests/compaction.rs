//! A compacted topic (`cleanup.policy=compact`) keeps only each key's
//! newest record once the cleaner has run: older offsets become holes.
//! Replays from Kafka cross them, from the start and from a cursor inside
//! a hole, delivering exactly what Kafka still holds, once and in order; a
//! live client got everything before the cleaner ran. (The node's memory of
//! recent records has no holes; these replays read Kafka.)

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::json;
use support::semantics::{
    assert_exactly_once_in_order, create_topics, deal_of, deals_cursor, plain_consumer, producer,
    resume, send_deal, subscribe, untagged,
};
use support::{Broker, Clients, TestBridge, eventually};

/// The offsets partition 0 of `topic` holds now, read with a plain consumer
/// up to its end (the newest record is never compacted away).
fn offsets_held(broker: &Broker, topic: &str) -> Vec<i64> {
    let consumer = plain_consumer(broker);
    let (_, end) = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(5))
        .unwrap();
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&list).unwrap();
    let mut offsets = Vec::new();
    while offsets.last().is_none_or(|last| last + 1 < end) {
        match consumer.poll(Duration::from_secs(10)) {
            Some(Ok(message)) => offsets.push(message.offset()),
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => panic!("{topic} ends at {end}, read up to {offsets:?}"),
        }
    }
    offsets
}

/// A replay from offset `from` sent each record once, in order: every one
/// Kafka held from there after the replay (`after`), and none it no longer
/// held before (`before`). The cleaner may remove more while a replay
/// reads, so what lies between may or may not be sent.
fn assert_replayed_what_was_held(
    replayed: &[serde_json::Value],
    before: &[i64],
    after: &[i64],
    seq_at: &BTreeMap<i64, u64>,
    from: i64,
) {
    let seqs = |offsets: &[i64]| -> BTreeSet<u64> {
        offsets
            .iter()
            .filter(|o| **o >= from)
            .map(|o| seq_at[o])
            .collect()
    };
    let sent: BTreeSet<u64> = replayed
        .iter()
        .map(|e| e["data"]["seq"].as_u64().expect("a seq"))
        .collect();
    assert!(
        sent.is_superset(&seqs(after)),
        "{sent:?} lacks some of {after:?}"
    );
    assert!(
        sent.is_subset(&seqs(before)),
        "{sent:?} has records compacted before"
    );
    assert_exactly_once_in_order(replayed, sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_cross_the_holes_compaction_leaves() {
    let broker = Broker::start();
    // Segments roll every 100 ms of record time and are cleaned as soon as
    // they are (the broker's cleaner looks every 500 ms in the tests).
    create_topics(
        &broker,
        1,
        &[
            ("cleanup.policy", "compact"),
            ("segment.ms", "100"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("min.compaction.lag.ms", "0"),
        ],
    )
    .await;
    let bridge = TestBridge::start_with(&broker, |c| {
        c.kafka.create_topics = None;
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

    // Three deals updated over and over, until the cleaner has removed
    // some of their older updates (each round also rolls a segment).
    let deals = broker.topic("crm.deals");
    let producer = producer(&broker, &[]);
    let mut seq_at: BTreeMap<i64, u64> = BTreeMap::new();
    let mut seq = 0;
    // Three more records at each look: (offsets held, offsets written).
    let held_of_written = async || {
        for _ in 0..3 {
            let (_, offset) = send_deal(&producer, &broker, &deal_of(seq), seq, None).await;
            seq_at.insert(offset, seq);
            seq += 1;
        }
        (offsets_held(&broker, &deals).len(), seq_at.len())
    };
    let what = "compaction to leave holes (offsets held, written)";
    eventually(what, held_of_written, |(held, written)| held < written).await;
    let produced = seq;
    let held = offsets_held(&broker, &deals);
    let live = clients.deliveries("live", produced as usize).await;
    assert_exactly_once_in_order(&live, 0..produced);
    bridge.wait_consumed(produced).await;

    // From the start: what Kafka still holds.
    let (replayed, _) = resume(&mut clients, "old", &bridge.url, &start).await;
    assert_replayed_what_was_held(&replayed, &held, &offsets_held(&broker, &deals), &seq_at, 0);
    // From inside a hole: the first offset removed, after a record held.
    let hole = (1..produced as i64)
        .find(|o| !held.contains(o) && held.contains(&(o - 1)))
        .or_else(|| (!held.contains(&0)).then_some(0))
        .expect("a hole");
    let (replayed, _) = resume(&mut clients, "hole", &bridge.url, &deals_cursor(&[hole])).await;
    let after = offsets_held(&broker, &deals);
    assert_replayed_what_was_held(&replayed, &held, &after, &seq_at, hole);
    assert!(bridge.stats().await["replayReads"]["kafka"].as_u64() > Some(0));
    bridge.stop().await;
}
