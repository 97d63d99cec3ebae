//! What a replay reads, and what it must report as lost. Pure.

use schemars::JsonSchema;
use serde::Serialize;

use crate::domain::Cursor;
use crate::domain::{LogTag, TopicKind};

/// One partition's current extent in Kafka.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    pub topic: TopicKind,
    pub partition: i32,
    /// Oldest offset still held (retention moves it).
    pub low: i64,
    /// Where the replay ends (live delivery's position).
    pub high: i64,
    /// Where the partition's log ends in Kafka (its last stable offset), or
    /// as far as memory holds it: a cursor beyond it is of a log that went
    /// backwards (recreated, or lost by the broker).
    pub log_end: i64,
    /// The tag of the log live delivery reads in the topic, if its id is
    /// known: a cursor naming another is of a log that is gone, wherever
    /// its offsets lie.
    pub log: Option<LogTag>,
}

/// Offsets `[from, to)` of one partition to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub topic: TopicKind,
    pub partition: i32,
    pub from: i64,
    pub to: i64,
}

/// Offsets `[from, to)` of one partition that will not be replayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Gap {
    /// The topic's label (`contacts`, `deals`, `email`, `notifications`).
    #[serde(serialize_with = "topic_label")]
    #[schemars(schema_with = "topic_labels")]
    pub topic: TopicKind,
    pub partition: i32,
    pub from: i64,
    pub to: i64,
    pub reason: GapReason,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum GapReason {
    /// Kafka no longer holds these records.
    Retention,
    /// Further back than `replay.max_records_per_partition`.
    Limit,
    /// The cursor lies beyond the end of the partition's log, or is of
    /// another log of the topic (its tag differs): the log went backwards
    /// (the topic was recreated, or the broker lost its data), so what
    /// followed `from` in the old log is unknown; the replay goes on with
    /// the new log from its start, `to`.
    Reset,
}

fn topic_labels(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let labels = TopicKind::ALL.map(TopicKind::label);
    schemars::json_schema!({ "type": "string", "enum": labels })
}

fn topic_label<S: serde::Serializer>(topic: &TopicKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(topic.label())
}

#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub ranges: Vec<Range>,
    pub gaps: Vec<Gap>,
    /// Where the subscription stands once the ranges are read: its cursor.
    pub end: Cursor,
    /// The partitions replayed from their new log's start (a `reset` gap),
    /// at that start.
    pub restarted: Cursor,
}

/// Plans a replay from `since` over `extents`. A partition the cursor does not
/// name starts at its oldest record; either way at most `limit` records per
/// partition are read, and anything skipped is reported as a gap. A
/// partition whose offset in the cursor is of an old log (beyond the log's
/// end, or of a topic whose log tag differs) gets a `reset` gap and is read
/// from the new log's start. Where the cursor or the extent has no tag,
/// offsets alone decide, as they did before tags.
pub fn plan(since: &Cursor, extents: &[Extent], limit: i64) -> Plan {
    let mut out = Plan::default();
    for e in extents {
        let mut named = since.get(e.topic, e.partition);
        let gap = |from, to, reason| Gap {
            topic: e.topic,
            partition: e.partition,
            from,
            to,
            reason,
        };
        let other_log = matches!(
            (since.log(e.topic), e.log),
            (Some(theirs), Some(ours)) if theirs != ours
        );
        if let Some(log) = e.log {
            out.end.set_log(e.topic, log);
        }
        if let Some(old) = named.filter(|offset| other_log || *offset > e.log_end) {
            out.gaps.push(gap(old, e.low, GapReason::Reset));
            out.restarted.set(e.topic, e.partition, e.low);
            named = Some(e.low);
        }
        // A cursor ahead of the extent (a node still catching up after a
        // restart) stays where it is: the client has those records.
        out.end
            .set(e.topic, e.partition, named.unwrap_or(0).max(e.high));
        let mut from = named.unwrap_or(e.low).min(e.high);
        if from < e.low {
            out.gaps.push(gap(from, e.low, GapReason::Retention));
            from = e.low;
        }
        if e.high - from > limit {
            out.gaps.push(gap(from, e.high - limit, GapReason::Limit));
            from = e.high - limit;
        }
        if from < e.high {
            out.ranges.push(Range {
                topic: e.topic,
                partition: e.partition,
                from,
                to: e.high,
            });
        }
    }
    out
}

/// The ranges that take a replay standing at `reached` to `ahead`: per
/// partition `ahead` names, `[reached, ahead)`, from offset 0 where `reached`
/// does not name it (a partition created since).
pub fn catch_up(reached: &Cursor, ahead: &Cursor) -> Vec<Range> {
    ahead
        .iter()
        .filter_map(|(topic, partition, to)| {
            let from = reached.get(topic, partition).unwrap_or(0);
            (from < to).then_some(Range {
                topic,
                partition,
                from,
                to,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: TopicKind = TopicKind::Deals;

    fn extent(partition: i32, low: i64, high: i64) -> Extent {
        Extent {
            topic: D,
            partition,
            low,
            high,
            log_end: high,
            log: None,
        }
    }

    fn since(entries: &[(i32, i64)]) -> Cursor {
        let mut c = Cursor::default();
        for (p, o) in entries {
            c.set(D, *p, *o);
        }
        c
    }

    #[test]
    fn reads_from_the_cursor_to_the_head() {
        let p = plan(
            &since(&[(0, 10), (1, 50)]),
            &[extent(0, 0, 30), extent(1, 0, 50)],
            1000,
        );
        assert_eq!(
            p.ranges,
            [Range {
                topic: D,
                partition: 0,
                from: 10,
                to: 30
            }]
        );
        assert!(p.gaps.is_empty());
        assert_eq!(p.end, since(&[(0, 30), (1, 50)]));
    }

    #[test]
    fn reports_what_retention_took() {
        let p = plan(&since(&[(0, 5)]), &[extent(0, 20, 30)], 1000);
        assert_eq!(
            p.gaps,
            [Gap {
                topic: D,
                partition: 0,
                from: 5,
                to: 20,
                reason: GapReason::Retention
            }]
        );
        assert_eq!(
            p.ranges,
            [Range {
                topic: D,
                partition: 0,
                from: 20,
                to: 30
            }]
        );
    }

    #[test]
    fn caps_how_far_back_it_reads() {
        let p = plan(&since(&[(0, 0)]), &[extent(0, 0, 5000)], 1000);
        assert_eq!(
            p.gaps,
            [Gap {
                topic: D,
                partition: 0,
                from: 0,
                to: 4000,
                reason: GapReason::Limit
            }]
        );
        assert_eq!(
            p.ranges,
            [Range {
                topic: D,
                partition: 0,
                from: 4000,
                to: 5000
            }]
        );
        // A partition missing from the cursor: from the oldest record, still capped.
        let p = plan(&Cursor::default(), &[extent(0, 100, 150)], 1000);
        assert_eq!(
            p.ranges,
            [Range {
                topic: D,
                partition: 0,
                from: 100,
                to: 150
            }]
        );
    }

    #[test]
    fn a_cursor_beyond_the_log_reads_the_new_log_from_its_start() {
        let p = plan(
            &since(&[(0, 500), (1, 7)]),
            &[extent(0, 0, 30), extent(1, 0, 9)],
            1000,
        );
        assert_eq!(
            p.gaps,
            [Gap {
                topic: D,
                partition: 0,
                from: 500,
                to: 0,
                reason: GapReason::Reset
            }]
        );
        let range = |partition, from, to| Range {
            topic: D,
            partition,
            from,
            to,
        };
        assert_eq!(p.ranges, [range(0, 0, 30), range(1, 7, 9)]);
        assert_eq!(p.end, since(&[(0, 30), (1, 9)]));
        assert_eq!(p.restarted, since(&[(0, 0)]));
    }

    #[test]
    fn a_cursor_of_another_log_reads_the_new_log_from_its_start() {
        let (old, new) = (
            LogTag::parse("oldoldol").unwrap(),
            LogTag::parse("newnewne").unwrap(),
        );
        let tagged = |partition, low, high| Extent {
            log: Some(new),
            ..extent(partition, low, high)
        };
        let mut of_old = since(&[(0, 10), (1, 3)]);
        of_old.set_log(D, old);
        // Within the new log: offsets show nothing, the tag does.
        let p = plan(&of_old, &[tagged(0, 0, 30), tagged(1, 2, 5)], 1000);
        let gap = |partition, from, to| Gap {
            topic: D,
            partition,
            from,
            to,
            reason: GapReason::Reset,
        };
        assert_eq!(p.gaps, [gap(0, 10, 0), gap(1, 3, 2)]);
        let range = |partition, from, to| Range {
            topic: D,
            partition,
            from,
            to,
        };
        assert_eq!(p.ranges, [range(0, 0, 30), range(1, 2, 5)]);
        assert_eq!(p.end, end_at(&[(0, 30), (1, 5)], new), "the new log's");
        assert_eq!(p.restarted, since(&[(0, 0), (1, 2)]));

        // The same log: its offsets, as ever.
        let p = plan(&end_at(&[(0, 10)], new), &[tagged(0, 0, 30)], 1000);
        assert!(p.gaps.is_empty());
        assert_eq!(p.ranges, [range(0, 10, 30)]);
        assert_eq!(p.end, end_at(&[(0, 30)], new));
        // A tag on one side only: offsets alone, as before tags.
        let p = plan(&since(&[(0, 10)]), &[tagged(0, 0, 30)], 1000);
        assert_eq!((p.gaps.len(), p.ranges[0].from), (0, 10));
        let p = plan(&of_old, &[extent(0, 0, 30)], 1000);
        assert_eq!((p.gaps.len(), p.ranges[0].from), (0, 10));
        assert_eq!(p.end.log(D), None);
    }

    fn end_at(entries: &[(i32, i64)], log: LogTag) -> Cursor {
        let mut c = since(entries);
        c.set_log(D, log);
        c
    }

    #[test]
    fn a_cursor_ahead_of_the_extent_reads_nothing_and_stays_ahead() {
        // Live delivery (`high`) behind the cursor, Kafka's log not.
        let behind = Extent {
            log_end: 999_999,
            ..extent(0, 0, 30)
        };
        let p = plan(&since(&[(0, 999_999)]), &[behind], 1000);
        assert!(p.ranges.is_empty() && p.gaps.is_empty());
        assert_eq!(p.end, since(&[(0, 999_999)]));
    }

    #[test]
    fn catching_up_reads_what_lies_between_two_cursors() {
        let reached = since(&[(0, 30), (1, 50)]);
        let ahead = since(&[(0, 42), (1, 50), (2, 3)]);
        let range = |partition, from, to| Range {
            topic: D,
            partition,
            from,
            to,
        };
        assert_eq!(
            catch_up(&reached, &ahead),
            [range(0, 30, 42), range(2, 0, 3)],
            "nothing for a partition already there; a new one from its start"
        );
        let mut moved = reached.clone();
        moved.advance_to(&ahead);
        assert_eq!(moved, ahead);
        moved.advance_to(&reached);
        assert_eq!(moved, ahead, "a cursor never moves back");
        assert!(catch_up(&ahead, &reached).is_empty());
    }
}
