//! Traces, end to end: a producer's W3C `traceparent` on a Kafka record is
//! continued by the bridge, and its spans reach a real OTLP/HTTP receiver,
//! named and attributed by the OpenTelemetry messaging conventions, from a
//! resource that names the release and the node.
//!
//! The trace export is per process (the `tracing` subscriber is global), so
//! this binary installs it once, before any bridge starts, and tells its
//! traces apart by trace id.

mod support;

use std::sync::OnceLock;

use crm_bridge::domain::Action;
use crm_bridge::telemetry::LogConfig;
use crm_bridge::telemetry::{self, OtlpProtocol, TraceExport};
use opentelemetry_sdk::trace::Sampler;
use serde_json::json;
use support::avro::contact;
use support::otlp::{OtlpReceiver, ReceivedSpan, SpanKind};
use support::{Broker, Clients, Producer, TestBridge, eventually, token};

/// The node id of this binary's bridge, and so of its traces' resource.
const NODE_ID: &str = "tracing-test-node";

/// The receiver every bridge of this binary exports to.
fn receiver() -> &'static OtlpReceiver {
    static RECEIVER: OnceLock<OtlpReceiver> = OnceLock::new();
    RECEIVER.get_or_init(|| {
        let receiver = OtlpReceiver::start();
        let export = TraceExport {
            endpoint: receiver.url.clone(),
            protocol: OtlpProtocol::HttpProtobuf,
            service_name: "crm-bridge-test".into(),
            service_instance_id: NODE_ID.into(),
            // Every record, so the one without a traceparent is traced too.
            sampler: Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        };
        let log = LogConfig {
            filter: "warn".into(),
            ..LogConfig::default()
        };
        telemetry::init(&log, Some(&export)).expect("trace export starts");
        receiver
    })
}

/// Waits until `found` finds what it needs among the received spans.
async fn wait_for_spans<T>(what: &str, found: impl Fn(&[ReceivedSpan]) -> Option<T>) -> T {
    let spans = async || receiver().spans();
    let spans = eventually(what, spans, |spans| found(spans).is_some()).await;
    found(&spans).expect("found a moment ago")
}

/// The first span named `name` that `matches`.
fn span<'a>(
    spans: &'a [ReceivedSpan],
    name: &str,
    matches: impl Fn(&ReceivedSpan) -> bool,
) -> Option<&'a ReceivedSpan> {
    spans.iter().find(|s| s.name == name && matches(s))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producers_trace_is_continued_through_process_decode_route_and_emit() {
    receiver();
    let broker = Broker::start();
    let bridge = TestBridge::start_with(&broker, |config| {
        config.kafka.node_id = Some(NODE_ID.into());
    })
    .await;
    let producer = Producer::new(&broker);
    let mut clients = Clients::spawn().await;
    clients
        .connect(
            "jane",
            &bridge.url,
            json!({"token": token("user_jane", "org-1")}),
        )
        .await;
    let subscription = json!({"resource": "contact", "id": "contact_traced"});
    let ack = clients
        .request("jane", "subscribe", subscription.clone())
        .await;

    let trace_id = format!("{:032x}", rand::random::<u128>() | 1);
    let producer_span = "00f067aa0ba902b7";
    let traceparent = format!("00-{trace_id}-{producer_span}-01");
    let record = contact(
        "org-1",
        "contact_traced",
        Action::Update,
        "user_bob",
        &[("phone", "1")],
    );
    producer
        .send_with_headers(
            "crm.contacts",
            "contact_traced",
            &record,
            &[
                ("traceparent", &traceparent),
                ("tracestate", "vendor=value"),
            ],
        )
        .await;
    let traced = clients.event("jane", "resource-update").await;
    let plain = contact(
        "org-1",
        "contact_traced",
        Action::Update,
        "user_bob",
        &[("phone", "2")],
    );
    producer
        .send("crm.contacts", "contact_traced", &plain)
        .await;
    let untraced = clients.event("jane", "resource-update").await;
    assert_eq!(traced["data"]["phone"], "1");
    assert_eq!(untraced["data"]["phone"], "2");

    // A client that missed both resumes: its replay is traced too.
    clients
        .connect(
            "late",
            &bridge.url,
            json!({"token": token("user_late", "org-1")}),
        )
        .await;
    let mut resume = subscription;
    resume["since"] = ack["cursor"].clone();
    clients.request("late", "subscribe", resume).await;
    let resumed = clients.event("late", "subscription-resumed").await;
    assert_eq!(resumed["replayed"], 2);
    // Shutting down flushes what is still queued.
    bridge.stop().await;

    // The traced record: `process <topic>` continues the producer's span;
    // decode, route and emit are its stages, in order.
    let topic = broker.topic("crm.contacts");
    let process = format!("process {topic}");
    let (consume, stages) = wait_for_spans("the traced record's spans", |spans| {
        let consume = span(spans, &process, |s| s.trace_id == trace_id)?.clone();
        let stage = |name| span(spans, name, |s| s.parent_span_id == consume.span_id).cloned();
        let stages = [stage("decode")?, stage("route")?, stage("emit")?];
        Some((consume, stages))
    })
    .await;
    assert_eq!(consume.parent_span_id, producer_span);
    assert_eq!(consume.kind, SpanKind::Consumer);
    let attribute = |key: &str| consume.attributes.get(key).map(String::as_str);
    assert_eq!(attribute("messaging.system"), Some("kafka"));
    assert_eq!(attribute("messaging.operation.name"), Some("process"));
    assert_eq!(attribute("messaging.operation.type"), Some("process"));
    assert_eq!(
        attribute("messaging.destination.name"),
        Some(topic.as_str())
    );
    let group = format!("crm-bridge-{NODE_ID}");
    assert_eq!(
        attribute("messaging.consumer.group.name"),
        Some(group.as_str())
    );
    let partition = &consume.attributes["messaging.destination.partition.id"];
    assert!(partition.parse::<i32>().is_ok(), "{partition}");
    assert!(
        !consume
            .integers
            .contains("messaging.destination.partition.id"),
        "the partition is a string"
    );
    assert!(consume.integers.contains("messaging.kafka.offset"));
    let resource = |key: &str| consume.resource.get(key).map(String::as_str);
    assert_eq!(resource("service.name"), Some("crm-bridge-test"));
    assert_eq!(resource("service.version"), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(resource("service.instance.id"), Some(NODE_ID));
    let [decode, route, emit] = stages;
    for stage in [&decode, &route, &emit] {
        assert_eq!(
            stage.trace_id, trace_id,
            "{} in the producer's trace",
            stage.name
        );
    }
    assert!(decode.start_unix_nano <= route.start_unix_nano);
    assert!(route.start_unix_nano <= emit.start_unix_nano);
    assert_eq!(route.attributes["matched_clients"], "1");
    assert_eq!(emit.attributes["emitted"], "1");
    assert_eq!(emit.attributes["event"], "resource-update");

    // The record without a traceparent starts a trace of its own.
    let offset: i64 = consume.attributes["messaging.kafka.offset"]
        .parse()
        .unwrap();
    let plain_consume = wait_for_spans("the plain record's process span", |spans| {
        span(spans, &process, |s| {
            &s.attributes["messaging.destination.partition.id"] == partition
                && s.attributes["messaging.kafka.offset"] == (offset + 1).to_string()
        })
        .cloned()
    })
    .await;
    assert_ne!(plain_consume.trace_id, trace_id);
    assert_eq!(plain_consume.parent_span_id, "", "a new trace's root");

    let replay = wait_for_spans("the replay span", |spans| {
        span(spans, "replay", |s| {
            s.attributes.get("replayed").is_some_and(|r| r == "2")
        })
        .cloned()
    })
    .await;
    assert_eq!(replay.parent_span_id, "");
    assert_eq!(replay.attributes["gaps"], "0");
    assert_ne!(replay.attributes["partitions"], "0");
}
