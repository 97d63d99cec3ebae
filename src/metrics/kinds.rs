//! The metric types a declaration in `metrics.rs` may use, and what each
//! contributes to `/metrics` (its samples) and `/stats` (its value). The
//! family's name, help and label names come from the declaration.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use super::Family;
use super::exposition::Exposition;
use super::histogram::{Buckets, Histogram, ReplayDuration};

/// A metric type.
pub trait Metric {
    /// The Prometheus type: `counter`, `gauge` or `histogram`.
    const KIND: &'static str;
    /// How many label names a declaration of this type gives (checked when
    /// the declarations compile).
    const LABELS: usize;
    /// The family's samples, after its `# HELP` and `# TYPE`.
    fn samples(&self, family: &Family, out: &mut Exposition);
    /// The value under the family's key in `/stats`.
    fn stats(&self, family: &Family) -> Value;
}

#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Metric for Counter {
    const KIND: &'static str = "counter";
    const LABELS: usize = 0;

    fn samples(&self, family: &Family, out: &mut Exposition) {
        out.sample(family.name, &[], self.get());
    }

    fn stats(&self, _: &Family) -> Value {
        self.get().into()
    }
}

#[derive(Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }

    pub fn set(&self, value: i64) {
        self.0.store(value, Ordering::Relaxed);
    }

    /// Counts one until the returned guard is dropped (however the holder
    /// ends: returned early, failed or cancelled).
    pub fn hold(&self) -> GaugeHold<'_> {
        self.inc();
        GaugeHold(self)
    }
}

pub struct GaugeHold<'a>(&'a Gauge);

impl Drop for GaugeHold<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metric for Gauge {
    const KIND: &'static str = "gauge";
    const LABELS: usize = 0;

    fn samples(&self, family: &Family, out: &mut Exposition) {
        out.sample(family.name, &[], self.get());
    }

    fn stats(&self, _: &Family) -> Value {
        self.get().into()
    }
}

/// Counters by a low-cardinality reason (the one label). Rare events, so a
/// mutex is fine.
#[derive(Default)]
pub struct ReasonCounter(Mutex<BTreeMap<&'static str, u64>>);

impl ReasonCounter {
    pub fn inc(&self, reason: &'static str) {
        self.add(reason, 1);
    }

    pub fn add(&self, reason: &'static str, n: u64) {
        *self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(reason)
            .or_default() += n;
    }

    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Metric for ReasonCounter {
    const KIND: &'static str = "counter";
    const LABELS: usize = 1;

    /// A sample per reason counted so far: none before the first count.
    fn samples(&self, family: &Family, out: &mut Exposition) {
        for (reason, count) in self.snapshot() {
            out.sample(family.name, &[(family.labels[0], reason)], count);
        }
    }

    fn stats(&self, _: &Family) -> Value {
        json!(self.snapshot())
    }
}

/// Counters by Kafka topic, partition and reason (the three labels, in that
/// order): partitions are few (the CRM topics'), and these events rare, so a
/// mutex is fine.
#[derive(Default)]
pub struct PartitionCounter(Mutex<BTreeMap<(String, i32, &'static str), u64>>);

impl PartitionCounter {
    pub fn inc(&self, topic: &str, partition: i32, reason: &'static str) {
        *self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((topic.to_owned(), partition, reason))
            .or_default() += 1;
    }

    pub fn snapshot(&self) -> Vec<((String, i32, &'static str), u64)> {
        let counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        counts.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

impl Metric for PartitionCounter {
    const KIND: &'static str = "counter";
    const LABELS: usize = 3;

    fn samples(&self, family: &Family, out: &mut Exposition) {
        let [topic, partition, reason] = [0, 1, 2].map(|i| family.labels[i]);
        for ((topic_name, number, why), count) in self.snapshot() {
            let number = number.to_string();
            let labels = [
                (topic, topic_name.as_str()),
                (partition, &number),
                (reason, why),
            ];
            out.sample(family.name, &labels, count);
        }
    }

    /// A list of `{topic, partition, reason, count}` (the label names).
    fn stats(&self, family: &Family) -> Value {
        let [topic, partition, reason] = [0, 1, 2].map(|i| family.labels[i]);
        self.snapshot()
            .into_iter()
            .map(|((topic_name, number, why), count)| {
                json!({ topic: topic_name, partition: number, reason: why, "count": count })
            })
            .collect()
    }
}

impl<B: Buckets> Metric for Histogram<B> {
    const KIND: &'static str = "histogram";
    const LABELS: usize = 0;

    fn samples(&self, family: &Family, out: &mut Exposition) {
        out.histogram(family.name, &[], &self.snapshot());
    }

    /// The count and sum; the buckets are only in `/metrics`.
    fn stats(&self, _: &Family) -> Value {
        histogram_stats(self)
    }
}

fn histogram_stats<B: Buckets>(histogram: &Histogram<B>) -> Value {
    let snapshot = histogram.snapshot();
    json!({ "count": snapshot.count, "sumSeconds": snapshot.sum_seconds })
}

/// Histograms by a low-cardinality reason (the one label), e.g. an outcome.
/// For rare observations (once per replay), so a mutex is fine.
pub struct ReasonHistogram<B>(Mutex<BTreeMap<&'static str, Histogram<B>>>);

/// Replay durations by outcome.
pub type ReplayDurations = ReasonHistogram<ReplayDuration>;

impl<B> Default for ReasonHistogram<B> {
    fn default() -> Self {
        Self(Mutex::default())
    }
}

impl<B: Buckets> ReasonHistogram<B> {
    pub fn observe(&self, reason: &'static str, duration: Duration) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(reason)
            .or_default()
            .observe(duration);
    }

    fn each(&self, mut f: impl FnMut(&'static str, &Histogram<B>)) {
        for (reason, histogram) in self.0.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            f(reason, histogram);
        }
    }
}

impl<B: Buckets> Metric for ReasonHistogram<B> {
    const KIND: &'static str = "histogram";
    const LABELS: usize = 1;

    /// A histogram per reason observed so far: none before the first.
    fn samples(&self, family: &Family, out: &mut Exposition) {
        self.each(|reason, histogram| {
            let labels = [(family.labels[0], reason)];
            out.histogram(family.name, &labels, &histogram.snapshot());
        });
    }

    /// Each reason's count and sum.
    fn stats(&self, _: &Family) -> Value {
        let mut stats = serde_json::Map::new();
        self.each(|reason, histogram| {
            stats.insert(reason.to_owned(), histogram_stats(histogram));
        });
        Value::Object(stats)
    }
}

/// The version and the commit this binary was built from (`build.rs`; the
/// two labels, in that order) as one sample of 1: Prometheus's convention
/// for build information, so a query can join it onto other series by
/// instance.
#[derive(Default)]
pub struct BuildInfo;

impl BuildInfo {
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const COMMIT: &'static str = env!("GIT_COMMIT");
}

impl Metric for BuildInfo {
    const KIND: &'static str = "gauge";
    const LABELS: usize = 2;

    fn samples(&self, family: &Family, out: &mut Exposition) {
        let labels = [
            (family.labels[0], Self::VERSION),
            (family.labels[1], Self::COMMIT),
        ];
        out.sample(family.name, &labels, 1);
    }

    /// `{version, commit}` (the label names).
    fn stats(&self, family: &Family) -> Value {
        json!({ family.labels[0]: Self::VERSION, family.labels[1]: Self::COMMIT })
    }
}
