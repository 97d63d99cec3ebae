//! Producers evolve their schemas; the bridge keeps decoding. Writer schemas
//! come from the local registry or a Confluent-compatible one over HTTP.

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use apache_avro::types::Value;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::json;
use support::avro::{encode, now_ms, opt, s};
use support::{Broker, Clients, Producer, TestBridge, repo_path, token};

const V2_ID: u32 = 102;

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

fn deal_v2_record(deal_id: &str) -> Vec<u8> {
    let schema = apache_avro::Schema::parse(&deal_v2_schema_json()).unwrap();
    encode(
        &schema,
        V2_ID,
        vec![
            ("eventId", s("e-v2")),
            ("dealId", s(deal_id)),
            ("organizationId", s("org-1")),
            ("region", s("apac")),
            ("pipelineId", s("pipeline_v2")),
            ("action", Value::Enum(3, "stage_change".into())),
            ("actorUserId", s("user_v2")),
            ("occurredAt", Value::TimestampMillis(now_ms())),
            ("previousStage", opt(Some("proposal"))),
            ("newStage", opt(Some("negotiation"))),
            ("changes", Value::Map(Default::default())),
            ("probability", Value::Union(1, Box::new(Value::Double(0.6)))),
        ],
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
        "\n[[schema]]\nid = {V2_ID}\nsubject = \"crm.deals-value\"\nfile = \"deal-event-v2.avsc\"\n"
    ));
    std::fs::write(dir.join("registry.toml"), manifest).unwrap();
    dir
}

async fn expect_v2_delivery(bridge: &TestBridge, broker: &Broker) {
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
        .send("crm.deals", "deal_v2", &deal_v2_record("deal_v2"))
        .await;
    // v1 records keep flowing beside v2 ones.
    let v1 = support::avro::deal("org-1", "deal_v1", "pipeline_v2", "update", None);
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
    expect_v2_delivery(&bridge, &broker).await;
    bridge.stop().await;
    std::fs::remove_dir_all(dir).ok();
}

/// Serves `GET /schemas/ids/{id}` as a Confluent Schema Registry does, or
/// 503 for everything while `up` is false.
async fn start_http_registry(up: Arc<AtomicBool>) -> String {
    let schemas: Vec<(u32, String)> = vec![
        (
            1,
            std::fs::read_to_string(repo_path("schemas/contact-event.avsc")).unwrap(),
        ),
        (
            2,
            std::fs::read_to_string(repo_path("schemas/deal-event.avsc")).unwrap(),
        ),
        (V2_ID, deal_v2_schema_json().to_string()),
    ];
    let app = axum::Router::new().route(
        "/schemas/ids/{id}",
        get(move |Path(id): Path<u32>| {
            let found = schemas
                .iter()
                .find(|(i, _)| *i == id)
                .map(|(_, s)| s.clone());
            let up = up.load(Ordering::SeqCst);
            async move {
                match found {
                    _ if !up => Err((
                        StatusCode::SERVICE_UNAVAILABLE,
                        axum::Json(json!({"error_code": 50003})),
                    )),
                    Some(schema) => Ok(axum::Json(json!({ "schema": schema }))),
                    None => Err((
                        StatusCode::NOT_FOUND,
                        axum::Json(json!({"error_code": 40403})),
                    )),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_schemas_come_from_an_http_schema_registry() {
    let broker = Broker::start();
    let registry = start_http_registry(Arc::new(AtomicBool::new(true))).await;
    let bridge =
        TestBridge::start_with(&broker, |c| c.schemas.registry_url = Some(registry.clone())).await;
    expect_v2_delivery(&bridge, &broker).await;

    // An id the registry does not know is a counted poison record, not a stall.
    let producer = Producer::new(&broker);
    let unknown = support::avro::confluent_frame(777, &deal_v2_record("x")[5..]);
    producer.send("crm.deals", "deal_v2", &unknown).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let stats = bridge.stats().await;
        if stats["decodeFailures"]["unknown_schema"] == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not counted: {stats}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_outage_holds_records_instead_of_skipping_them() {
    let broker = Broker::start();
    let up = Arc::new(AtomicBool::new(false));
    let registry = start_http_registry(up.clone()).await;
    let bridge =
        TestBridge::start_with(&broker, |c| c.schemas.registry_url = Some(registry.clone())).await;
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
            &support::avro::deal("org-1", "deal_held", "p", "update", None),
        )
        .await;

    clients.settle(Duration::from_millis(700)).await;
    assert!(clients.unclaimed_deliveries("o").is_empty());
    let stats = bridge.stats().await;
    assert_eq!(
        stats["decodeFailures"],
        json!({}),
        "nothing skipped while the registry is down: {stats}"
    );

    up.store(true, Ordering::SeqCst);
    assert_eq!(
        clients.event("o", "resource-update").await["id"],
        "deal_held"
    );
    bridge.stop().await;
}
