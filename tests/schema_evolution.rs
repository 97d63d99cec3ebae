//! Producers evolve their schemas; the bridge keeps decoding. Writer schemas
//! come from the local registry or from a real Confluent-compatible one over
//! HTTP (Apicurio Registry, where each test registers its producer's schemas
//! and writes the ids it gets back).

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crm_bridge::decode::Encoder;
use crm_bridge::domain::{Action, TopicKind};
use rdkafka::Message;
use serde_json::json;
use support::avro::{deal_by, deal_schema_id, frame};
use support::proxy::Proxy;
use support::{Broker, Clients, Producer, Registry, TestBridge, repo_path, token};
use tokio_util::sync::CancellationToken;

/// The v2 deal schema's id in the local registry.
const LOCAL_V2_ID: u32 = 102;

/// The ids a producer writes deal records with: the v1 schema's and v2's.
#[derive(Clone, Copy)]
struct DealIds {
    v1: u32,
    v2: u32,
}

/// The deal schema as a producer's v2: a new `region` field with a default.
fn deal_v2_schema_json() -> serde_json::Value {
    let text = std::fs::read_to_string(repo_path("schemas/deal-event.avsc")).unwrap();
    let mut schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    let fields = schema["fields"].as_array_mut().unwrap();
    fields.insert(
        3,
        json!({"name": "region", "type": "string", "default": "emea"}),
    );
    fields.push(json!({"name": "probability", "type": ["null", "double"], "default": null}));
    schema
}

/// A stage change of `deal_id`, written with the v2 schema (its new fields
/// take their defaults) under `v2_id`.
fn deal_v2_record(deal_id: &str, v2_id: u32) -> Vec<u8> {
    let schema = apache_avro::Schema::parse(&deal_v2_schema_json()).unwrap();
    let v2 = Encoder::new([(TopicKind::Deals, (v2_id, Arc::new(schema)))].into());
    let stages = Some(("proposal", "negotiation"));
    deal_by(
        &v2,
        "org-1",
        deal_id,
        "pipeline_v2",
        Action::StageChange,
        stages,
        Default::default(),
    )
}

/// A copy of `schemas/` whose registry also lists the v2 writer schema.
fn local_registry_with_v2() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("crm-bridge-schemas-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(repo_path("schemas")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    std::fs::write(
        dir.join("deal-event-v2.avsc"),
        deal_v2_schema_json().to_string(),
    )
    .unwrap();
    let mut manifest = std::fs::read_to_string(dir.join("registry.toml")).unwrap();
    manifest.push_str(&format!(
        "\n[[schema]]\nid = {LOCAL_V2_ID}\nsubject = \"crm.deals-value\"\nfile = \"deal-event-v2.avsc\"\n"
    ));
    std::fs::write(dir.join("registry.toml"), manifest).unwrap();
    dir
}

/// A v1 deal record (`support::avro::deal`) framed with schema id `v1_id`.
fn deal_v1_record(org: &str, deal_id: &str, pipeline: &str, v1_id: u32) -> Vec<u8> {
    let record = support::avro::deal(org, deal_id, pipeline, Action::Update, None);
    frame(v1_id, &record[5..])
}

/// Registers the v1 and v2 deal schemas under this test's `crm.deals-value`,
/// as a producer that moved from v1 to v2 did.
async fn register_deal_schemas(registry: &Registry, broker: &Broker) -> DealIds {
    let v1 = std::fs::read_to_string(repo_path("schemas/deal-event.avsc")).unwrap();
    DealIds {
        v1: registry.register(broker, "crm.deals", &v1).await,
        v2: registry
            .register(broker, "crm.deals", &deal_v2_schema_json().to_string())
            .await,
    }
}

async fn expect_v2_delivery(bridge: &TestBridge, broker: &Broker, ids: DealIds) {
    let mut clients = Clients::spawn().await;
    clients
        .connect(
            "v2",
            &bridge.url,
            json!({"token": token("user_v2", "org-1")}),
        )
        .await;
    clients
        .subscribe(
            "v2",
            json!({"resource": "deal", "filter": {"pipelineId": "pipeline_v2"}}),
        )
        .await;
    let producer = Producer::new(broker);
    producer
        .send("crm.deals", "deal_v2", &deal_v2_record("deal_v2", ids.v2))
        .await;
    // v1 records keep flowing beside v2 ones.
    let v1 = deal_v1_record("org-1", "deal_v1", "pipeline_v2", ids.v1);
    producer.send("crm.deals", "deal_v1", &v1).await;

    let moved = clients.event("v2", "pipeline-update").await;
    assert_eq!(moved["dealId"], "deal_v2");
    assert_eq!(moved["newStage"], "negotiation");
    assert_eq!(
        clients.event("v2", "resource-update").await["id"],
        "deal_v1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v2_writer_schema_from_the_local_registry_decodes() {
    let broker = Broker::start();
    let dir = local_registry_with_v2();
    let bridge = TestBridge::start_with(&broker, |c| c.schemas.local_dir = dir.clone()).await;
    let ids = DealIds {
        v1: deal_schema_id(),
        v2: LOCAL_V2_ID,
    };
    expect_v2_delivery(&bridge, &broker, ids).await;
    bridge.stop().await;
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_schemas_come_from_an_http_schema_registry() {
    let broker = Broker::start();
    let registry = Registry::start();
    let ids = register_deal_schemas(&registry, &broker).await;
    let bridge = TestBridge::start_with(&broker, |c| {
        c.schemas.registry_url = Some(registry.url.clone())
    })
    .await;
    expect_v2_delivery(&bridge, &broker, ids).await;

    // An id the registry does not know is a counted poison record, not a
    // stall. Ids count up from 1; this one is never reached.
    let producer = Producer::new(&broker);
    let unknown = frame(i32::MAX as u32, &deal_v2_record("x", ids.v2)[5..]);
    producer.send("crm.deals", "deal_v2", &unknown).await;
    bridge
        .stats_until("the unknown schema id to be counted", |s| {
            s["decodeFailures"]["unknown_schema"] == 1
        })
        .await;
    bridge.stop().await;
}

/// A producer that writes Protobuf (or JSON Schema) to a CRM topic: its
/// records are refused for their schema type, counted and dead-lettered,
/// and the partition flows on; never decoded as Avro by mistake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protobuf_schema_is_refused_counted_and_dead_lettered() {
    let broker = Broker::start();
    let registry = Registry::start();
    let ids = register_deal_schemas(&registry, &broker).await;
    let proto = "syntax = \"proto3\";\nmessage DealEvent {\n  string deal_id = 1;\n}\n";
    let proto_id = registry
        .register_typed(&broker, "crm.proto-deals", "PROTOBUF", proto)
        .await;
    let dead_letters = broker.topic("crm.dead-letters");
    let bridge = TestBridge::start_with(&broker, |c| {
        c.schemas.registry_url = Some(registry.url.clone());
        c.kafka.dead_letter_topic = Some(dead_letters.clone());
    })
    .await;
    let producer = Producer::new(&broker);
    // A valid Avro body behind the Protobuf schema's id: only the schema
    // type tells the record apart.
    let record = deal_v1_record("org-1", "deal_after", "p", ids.v1);
    let framed = frame(proto_id, &record[5..]);
    producer.send("crm.deals", "deal_after", &framed).await;
    producer.send("crm.deals", "deal_after", &record).await;

    // Same key, same partition: the good record is decoded after the
    // refused one, so the partition flowed on.
    let what = "the good record to be decoded and the refused one dead-lettered";
    let stats = bridge
        .stats_until(what, |s| s["recordsDecoded"] == 1 && s["deadLettered"] == 1)
        .await;
    assert_eq!(
        stats["decodeFailures"],
        json!({"schema_type": 1}),
        "one refused, for its type: {stats}"
    );
    bridge.stop().await;
}

/// The registry is out of reach (a proxy in front of it cuts every
/// connection) when the bridge first needs a writer schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_outage_holds_records_instead_of_skipping_them() {
    let broker = Broker::start();
    let registry = Registry::start();
    let ids = register_deal_schemas(&registry, &broker).await;
    let network = Proxy::start(registry.addr).await;
    network.down();
    let url = format!("{}/apis/ccompat/v7", network.url);
    let bridge = TestBridge::start_with(&broker, |c| c.schemas.registry_url = Some(url)).await;
    let mut clients = Clients::spawn().await;
    clients
        .connect("o", &bridge.url, json!({"token": token("user_o", "org-1")}))
        .await;
    clients
        .subscribe("o", json!({"resource": "deal", "id": "deal_held"}))
        .await;
    let producer = Producer::new(&broker);
    producer
        .send(
            "crm.deals",
            "deal_held",
            &deal_v1_record("org-1", "deal_held", "p", ids.v1),
        )
        .await;

    // The bridge has the record, and holds it for a while.
    bridge.wait_consumed(1).await;
    clients.settle(Duration::from_millis(700)).await;
    assert!(clients.unclaimed_deliveries("o").is_empty());
    let stats = bridge.stats().await;
    assert_eq!(
        stats["decodeFailures"],
        json!({}),
        "nothing skipped while the registry is down: {stats}"
    );

    network.up();
    assert_eq!(
        clients.event("o", "resource-update").await["id"],
        "deal_held"
    );
    bridge.stop().await;
}

/// The demo producer as `make run` runs it: it registers its schemas under
/// this test's subjects and frames its records with the ids the registry
/// returns; the bridge, reading the same registry, delivers them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_producer_writes_the_ids_the_registry_returns() {
    let broker = Broker::start();
    let registry = Registry::start();
    let bridge = TestBridge::start_with(&broker, |c| {
        c.schemas.registry_url = Some(registry.url.clone())
    })
    .await;
    let mut clients = Clients::spawn().await;
    clients
        .connect(
            "alice",
            &bridge.url,
            json!({"token": token("user_alice", "org-acme")}),
        )
        .await;
    clients
        .subscribe(
            "alice",
            json!({"resource": "deal", "filter": {"pipelineId": "pipeline_acme_sales"}}),
        )
        .await;

    let mut config = crm_bridge::config::Config::default();
    config.kafka.brokers = broker.addr.clone();
    broker.name_topics(&mut config);
    config.schemas.local_dir = repo_path("schemas");
    config.schemas.registry_url = Some(registry.url.clone());
    let stop = CancellationToken::new();
    let demo = tokio::spawn({
        let stop = stop.clone();
        async move { crm_bridge::demo::run(&config.kafka, &config.schemas, 20.0, stop).await }
    });
    // The demo starts by creating every deal, Acme's first.
    let created = clients.event("alice", "resource-update").await;
    assert_eq!(created["action"], "create", "{created}");
    stop.cancel();
    demo.await.unwrap().unwrap();

    let written = first_schema_id(&broker, &broker.topic("crm.deals")).await;
    assert_eq!(written, registry.latest_id(&broker, "crm.deals").await);
    bridge.stop().await;
}

/// The schema id in the Confluent frame of the first record of `topic`
/// (partition 0 or 1, whichever answers first).
async fn first_schema_id(broker: &Broker, topic: &str) -> u32 {
    let consumer = support::semantics::reader_from_start(broker, topic, "schema-id-reader");
    let message = tokio::time::timeout(Duration::from_secs(15), consumer.recv())
        .await
        .unwrap_or_else(|_| panic!("no record in {topic}"))
        .unwrap();
    let value = message.payload().expect("a value");
    u32::from_be_bytes(value[1..5].try_into().unwrap())
}
