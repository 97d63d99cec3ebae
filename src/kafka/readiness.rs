//! The consumer's side of `/readyz`, and the lag it is judged by.
//!
//! A node is ready when every topic is assigned at a known position, Kafka
//! answered (a watermark look-up, or metadata while a partition has no
//! leader: see `watermarks.rs`) within
//! `kafka.ready_broker_silence_seconds`, and no partition is more than
//! `kafka.ready_max_lag` records behind its high watermark. Per partition,
//! not summed: one partition far behind leaves its resources' clients far
//! behind, however many partitions the topics have. Nor is it ready while a
//! partition's log has gone backwards (a topic recreated, a broker that lost
//! its data: see `watermarks.rs`) until live delivery is known to read the
//! new log.
//!
//! Lag is `watermark − where live delivery stands`, never below zero: the
//! watermark (the last stable offset, see `watermarks.rs`) is looked up
//! every `kafka.lag_refresh_seconds`, and live delivery moves on meanwhile.

use std::time::Duration;

use super::{ConsumerHandle, KafkaConfig};

/// The bounds a ready node stays within.
#[derive(Clone, Copy, Debug)]
pub struct ReadinessBounds {
    pub max_lag: u64,
    pub broker_silence: Duration,
}

impl ReadinessBounds {
    pub fn new(config: &KafkaConfig) -> Self {
        Self {
            max_lag: config.ready_max_lag,
            broker_silence: Duration::from_secs(config.ready_broker_silence_seconds),
        }
    }
}

/// How many records live delivery is behind in one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionLag {
    /// The Kafka topic's name.
    pub topic: String,
    pub partition: i32,
    pub records: u64,
}

impl ConsumerHandle {
    /// Every assigned partition's lag, by topic and partition, as of the
    /// last watermark look-up.
    pub fn lag(&self) -> Vec<PartitionLag> {
        self.watermarks
            .highs()
            .into_iter()
            .filter_map(|((topic, partition), high)| {
                let live = self.live.end(topic, partition)?;
                Some(PartitionLag {
                    topic: self.topic_names.name(topic).to_owned(),
                    partition,
                    records: u64::try_from(high - live).unwrap_or(0),
                })
            })
            .collect()
    }

    /// How long since the broker last answered; `None` if it never has.
    pub fn broker_silence(&self) -> Option<Duration> {
        self.watermarks.silence()
    }

    /// Why Kafka does not let the bridge in (credentials, TLS), if it
    /// refused an attempt since it last answered.
    pub fn refused(&self) -> Option<String> {
        self.trouble.current(self.watermarks.last_answer())
    }

    /// What Kafka denied the bridge's clients lately (see `context.rs`),
    /// as the end of a reason: empty if nothing.
    pub fn kafka_denials(&self) -> String {
        self.trouble.denials()
    }

    /// Why this node should not get clients yet, from the consumer's side;
    /// `None` when it may.
    pub fn not_ready(&self) -> Option<String> {
        if let Some(refused) = self.refused() {
            return Some(refused);
        }
        if !self.is_assigned() {
            return Some(format!(
                "waiting for Kafka partitions{}",
                self.kafka_denials()
            ));
        }
        let bounds = self.readiness;
        match self.broker_silence() {
            Some(silence) if silence <= bounds.broker_silence => {}
            Some(silence) => {
                return Some(format!("Kafka has not answered for {}s", silence.as_secs()));
            }
            None => return Some("Kafka has not answered yet".into()),
        }
        if let Some(((topic, partition), reason)) = self.watermarks.reset_pending() {
            return Some(format!(
                "partition reset ({reason}) in {}/{partition}: re-reading it from the new log's start",
                self.topic_names.name(topic)
            ));
        }
        let worst = self.lag().into_iter().max_by_key(|lag| lag.records)?;
        (worst.records > bounds.max_lag).then(|| {
            format!(
                "catching up: {} records behind in {}/{}",
                worst.records, worst.topic, worst.partition
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::domain::{Position, TopicKind};
    use crate::kafka::LivePositions;

    fn handle(max_lag: u64) -> ConsumerHandle {
        ConsumerHandle {
            assigned: Arc::default(),
            live: Arc::new(LivePositions::new(0)),
            watermarks: Arc::default(),
            topic_names: crate::kafka::TopicNames::default(),
            readiness: ReadinessBounds {
                max_lag,
                broker_silence: Duration::from_secs(60),
            },
            trouble: Arc::default(),
            stopped: Default::default(),
        }
    }

    #[test]
    fn ready_only_when_assigned_answered_and_near_the_head() {
        let handle = handle(50);
        assert_eq!(
            handle.not_ready().as_deref(),
            Some("waiting for Kafka partitions")
        );
        handle.assigned.store(true, Ordering::Release);
        assert_eq!(
            handle.not_ready().as_deref(),
            Some("Kafka has not answered yet")
        );

        handle.live.start_at(TopicKind::Deals, 1, 40);
        handle.watermarks.record(TopicKind::Deals, 1, 100);
        let lag = PartitionLag {
            topic: "crm.deals".into(),
            partition: 1,
            records: 60,
        };
        assert_eq!(handle.lag(), [lag]);
        assert_eq!(
            handle.not_ready().as_deref(),
            Some("catching up: 60 records behind in crm.deals/1")
        );

        let at = Position {
            topic: TopicKind::Deals,
            partition: 1,
            offset: 49,
        };
        handle.live.partition(at).handled(at.offset);
        assert_eq!(handle.lag()[0].records, 50);
        assert_eq!(handle.not_ready(), None);
    }

    #[test]
    fn a_reset_is_not_ready_until_a_later_look_up_finds_live_delivery_within_the_log() {
        let handle = handle(1000);
        handle.assigned.store(true, Ordering::Release);
        handle.watermarks.record(TopicKind::Deals, 0, 5);
        assert_eq!(handle.not_ready(), None);
        let sent_before = std::time::Instant::now();
        handle
            .watermarks
            .went_back(TopicKind::Deals, 0, "offsets_restarted");
        assert_eq!(
            handle.not_ready().as_deref(),
            Some(
                "partition reset (offsets_restarted) in crm.deals/0: re-reading it from the new log's start"
            )
        );
        handle.watermarks.within(TopicKind::Deals, 0, sent_before);
        assert!(
            handle.not_ready().is_some(),
            "a look-up sent before the reset"
        );
        handle
            .watermarks
            .within(TopicKind::Deals, 0, std::time::Instant::now());
        assert_eq!(handle.not_ready(), None);
    }

    #[test]
    fn a_watermark_behind_live_delivery_is_no_lag() {
        let handle = handle(0);
        handle.assigned.store(true, Ordering::Release);
        handle.live.start_at(TopicKind::Email, 0, 10);
        handle.watermarks.record(TopicKind::Email, 0, 7);
        assert_eq!(handle.lag()[0].records, 0);
        assert_eq!(handle.not_ready(), None);
    }
}
