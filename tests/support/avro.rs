//! Produces Avro records the way an independent producing service would: its
//! own encoding of the `schemas/` files (through apache-avro's writer, never
//! the bridge's decoding code) and its own Confluent framing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apache_avro::Schema;
use apache_avro::types::{Record, Value};
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use super::{Broker, repo_path};

/// Schema ids of `schemas/registry.toml`: part of the producer contract.
pub const CONTACT_ID: u32 = 1;
pub const DEAL_ID: u32 = 2;
pub const EMAIL_ID: u32 = 3;
pub const NOTIFICATION_ID: u32 = 4;

pub fn schema(file: &str) -> Schema {
    Schema::parse_str(&std::fs::read_to_string(repo_path(&format!("schemas/{file}"))).unwrap())
        .unwrap()
}

/// `0x00`, big-endian schema id, Avro body.
pub fn confluent_frame(schema_id: u32, body: &[u8]) -> Vec<u8> {
    let mut framed = vec![0u8];
    framed.extend_from_slice(&schema_id.to_be_bytes());
    framed.extend_from_slice(body);
    framed
}

pub fn encode(schema: &Schema, schema_id: u32, fields: Vec<(&str, Value)>) -> Vec<u8> {
    let mut record = Record::new(schema).unwrap();
    for (name, value) in fields {
        record.put(name, value);
    }
    confluent_frame(
        schema_id,
        &apache_avro::to_avro_datum(schema, record).unwrap(),
    )
}

pub fn s(v: &str) -> Value {
    Value::String(v.into())
}

pub fn opt(v: Option<&str>) -> Value {
    match v {
        Some(v) => Value::Union(1, Box::new(s(v))),
        None => Value::Union(0, Box::new(Value::Null)),
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn symbol(symbols: &[&str], name: &str) -> Value {
    Value::Enum(
        symbols.iter().position(|s| *s == name).unwrap() as u32,
        name.into(),
    )
}

pub fn contact(
    org: &str,
    contact_id: &str,
    action: &str,
    user: &str,
    changes: &[(&str, &str)],
) -> Vec<u8> {
    let symbols = ["create", "update", "delete", "activity", "email", "note"];
    let map = changes
        .iter()
        .map(|(k, v)| (k.to_string(), Value::Union(4, Box::new(s(v)))))
        .collect();
    encode(
        &schema("contact-event.avsc"),
        CONTACT_ID,
        vec![
            ("eventId", s(&uuid::Uuid::new_v4().to_string())),
            ("contactId", s(contact_id)),
            ("organizationId", s(org)),
            ("action", symbol(&symbols, action)),
            ("actorUserId", s(user)),
            ("occurredAt", Value::TimestampMillis(now_ms())),
            ("changes", Value::Map(map)),
        ],
    )
}

pub fn deal(
    org: &str,
    deal_id: &str,
    pipeline: &str,
    action: &str,
    stages: Option<(&str, &str)>,
) -> Vec<u8> {
    deal_record(org, deal_id, pipeline, action, stages, Default::default())
}

/// A deal record whose `changes` are JSON values (strings, integers,
/// floats, booleans, null), as a dashboard test describes them.
pub fn deal_with(
    org: &str,
    deal_id: &str,
    pipeline: &str,
    action: &str,
    stages: Option<(&str, &str)>,
    changes: &serde_json::Map<String, serde_json::Value>,
) -> Vec<u8> {
    let change = |value: &serde_json::Value| match value {
        serde_json::Value::Bool(b) => Value::Union(1, Box::new(Value::Boolean(*b))),
        serde_json::Value::Number(n) if n.is_i64() => {
            Value::Union(2, Box::new(Value::Long(n.as_i64().unwrap())))
        }
        serde_json::Value::Number(n) => {
            Value::Union(3, Box::new(Value::Double(n.as_f64().unwrap())))
        }
        serde_json::Value::String(s) => Value::Union(4, Box::new(Value::String(s.clone()))),
        _ => Value::Union(0, Box::new(Value::Null)),
    };
    let changes = changes
        .iter()
        .map(|(k, v)| (k.clone(), change(v)))
        .collect();
    deal_record(org, deal_id, pipeline, action, stages, changes)
}

fn deal_record(
    org: &str,
    deal_id: &str,
    pipeline: &str,
    action: &str,
    stages: Option<(&str, &str)>,
    changes: std::collections::HashMap<String, Value>,
) -> Vec<u8> {
    let symbols = [
        "create",
        "update",
        "delete",
        "stage_change",
        "assignment",
        "comment",
    ];
    encode(
        &schema("deal-event.avsc"),
        DEAL_ID,
        vec![
            ("eventId", s(&uuid::Uuid::new_v4().to_string())),
            ("dealId", s(deal_id)),
            ("organizationId", s(org)),
            ("pipelineId", s(pipeline)),
            ("action", symbol(&symbols, action)),
            ("actorUserId", s("user_mover")),
            ("occurredAt", Value::TimestampMillis(now_ms())),
            ("previousStage", opt(stages.map(|s| s.0))),
            ("newStage", opt(stages.map(|s| s.1))),
            ("changes", Value::Map(changes)),
        ],
    )
}

pub fn email(org: &str, thread: &str, contact_id: Option<&str>, subject: &str) -> Vec<u8> {
    encode(
        &schema("email-event.avsc"),
        EMAIL_ID,
        vec![
            ("eventId", s(&uuid::Uuid::new_v4().to_string())),
            (
                "emailId",
                s(&format!("email_{}", uuid::Uuid::new_v4().simple())),
            ),
            ("threadId", s(thread)),
            ("organizationId", s(org)),
            ("contactId", opt(contact_id)),
            (
                "action",
                symbol(&["new_email", "reply", "forward"], "new_email"),
            ),
            ("subject", s(subject)),
            ("from", s("client@example.com")),
            ("occurredAt", Value::TimestampMillis(now_ms())),
        ],
    )
}

pub fn notification(org: &str, target: &str, title: &str) -> Vec<u8> {
    encode(
        &schema("notification-event.avsc"),
        NOTIFICATION_ID,
        vec![
            (
                "notificationId",
                s(&format!("notif-{}", uuid::Uuid::new_v4().simple())),
            ),
            ("organizationId", s(org)),
            ("targetUserId", s(target)),
            ("type", s("mention")),
            ("title", s(title)),
            ("message", s("John mentioned you in a comment")),
            ("link", opt(Some("/deals/deal_789"))),
            ("occurredAt", Value::TimestampMillis(now_ms())),
        ],
    )
}

/// Sends to the test's own topics: `topic` is a CRM topic's usual name
/// (`crm.deals`), which [`Broker::topic`] makes the test's.
#[derive(Clone)]
pub struct Producer {
    producer: FutureProducer,
    broker: Broker,
}

impl Producer {
    pub fn new(broker: &Broker) -> Self {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", &broker.addr)
            .set("linger.ms", "0")
            .create()
            .expect("producer");
        Self {
            producer,
            broker: broker.clone(),
        }
    }

    /// Sends with an explicit record timestamp (ms since the epoch).
    pub async fn send_at(&self, topic: &str, key: &str, value: &[u8], timestamp_ms: i64) {
        let topic = self.broker.topic(topic);
        let record = FutureRecord::to(&topic)
            .key(key)
            .payload(value)
            .timestamp(timestamp_ms);
        self.deliver(record).await;
    }

    /// Sends with record headers, e.g. W3C `traceparent`/`tracestate`.
    pub async fn send_with_headers(
        &self,
        topic: &str,
        key: &str,
        value: &[u8],
        headers: &[(&str, &str)],
    ) {
        let topic = self.broker.topic(topic);
        let headers = headers
            .iter()
            .fold(OwnedHeaders::new(), |all, (key, value)| {
                all.insert(Header {
                    key,
                    value: Some(*value),
                })
            });
        let record = FutureRecord::to(&topic)
            .key(key)
            .payload(value)
            .headers(headers);
        self.deliver(record).await;
    }

    pub async fn send(&self, topic: &str, key: &str, value: &[u8]) {
        let topic = self.broker.topic(topic);
        self.deliver(FutureRecord::to(&topic).key(key).payload(value))
            .await;
    }

    /// `deal_seq` records for `seqs` of `pipeline`, over 64 deals, sent in
    /// batches of concurrent sends: the producer, not the bridge, sets the pace.
    pub async fn send_deal_seqs(&self, pipeline: &str, seqs: std::ops::Range<u64>) {
        let seqs: Vec<u64> = seqs.collect();
        for chunk in seqs.chunks(5_000) {
            futures::future::join_all(chunk.iter().map(|seq| {
                let deal = format!("deal_{}", seq % 64);
                let record = deal_seq("org-1", &deal, pipeline, *seq);
                async move { self.send("crm.deals", &deal, &record).await }
            }))
            .await;
        }
    }

    /// Sends `record` and waits for the broker to take it.
    async fn deliver(&self, record: FutureRecord<'_, str, [u8]>) {
        self.producer
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)
            .expect("produce");
    }
}

/// A deal update carrying `seq` in its changes, to check exactly-once delivery.
pub fn deal_seq(org: &str, deal_id: &str, pipeline: &str, seq: u64) -> Vec<u8> {
    let changes = [(
        "seq".to_string(),
        Value::Union(2, Box::new(Value::Long(seq as i64))),
    )]
    .into();
    deal_record(org, deal_id, pipeline, "update", None, changes)
}
