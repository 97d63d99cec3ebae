//! Records as the CRM's producers send them, written by the bridge's own
//! encoder (`crm_bridge::decode::Encoder`: apache-avro's writer, held to
//! the decoder by a property test) with the schemas and ids of
//! `schemas/registry.toml`, and a producer that sends them.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crm_bridge::decode::{Encoder, LocalRegistry};
use crm_bridge::domain::{
    Action, ContactEvent, DealEvent, EmailEvent, EventBody, NotificationEvent, TopicKind, UserId,
};
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Map, Value};

pub use crm_bridge::decode::frame;

use super::{Broker, repo_path};

/// The encoder of the bundled schemas (`schemas/`).
pub fn encoder() -> &'static Encoder {
    static ENCODER: OnceLock<Encoder> = OnceLock::new();
    ENCODER.get_or_init(|| {
        let registry = LocalRegistry::load(&repo_path("schemas")).unwrap();
        Encoder::latest(&registry).unwrap()
    })
}

/// The id the bundled deal schema has in `schemas/registry.toml`.
pub fn deal_schema_id() -> u32 {
    encoder().schema_id(TopicKind::Deals).unwrap()
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// `body` of `org`, as `writer` writes it, under a fresh event id.
fn record(writer: &Encoder, org: &str, body: EventBody) -> Vec<u8> {
    let event_id = uuid::Uuid::new_v4().to_string();
    writer.encode(&event_id, org, &body).unwrap()
}

pub fn contact(
    org: &str,
    contact_id: &str,
    action: Action,
    user: &str,
    changes: &[(&str, &str)],
) -> Vec<u8> {
    let changes = changes
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(*v)))
        .collect();
    let body = EventBody::Contact(ContactEvent {
        contact_id: contact_id.to_owned(),
        action,
        actor_user_id: user.to_owned(),
        occurred_at_ms: now_ms(),
        changes,
    });
    record(encoder(), org, body)
}

pub fn deal(
    org: &str,
    deal_id: &str,
    pipeline: &str,
    action: Action,
    stages: Option<(&str, &str)>,
) -> Vec<u8> {
    deal_by(
        encoder(),
        org,
        deal_id,
        pipeline,
        action,
        stages,
        Map::new(),
    )
}

/// A deal record whose `changes` are JSON values (strings, integers,
/// floats, booleans, null), as a dashboard test describes them.
pub fn deal_with(
    org: &str,
    deal_id: &str,
    pipeline: &str,
    action: Action,
    stages: Option<(&str, &str)>,
    changes: &Map<String, Value>,
) -> Vec<u8> {
    let changes = changes.clone();
    deal_by(encoder(), org, deal_id, pipeline, action, stages, changes)
}

/// A deal record as `writer` (another schema, or id) writes it.
pub fn deal_by(
    writer: &Encoder,
    org: &str,
    deal_id: &str,
    pipeline: &str,
    action: Action,
    stages: Option<(&str, &str)>,
    changes: Map<String, Value>,
) -> Vec<u8> {
    let body = EventBody::Deal(DealEvent {
        deal_id: deal_id.to_owned(),
        pipeline_id: pipeline.to_owned(),
        action,
        actor_user_id: "user_mover".to_owned(),
        occurred_at_ms: now_ms(),
        previous_stage: stages.map(|s| s.0.to_owned()),
        new_stage: stages.map(|s| s.1.to_owned()),
        changes,
    });
    record(writer, org, body)
}

pub fn email(org: &str, thread: &str, contact_id: Option<&str>, subject: &str) -> Vec<u8> {
    let body = EventBody::Email(EmailEvent {
        email_id: format!("email_{}", uuid::Uuid::new_v4().simple()),
        thread_id: thread.to_owned(),
        contact_id: contact_id.map(str::to_owned),
        action: Action::NewEmail,
        subject: subject.to_owned(),
        from: "client@example.com".to_owned(),
        occurred_at_ms: now_ms(),
    });
    record(encoder(), org, body)
}

pub fn notification(org: &str, target: &str, title: &str) -> Vec<u8> {
    let body = EventBody::Notification(NotificationEvent {
        notification_id: format!("notif-{}", uuid::Uuid::new_v4().simple()),
        target_user: UserId::new(target).unwrap(),
        kind: "mention".to_owned(),
        title: title.to_owned(),
        message: "John mentioned you in a comment".to_owned(),
        link: Some("/deals/deal_789".to_owned()),
        occurred_at_ms: now_ms(),
    });
    record(encoder(), org, body)
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

    /// A record with `key` and no value: on a compacted topic, deletes
    /// what the key held.
    pub async fn send_tombstone(&self, topic: &str, key: &str) {
        let topic = self.broker.topic(topic);
        self.deliver(FutureRecord::<str, [u8]>::to(&topic).key(key))
            .await;
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
    let changes = Map::from_iter([("seq".to_owned(), Value::from(seq))]);
    deal_by(
        encoder(),
        org,
        deal_id,
        pipeline,
        Action::Update,
        None,
        changes,
    )
}
