//! A latency histogram every connection task records into without locks:
//! log-linear buckets (32 per power of two, about 3% precision) of atomic
//! counters, in microseconds.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

const BUCKETS: usize = 1024;

pub struct Histogram {
    counts: Box<[AtomicU64]>,
}

fn bucket(micros: u64) -> usize {
    if micros < 64 {
        return micros as usize;
    }
    let shift = 63 - micros.leading_zeros() as usize - 5;
    ((shift + 1) * 32 + ((micros >> shift) as usize & 31)).min(BUCKETS - 1)
}

/// The lower bound of a bucket.
fn value(bucket: usize) -> u64 {
    if bucket < 64 {
        return bucket as u64;
    }
    let shift = bucket / 32 - 1;
    (32 + bucket as u64 % 32) << shift
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl Histogram {
    pub fn record(&self, micros: u64) {
        self.counts[bucket(micros)].fetch_add(1, Relaxed);
    }

    pub fn reset(&self) {
        self.counts.iter().for_each(|c| c.store(0, Relaxed));
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Relaxed)).sum()
    }

    /// The `q` quantile (0..=1) in milliseconds; `None` when empty.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((total as f64 * q).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count.load(Relaxed);
            if seen >= rank {
                return Some(value(index) as f64 / 1000.0);
            }
        }
        None
    }
}
