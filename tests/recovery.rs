//! Nothing lost across reconnects: clients resume from Kafka positions, with
//! the project's client module or by hand, across transport drops, a SIGKILL
//! (after which the node resumes from its group's committed offsets),
//! another node, an expired token, and being cut off as too slow. Each test
//! checks that every event the client was entitled to arrived exactly once,
//! in order per resource. Replays read the node's recent records from memory
//! when they reach back far enough, else Kafka: both paths are exercised
//! (`replay.memory_bytes = 0` forces Kafka) and `/stats` tells which ran.
//! A disruption during a stream of deals lands mid-stream, and the test
//! shows it did: part of the stream had reached the client, and the rest
//! was still to be sent once the disruption was seen ([`Stream`]).

mod support;

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crm_bridge::domain::Action;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{Value, json};
use support::avro::deal_seq;
use support::process::BridgeProcess;
use support::proxy::Proxy;
use support::semantics::assert_exactly_once_in_order;
use support::{Broker, Clients, Producer, TestBridge, eventually, free_port, token};

const PIPELINE: &str = "pipeline_r";

fn deal_of(seq: u64) -> String {
    format!("deal_{}", seq % 7)
}

/// Produces `range` as deal updates, each acknowledged before the next.
async fn produce(producer: &Producer, range: Range<u64>) {
    for seq in range {
        send(producer, seq).await;
    }
}

async fn send(producer: &Producer, seq: u64) {
    let deal = deal_of(seq);
    producer
        .send("crm.deals", &deal, &deal_seq("org-1", &deal, PIPELINE, seq))
        .await;
}

/// Deal updates produced in the background, `pause` apart (the stream's
/// pace), for a disruption to land in the middle of: it tells how many it
/// has begun to send, so a test can show that some were sent only after
/// the disruption.
struct Stream {
    end: u64,
    /// Seqs below it have been handed to the producer (and may have
    /// reached the bridge); none at or above it has.
    begun: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Stream {
    fn start(producer: &Producer, range: Range<u64>, pause: Duration) -> Self {
        let begun = Arc::new(AtomicU64::new(range.start));
        let end = range.end;
        let task = {
            let (producer, begun) = (producer.clone(), begun.clone());
            tokio::spawn(async move {
                for seq in range {
                    begun.store(seq + 1, Ordering::SeqCst);
                    send(&producer, seq).await;
                    tokio::time::sleep(pause).await;
                }
            })
        };
        Self { end, begun, task }
    }

    /// Waits until `client` has received `count` deliveries it has not
    /// claimed yet (the stream's, as these tests claim what came before),
    /// and checks the stream has more to send: the moment to disrupt.
    async fn received(&self, clients: &mut Clients, client: &str, count: usize) {
        let what = format!("{client} to receive {count} deals of the stream");
        let received = async || {
            clients.gather();
            clients.unclaimed_deliveries(client).len()
        };
        eventually(&what, received, |n| *n >= count).await;
        self.assert_unfinished(&format!("{client} received {count}"));
    }

    /// The stream has not begun its last deal yet: checked once a
    /// disruption has been seen, it shows the stream went on after it.
    fn assert_unfinished(&self, moment: &str) {
        assert!(
            self.begun.load(Ordering::SeqCst) < self.end,
            "the stream had begun its last deal before {moment}: not mid-stream"
        );
    }

    async fn finish(self) {
        self.task.await.unwrap();
    }
}

/// Claims `client`'s next `disconnect` observation: its transport went.
async fn disconnected(clients: &mut Clients, client: &str) -> Value {
    let what = format!("{client} disconnected");
    clients
        .wait_for(&what, |o| {
            o["client"] == client && o["type"] == "disconnect"
        })
        .await
}

async fn connect_module(clients: &mut Clients, name: &str, url: &str, auth: Value) {
    clients
        .send(json!({"op": "connect", "client": name, "url": url, "auth": auth, "module": true}))
        .await;
    clients.event(name, "connected").await;
}

/// A page using the client module, subscribed to the pipeline.
async fn subscribed_page(url: &str, user: &str) -> Clients {
    let mut clients = Clients::spawn().await;
    connect_module(
        &mut clients,
        "page",
        url,
        json!({"token": token(user, "org-1")}),
    )
    .await;
    subscribe_pipeline(&mut clients, "page").await;
    clients
}

async fn subscribe_pipeline(clients: &mut Clients, name: &str) -> Value {
    let reply = clients
        .request(
            name,
            "subscribe",
            json!({"resource": "deal", "filter": {"pipelineId": PIPELINE}}),
        )
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    reply
}

/// Partition ranges replays read, by source (`memory` or `kafka`).
async fn replay_reads(bridge: &TestBridge, source: &str) -> u64 {
    bridge.stats().await["replayReads"][source]
        .as_u64()
        .unwrap_or(0)
}

/// Replays read memory, and never Kafka.
async fn assert_served_from_memory(bridge: &TestBridge) {
    assert!(replay_reads(bridge, "memory").await > 0);
    assert_eq!(replay_reads(bridge, "kafka").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_transport_resumes_from_memory_with_nothing_lost_or_repeated() {
    let broker = Broker::start();
    let bridge = TestBridge::start(&broker).await;
    dropped_transport_resumes(&broker, &bridge).await;
    assert_served_from_memory(&bridge).await;
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_transport_resumes_from_kafka_with_nothing_lost_or_repeated() {
    let broker = Broker::start();
    let bridge = TestBridge::start_with(&broker, |c| c.replay.memory_bytes = 0).await;
    dropped_transport_resumes(&broker, &bridge).await;
    assert_eq!(replay_reads(&bridge, "memory").await, 0);
    assert!(replay_reads(&bridge, "kafka").await > 0);
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_reaching_back_past_memory_reads_kafka_with_nothing_lost() {
    let broker = Broker::start();
    // Room for a few records: most of the deals missed are evicted.
    let bridge = TestBridge::start_with(&broker, |c| c.replay.memory_bytes = 2_000).await;
    dropped_transport_resumes(&broker, &bridge).await;
    assert!(replay_reads(&bridge, "kafka").await > 0);
    bridge.stop().await;
}

/// Deals that go by while the page is away: many more than the 2,000 bytes
/// of replay memory of the test reaching back past memory hold (a replay
/// there must read Kafka).
const MISSED: usize = 60;

/// A page's transport drops in the middle of 300 deals (the network to the
/// bridge goes), and stays down while [`MISSED`] deals and a notification
/// go by; back, the page resumes every one of them exactly once.
async fn dropped_transport_resumes(broker: &Broker, bridge: &TestBridge) {
    let producer = Producer::new(broker);
    let mut clients = Clients::spawn().await;
    clients
        .connect(
            "reference",
            &bridge.url,
            json!({"token": token("user_r", "org-1")}),
        )
        .await;
    let network = Proxy::start(bridge.addr()).await;
    connect_module(
        &mut clients,
        "page",
        &network.url,
        json!({"token": token("user_p", "org-1")}),
    )
    .await;
    subscribe_pipeline(&mut clients, "reference").await;
    subscribe_pipeline(&mut clients, "page").await;
    // A notification received before the drop is not sent again after it.
    let earlier = support::avro::notification("org-1", "user_p", "before you left");
    producer.send("crm.notifications", "user_p", &earlier).await;
    assert_eq!(
        clients.deliveries("page", 1).await[0]["title"],
        "before you left"
    );

    // The transport drops mid-stream: after 20 deals reached the page, before
    // the stream is done.
    let stream = Stream::start(&producer, 0..300, Duration::from_millis(2));
    stream.received(&mut clients, "page", 20).await;
    network.down();
    disconnected(&mut clients, "page").await;
    stream.assert_unfinished("the page's transport dropped");
    // While it is away, the user is also mentioned, and deals go by (the
    // reference client counts them).
    let note = support::avro::notification("org-1", "user_p", "while you were away");
    producer.send("crm.notifications", "user_p", &note).await;
    let mut passed = async || {
        clients.gather();
        clients.unclaimed_deliveries("reference").len()
    };
    let at_drop = passed().await;
    let what = format!("{MISSED} deals to go by while the page is away");
    eventually(&what, passed, |n| *n >= at_drop + MISSED).await;
    network.up();
    stream.finish().await;

    let recovered = clients.recovered("page").await;
    assert_eq!(recovered["data"]["recovered"], true, "{recovered}");
    let reference = clients.deliveries("reference", 300).await;
    assert_exactly_once_in_order(&reference, 0..300);
    let mut page = Vec::new();
    while page.len() < 301 {
        page.extend(clients.deliveries("page", 1).await);
    }
    let (notes, deals): (Vec<Value>, Vec<Value>) =
        page.into_iter().partition(|e| e["type"] == "mention");
    assert_eq!(
        notes.len(),
        1,
        "the notification sent while away arrives once"
    );
    assert_exactly_once_in_order(&deals, 0..300);
    clients.settle(Duration::from_millis(300)).await;
    assert!(
        clients.unclaimed_deliveries("page").is_empty(),
        "{:?}",
        clients.unclaimed_deliveries("page")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_killed_with_sigkill_and_restarted_loses_nothing() {
    let broker = Broker::start();
    let port = free_port();
    let mut node = BridgeProcess::start(&broker, port, "sigkill").await;
    let producer = Producer::new(&broker);
    let mut clients = subscribed_page(&node.url, "user_k").await;

    produce(&producer, 0..40).await;
    let mut received = clients.deliveries("page", 40).await;
    node.kill();
    produce(&producer, 40..80).await;
    let _node = BridgeProcess::start(&broker, port, "sigkill").await;
    clients.recovered("page").await;
    produce(&producer, 80..100).await;
    received.extend(clients.deliveries("page", 60).await);
    assert_exactly_once_in_order(&received, 0..100);
    clients.settle(Duration::from_millis(300)).await;
    assert!(clients.unclaimed_deliveries("page").is_empty());
}

/// The offsets the group of node `node_id` has committed in the deals
/// topic, summed over its partitions: how many of its records the group has
/// finished (the topic is the test's own, so it began at 0).
async fn committed_deals(broker: &Broker, node_id: &str) -> i64 {
    let (addr, topic) = (broker.addr.clone(), broker.topic("crm.deals"));
    let group = format!("crm-bridge-{node_id}");
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &addr)
            .set("group.id", &group)
            .create()
            .unwrap();
        let metadata = consumer
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .unwrap();
        let mut partitions = TopicPartitionList::new();
        for partition in metadata.topics()[0].partitions() {
            partitions.add_partition(&topic, partition.id());
        }
        let committed = consumer
            .committed_offsets(partitions, Duration::from_secs(10))
            .unwrap();
        committed
            .elements()
            .iter()
            .map(|e| match e.offset() {
                Offset::Offset(offset) => offset,
                _ => 0,
            })
            .sum()
    })
    .await
    .unwrap()
}

/// Waits until the group of `node_id` has committed `records` deals.
async fn wait_committed(broker: &Broker, node_id: &str, records: i64) {
    let what = format!("{node_id} to commit {records} deals");
    let committed = async || committed_deals(broker, node_id).await;
    eventually(&what, committed, |n| *n == records).await;
}

/// `a_bridge_killed_with_sigkill_and_restarted_loses_nothing` passes whether
/// or not a restarted node starts at its committed offsets (its client's
/// cursor would have Kafka replay the rest anyway): here the node's own
/// consumption shows where it started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_killed_with_sigkill_resumes_from_the_offsets_its_group_committed_in_kafka() {
    let broker = Broker::start();
    let port = free_port();
    let node_id = format!("crash-{}", uuid::Uuid::new_v4().simple());
    let mut node = BridgeProcess::start(&broker, port, &node_id).await;
    let producer = Producer::new(&broker);
    let mut clients = subscribed_page(&node.url, "user_c").await;

    produce(&producer, 0..40).await;
    let mut received = clients.deliveries("page", 40).await;
    // Committed in the background (every second), never by the kill.
    wait_committed(&broker, &node_id, 40).await;
    node.kill();
    produce(&producer, 40..80).await;
    let node = BridgeProcess::start(&broker, port, &node_id).await;
    clients.recovered("page").await;
    produce(&producer, 80..100).await;
    received.extend(clients.deliveries("page", 60).await);
    assert_exactly_once_in_order(&received, 0..100);
    clients.settle(Duration::from_millis(300)).await;
    assert!(clients.unclaimed_deliveries("page").is_empty());
    // Each partition's 80..100 follow its 40..80, so the node has read
    // both: exactly those 60 from where its group left off, not the 100
    // from the beginning nor the 20 from the head.
    let stats = node.stats().await;
    assert_eq!(stats["recordsConsumed"], 60, "{stats}");
    wait_committed(&broker, &node_id, 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_restarted_with_sigterm_resumes_its_clients_without_kafka() {
    let broker = Broker::start();
    let port = free_port();
    let mut node = BridgeProcess::start(&broker, port, "deploy").await;
    let producer = Producer::new(&broker);
    let mut clients = subscribed_page(&node.url, "user_d").await;

    // The node stops mid-stream: its clients are let go after 20 deals
    // reached the page, before the stream is done.
    let stream = Stream::start(&producer, 0..200, Duration::from_millis(10));
    stream.received(&mut clients, "page", 20).await;
    tokio::join!(node.terminate(), async {
        disconnected(&mut clients, "page").await;
        stream.assert_unfinished("the stopping node let the page go");
    });
    let node = BridgeProcess::start(&broker, port, "deploy").await;
    stream.finish().await;
    let received = clients.deliveries("page", 200).await;
    assert_exactly_once_in_order(&received, 0..200);
    // The old node stopped consuming before it let its clients go, so they
    // hold everything it committed: the new one starts there, and resumes
    // them from what it has read since (or live, if it has read nothing
    // yet), never from Kafka.
    let stats = node.stats().await;
    assert!(stats["replayRequests"].as_u64() > Some(0), "{stats}");
    assert_eq!(stats["replayReads"].get("kafka"), None, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_moved_to_another_node_resumes_there() {
    let broker = Broker::start();
    let node_a = TestBridge::start(&broker).await;
    let node_b = TestBridge::start(&broker).await;
    let proxy = Proxy::start(node_a.addr()).await;
    let producer = Producer::new(&broker);
    let mut clients = subscribed_page(&proxy.url, "user_n").await;

    produce(&producer, 0..50).await;
    let mut received = clients.deliveries("page", 50).await;
    // Moved mid-stream: after 10 more deals reached the page, before the
    // stream is done.
    let stream = Stream::start(&producer, 50..150, Duration::from_millis(2));
    stream.received(&mut clients, "page", 10).await;
    proxy.switch(node_b.addr());
    disconnected(&mut clients, "page").await;
    stream.assert_unfinished("the page was cut from node A");
    stream.finish().await;
    received.extend(clients.deliveries("page", 100).await);
    assert_exactly_once_in_order(&received, 0..150);
    node_a.stop().await;
    node_b.stop().await;
}

/// What a client without the module does: keep the acknowledged cursor,
/// advance it with each event's `position` (docs/client-api.md: a log tag other than the
/// cursor's replaces the topic's entries), and send it as `since`.
fn advance(cursor: &str, position: &str) -> String {
    let (_, body) = cursor.split_once(':').unwrap();
    let mut entries: BTreeMap<String, String> = body
        .split(',')
        .filter(|e| !e.is_empty())
        .map(|e| match e.split_once('@') {
            Some((topic, log)) => (format!("{topic}@"), log.to_owned()),
            None => {
                let (partition, offset) = e.split_once('.').unwrap();
                (partition.to_owned(), offset.to_owned())
            }
        })
        .collect();
    let mut parts = position.split('.');
    let (topic, partition, offset, log) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next(),
    );
    if let Some(log) = log {
        let known = entries.insert(format!("{topic}@"), log.to_owned());
        if known.is_some_and(|known| known != log) {
            // Another log: the topic's offsets are of the old one.
            entries.retain(|key, _| !key.starts_with(topic) || key.ends_with('@'));
        }
    }
    let next = offset.parse::<u64>().unwrap() + 1;
    let slot = entries
        .entry(format!("{topic}{partition}"))
        .or_insert("0".into());
    *slot = slot.parse::<u64>().unwrap().max(next).to_string();
    let tagged = entries.keys().any(|key| key.ends_with('@'));
    let body: Vec<String> = entries
        .iter()
        .map(|(key, value)| match key.ends_with('@') {
            true => format!("{key}{value}"),
            false => format!("{key}.{value}"),
        })
        .collect();
    format!("{}:{}", if tagged { 2 } else { 1 }, body.join(","))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_page_resumes_from_a_stored_cursor() {
    let broker = Broker::start();
    let bridge = TestBridge::start(&broker).await;
    let producer = Producer::new(&broker);
    let mut clients = Clients::spawn().await;
    clients
        .connect(
            "first",
            &bridge.url,
            json!({"token": token("user_s", "org-1")}),
        )
        .await;
    let ack = subscribe_pipeline(&mut clients, "first").await;
    produce(&producer, 0..10).await;
    let mut cursor = ack["cursor"].as_str().unwrap().to_owned();
    let seen = clients.deliveries("first", 10).await;
    for event in &seen {
        cursor = advance(&cursor, event["position"].as_str().unwrap());
    }
    clients
        .send(json!({"op": "disconnect", "client": "first"}))
        .await;
    produce(&producer, 10..30).await;
    // Once live delivery has passed them, all 20 missed events are replayed
    // (before that, the newest would arrive live after the acknowledgement).
    bridge.wait_consumed(30).await;

    clients
        .connect(
            "second",
            &bridge.url,
            json!({"token": token("user_s", "org-1")}),
        )
        .await;
    let request = json!({"resource": "deal", "filter": {"pipelineId": PIPELINE}, "since": cursor});
    let reply = clients.request("second", "subscribe", request).await;
    assert_eq!(reply["replaying"], true, "{reply}");
    let replayed = clients.deliveries("second", 20).await;
    let resumed = clients.event("second", "subscription-resumed").await;
    assert_eq!(resumed["replayed"], 20, "{resumed}");
    assert_eq!(resumed["gaps"], json!([]));
    assert!(replayed.iter().all(|e| e["replayed"] == true));
    produce(&producer, 30..31).await;
    let live = clients.deliveries("second", 1).await;
    assert!(live[0].get("replayed").is_none());
    let all: Vec<Value> = seen.into_iter().chain(replayed).chain(live).collect();
    assert_exactly_once_in_order(&all, 0..31);
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_chasing_a_stream_holds_nothing_back_and_is_not_cut_off() {
    // A replaying connection may hold 8 live events. Reading 5,000 from
    // Kafka takes long enough for the stream to add far more than that: the
    // replay reads what arrived meanwhile, again and again, not holding it.
    let broker = Broker::start();
    let bridge = TestBridge::start_with(&broker, |c| {
        c.replay.memory_bytes = 0;
        c.replay.live_buffer = 8;
    })
    .await;
    let producer = Producer::new(&broker);
    producer.send_deal_seqs(PIPELINE, 0..5_000).await;
    bridge.wait_consumed(5_000).await;
    let mut clients = Clients::spawn().await;
    clients
        .connect(
            "late",
            &bridge.url,
            json!({"token": token("user_c", "org-1")}),
        )
        .await;
    // The replay starts mid-stream: once the bridge has read 20 of the
    // stream, before the stream is done.
    let stream = Stream::start(&producer, 5_000..5_500, Duration::from_millis(2));
    bridge.wait_consumed(5_020).await;
    // An empty cursor: everything Kafka holds.
    let request = json!({"resource": "deal", "filter": {"pipelineId": PIPELINE}, "since": "1:"});
    let reply = clients.request("late", "subscribe", request).await;
    assert_eq!(reply["replaying"], true, "{reply}");
    stream.assert_unfinished("the replay began");
    stream.finish().await;
    let received = clients.deliveries("late", 5_500).await;
    assert_exactly_once_in_order(&received, 0..5_500);
    clients.event("late", "subscription-resumed").await;
    let stats = bridge.stats().await;
    assert_eq!(stats["dropped"]["slow_client"], Value::Null, "{stats}");
    assert!(replay_reads(&bridge, "kafka").await > 1, "{stats}");
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_beyond_the_replay_limit_reports_the_gap_and_continues_live() {
    let broker = Broker::start();
    let bridge = TestBridge::start_with(&broker, |c| c.replay.max_records_per_partition = 5).await;
    let producer = Producer::new(&broker);
    let mut clients = Clients::spawn().await;
    clients
        .connect(
            "old",
            &bridge.url,
            json!({"token": token("user_g", "org-1")}),
        )
        .await;
    let request = json!({"resource": "deal", "id": "deal_gap"});
    let ack = clients.request("old", "subscribe", request.clone()).await;
    clients
        .send(json!({"op": "disconnect", "client": "old"}))
        .await;
    for seq in 0..20 {
        producer
            .send(
                "crm.deals",
                "deal_gap",
                &deal_seq("org-1", "deal_gap", PIPELINE, seq),
            )
            .await;
    }
    bridge.wait_consumed(20).await;

    clients
        .connect(
            "new",
            &bridge.url,
            json!({"token": token("user_g", "org-1")}),
        )
        .await;
    let mut resume = request.clone();
    resume["since"] = ack["cursor"].clone();
    let reply = clients.request("new", "subscribe", resume).await;
    assert_eq!(reply["replaying"], true, "{reply}");
    let resumed = clients.event("new", "subscription-resumed").await;
    assert_eq!(resumed["replayed"], 5, "{resumed}");
    let gaps = resumed["gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 1, "{resumed}");
    assert_eq!(
        (gaps[0]["reason"].clone(), gaps[0]["topic"].clone()),
        (json!("limit"), json!("deals"))
    );
    assert_eq!(
        gaps[0]["to"].as_i64().unwrap() - gaps[0]["from"].as_i64().unwrap(),
        15
    );
    let told = clients.event("new", "subscription-gap").await;
    assert_eq!(
        told["subscription"],
        json!({"resource": "deal", "id": "deal_gap", "events": ["create", "update", "delete", "stage-change", "assignment", "comment"]})
    );
    let replayed = clients.deliveries("new", 5).await;
    let seqs: Vec<u64> = replayed
        .iter()
        .map(|e| e["data"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [15, 16, 17, 18, 19]);
    producer
        .send(
            "crm.deals",
            "deal_gap",
            &deal_seq("org-1", "deal_gap", PIPELINE, 20),
        )
        .await;
    assert_eq!(clients.deliveries("new", 1).await[0]["data"]["seq"], 20);
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_expiring_mid_connection_is_cut_off_and_a_fresh_one_resumes() {
    token_expiry_resumes(AuthAs::Object).await;
}

/// socket.io's token-refresh pattern: `auth` is a callback, which
/// socket.io-client calls on every handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_refreshed_through_an_auth_callback_resumes_notifications_too() {
    token_expiry_resumes(AuthAs::Callback).await;
}

/// How a page hands its credential to socket.io-client.
#[derive(Clone, Copy, PartialEq)]
enum AuthAs {
    /// `auth: { token }`, refreshed as the seed's Error Recovery does:
    /// `socket.auth.token = fresh`.
    Object,
    /// `auth: (cb) => cb({ token })`, yielding the fresh token from then on.
    Callback,
}

/// A page's token expires while deals and a notification go by; the same
/// token is refused (which must neither resume nor report, nor move the
/// notifications cursor); a fresh one resumes all of it, exactly once.
async fn token_expiry_resumes(auth_as: AuthAs) {
    let broker = Broker::start();
    let bridge = TestBridge::start_with(&broker, |c| c.auth.jwt.leeway_seconds = 0).await;
    let producer = Producer::new(&broker);
    let mut clients = Clients::spawn().await;
    let short =
        crm_bridge::auth::sign_dev_token(support::bridge::TEST_SECRET, "user_x", "X", "org-1", 2);
    clients
        .send(
            json!({"op": "connect", "client": "page", "url": bridge.url, "auth": {"token": short},
            "module": true, "authCallback": auth_as == AuthAs::Callback}),
        )
        .await;
    clients.event("page", "connected").await;
    subscribe_pipeline(&mut clients, "page").await;
    produce(&producer, 0..10).await;
    let mut received = clients.deliveries("page", 10).await;
    let earlier = support::avro::notification("org-1", "user_x", "before it expired");
    producer.send("crm.notifications", "user_x", &earlier).await;
    assert_eq!(
        clients.deliveries("page", 1).await[0]["title"],
        "before it expired"
    );

    // At expiry the bridge tells the client and disconnects it.
    let told = clients.event("page", "error").await;
    assert_eq!(told["code"], "UNAUTHORIZED", "{told}");
    assert_eq!(told["details"]["reason"], "token_expired", "{told}");
    let gone = disconnected(&mut clients, "page").await;
    assert_eq!(gone["reason"], "io server disconnect");
    produce(&producer, 10..20).await;
    let note = support::avro::notification("org-1", "user_x", "while it was expired");
    producer.send("crm.notifications", "user_x", &note).await;

    // The same token is refused; nothing is replayed without authentication.
    clients
        .send(json!({"op": "reconnect", "client": "page"}))
        .await;
    let refused = clients.refusal("page").await;
    assert_eq!(refused["code"], "UNAUTHORIZED", "{refused}");
    clients.settle(Duration::from_millis(300)).await;
    assert!(
        clients.unclaimed_deliveries("page").is_empty(),
        "no replay without authentication"
    );
    assert!(
        !clients.seen.iter().any(|o| o["type"] == "recovered"),
        "a refused handshake resumes nothing"
    );

    clients
        .send(json!({"op": "reconnect", "client": "page", "auth": {"token": token("user_x", "org-1")}}))
        .await;
    let recovered = clients.recovered("page").await;
    assert_eq!(recovered["data"]["recovered"], true, "{recovered}");
    let mut notes = Vec::new();
    while received.len() < 20 || notes.is_empty() {
        for event in clients.deliveries("page", 1).await {
            match event["type"] == "mention" {
                true => notes.push(event),
                false => received.push(event),
            }
        }
    }
    assert_exactly_once_in_order(&received, 0..20);
    assert_eq!(notes[0]["title"], "while it was expired", "{notes:?}");
    clients.settle(Duration::from_millis(300)).await;
    assert!(
        clients.unclaimed_deliveries("page").is_empty(),
        "each notification once: {:?}",
        clients.unclaimed_deliveries("page")
    );
    bridge.stop().await;
}

/// The seed's Best Practices re-subscribe on every `connect`, with a new
/// `events` array each time (here also in another order): the module
/// answers that from its own resume, sends nothing more, and reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_resubscribing_on_every_connect_recovers_and_is_told_so() {
    let broker = Broker::start();
    let bridge = TestBridge::start(&broker).await;
    let producer = Producer::new(&broker);
    let network = Proxy::start(bridge.addr()).await;
    let mut clients = Clients::spawn().await;
    let pipeline = json!({"resource": "deal", "filter": {"pipelineId": PIPELINE}});
    let again = json!({"event": "subscribe", "ack": "again",
        "data": {"resource": "deal", "filter": {"pipelineId": PIPELINE}, "events": ["stage-change", "update"]}});
    clients
        .send(
            json!({"op": "connect", "client": "page", "url": network.url, "module": true,
            "auth": {"token": token("user_b", "org-1")}, "onConnect": [again]}),
        )
        .await;
    clients.event("page", "connected").await;
    let mut subscription = pipeline.clone();
    subscription["events"] = json!(["update", "stage-change"]);
    clients.subscribe("page", subscription).await;

    let stream = Stream::start(&producer, 0..200, Duration::from_millis(2));
    stream.received(&mut clients, "page", 20).await;
    network.down();
    disconnected(&mut clients, "page").await;
    bridge.wait_consumed(60).await;
    network.up();
    stream.finish().await;

    let recovered = clients.recovered("page").await;
    assert_eq!(recovered["data"]["recovered"], true, "{recovered}");
    let received = clients.deliveries("page", 200).await;
    assert_exactly_once_in_order(&received, 0..200);
    // One answer per connect; the reconnect's is the resume's, shaped as
    // the bridge answers a repeated subscribe.
    let mut answers = Vec::new();
    for _ in 0..2 {
        let answer = clients
            .wait_for("an answer per connect", |o| {
                o["type"] == "ack" && o["ref"] == "again"
            })
            .await;
        answers.push(answer["data"].clone());
    }
    let reply = &answers[1];
    assert_eq!(
        (reply["ok"].clone(), reply["replaced"].clone()),
        (json!(true), json!(true)),
        "{reply}"
    );
    assert_eq!(
        reply["subscription"]["events"],
        json!(["update", "stage-change"]),
        "{reply}"
    );
    assert!(reply.get("replaying").is_none(), "{reply}");
    clients.settle(Duration::from_millis(300)).await;
    assert!(clients.unclaimed_deliveries("page").is_empty());
    bridge.stop().await;
}

/// While its transport is down, the page unsubscribes one subscription,
/// changes another's events and adds a third: the module sends those once
/// the bridge greets it, amid its resume. The report is the resume's, and
/// the bridge ends up holding what the page asked for last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_changed_during_a_resume_end_as_the_page_asked() {
    let broker = Broker::start();
    let bridge = TestBridge::start(&broker).await;
    let producer = Producer::new(&broker);
    let network = Proxy::start(bridge.addr()).await;
    let mut clients = Clients::spawn().await;
    let auth = json!({"token": token("user_u", "org-1")});
    connect_module(&mut clients, "page", &network.url, auth).await;
    subscribe_pipeline(&mut clients, "page").await;
    let dropped = json!({"resource": "deal", "id": "deal_x"});
    let changed = json!({"resource": "deal", "id": "deal_z", "events": ["update"]});
    clients.subscribe("page", dropped.clone()).await;
    clients.subscribe("page", changed).await;

    network.down();
    disconnected(&mut clients, "page").await;
    produce(&producer, 0..40).await;
    for deal in ["deal_x", "deal_z"] {
        producer
            .send(
                "crm.deals",
                deal,
                &deal_seq("org-1", deal, "pipeline_other", 100),
            )
            .await;
    }
    let requests = [
        ("unsubscribe", dropped),
        (
            "subscribe",
            json!({"resource": "deal", "id": "deal_z", "events": ["delete", "update"]}),
        ),
        ("subscribe", json!({"resource": "deal", "id": "deal_y"})),
    ];
    for (n, (event, data)) in requests.iter().enumerate() {
        clients
            .send(json!({"op": "emit", "client": "page", "event": event, "data": data, "ack": format!("c{n}")}))
            .await;
    }
    network.up();

    let recovered = clients.recovered("page").await;
    assert_eq!(recovered["data"]["recovered"], true, "{recovered}");
    for n in 0..requests.len() {
        let reply = clients
            .wait_for("the page's request answered", |o| {
                o["type"] == "ack" && o["ref"] == format!("c{n}")
            })
            .await;
        assert_eq!(reply["data"]["ok"], true, "{reply}");
    }
    // The pipeline's missed deals, and deal_z's (resumed before it changed).
    let mut pipeline = Vec::new();
    while pipeline.len() < 40 {
        pipeline.extend(
            clients
                .deliveries("page", 1)
                .await
                .into_iter()
                .filter(|e| !["deal_x", "deal_z"].contains(&e["id"].as_str().unwrap())),
        );
    }
    assert_exactly_once_in_order(&pipeline, 0..40);

    // Live: deal_x no more, deal_z's deletes now, deal_y from now on.
    let delete = support::avro::deal("org-1", "deal_z", "pipeline_other", Action::Delete, None);
    for (deal, record) in [
        ("deal_x", deal_seq("org-1", "deal_x", "pipeline_other", 101)),
        ("deal_z", delete),
        ("deal_y", deal_seq("org-1", "deal_y", "pipeline_other", 102)),
    ] {
        producer.send("crm.deals", deal, &record).await;
    }
    let deleted = clients.event("page", "resource-delete").await;
    assert_eq!(deleted["id"], "deal_z");
    let live = clients
        .wait_for("deal_y live", |o| {
            o["type"] == "event" && o["data"]["id"] == "deal_y"
        })
        .await;
    assert_eq!(live["data"]["data"]["seq"], 102);
    assert!(
        !clients
            .seen
            .iter()
            .any(|o| o["data"]["id"] == "deal_x" && o["data"]["replayed"].is_null()),
        "deal_x was unsubscribed: {:?}",
        clients.seen
    );
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_cut_off_then_catches_up_at_its_own_pace() {
    let broker = Broker::start();
    let bridge = TestBridge::start_with(&broker, |c| c.limits.socket_buffer = 4).await;
    let producer = Producer::new(&broker);
    let mut clients = Clients::spawn().await;
    connect_module(
        &mut clients,
        "slow",
        &bridge.url,
        json!({"token": token("user_w", "org-1")}),
    )
    .await;
    subscribe_pipeline(&mut clients, "slow").await;

    // Enqueued in order, sent as one burst: far more than 4 packets at once.
    futures::future::join_all((0..500u64).map(|seq| {
        let (producer, deal) = (producer.clone(), deal_of(seq));
        let record = deal_seq("org-1", &deal, PIPELINE, seq);
        async move { producer.send("crm.deals", &deal, &record).await }
    }))
    .await;
    clients
        .wait_for("cut off", |o| {
            o["client"] == "slow" && o["type"] == "disconnect"
        })
        .await;
    clients.recovered("slow").await;
    let received = clients.deliveries("slow", 500).await;
    assert_exactly_once_in_order(&received, 0..500);
    bridge.stop().await;
}

/// A page subscribed to the pipeline receives three deals and leaves:
/// returns the clients and the cursor it subscribed with (three behind).
async fn missed_three(broker: &Broker, bridge: &TestBridge, auth: &Value) -> (Clients, Value) {
    let producer = Producer::new(broker);
    let mut clients = Clients::spawn().await;
    clients.connect("first", &bridge.url, auth.clone()).await;
    let cursor = subscribe_pipeline(&mut clients, "first").await["cursor"].clone();
    produce(&producer, 0..3).await;
    clients.deliveries("first", 3).await;
    clients
        .send(json!({"op": "disconnect", "client": "first"}))
        .await;
    (clients, cursor)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_kafka_cannot_serve_is_a_server_error_and_resumes_later() {
    let broker = Broker::dedicated();
    let bridge = TestBridge::start_with(&broker, |c| {
        // Nothing in memory: the replay needs Kafka.
        c.replay.memory_bytes = 0;
        // A replay waits out a silent Kafka this long (then readiness fails).
        c.kafka.lag_refresh_seconds = 1;
        c.kafka.ready_broker_silence_seconds = 3;
    })
    .await;
    let auth = json!({"token": token("user_s", "org-1")});
    let (mut clients, cursor) = missed_three(&broker, &bridge, &auth).await;

    // Kafka stops answering while a client resumes, for longer than that:
    // the client is told, not left with a silently partial replay. (Each
    // look-up waits 5 s, so the second ends past the 3 s.)
    clients.connect("during", &bridge.url, auth.clone()).await;
    let resume = json!({"resource": "deal", "filter": {"pipelineId": PIPELINE}, "since": cursor});
    let (_, told) = tokio::join!(broker.stall(Duration::from_secs(20)), async {
        clients.emit("during", "subscribe", resume.clone()).await;
        clients.event("during", "error").await
    });
    assert_eq!(told["code"], "SERVER_ERROR", "{told}");
    assert_eq!(told["details"]["reason"], "replay_unavailable", "{told}");
    assert!(clients.unclaimed_deliveries("during").is_empty());

    // Once Kafka answers again, the same cursor resumes everything. The
    // bridge learns that Kafka is back on its next fetch, not at once: a
    // resume in between is told `replay_unavailable` again, and the client
    // tries again, as the contract asks.
    for attempt in 0.. {
        let client = format!("after-{attempt}");
        clients.connect(&client, &bridge.url, auth.clone()).await;
        let ack = clients.request(&client, "subscribe", resume.clone()).await;
        assert_eq!(ack["replaying"], true, "{ack}");
        let outcome = clients
            .wait_for("the resume's end", |o| {
                o["client"] == client.as_str()
                    && o["type"] == "event"
                    && (o["event"] == "subscription-resumed" || o["event"] == "error")
            })
            .await;
        if outcome["event"] == "error" {
            assert_eq!(
                outcome["data"]["details"]["reason"], "replay_unavailable",
                "{outcome}"
            );
            assert!(
                attempt < 10,
                "Kafka never served the replay again: {outcome}"
            );
            continue;
        }
        let replayed = clients.deliveries(&client, 3).await;
        assert_exactly_once_in_order(&replayed, 0..3);
        break;
    }
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recent_replay_is_served_from_memory_while_kafka_stalls() {
    let broker = Broker::dedicated();
    let bridge = TestBridge::start(&broker).await;
    let auth = json!({"token": token("user_m", "org-1")});
    let (mut clients, cursor) = missed_three(&broker, &bridge, &auth).await;

    // The node read those records moments ago: no Kafka round trip needed.
    clients.connect("during", &bridge.url, auth).await;
    let resume = json!({"resource": "deal", "filter": {"pipelineId": PIPELINE}, "since": cursor});
    let (_, replayed) = tokio::join!(broker.stall(Duration::from_secs(8)), async {
        let ack = clients.request("during", "subscribe", resume).await;
        assert_eq!(ack["replaying"], true, "{ack}");
        clients.deliveries("during", 3).await
    });
    assert_exactly_once_in_order(&replayed, 0..3);
    assert_served_from_memory(&bridge).await;
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_resuming_subscription_is_acknowledged_before_it_resumes() {
    let broker = Broker::start();
    let bridge = TestBridge::start(&broker).await;
    let mut clients = Clients::spawn().await;
    let auth = json!({"token": token("user_o", "org-1")});
    clients.connect("page", &bridge.url, auth).await;
    let cursor = subscribe_pipeline(&mut clients, "page").await["cursor"].clone();
    // Resumes from the live position replay nothing, from memory: each is
    // done at once by the connection's replay worker, already running.
    const RESUMES: usize = 60;
    for n in 0..RESUMES {
        let request = json!({"resource": "deal", "id": format!("deal_o_{n}"), "since": cursor});
        clients
            .send(json!({"op": "emit", "client": "page", "event": "subscribe", "data": request, "ack": format!("o{n}")}))
            .await;
    }
    let resumed = async || {
        clients.gather();
        clients.unclaimed("page", "subscription-resumed").len()
    };
    eventually("every subscription to resume", resumed, |n| *n == RESUMES).await;
    // The client module, like any client, learns from the acknowledgement
    // that a subscription is resuming: `subscription-resumed` must follow it.
    let observed = &clients.seen;
    for n in 0..RESUMES {
        let acked = observed
            .iter()
            .position(|o| o["type"] == "ack" && o["ref"] == format!("o{n}"));
        let resumed = observed.iter().position(|o| {
            o["event"] == "subscription-resumed"
                && o["data"]["subscription"]["id"] == format!("deal_o_{n}")
        });
        assert!(
            acked.is_some() && acked < resumed,
            "deal_o_{n}: ack at {acked:?}, resumed at {resumed:?}"
        );
    }
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_with_more_subscriptions_than_the_rate_burst_resumes_them_all() {
    let broker = Broker::start();
    let bridge = TestBridge::start(&broker).await;
    let producer = Producer::new(&broker);
    let mut clients = Clients::spawn().await;
    let auth = json!({"token": token("user_many", "org-1")});
    connect_module(&mut clients, "page", &bridge.url, auth).await;
    // 150 subscriptions, made at the page's own pace (under 100/s).
    let deal = |n: u64| format!("deal_many_{n}");
    for n in 0..150 {
        let reply = clients
            .request(
                "page",
                "subscribe",
                json!({"resource": "deal", "id": deal(n)}),
            )
            .await;
        assert_eq!(reply["ok"], true, "{reply}");
        // The page's pace: under the bridge's rate of 100 subscribes a second.
        tokio::time::sleep(Duration::from_millis(12)).await;
    }

    // On reconnect the module resumes all 150 at once: more than the
    // bridge's burst of 100, so it paces them.
    clients.send(json!({"op": "drop", "client": "page"})).await;
    let recovered = clients.recovered("page").await;
    assert_eq!(recovered["data"]["recovered"], true, "{recovered}");
    for n in [0, 149] {
        let record = deal_seq("org-1", &deal(n), PIPELINE, n);
        producer.send("crm.deals", &deal(n), &record).await;
        let update = clients.event("page", "resource-update").await;
        assert_eq!(update["id"], deal(n));
    }
    assert_eq!(bridge.stats().await["inboundRateLimited"], 0);
    bridge.stop().await;
}
