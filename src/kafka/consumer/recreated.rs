//! A topic found recreated (`topic_recreated`, see the module doc of
//! `consumer.rs`): its partitions sought back to the new log's start, and
//! what live delivery handed on from the new log before it knew skipped
//! once when read again ([`Skip`]), so no record is delivered twice.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::Offset;
use rdkafka::consumer::Consumer;

use super::Stages;
use super::partitions::{Partitions, Seen, went_back};
use crate::domain::{Position, TopicKind};
use crate::kafka::LiveConsumer;
use crate::kafka::positions::LivePositions;

impl<'a> Partitions<'a> {
    /// Moves the partitions whose topic the watermark look-ups found with a
    /// new id (`watermarks.rs`) back to the new log's start. Call only
    /// between records.
    ///
    /// Offsets below `old_end` (where live delivery stood when the old id
    /// was last seen) were read from the old log; from there to where live
    /// delivery stands now, the consumer switched from the old log to the
    /// new one at an offset nothing reports (librdkafka fetches on at its
    /// position). So the partition is sought to the new log's start and
    /// live delivery restarts there (a reset: a new epoch, memory dropped),
    /// and a record of `[old_end, now)` read again is skipped if the same
    /// payload was handed on at its offset: that was this record, read
    /// from the new log before the id showed it. If the consumer has
    /// restarted the partition by itself since the old id was seen (a fetch
    /// out of range: a new log shorter than the old position), it reads the
    /// new log from its start already.
    pub(super) fn restart_recreated(
        &mut self,
        consumer: &LiveConsumer,
        stages: &Stages<'_>,
        topics: &[(&'a str, TopicKind)],
    ) {
        for recreated in stages.watermarks.take_recreated() {
            let Some(&(topic_name, topic)) = topics.iter().find(|(_, k)| *k == recreated.topic)
            else {
                continue;
            };
            let partition = recreated.partition;
            // Events of the new log carry its tag from here on, the reset
            // below (or the consumer's own, before) included: cursors of
            // the old log are told by theirs (`replay/plan.rs`).
            let live = self.live;
            let new_log = || {
                if let Some(log) = recreated.log {
                    live.new_log(topic, log);
                }
            };
            if self.live.reset_epoch(topic, partition) != recreated.reset_epoch {
                new_log();
                tracing::info!(
                    topic = topic_name,
                    partition,
                    reason = recreated.reason,
                    "the partition was already re-read from its new log's start"
                );
                continue;
            }
            let position = Position {
                topic,
                partition,
                offset: recreated.old_end,
            };
            let seen = self.get(position, topic_name);
            let handed_on = seen.live.next();
            // Asynchronous (no wait): librdkafka drops what it fetched
            // before the seek, and fetches from the new log's start.
            if let Err(e) = consumer.seek(topic_name, partition, Offset::Offset(0), Duration::ZERO)
            {
                tracing::error!(
                    topic = topic_name,
                    partition,
                    error = %e,
                    "cannot seek a recreated topic's partition to its start"
                );
                continue;
            }
            if !self.live.recent.covers(topic, partition, recreated.old_end) {
                tracing::warn!(
                    topic = topic_name,
                    partition,
                    from = recreated.old_end,
                    to = handed_on,
                    "memory no longer holds all that was handed on since the topic's old \
                     id was last seen: what it does not hold is not delivered again"
                );
            }
            let skip = Skip::read(self.live, topic, partition, recreated.old_end, handed_on);
            let seen = self.get(position, topic_name);
            went_back(stages, seen, 0, recreated.reason);
            seen.skip = (recreated.old_end < handed_on).then_some(skip);
            seen.restarting = true;
            new_log();
        }
    }
}

impl Seen<'_> {
    /// Whether the record at `offset` was handed on already, before the
    /// topic's new id was seen; if so it counts as handled, and is not
    /// delivered again.
    pub(super) fn skip_handed_on(&mut self, offset: i64, payload: &[u8]) -> bool {
        match &self.skip {
            Some(skip) if offset >= skip.to => self.skip = None,
            Some(skip) if offset >= skip.from && skip.handed_on(offset, payload) => {
                self.handled(offset);
                return true;
            }
            _ => {}
        }
        false
    }
}

/// Offsets `[from, to)` of a recreated topic's partition that live
/// delivery handed on before it knew, some maybe from the old log, some
/// from the new one.
#[derive(Debug)]
pub(super) struct Skip {
    from: i64,
    to: i64,
    /// A hash of each payload handed on in `[from, to)`, as far as memory
    /// held them (`recent.rs`).
    handed: HashMap<i64, u64>,
}

impl Skip {
    /// Reads what memory holds of `[from, to)`. Before the reset.
    fn read(live: &LivePositions, topic: TopicKind, partition: i32, from: i64, to: i64) -> Self {
        let mut handed = HashMap::new();
        let mut next = from;
        while next < to {
            let Some(chunk) = live.recent.read(topic, partition, next, to, 1024) else {
                break; // no longer held (or never): unknown, see `handed_on`
            };
            let Some(last) = chunk.last_offset() else {
                break;
            };
            handed.extend(
                chunk
                    .iter()
                    .map(|(offset, payload)| (offset, hash(payload))),
            );
            next = last + 1;
        }
        Self { from, to, handed }
    }

    /// Whether the new log's record at `offset` was handed on already: the
    /// same payload was, at that offset. One memory did not hold counts as
    /// handed on: no record is delivered twice (at worst one is missed;
    /// `restart_recreated` logs how many may be).
    fn handed_on(&self, offset: i64, payload: &[u8]) -> bool {
        self.handed.get(&offset).is_none_or(|h| *h == hash(payload))
    }
}

fn hash(payload: &[u8]) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::hash::DefaultHasher>::default().hash_one(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_read_again_is_skipped_only_if_the_same_payload_was_handed_on_there() {
        let live = LivePositions::new(1024);
        live.start_at(TopicKind::Deals, 0, 0);
        for (offset, payload) in [
            (0, &b"old 0"[..]),
            (1, b"old 1"),
            (2, b"new 2"),
            (3, b"new 3"),
        ] {
            let at = Position {
                topic: TopicKind::Deals,
                partition: 0,
                offset,
            };
            live.received(at, payload);
            live.partition(at).handled(offset);
        }
        // The old id was last seen at 1: offset 0 was the old log's.
        let skip = Skip::read(&live, TopicKind::Deals, 0, 1, 4);
        assert_eq!(skip.handed.len(), 3);
        assert!(
            !skip.handed_on(1, b"new 1"),
            "the old log's was handed on at 1"
        );
        assert!(skip.handed_on(2, b"new 2"));
        assert!(skip.handed_on(3, b"new 3"));
        // Not held in memory: not delivered again.
        let forgotten = Skip::read(&LivePositions::new(0), TopicKind::Deals, 0, 1, 4);
        assert!(forgotten.handed_on(1, b"new 1"));
    }
}
