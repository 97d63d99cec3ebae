//! A three-broker KRaft cluster under faults a real deployment meets: the
//! leader of a busy partition killed outright, and every broker down at
//! once. The topics are replicated on all three brokers with
//! `min.insync.replicas = 2`, and the test's producer is idempotent with
//! `acks = all`, so Kafka itself loses and repeats nothing; whatever a
//! client sees lost or repeated is the bridge's doing. Each test checks that
//! every event arrives exactly once, in order per deal, for a client that
//! stays connected and for one that resumes with its cursor, and what
//! `/readyz` says throughout.
//!
//! The tests take turns (`ONE_CLUSTER_AT_A_TIME`): three JVMs each are
//! plenty for a shared 2-core machine, and a broker starved of CPU misses
//! heartbeats, which is a fault of its own.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;
use support::avro::deal_seq;
use support::broker::Cluster;
use support::semantics::assert_exactly_once_in_order;
use support::{Broker, Clients, TestBridge, eventually, token};
use tokio_util::sync::CancellationToken;

const PIPELINE: &str = "pipeline_f";
const DEALS: &str = "crm.deals";

static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The bridge's topics, replicated on every broker: a write is acknowledged
/// once two replicas have it, so one broker lost loses nothing. Broker 1
/// leads every partition: killed, it takes every leader at once, so until
/// the controller elects others no look-up of the bridge's finds one (the
/// hardest case for readiness).
async fn create_replicated_topics(broker: &Broker) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .create()
        .unwrap();
    let names = [
        "crm.contacts",
        DEALS,
        "crm.email",
        "crm.notifications",
        "crm-bridge.presence",
    ];
    let replicas: &[&[i32]] = &[&[1, 2, 3], &[1, 3, 2]];
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| {
            NewTopic::new(name, 2, TopicReplication::Variable(replicas))
                .set("min.insync.replicas", "2")
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.create_topics(&topics, &options).await.unwrap() {
        result.expect("topic created");
    }
}

/// A producer that neither loses nor repeats a record across a leader
/// change: every in-sync replica has it before it counts as sent, and a
/// retried send is recognised by the broker.
fn safe_producer(broker: &Broker) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "0")
        .create()
        .unwrap()
}

fn deal_of(seq: u64) -> String {
    format!("deal_{}", seq % 7)
}

async fn send(producer: &FutureProducer, seq: u64) {
    let deal = deal_of(seq);
    let record = deal_seq("org-1", &deal, PIPELINE, seq);
    producer
        // Long enough to ride out a leader election or a cluster restart.
        .send(
            FutureRecord::to(DEALS).key(&deal).payload(&record),
            Duration::from_secs(60),
        )
        .await
        .map_err(|(e, _)| e)
        .expect("produce");
}

/// Sends seq after seq, each acknowledged before the next, until `stop`;
/// returns how many were sent (seqs `0..n`).
fn stream_until(producer: FutureProducer, stop: CancellationToken) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut seq = 0;
        while !stop.is_cancelled() {
            send(&producer, seq).await;
            seq += 1;
            // The stream's pace.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        seq
    })
}

/// Two pages using the client module, subscribed to the pipeline: `live`
/// stays connected, `away` will leave and resume with its cursor.
async fn two_pages(url: &str) -> Clients {
    let mut clients = Clients::spawn().await;
    for (name, user) in [("live", "user_l"), ("away", "user_a")] {
        clients
            .send(json!({"op": "connect", "client": name, "url": url, "auth": {"token": token(user, "org-1")}, "module": true}))
            .await;
        clients.event(name, "connected").await;
        clients
            .subscribe(
                name,
                json!({"resource": "deal", "filter": {"pipelineId": PIPELINE}}),
            )
            .await;
    }
    clients
}

/// `away` comes back and its module resumes every subscription.
async fn come_back(clients: &mut Clients) {
    clients
        .send(json!({"op": "reconnect", "client": "away"}))
        .await;
    let recovered = clients.recovered("away").await;
    assert_eq!(recovered["data"]["recovered"], true, "{recovered}");
}

/// Nothing more arrives for either page.
async fn assert_nothing_more(clients: &mut Clients) {
    clients.settle(Duration::from_millis(500)).await;
    for name in ["live", "away"] {
        let extra = clients.unclaimed_deliveries(name);
        assert!(extra.is_empty(), "{name} received more: {extra:?}");
    }
}

/// What `/readyz` answered, every 100 ms, until stopped: the answers that
/// were not 200 (the status, or the request's error, and the body).
struct ReadinessWatch {
    not_ready: Arc<Mutex<Vec<String>>>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl ReadinessWatch {
    fn start(url: &str) -> Self {
        let not_ready = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let task = {
            let (url, not_ready, stop) = (url.to_owned(), not_ready.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.is_cancelled() {
                    let answer = support::bridge::not_ready(&url).await;
                    not_ready.lock().unwrap().extend(answer);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        Self {
            not_ready,
            stop,
            task,
        }
    }

    fn not_ready(&self) -> Vec<String> {
        self.not_ready.lock().unwrap().clone()
    }

    async fn stop(self) -> Vec<String> {
        self.stop.cancel();
        let answers = self.not_ready.clone();
        self.task.await.unwrap();
        answers.lock().unwrap().clone()
    }
}

/// The broker id leading `partition` of the deals topic, as the cluster's
/// metadata says now (-1 while it has none).
async fn leader_of(broker: &Broker, partition: i32) -> i32 {
    let addr = broker.addr.clone();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &addr)
            .create()
            .unwrap();
        let metadata = consumer
            .fetch_metadata(Some(DEALS), Duration::from_secs(10))
            .expect("metadata");
        metadata.topics()[0]
            .partitions()
            .iter()
            .find(|p| p.id() == partition)
            .expect("the partition")
            .leader()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_of_a_busy_partition_killed_loses_and_repeats_nothing_and_stays_ready() {
    let _turn = ONE_CLUSTER_AT_A_TIME.lock().await;
    let cluster = Cluster::start(3);
    let broker = cluster.broker();
    assert_eq!(
        broker.addr.split(',').count(),
        3,
        "bootstrap lists every node"
    );
    create_replicated_topics(&broker).await;
    // Production's readiness bounds: a leader change must not take the node
    // out of the load balancer. Replays read Kafka, across the new leader.
    let bridge = TestBridge::start_with(&broker, |c| c.replay.memory_bytes = 0).await;
    let mut clients = two_pages(&bridge.url).await;

    let stop = CancellationToken::new();
    let stream = stream_until(safe_producer(&broker), stop.clone());
    let mut live = clients.deliveries("live", 50).await;
    let mut away = clients.deliveries("away", 50).await;
    clients
        .send(json!({"op": "disconnect", "client": "away"}))
        .await;
    let readiness = ReadinessWatch::start(&bridge.internal_url);

    // Broker 1, which leads every partition of the bridge's topics.
    let leader = leader_of(&broker, 0).await;
    cluster.kill(cluster.index_of(leader));
    // Until the controller elects another leader, partition 0 takes no
    // writes: the producer waits, and resumes there once it has one.
    let what = format!("a new leader for {DEALS}/0");
    let now = async || leader_of(&broker, 0).await;
    eventually(&what, now, |now| *now != leader && *now >= 0).await;
    // A few hundred more records through the new leaders, then stop.
    live.extend(clients.deliveries("live", 300).await);
    stop.cancel();
    let sent = stream.await.unwrap();
    let left = (sent as usize).saturating_sub(live.len());
    live.extend(clients.deliveries("live", left).await);
    assert_exactly_once_in_order(&live, 0..sent);

    come_back(&mut clients).await;
    let missed = (sent as usize).saturating_sub(away.len());
    away.extend(clients.deliveries("away", missed).await);
    assert_exactly_once_in_order(&away, 0..sent);
    assert_nothing_more(&mut clients).await;

    let not_ready = readiness.stop().await;
    assert!(
        not_ready.is_empty(),
        "/readyz failed during the failover: {not_ready:?}"
    );
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_broker_down_for_30s_is_reported_and_delivery_resumes_with_nothing_lost() {
    let _turn = ONE_CLUSTER_AT_A_TIME.lock().await;
    let cluster = Cluster::start(3);
    let broker = cluster.broker();
    create_replicated_topics(&broker).await;
    // Watermarks looked up every second; three seconds without an answer
    // and the node is not ready.
    let bridge = TestBridge::start_with(&broker, |c| {
        c.kafka.lag_refresh_seconds = 1;
        c.kafka.ready_broker_silence_seconds = 3;
        c.replay.memory_bytes = 0;
    })
    .await;
    let mut clients = two_pages(&bridge.url).await;
    let producer = safe_producer(&broker);
    for seq in 0..50 {
        send(&producer, seq).await;
    }
    let mut live = clients.deliveries("live", 50).await;
    let mut away = clients.deliveries("away", 50).await;
    clients
        .send(json!({"op": "disconnect", "client": "away"}))
        .await;

    let readiness = ReadinessWatch::start(&bridge.internal_url);
    tokio::task::block_in_place(|| cluster.stop_all());
    // Reported while the brokers are down: within the silence bound and a
    // watermark look-up's timeout.
    let reported = async || readiness.not_ready();
    eventually("/readyz to report the outage", reported, |n| !n.is_empty()).await;
    // The outage itself: thirty seconds with no broker.
    tokio::time::sleep(Duration::from_secs(30)).await;
    for node in 0..3 {
        cluster.start_node(node);
    }
    tokio::task::block_in_place(|| cluster.wait_for_brokers(3));
    support::bridge::wait_ready(&bridge.internal_url).await;
    let not_ready = readiness.stop().await;
    assert!(
        not_ready.iter().all(|answer| answer.starts_with("503")),
        "{not_ready:?}"
    );
    assert!(
        not_ready
            .iter()
            .any(|answer| answer.contains("Kafka has not answered")),
        "{not_ready:?}"
    );

    for seq in 50..100 {
        send(&producer, seq).await;
    }
    live.extend(clients.deliveries("live", 50).await);
    assert_exactly_once_in_order(&live, 0..100);
    come_back(&mut clients).await;
    away.extend(clients.deliveries("away", 50).await);
    assert_exactly_once_in_order(&away, 0..100);
    assert_nothing_more(&mut clients).await;
    bridge.stop().await;
}
