//! For the tests of what only a real Kafka shows (transactions, compaction,
//! added partitions, deleted records, compression): topics made with the
//! settings a test needs, Kafka's own view of a partition, and the checks
//! that every event arrived exactly once, in order per resource.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};

use super::avro::deal_seq;
use super::{Broker, Clients, token};

/// The pipeline every deal of these tests belongs to.
pub const PIPELINE: &str = "pipeline_k";

/// The deal `seq` updates: three deals, so order is checked per resource.
pub fn deal_of(seq: u64) -> String {
    format!("deal_{}", seq % 3)
}

pub fn admin(broker: &Broker) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .create()
        .expect("an admin client")
}

/// Creates the test's CRM and presence topics with `partitions` each and
/// `settings` (topic configs) on `crm.deals`; the bridge must then start
/// with `kafka.create_topics = None`.
pub async fn create_topics(broker: &Broker, partitions: i32, settings: &[(&str, &str)]) {
    let names = [
        "crm.contacts",
        "crm.deals",
        "crm.email",
        "crm.notifications",
        "crm-bridge.presence",
    ]
    .map(|name| broker.topic(name));
    let deals = broker.topic("crm.deals");
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| {
            let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
            match *name == deals {
                true => settings.iter().fold(topic, |t, (k, v)| t.set(k, v)),
                false => topic,
            }
        })
        .collect();
    for result in admin(broker)
        .create_topics(&topics, &AdminOptions::new())
        .await
        .unwrap()
    {
        result.expect("topic created");
    }
}

/// A plain consumer of the test's broker, reading what a `read_committed`
/// consumer sees (librdkafka's default).
pub fn plain_consumer(broker: &Broker) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("group.id", format!("test-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer")
}

/// Per partition of `topic` (the test's name), its oldest offset and its
/// last stable offset (for a `read_committed` reader, the end).
pub fn extents(broker: &Broker, topic: &str) -> Vec<(i64, i64)> {
    let consumer = plain_consumer(broker);
    let timeout = Duration::from_secs(5);
    let metadata = consumer.fetch_metadata(Some(topic), timeout).unwrap();
    let partitions = metadata.topics()[0].partitions().len() as i32;
    (0..partitions)
        .map(|p| consumer.fetch_watermarks(topic, p, timeout).unwrap())
        .collect()
}

/// The cursor text naming each partition of the deals topic at `offsets`.
pub fn deals_cursor(offsets: &[i64]) -> String {
    let entries: Vec<String> = offsets
        .iter()
        .enumerate()
        .map(|(p, o)| format!("d{p}.{o}"))
        .collect();
    format!("1:{}", entries.join(","))
}

/// `cursor`'s offsets as a version 1 cursor: its logs' tags (version 2,
/// `d@<tag>` entries) left out.
pub fn untagged(cursor: &Value) -> String {
    let text = cursor.as_str().expect("a cursor");
    let entries: Vec<&str> = text[2..]
        .split(',')
        .filter(|e| !e.is_empty() && !e[1..].starts_with('@'))
        .collect();
    format!("1:{}", entries.join(","))
}

/// The tag of the deals topic's log that `cursor` (version 2) names.
pub fn deals_log(cursor: &Value) -> Option<String> {
    let text = cursor.as_str().expect("a cursor");
    text.strip_prefix("2:")?
        .split(',')
        .find_map(|e| e.strip_prefix("d@"))
        .map(str::to_owned)
}

/// The log tag an event's `position` carries (`d.0.9.<tag>`), if any.
pub fn position_log(event: &Value) -> Option<String> {
    let position = event["position"].as_str().expect("a position");
    position.split('.').nth(3).map(str::to_owned)
}

/// Per partition of the deals topic, one past the last of `events` there
/// (`position` is `d.<partition>.<offset>`), else `otherwise`'s entry.
pub fn after_events(events: &[Value], otherwise: &[i64]) -> Vec<i64> {
    let mut next = otherwise.to_vec();
    for event in events {
        let position = event["position"].as_str().expect("a position");
        let mut parts = position.split('.').skip(1);
        let partition: usize = parts.next().unwrap().parse().unwrap();
        let offset: i64 = parts.next().unwrap().parse().unwrap();
        next[partition] = offset + 1;
    }
    next
}

/// Every seq in `expected` exactly once, and each deal's in increasing order.
pub fn assert_exactly_once_in_order(received: &[Value], expected: impl IntoIterator<Item = u64>) {
    let seqs: Vec<u64> = received
        .iter()
        .map(|e| e["data"]["seq"].as_u64().expect("a seq"))
        .collect();
    let unique: BTreeSet<u64> = seqs.iter().copied().collect();
    assert_eq!(unique.len(), seqs.len(), "duplicates in {seqs:?}");
    assert_eq!(
        unique,
        expected.into_iter().collect::<BTreeSet<u64>>(),
        "missing or extra events in {seqs:?}"
    );
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    for (event, seq) in received.iter().zip(&seqs) {
        let deal = event["id"].as_str().unwrap().to_owned();
        if let Some(previous) = last.insert(deal.clone(), *seq) {
            assert!(previous < *seq, "{deal}: {seq} after {previous}");
        }
    }
}

/// Connects `name` and subscribes it to the pipeline, from `since` when
/// given; returns the acknowledgement.
pub async fn subscribe(clients: &mut Clients, name: &str, url: &str, since: Option<&str>) -> Value {
    clients
        .connect(name, url, json!({"token": token("user_k", "org-1")}))
        .await;
    let mut request = json!({"resource": "deal", "filter": {"pipelineId": PIPELINE}});
    if let Some(since) = since {
        request["since"] = since.into();
    }
    let ack = clients.request(name, "subscribe", request).await;
    assert_eq!(ack["ok"], true, "{ack}");
    ack
}

/// Resumes `name` from `since`: waits for `subscription-resumed`, then
/// claims the events replayed before it. Returns them and the resume.
pub async fn resume(
    clients: &mut Clients,
    name: &str,
    url: &str,
    since: &str,
) -> (Vec<Value>, Value) {
    subscribe(clients, name, url, Some(since)).await;
    let resumed = clients.event(name, "subscription-resumed").await;
    let count = resumed["replayed"].as_u64().expect("a count") as usize;
    let replayed = clients.deliveries(name, count).await;
    assert!(
        clients.unclaimed_deliveries(name).is_empty(),
        "more replayed than {resumed}"
    );
    (replayed, resumed)
}

/// A producer of the test's broker with `settings` (compression, batching).
pub fn producer(broker: &Broker, settings: &[(&str, &str)]) -> FutureProducer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &broker.addr)
        .set("linger.ms", "0");
    for (key, value) in settings {
        config.set(*key, *value);
    }
    config.create().expect("a producer")
}

/// Sends deal update `seq` of `deal` to the test's deals topic, to
/// `partition` if given; returns where it was written.
pub async fn send_deal(
    producer: &FutureProducer,
    broker: &Broker,
    deal: &str,
    seq: u64,
    partition: Option<i32>,
) -> (i32, i64) {
    let topic = broker.topic("crm.deals");
    let payload = deal_seq("org-1", deal, PIPELINE, seq);
    let mut record = FutureRecord::to(&topic).key(deal).payload(&payload);
    if let Some(partition) = partition {
        record = record.partition(partition);
    }
    let delivery = producer
        .send(record, Duration::from_secs(10))
        .await
        .map_err(|(e, _)| e)
        .expect("produce");
    (delivery.partition, delivery.offset)
}

/// A consumer of `topic`'s partitions 0 and 1 from their start, outside
/// any group's commits (`group` only names it).
pub fn reader_from_start(broker: &Broker, topic: &str, group: &str) -> StreamConsumer {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut partitions = TopicPartitionList::new();
    for partition in 0..2 {
        partitions
            .add_partition_offset(topic, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&partitions).unwrap();
    consumer
}
