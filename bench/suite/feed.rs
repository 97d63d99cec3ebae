//! The producer side of every scenario: deal `update` records, written by
//! the bridge's encoder, each stamped with a sequence number and the
//! wall-clock time it was handed to Kafka (`changes.seq`,
//! `changes.sentAtUs`), so a client can measure end-to-end latency and
//! check what it got. Encoding costs about 10 µs a record (release build,
//! measured on the shared 2-core box under load): at 20,000 records/s, a
//! fifth of the generator's core, where the hand-written varints it
//! replaced cost next to nothing.
//!
//! For Centrifugo, which reads no Avro, the same events go to a topic of
//! its own as the JSON crm-bridge would send a client (its renderer, so
//! the payloads are the same bytes), each naming its channels in the
//! `centrifugo-channels` header (the pipeline's and the deal's). The
//! record's Kafka position is not known when it is written, so the payload
//! carries the partition the feed writes it to and its sequence number in
//! place of the offset: increasing within a partition, as offsets are, so
//! the clients' order and duplicate checks hold unchanged.

use std::time::{Duration, Instant};

use crm_bridge::access::Hidden;
use crm_bridge::domain::{Action, CrmEvent, DealEvent, EventBody, OrgId, Position, TopicKind};
use crm_bridge::protocol::{Delivery, render};
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde_json::{Map, Value};

use crate::load::session::now_micros;
use crate::servers::{CENTRIFUGO_PARTITIONS, CENTRIFUGO_TOPIC, Kind};
use crate::support::Broker;
use crate::support::avro::encoder;

const DEALS_TOPIC: &str = "crm.deals";

/// Which deal a record is about.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub org: &'a str,
    pub pipeline: &'a str,
    pub deal: &'a str,
}

pub struct Feed {
    producer: ThreadedProducer<DefaultProducerContext>,
    /// What the server reads: Avro on [`DEALS_TOPIC`] or Centrifugo's JSON.
    format: Format,
    /// The scenario's name for the topic of `format`.
    topic: String,
    /// The next record's sequence number.
    pub seq: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Avro,
    CentrifugoJson,
}

/// The body of a deal `update` of `target`, fields as strings.
fn update(target: &Target<'_>, seq: u64, sent_at_us: u64) -> EventBody {
    let changes = Map::from_iter([
        ("seq".to_owned(), Value::from(seq.to_string())),
        ("sentAtUs".to_owned(), Value::from(sent_at_us.to_string())),
    ]);
    EventBody::Deal(DealEvent {
        deal_id: target.deal.to_owned(),
        pipeline_id: target.pipeline.to_owned(),
        action: Action::Update,
        actor_user_id: "user_bench_producer".to_owned(),
        occurred_at_ms: (sent_at_us / 1000) as i64,
        previous_stage: None,
        new_stage: None,
        changes,
    })
}

/// The partition of Centrifugo's topic a deal's records go to.
fn centrifugo_partition(deal: &str) -> i32 {
    let hash = deal.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    (hash % CENTRIFUGO_PARTITIONS as u64) as i32
}

/// The payload crm-bridge would send for `body`, at `partition` and `seq`.
fn centrifugo_json(target: &Target<'_>, body: EventBody, partition: i32, seq: u64) -> Vec<u8> {
    let event = CrmEvent {
        org: OrgId::new(target.org).expect("a valid organisation"),
        position: Position {
            topic: TopicKind::Deals,
            partition,
            offset: seq as i64,
        },
        body,
    };
    let outbound = render(&event, Delivery::Live, None, Hidden::NOTHING);
    outbound.payload.get().as_bytes().to_vec()
}

impl Feed {
    /// The feed of the server `kind`.
    pub fn new(broker: &Broker, kind: Kind) -> Self {
        let (format, topic) = match kind {
            Kind::Centrifugo => (Format::CentrifugoJson, CENTRIFUGO_TOPIC),
            Kind::CrmBridge | Kind::NodePeer => (Format::Avro, DEALS_TOPIC),
        };
        let producer = ClientConfig::new()
            .set("bootstrap.servers", &broker.addr)
            .set("linger.ms", "1")
            .set("batch.num.messages", "10000")
            .set("queue.buffering.max.messages", "2000000")
            .set("queue.buffering.max.kbytes", "1048576")
            .create()
            .expect("creating the producer");
        Self {
            producer,
            format,
            topic: broker.topic(topic),
            seq: 0,
        }
    }

    /// Hands one record to the producer's queue; returns its sequence number.
    pub fn send(&mut self, target: &Target<'_>) -> u64 {
        let seq = self.seq;
        self.seq += 1;
        let body = update(target, seq, now_micros());
        let (value, partition, headers) = match self.format {
            Format::Avro => {
                let value = encoder()
                    .encode(&format!("bench-{seq}"), target.org, &body)
                    .expect("the bundled deal schema writes any deal");
                (value, None, None)
            }
            Format::CentrifugoJson => {
                let partition = centrifugo_partition(target.deal);
                let channels = format!("pipeline:{},deal:{}", target.pipeline, target.deal);
                let headers = OwnedHeaders::new().insert(Header {
                    key: "centrifugo-channels",
                    value: Some(&channels),
                });
                let value = centrifugo_json(target, body, partition, seq);
                (value, Some(partition), Some(headers))
            }
        };
        loop {
            let mut record = BaseRecord::to(&self.topic).key(target.deal).payload(&value);
            if let Some(partition) = partition {
                record = record.partition(partition);
            }
            if let Some(headers) = &headers {
                record = record.headers(headers.clone());
            }
            match self.producer.send(record) {
                Ok(()) => return seq,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((error, _)) => panic!("producing: {error}"),
            }
        }
    }

    /// Sends `rate` records per second for `duration` to the deal
    /// `deal_of(seq)` names; returns the sequence numbers sent.
    pub async fn paced(
        &mut self,
        rate: u64,
        duration: Duration,
        org: &str,
        pipeline: &str,
        deal_of: impl Fn(u64) -> String,
    ) -> std::ops::Range<u64> {
        let first = self.seq;
        let total = rate * duration.as_millis() as u64 / 1000;
        let started = Instant::now();
        while self.seq - first < total {
            let due = (rate as f64 * started.elapsed().as_secs_f64()) as u64;
            while self.seq - first < due.min(total) {
                let deal = deal_of(self.seq);
                self.send(&Target {
                    org,
                    pipeline,
                    deal: &deal,
                });
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Waited for without blocking: the load generator shares this
        // thread, and its clients must keep reading meanwhile (a blocking
        // flush on a slow broker left every socket unread).
        while self.producer.in_flight_count() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.flush();
        first..self.seq
    }

    /// Sends `count` records as fast as the producer takes them, then
    /// waits for the broker to have them all.
    pub fn burst(
        &mut self,
        count: u64,
        org: &str,
        pipeline: &str,
        deal_of: impl Fn(u64) -> String,
    ) {
        for _ in 0..count {
            let deal = deal_of(self.seq);
            self.send(&Target {
                org,
                pipeline,
                deal: &deal,
            });
        }
        self.flush();
    }

    /// Waits until every queued record is acknowledged by the broker.
    pub fn flush(&self) {
        self.producer
            .flush(Duration::from_secs(60))
            .expect("flushing the producer");
    }
}
