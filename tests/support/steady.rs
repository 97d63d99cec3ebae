//! A producer at a steady rate for as long as a scenario runs, beside
//! whatever else the scenario does: deal updates of one organisation spread
//! over `pipelines` pipelines, each stamped with a sequence number
//! (`changes.seq`; its remainder modulo `pipelines` is its pipeline's
//! index) and the wall-clock time it was handed to Kafka
//! (`changes.sentAtUs`), so clients can check what they got and measure the
//! latency (`tests/client/fleet.mjs` does both).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crm_bridge::domain::Action;
use serde_json::{Map, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::avro::{deal_by, encoder};
use super::{Broker, Producer};

/// Deals per pipeline, keyed by deal: spread over the topic's partitions.
const DEALS_PER_PIPELINE: u64 = 8;

pub struct SteadyFeed {
    stop: CancellationToken,
    /// Records acknowledged by the broker so far.
    sent: Arc<AtomicU64>,
    /// Ends with the count of records sent.
    task: JoinHandle<u64>,
}

/// The name of pipeline `index`.
pub fn pipeline(index: usize) -> String {
    format!("pipeline_steady_{index}")
}

/// How many of the first `total` records are of pipeline `index` of `pipelines`.
pub fn records_of(pipeline_index: usize, pipelines: usize, total: u64) -> u64 {
    total
        .saturating_sub(pipeline_index as u64)
        .div_ceil(pipelines as u64)
}

impl SteadyFeed {
    /// Starts producing `rate` records per second to `broker`'s deals topic.
    pub fn start(broker: &Broker, org: &str, pipelines: usize, rate: u64) -> Self {
        let producer = Producer::new(broker);
        let stop = CancellationToken::new();
        let sent = Arc::new(AtomicU64::default());
        let org = org.to_owned();
        let task = tokio::spawn({
            let (stop, sent) = (stop.clone(), sent.clone());
            async move {
                let started = Instant::now();
                let mut seq = 0;
                while !stop.is_cancelled() {
                    let due = (rate as f64 * started.elapsed().as_secs_f64()) as u64;
                    // Sent at once, acknowledged together: the pace is the
                    // feed's, not the broker's round trips.
                    let sends = (seq..due).map(|seq| {
                        let record = stamped(&org, seq, pipelines);
                        let producer = &producer;
                        async move { producer.send("crm.deals", &record.0, &record.1).await }
                    });
                    futures::future::join_all(sends).await;
                    sent.store(due.max(seq), Ordering::Relaxed);
                    seq = due.max(seq);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                seq
            }
        });
        Self { stop, sent, task }
    }

    /// Records acknowledged by the broker so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Stops producing; returns how many records were produced, every one
    /// acknowledged by the broker.
    pub async fn stop(self) -> u64 {
        self.stop.cancel();
        self.task.await.expect("the feed panicked")
    }
}

/// Record `seq`: its key (the deal) and value.
fn stamped(org: &str, seq: u64, pipelines: usize) -> (String, Vec<u8>) {
    let index = (seq % pipelines as u64) as usize;
    let deal = format!(
        "deal_{index}_{}",
        (seq / pipelines as u64) % DEALS_PER_PIPELINE
    );
    let sent_at_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros();
    let changes = Map::from_iter([
        ("seq".to_owned(), Value::from(seq.to_string())),
        ("sentAtUs".to_owned(), Value::from(sent_at_us.to_string())),
    ]);
    let value = deal_by(
        encoder(),
        org,
        &deal,
        &pipeline(index),
        Action::Update,
        None,
        changes,
    );
    (deal, value)
}
