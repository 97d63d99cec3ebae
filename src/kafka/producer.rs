//! A producer served by a thread of its own: rdkafka's `ThreadedProducer`
//! without its idle spin.
//!
//! rdkafka 0.39's `ThreadedProducer` polls in windows of 100 ms, and each
//! window ends in a run of 0 ms polls: `BaseProducer::poll` rounds the
//! deadline's sub-millisecond remainder down to 0 and polls until the
//! deadline has passed, so the last millisecond or so of every window is
//! spent in `clock_gettime` and a mutex. A `perf record` of the bridge at
//! rest with 10,000 idle clients (`make bench`, scenario 1, with
//! `BENCH_HOLD_SECONDS`) put 45% of its CPU there. This thread polls in
//! windows of [`POLL_WINDOW`]: the remainder is spun once a second instead
//! of ten times. Written here because rdkafka offers no other window.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::KafkaResult;
use rdkafka::producer::{BaseProducer, ProducerContext};

/// How long one poll waits for delivery reports; also how long the thread
/// outlives the producer's owner at most.
const POLL_WINDOW: Duration = Duration::from_secs(1);

/// A [`BaseProducer`] whose delivery reports a thread serves; it stops
/// within [`POLL_WINDOW`] of being dropped (flush first to wait for the
/// records still queued).
pub struct PolledProducer<C: ProducerContext + 'static> {
    producer: Arc<BaseProducer<C>>,
    stop: Arc<AtomicBool>,
}

impl<C: ProducerContext + 'static> PolledProducer<C> {
    /// Creates the producer of `config` and its thread, named `name`.
    pub fn create(config: &ClientConfig, context: C, name: &str) -> KafkaResult<Self> {
        let producer: Arc<BaseProducer<C>> = Arc::new(config.create_with_context(context)?);
        let stop = Arc::new(AtomicBool::new(false));
        let (polled, stopped) = (producer.clone(), stop.clone());
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    polled.poll(POLL_WINDOW);
                }
            })
            .expect("starting a producer's polling thread");
        Ok(Self { producer, stop })
    }
}

impl<C: ProducerContext + 'static> Deref for PolledProducer<C> {
    type Target = BaseProducer<C>;

    fn deref(&self) -> &BaseProducer<C> {
        &self.producer
    }
}

impl<C: ProducerContext + 'static> Drop for PolledProducer<C> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
