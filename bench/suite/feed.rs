//! The producer side of every scenario: deal `update` records in the Avro
//! wire format, each stamped with a sequence number and the wall-clock time
//! it was handed to Kafka (`changes.seq`, `changes.sentAtUs`), so a client
//! can measure end-to-end latency and check what it got. Encoded by hand
//! (a few varints and strings), so producing 20,000 records/s costs the
//! generator's core little.

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

use crate::load::session::now_micros;
use crate::support::Broker;

const DEALS_TOPIC: &str = "crm.deals";
const DEAL_SCHEMA_ID: u32 = 2;
/// `DealAction::update`'s index in `schemas/deal-event.avsc`.
const ACTION_UPDATE: i64 = 1;
/// The `changes` value union's `string` branch.
const STRING_BRANCH: i64 = 4;

/// Which deal a record is about.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub org: &'a str,
    pub pipeline: &'a str,
    pub deal: &'a str,
}

pub struct Feed {
    producer: ThreadedProducer<DefaultProducerContext>,
    /// The scenario's name for [`DEALS_TOPIC`].
    topic: String,
    /// The next record's sequence number.
    pub seq: u64,
    buffer: Vec<u8>,
}

fn put_long(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

fn put_string(out: &mut Vec<u8>, text: &str) {
    put_long(out, text.len() as i64);
    out.extend_from_slice(text.as_bytes());
}

/// A Confluent-framed `DealEvent` (`update`), fields in schema order.
fn encode_update(out: &mut Vec<u8>, target: &Target<'_>, seq: u64, sent_at_us: u64) {
    out.clear();
    out.push(0);
    out.extend_from_slice(&DEAL_SCHEMA_ID.to_be_bytes());
    put_string(out, &format!("bench-{seq}"));
    put_string(out, target.deal);
    put_string(out, target.org);
    put_string(out, target.pipeline);
    put_long(out, ACTION_UPDATE);
    put_string(out, "user_bench_producer");
    put_long(out, (sent_at_us / 1000) as i64);
    put_long(out, 0); // previousStage: null
    put_long(out, 0); // newStage: null
    put_long(out, 2); // changes: one block of two entries
    for (key, value) in [("seq", seq), ("sentAtUs", sent_at_us)] {
        put_string(out, key);
        put_long(out, STRING_BRANCH);
        put_string(out, &value.to_string());
    }
    put_long(out, 0);
}

impl Feed {
    pub fn new(broker: &Broker) -> Self {
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
            topic: broker.topic(DEALS_TOPIC),
            seq: 0,
            buffer: Vec::with_capacity(256),
        }
    }

    /// Hands one record to the producer's queue; returns its sequence number.
    pub fn send(&mut self, target: &Target<'_>) -> u64 {
        let seq = self.seq;
        self.seq += 1;
        encode_update(&mut self.buffer, target, seq, now_micros());
        loop {
            let record = BaseRecord::to(&self.topic)
                .key(target.deal)
                .payload(&self.buffer);
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
