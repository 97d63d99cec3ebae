//! A partition's log that goes backwards under a running bridge: the topic
//! deleted and recreated under the same name (what a broker that lost its
//! data looks like). The node says so (`/readyz`, the reset metric), reads
//! the new log from its start, delivers every new record to live clients
//! exactly once (also to one whose replay window holds old offsets), and a
//! client resuming from a cursor of the old log gets a `reset` gap, then
//! every new record, also when its offsets lie within the new log (the log
//! tag in cursors and positions tells). Records deleted up to the end
//! (`DeleteRecords`) move the log's start, not its end: no reset, nothing
//! lost.

mod support;

use std::time::Duration;

use crm_bridge::config::Config;
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};
use support::semantics::{
    PIPELINE, admin, after_events, assert_exactly_once_in_order, deal_of, deals_cursor, deals_log,
    extents, position_log, producer, resume, send_deal, subscribe, untagged,
};
use support::{Broker, Clients, TestBridge, eventually};

fn options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)))
}

async fn resets(bridge: &TestBridge) -> Value {
    bridge.stats().await["partitionResets"].clone()
}

/// `seen` (`/stats` `partitionResets`) and `/metrics` both hold exactly one
/// reset of `topic`'s partition 0, for `reason`.
async fn assert_one_reset(bridge: &TestBridge, topic: &str, reason: &str, seen: &Value) {
    let one = json!([{"topic": topic, "partition": 0, "reason": reason, "count": 1}]);
    assert_eq!(seen, &one);
    let metrics = reqwest::get(format!("{}/metrics", bridge.internal_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let sample = format!(
        "crm_bridge_partition_resets_total{{topic=\"{topic}\",partition=\"0\",reason=\"{reason}\"}} 1"
    );
    assert!(metrics.contains(&sample), "{metrics}");
}

/// A bridge on one-partition topics of its own with watermarks looked up
/// every second (`tweak` on top), a `live` client, and ten deals (seqs
/// `0..10`) delivered to it, in order.
async fn ten_delivered(
    broker: &Broker,
    tweak: impl FnOnce(&mut Config),
) -> (TestBridge, Clients, FutureProducer, Vec<Value>) {
    let bridge = TestBridge::start_with(broker, |c| {
        c.kafka.create_topics = Some(1);
        c.kafka.lag_refresh_seconds = 1;
        tweak(c);
    })
    .await;
    let mut clients = Clients::spawn().await;
    subscribe(&mut clients, "live", &bridge.url, None).await;
    let producer = producer(broker, &[]);
    for seq in 0..10 {
        send_deal(&producer, broker, &deal_of(seq), seq, None).await;
    }
    let before = clients.deliveries("live", 10).await;
    assert_exactly_once_in_order(&before, 0..10);
    (bridge, clients, producer, before)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_topic_is_detected_and_its_new_records_delivered() {
    // Topics are this test's own: deleting one touches no other test.
    let broker = Broker::start();
    let (bridge, mut clients, producer, before) = ten_delivered(&broker, |_| {}).await;
    let old_cursor = deals_cursor(&after_events(&before, &[0]));
    assert_eq!(old_cursor, deals_cursor(&[10]));
    // Its replay window holds offsets [5, 10) of the old log.
    let (replayed, _) = resume(&mut clients, "windowed", &bridge.url, &deals_cursor(&[5])).await;
    assert_exactly_once_in_order(&replayed, 5..10);
    assert_eq!(resets(&bridge).await, json!([]));

    let deals = broker.topic("crm.deals");
    recreate(&broker, &deals).await;
    for seq in 10..15 {
        send_deal(&producer, &broker, &deal_of(seq), seq, None).await;
    }
    assert_eq!(extents(&broker, &deals), [(0, 5)], "the new log");
    for name in ["live", "windowed"] {
        assert_exactly_once_in_order(&clients.deliveries(name, 5).await, 10..15);
    }
    // The new id, a record below the old position or the log's end below
    // it: whichever the node sees first (the new log is shorter, so the
    // consumer's fetch is out of range and it restarts at the new log's
    // start by itself too). Once, either way.
    let seen = resets(&bridge).await;
    let reason = seen[0]["reason"].as_str().unwrap_or_default().to_owned();
    assert!(
        ["topic_recreated", "offsets_restarted", "log_end_behind"].contains(&reason.as_str()),
        "{seen}"
    );
    assert_one_reset(&bridge, &deals, &reason, &seen).await;
    // Not ready from the reset until a look-up confirms the new position.
    support::bridge::wait_ready(&bridge.internal_url).await;

    // A cursor of the old log: a `reset` gap, then the new log from its start.
    let (replayed, resumed) = resume(&mut clients, "old", &bridge.url, &old_cursor).await;
    let gaps = json!([{"topic": "deals", "partition": 0, "from": 10, "to": 0, "reason": "reset"}]);
    assert_eq!(resumed["gaps"], gaps, "{resumed}");
    assert_eq!(
        untagged(&resumed["cursor"]),
        deals_cursor(&[5]),
        "{resumed}"
    );
    let gap = clients.event("old", "subscription-gap").await;
    assert_eq!(gap["gaps"], gaps, "{gap}");
    assert_exactly_once_in_order(&replayed, 10..15);

    send_deal(&producer, &broker, &deal_of(15), 15, None).await;
    for name in ["live", "windowed", "old"] {
        assert_exactly_once_in_order(&clients.deliveries(name, 1).await, 15..16);
    }
    bridge.stop().await;
}

/// Deletes `topic` and creates it again (one partition), empty.
async fn recreate(broker: &Broker, topic: &str) {
    for result in admin(broker)
        .delete_topics(&[topic], &options())
        .await
        .unwrap()
    {
        result.expect("topic deleted");
    }
    // Kafka deletes asynchronously: the name is free once creating works.
    // What refused the creation, if anything.
    let create = async || {
        let new = NewTopic::new(topic, 1, TopicReplication::Fixed(1));
        let answer = admin(broker).create_topics(&[new], &options()).await;
        answer.unwrap().remove(0).err().map(|(_, code)| code)
    };
    eventually(&format!("{topic} to be recreated"), create, Option::is_none).await;
}

/// Recreates `topic` and writes deals 10..40 to its new log at once, in
/// one batch: the new log is 30 long, past the old position (10), before a
/// fetch there can find it shorter.
async fn recreate_longer(broker: &Broker, producer: &FutureProducer, topic: &str) {
    recreate(broker, topic).await;
    let deal_ids: Vec<String> = (10..40).map(deal_of).collect();
    let sends: Vec<_> = (10..40)
        .zip(&deal_ids)
        .map(|(seq, deal)| send_deal(producer, broker, deal, seq, None))
        .collect();
    futures::future::join_all(sends).await;
}

/// Every seq in `expected` exactly once (in any order).
fn assert_exactly_once(received: &[Value], expected: std::ops::Range<u64>) {
    let mut seqs: Vec<u64> = received
        .iter()
        .map(|e| e["data"]["seq"].as_u64().expect("a seq"))
        .collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        expected.collect::<Vec<_>>(),
        "missing, extra or twice"
    );
}

/// The new log outgrows the old position before the bridge looks: a
/// consumer fetching on from its old offset reads it with no error, and
/// offsets alone show nothing. The topic's new id does: the node re-reads
/// the new log from its start, skipping once what it had handed on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_topic_longer_than_the_old_position_is_told_by_its_id() {
    let broker = Broker::start();
    let bridge = TestBridge::start_with(&broker, |c| {
        c.kafka.create_topics = Some(1);
        // Long, so the new log is written, and usually read from the old
        // position, before the bridge looks: the ids are known from
        // assignment on, not from a look-up.
        c.kafka.lag_refresh_seconds = 10;
        c.kafka.ready_broker_silence_seconds = 60;
    })
    .await;
    let mut clients = Clients::spawn().await;
    subscribe(&mut clients, "live", &bridge.url, None).await;
    let producer = producer(&broker, &[("linger.ms", "50")]);
    for seq in 0..10 {
        send_deal(&producer, &broker, &deal_of(seq), seq, None).await;
    }
    assert_exactly_once_in_order(&clients.deliveries("live", 10).await, 0..10);
    let (replayed, _) = resume(&mut clients, "windowed", &bridge.url, &deals_cursor(&[5])).await;
    assert_exactly_once_in_order(&replayed, 5..10);

    let deals = broker.topic("crm.deals");
    recreate_longer(&broker, &producer, &deals).await;
    assert_eq!(extents(&broker, &deals), [(0, 30)], "the new log");
    for name in ["live", "windowed"] {
        let got = clients.deliveries(name, 30).await;
        // The new log's records from the old position on first (20..40),
        // if the consumer read them before the look-up: in log order after.
        let order: Vec<u64> = got
            .iter()
            .map(|e| e["data"]["seq"].as_u64().unwrap())
            .collect();
        eprintln!("{name} got {order:?}");
        assert_exactly_once(&got, 10..40);
    }
    let seen = resets(&bridge).await;
    assert_one_reset(&bridge, &deals, "topic_recreated", &seen).await;
    support::bridge::wait_ready(&bridge.internal_url).await;

    send_deal(&producer, &broker, &deal_of(40), 40, None).await;
    for name in ["live", "windowed"] {
        assert_exactly_once_in_order(&clients.deliveries(name, 1).await, 40..41);
    }
    // Nothing more: the skipped offsets were not delivered again.
    clients.settle(Duration::from_millis(500)).await;
    for name in ["live", "windowed"] {
        assert!(clients.unclaimed_deliveries(name).is_empty(), "{name}");
    }
    bridge.stop().await;
}

/// A cursor of the old log whose offsets the new log has outgrown: offsets
/// alone would resume it there and miss the new log's first records. The
/// log's tag in the cursor is not the topic's now: a `reset` gap, then
/// every new record once. Events carry the tag, and a cursor resumed or
/// acknowledged now names the new log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_of_the_old_log_within_the_new_one_gets_a_reset_gap_and_every_new_record() {
    let broker = Broker::start();
    let bridge = TestBridge::start_with(&broker, |c| {
        c.kafka.create_topics = Some(1);
        c.kafka.lag_refresh_seconds = 1;
    })
    .await;
    let mut clients = Clients::spawn().await;
    subscribe(&mut clients, "live", &bridge.url, None).await;
    let producer = producer(&broker, &[("linger.ms", "50")]);
    for seq in 0..10 {
        send_deal(&producer, &broker, &deal_of(seq), seq, None).await;
    }
    let before = clients.deliveries("live", 10).await;
    assert_exactly_once_in_order(&before, 0..10);
    // The cursor a client holds after those 10: the acknowledgement's.
    let ack = subscribe(&mut clients, "taker", &bridge.url, None).await;
    let old_cursor = ack["cursor"].as_str().unwrap().to_owned();
    assert_eq!(untagged(&ack["cursor"]), deals_cursor(&[10]), "{ack}");
    let old_log = deals_log(&ack["cursor"]).expect("the cursor names the topic's log");
    for event in &before {
        assert_eq!(position_log(event).as_ref(), Some(&old_log), "{event}");
    }

    let deals = broker.topic("crm.deals");
    recreate_longer(&broker, &producer, &deals).await;
    assert_eq!(
        extents(&broker, &deals),
        [(0, 30)],
        "the new log, past the cursor's 10"
    );
    let seen = async || resets(&bridge).await;
    eventually("the node to see the topic recreated", seen, |r| {
        *r != json!([])
    })
    .await;
    assert_exactly_once(&clients.deliveries("live", 30).await, 10..40);
    // Whichever sign came first, the new id moves the topic's log tag on
    // (at once with `topic_recreated`, at the next look-up otherwise).
    subscribe(&mut clients, "probe", &bridge.url, None).await;
    let named = async || {
        let request = json!({"resource": "deal", "filter": {"pipelineId": PIPELINE}});
        let ack = clients.request("probe", "subscribe", request).await;
        deals_log(&ack["cursor"])
    };
    let what = "the node to name the new log";
    let new_log = eventually(what, named, |log| {
        log.as_ref().is_some_and(|l| *l != old_log)
    })
    .await
    .unwrap();
    support::bridge::wait_ready(&bridge.internal_url).await;

    let (replayed, resumed) = resume(&mut clients, "old", &bridge.url, &old_cursor).await;
    let gaps = json!([{"topic": "deals", "partition": 0, "from": 10, "to": 0, "reason": "reset"}]);
    assert_eq!(resumed["gaps"], gaps, "{resumed}");
    let gap = clients.event("old", "subscription-gap").await;
    assert_eq!(gap["gaps"], gaps, "{gap}");
    assert_exactly_once_in_order(&replayed, 10..40);
    for event in &replayed {
        assert_eq!(position_log(event).as_ref(), Some(&new_log), "{event}");
    }
    assert_eq!(
        untagged(&resumed["cursor"]),
        deals_cursor(&[30]),
        "{resumed}"
    );
    assert_eq!(deals_log(&resumed["cursor"]), Some(new_log.clone()));
    // Resuming from that cursor: the same log, nothing to report or repeat.
    let cursor = resumed["cursor"].as_str().unwrap().to_owned();
    let (again, resumed) = resume(&mut clients, "again", &bridge.url, &cursor).await;
    assert!(
        again.is_empty() && resumed["gaps"] == json!([]),
        "{resumed}"
    );

    send_deal(&producer, &broker, &deal_of(40), 40, None).await;
    for name in ["live", "old", "again"] {
        assert_exactly_once_in_order(&clients.deliveries(name, 1).await, 40..41);
    }
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_deleted_up_to_the_end_are_no_reset_and_lose_nothing_new() {
    let broker = Broker::start();
    let (bridge, mut clients, producer, before) = ten_delivered(&broker, |_| {}).await;
    let cursor = deals_cursor(&after_events(&before, &[0]));

    let deals = broker.topic("crm.deals");
    let mut everything = TopicPartitionList::new();
    everything
        .add_partition_offset(&deals, 0, Offset::Offset(10))
        .unwrap();
    let deleted = admin(&broker)
        .delete_records(&everything, &options())
        .await
        .expect("records deleted");
    assert_eq!(deleted.elements()[0].error(), Ok(()));
    assert_eq!(extents(&broker, &deals), [(10, 10)], "empty, its end kept");

    for seq in 10..15 {
        send_deal(&producer, &broker, &deal_of(seq), seq, None).await;
    }
    assert_exactly_once_in_order(&clients.deliveries("live", 5).await, 10..15);
    let (replayed, resumed) = resume(&mut clients, "resumed", &bridge.url, &cursor).await;
    assert_eq!(resumed["gaps"], json!([]), "{resumed}");
    assert_exactly_once_in_order(&replayed, 10..15);
    support::bridge::wait_ready(&bridge.internal_url).await;
    assert_eq!(resets(&bridge).await, json!([]));
    bridge.stop().await;
}

/// A topic recreated and left empty: no record below live delivery's
/// position ever arrives to show it, and the log's end stays below that
/// position. The new id (or the log end behind) moves live delivery back:
/// `/readyz` recovers, and what is written later is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_recreated_empty_is_ready_again_and_delivers_what_comes() {
    let broker = Broker::start();
    let (bridge, mut clients, producer, _) = ten_delivered(&broker, |_| {}).await;

    let deals = broker.topic("crm.deals");
    recreate(&broker, &deals).await;
    let seen = async || resets(&bridge).await;
    eventually("the reset to be seen", seen, |r| *r != json!([])).await;
    let seen = resets(&bridge).await;
    assert_eq!(seen.as_array().unwrap().len(), 1, "{seen}");
    assert_eq!(seen[0]["count"], 1, "{seen}");
    let reason = seen[0]["reason"].as_str().unwrap();
    // The id, unless a look-up found the new log's end before its id.
    assert!(
        ["topic_recreated", "log_end_behind"].contains(&reason),
        "{seen}"
    );
    support::bridge::wait_ready(&bridge.internal_url).await;

    for seq in 10..15 {
        send_deal(&producer, &broker, &deal_of(seq), seq, None).await;
    }
    assert_exactly_once_in_order(&clients.deliveries("live", 5).await, 10..15);
    let (replayed, resumed) = resume(&mut clients, "old", &bridge.url, &deals_cursor(&[10])).await;
    let gaps = json!([{"topic": "deals", "partition": 0, "from": 10, "to": 0, "reason": "reset"}]);
    assert_eq!(resumed["gaps"], gaps, "{resumed}");
    assert_exactly_once_in_order(&replayed, 10..15);
    assert_eq!(resets(&bridge).await, seen, "one reset");
    bridge.stop().await;
}

/// Records deleted past where live delivery stood, while the node was
/// down: it starts at the oldest record left, says so (a reset,
/// `out_of_range`), delivers what the log holds, and a client resuming
/// from before the deletion is told what it lost (a `retention` gap).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_deleted_past_the_committed_offset_are_reported_and_the_rest_delivered() {
    let broker = Broker::start();
    let node = format!("test-{}", uuid::Uuid::new_v4());
    let config = |c: &mut Config| {
        c.kafka.create_topics = Some(1);
        c.kafka.lag_refresh_seconds = 1;
        // The same consumer group, so the restart resumes at its commit.
        c.kafka.node_id = Some(node.clone());
    };
    let (bridge, mut clients, producer, _) = ten_delivered(&broker, &config).await;
    // Stopping commits the offset live delivery reached: 10.
    bridge.stop().await;

    for seq in 10..20 {
        send_deal(&producer, &broker, &deal_of(seq), seq, None).await;
    }
    let deals = broker.topic("crm.deals");
    let mut before = TopicPartitionList::new();
    before
        .add_partition_offset(&deals, 0, Offset::Offset(15))
        .unwrap();
    let deleted = admin(&broker)
        .delete_records(&before, &options())
        .await
        .expect("records deleted");
    assert_eq!(deleted.elements()[0].error(), Ok(()));
    assert_eq!(extents(&broker, &deals), [(15, 20)]);

    let bridge = TestBridge::start_with(&broker, config).await;
    assert_eq!(
        resets(&bridge).await,
        json!([{"topic": deals, "partition": 0, "reason": "out_of_range", "count": 1}])
    );
    bridge.wait_consumed(5).await;
    let (replayed, resumed) =
        resume(&mut clients, "resumed", &bridge.url, &deals_cursor(&[10])).await;
    let gaps =
        json!([{"topic": "deals", "partition": 0, "from": 10, "to": 15, "reason": "retention"}]);
    assert_eq!(resumed["gaps"], gaps, "{resumed}");
    assert_exactly_once_in_order(&replayed, 15..20);
    subscribe(&mut clients, "live2", &bridge.url, None).await;
    send_deal(&producer, &broker, &deal_of(20), 20, None).await;
    for name in ["resumed", "live2"] {
        assert_exactly_once_in_order(&clients.deliveries(name, 1).await, 20..21);
    }
    bridge.stop().await;
}
