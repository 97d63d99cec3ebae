//! Producers compress their batches (gzip, snappy, lz4, zstd): the bridge
//! decodes every record of each, live and when replaying from Kafka, also
//! from a cursor in the middle of a compressed batch. Kafka answers a fetch
//! with the whole batch that holds the requested offset; librdkafka hands
//! on only the records from that offset on, so nothing is repeated.

mod support;

use rdkafka::producer::FutureProducer;
use support::semantics::{
    assert_exactly_once_in_order, deal_of, deals_cursor, producer, resume, send_deal, subscribe,
    untagged,
};
use support::{Broker, Clients, TestBridge};

const CODECS: [&str; 4] = ["gzip", "snappy", "lz4", "zstd"];
const PER_BATCH: u64 = 10;

/// `seqs` sent at once, so the producer puts them in one batch.
async fn one_batch(producer: &FutureProducer, broker: &Broker, seqs: std::ops::Range<u64>) {
    let sends = seqs.map(|seq| async move {
        send_deal(producer, broker, &deal_of(seq), seq, None).await;
    });
    futures::future::join_all(sends).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_batches_are_delivered_live_and_replayed_from_kafka() {
    let broker = Broker::start();
    let bridge = TestBridge::start_with(&broker, |c| {
        c.kafka.create_topics = Some(1);
        c.replay.memory_bytes = 0;
    })
    .await;
    let mut clients = Clients::spawn().await;
    let ack = subscribe(&mut clients, "live", &bridge.url, None).await;
    let start = ack["cursor"].as_str().unwrap().to_owned();
    assert_eq!(untagged(&ack["cursor"]), deals_cursor(&[0]));

    for (i, codec) in CODECS.iter().enumerate() {
        // Batches wait up to a second to fill: ten sends at once make one.
        let producer = producer(
            &broker,
            &[("compression.type", codec), ("linger.ms", "1000")],
        );
        let first = i as u64 * PER_BATCH;
        one_batch(&producer, &broker, first..first + PER_BATCH).await;
    }
    let total = CODECS.len() as u64 * PER_BATCH;
    let live = clients.deliveries("live", total as usize).await;
    assert_exactly_once_in_order(&live, 0..total);
    assert_eq!(
        bridge.stats().await["decodeFailures"],
        serde_json::json!({})
    );

    let (replayed, _) = resume(&mut clients, "old", &bridge.url, &start).await;
    assert_exactly_once_in_order(&replayed, 0..total);
    // The client has the gzip batch's first half.
    let middle = deals_cursor(&[PER_BATCH as i64 / 2]);
    let (replayed, _) = resume(&mut clients, "middle", &bridge.url, &middle).await;
    assert_exactly_once_in_order(&replayed, PER_BATCH / 2..total);
    assert!(bridge.stats().await["replayReads"]["kafka"].as_u64() > Some(0));
    bridge.stop().await;
}
