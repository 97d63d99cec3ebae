//! Resume cursors: for each partition of some topics, the offset of the next
//! event the client has not received yet.
//!
//! Text form, version 1: `1:` then comma-separated
//! `<topic code><partition>.<offset>`, e.g. `1:d0.120,d1.87`. Version 2 adds,
//! per topic whose id the node knows, the tag of the log those offsets are
//! of ([`LogTag`]) as one more entry `<topic code>@<tag>`, e.g.
//! `2:d@AbCd-_12,d0.120,d1.87`; a topic without one has no identity, as in
//! version 1 (still accepted, and still written when no topic has a tag).
//! Clients treat it as opaque; the client module advances it from the
//! `position` (`d.1.119.AbCd-_12`) that every event carries, and when the
//! tag there differs from its cursor's, takes the topic as a new log.
//! Parsing is strict and bounded, and a cursor grants nothing: replay still
//! goes through the subscription's own organisation-scoped key, and how far
//! back it reads is capped by configuration.

use std::collections::BTreeMap;
use std::fmt;

use super::{LogTag, TopicKind};

/// Longest cursor text accepted.
const MAX_LEN: usize = 4096;
/// Largest partition number accepted (Kafka topics rarely exceed a few hundred).
const MAX_PARTITION: i32 = 100_000;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    offsets: BTreeMap<(TopicKind, i32), i64>,
    /// Per topic, the log its offsets are of, where known.
    logs: BTreeMap<TopicKind, LogTag>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed cursor")]
pub struct CursorError;

impl Cursor {
    pub fn parse(text: &str) -> Result<Self, CursorError> {
        if text.len() > MAX_LEN {
            return Err(CursorError);
        }
        let (tagged, entries) = match text.split_at_checked(2) {
            Some(("1:", entries)) => (false, entries),
            Some(("2:", entries)) => (true, entries),
            _ => return Err(CursorError),
        };
        let mut cursor = Self::default();
        for entry in entries.split(',').filter(|e| !e.is_empty()) {
            let mut chars = entry.chars();
            let topic = chars
                .next()
                .and_then(TopicKind::from_code)
                .ok_or(CursorError)?;
            let rest = chars.as_str();
            if let Some(tag) = rest.strip_prefix('@').filter(|_| tagged) {
                let tag = LogTag::parse(tag).ok_or(CursorError)?;
                if cursor.logs.insert(topic, tag).is_some() {
                    return Err(CursorError); // two logs for one topic
                }
                continue;
            }
            let (partition, offset) = rest.split_once('.').ok_or(CursorError)?;
            let partition: i32 = partition.parse().map_err(|_| CursorError)?;
            let offset: i64 = offset.parse().map_err(|_| CursorError)?;
            if !(0..=MAX_PARTITION).contains(&partition) || offset < 0 {
                return Err(CursorError);
            }
            cursor.offsets.insert((topic, partition), offset);
        }
        Ok(cursor)
    }

    pub fn get(&self, topic: TopicKind, partition: i32) -> Option<i64> {
        self.offsets.get(&(topic, partition)).copied()
    }

    /// The log the cursor's offsets of `topic` are of, if it says.
    pub fn log(&self, topic: TopicKind) -> Option<LogTag> {
        self.logs.get(&topic).copied()
    }

    pub fn set_log(&mut self, topic: TopicKind, log: LogTag) {
        self.logs.insert(topic, log);
    }

    /// How many partitions of `topic` the cursor names.
    pub fn partitions(&self, topic: TopicKind) -> usize {
        self.offsets.keys().filter(|(t, _)| *t == topic).count()
    }

    pub fn set(&mut self, topic: TopicKind, partition: i32, offset: i64) {
        self.offsets.insert((topic, partition), offset);
    }

    /// Every partition named, in order, with its offset.
    pub fn iter(&self) -> impl Iterator<Item = (TopicKind, i32, i64)> + '_ {
        self.offsets
            .iter()
            .map(|(&(topic, partition), &offset)| (topic, partition, offset))
    }

    /// Moves each partition `ahead` names up to its offset there (never
    /// back), and takes the logs it names.
    pub fn advance_to(&mut self, ahead: &Cursor) {
        for (topic, partition, offset) in ahead.iter() {
            let slot = self.offsets.entry((topic, partition)).or_insert(offset);
            *slot = (*slot).max(offset);
        }
        self.logs.extend(&ahead.logs);
    }
}

/// Version 1 while no topic has a tag, so a node that knows no ids writes
/// what it always did; version 2 otherwise, each topic's tag before its
/// offsets.
impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.logs.is_empty() { "1:" } else { "2:" })?;
        let mut sep = "";
        let mut tagged = None;
        for ((topic, partition), offset) in &self.offsets {
            if tagged != Some(*topic) {
                tagged = Some(*topic);
                if let Some(log) = self.logs.get(topic) {
                    write!(f, "{sep}{}@{log}", topic.code())?;
                    sep = ",";
                }
            }
            write!(f, "{sep}{}{partition}.{offset}", topic.code())?;
            sep = ",";
        }
        // A topic with a log and no partition named yet.
        for (topic, log) in &self.logs {
            if !self.offsets.keys().any(|(t, _)| t == topic) {
                write!(f, "{sep}{}@{log}", topic.code())?;
                sep = ",";
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut cursor = Cursor::default();
        cursor.set(TopicKind::Deals, 0, 120);
        cursor.set(TopicKind::Deals, 1, 87);
        cursor.set(TopicKind::Email, 0, 5);
        let text = cursor.to_string();
        assert_eq!(text, "1:d0.120,d1.87,e0.5");
        assert_eq!(Cursor::parse(&text), Ok(cursor));
        assert_eq!(Cursor::parse("1:"), Ok(Cursor::default()));
        assert_eq!(Cursor::parse("2:"), Ok(Cursor::default()));
    }

    #[test]
    fn round_trips_with_logs() {
        let tag = |t| LogTag::parse(t).unwrap();
        let mut cursor = Cursor::default();
        cursor.set(TopicKind::Deals, 0, 120);
        cursor.set(TopicKind::Deals, 1, 87);
        cursor.set(TopicKind::Email, 0, 5);
        cursor.set_log(TopicKind::Deals, tag("AbCd-_12"));
        cursor.set_log(TopicKind::Notifications, tag("zzzzzzzz"));
        let text = cursor.to_string();
        assert_eq!(text, "2:d@AbCd-_12,d0.120,d1.87,e0.5,n@zzzzzzzz");
        assert_eq!(Cursor::parse(&text), Ok(cursor.clone()));
        assert_eq!(cursor.log(TopicKind::Deals), Some(tag("AbCd-_12")));
        assert_eq!(cursor.log(TopicKind::Email), None, "no identity");
        // In any order; a version 2 cursor without tags is version 1's.
        assert_eq!(
            Cursor::parse("2:e0.5,n@zzzzzzzz,d1.87,d0.120,d@AbCd-_12"),
            Ok(cursor)
        );
        assert_eq!(Cursor::parse("2:d0.1"), Cursor::parse("1:d0.1"));
        // Version 1 is read as before: offsets, no logs.
        let old = Cursor::parse("1:d0.120,d1.87").unwrap();
        assert_eq!(old.log(TopicKind::Deals), None);
        assert_eq!(old.get(TopicKind::Deals, 1), Some(87));
    }

    #[test]
    fn rejects_anything_else() {
        for bad in [
            "",
            "3:d0.1",
            "1:x0.1",
            "1:d@AbCd-_12,d0.1",
            "2:d@AbCd-_1,d0.1",
            "2:d@AbCd-_123",
            "2:d@AbCd.-_1",
            "2:d@AbCd+/12",
            "2:d@",
            "2:@AbCd-_12",
            "2:x@AbCd-_12",
            "2:d@AbCd-_12,d@AbCd-_12",
            "2:d@AbCd-_12,d@zzzzzzzz",
            "2:d0.1@AbCd-_12",
            "2d0.1",
            "1:d0",
            "1:d-1.5",
            "1:d0.-5",
            "1:d0.1.2",
            "1:d999999999.1",
            "1:d0.abc",
        ] {
            assert_eq!(Cursor::parse(bad), Err(CursorError), "{bad}");
        }
        assert_eq!(
            Cursor::parse(&format!("1:{}", "d0.1,".repeat(1000))),
            Err(CursorError)
        );
    }
}
