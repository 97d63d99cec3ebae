//! Histograms with fixed buckets, lock-free on the hot path (one atomic add
//! per bucket hit, one for the sum). A histogram's buckets are a type
//! ([`Buckets`]), so a declaration in `metrics.rs` names them.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A histogram's bucket bounds.
pub trait Buckets {
    /// Upper bounds in seconds, ascending. Slower observations land in the
    /// implicit `+Inf` bucket.
    const UPPER_SECONDS: &'static [f64];
}

/// End-to-end delivery: 1 ms to 30 s, roughly ×2.5 apart.
pub struct Latency;

impl Buckets for Latency {
    const UPPER_SECONDS: &'static [f64] = &[
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ];
}

/// A replay, from the worker taking it up to its end: from memory it takes
/// milliseconds, from Kafka seconds; `replay.timeout_seconds` (120 s) ends
/// it, so the last bound is above that.
pub struct ReplayDuration;

impl Buckets for ReplayDuration {
    const UPPER_SECONDS: &'static [f64] = &[
        0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    ];
}

/// Observation counts per bucket (not cumulative; the last is `+Inf`) and
/// the sum of the observations in microseconds.
pub struct Histogram<B> {
    buckets: Box<[AtomicU64]>,
    sum_micros: AtomicU64,
    bounds: PhantomData<B>,
}

/// The end-to-end latency histogram.
pub type LatencyHistogram = Histogram<Latency>;

/// A histogram as Prometheus reports it: cumulative bucket counts.
pub struct HistogramSnapshot {
    /// `(upper bound in seconds, observations at or below it)`, ascending,
    /// without `+Inf` (whose count is `count`).
    pub cumulative: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl<B: Buckets> Default for Histogram<B> {
    fn default() -> Self {
        Self {
            buckets: (0..=B::UPPER_SECONDS.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            sum_micros: AtomicU64::new(0),
            bounds: PhantomData,
        }
    }
}

impl<B: Buckets> Histogram<B> {
    pub fn observe(&self, latency: Duration) {
        let seconds = latency.as_secs_f64();
        let bucket = B::UPPER_SECONDS
            .iter()
            .position(|upper| seconds <= *upper)
            .unwrap_or(B::UPPER_SECONDS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Observes the time from `unix_ms` (e.g. a Kafka record timestamp) to
    /// now; a timestamp in the future (clock skew) counts as zero.
    pub fn observe_since_unix_ms(&self, unix_ms: i64) {
        self.observe_between_unix_ms(unix_ms, SystemTime::now());
    }

    /// Observes the time from `unix_ms` to `now`, for a caller that reads
    /// the clock less often than it observes.
    pub fn observe_between_unix_ms(&self, unix_ms: i64, now: SystemTime) {
        let then = UNIX_EPOCH + Duration::from_millis(u64::try_from(unix_ms).unwrap_or(0));
        let latency = now.duration_since(then).unwrap_or_default();
        self.observe(latency);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut running = 0;
        let bounds = B::UPPER_SECONDS;
        let mut cumulative = Vec::with_capacity(bounds.len());
        for (upper, bucket) in bounds.iter().zip(&self.buckets) {
            running += bucket.load(Ordering::Relaxed);
            cumulative.push((*upper, running));
        }
        let overflow = self.buckets[bounds.len()].load(Ordering::Relaxed);
        HistogramSnapshot {
            cumulative,
            count: running + overflow,
            sum_seconds: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_ascend() {
        for bounds in [Latency::UPPER_SECONDS, ReplayDuration::UPPER_SECONDS] {
            assert!(
                bounds.windows(2).all(|pair| pair[0] < pair[1]),
                "{bounds:?}"
            );
        }
    }

    #[test]
    fn buckets_are_cumulative_and_the_slowest_only_count_in_inf() {
        let histogram = LatencyHistogram::default();
        histogram.observe(Duration::from_micros(500));
        histogram.observe(Duration::from_millis(1));
        histogram.observe(Duration::from_millis(30));
        histogram.observe(Duration::from_secs(60));
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count, 4);
        assert_eq!(snapshot.cumulative[0], (0.001, 2));
        assert_eq!(snapshot.cumulative[5], (0.05, 3));
        assert_eq!(snapshot.cumulative.last(), Some(&(30.0, 3)));
        assert!((snapshot.sum_seconds - 60.0315).abs() < 1e-9);
    }

    #[test]
    fn a_timestamp_from_the_future_counts_as_no_latency() {
        let histogram = LatencyHistogram::default();
        let in_an_hour = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
            + 3_600_000;
        histogram.observe_since_unix_ms(in_an_hour);
        assert_eq!(histogram.snapshot().cumulative[0].1, 1);
    }
}
