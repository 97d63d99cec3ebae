//! Resume cursors: for each partition of some topics, the offset of the next
//! event the client has not received yet.
//!
//! Text form: `1:` then comma-separated `<topic code><partition>.<offset>`,
//! e.g. `1:d0.120,d1.87`. Clients treat it as opaque; the client module
//! advances it from the `position` (`d.1.119`) that every event carries.
//! Parsing is strict and bounded, and a cursor grants nothing: replay still
//! goes through the subscription's own organisation-scoped key, and how far
//! back it reads is capped by configuration.

use std::collections::BTreeMap;
use std::fmt;

use crate::domain::TopicKind;

/// Longest cursor text accepted.
const MAX_LEN: usize = 4096;
/// Largest partition number accepted (Kafka topics rarely exceed a few hundred).
const MAX_PARTITION: i32 = 100_000;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cursor(BTreeMap<(TopicKind, i32), i64>);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed cursor")]
pub struct CursorError;

impl Cursor {
    pub fn parse(text: &str) -> Result<Self, CursorError> {
        if text.len() > MAX_LEN {
            return Err(CursorError);
        }
        let entries = text.strip_prefix("1:").ok_or(CursorError)?;
        let mut cursor = Self::default();
        for entry in entries.split(',').filter(|e| !e.is_empty()) {
            let mut chars = entry.chars();
            let topic = chars
                .next()
                .and_then(TopicKind::from_code)
                .ok_or(CursorError)?;
            let (partition, offset) = chars.as_str().split_once('.').ok_or(CursorError)?;
            let partition: i32 = partition.parse().map_err(|_| CursorError)?;
            let offset: i64 = offset.parse().map_err(|_| CursorError)?;
            if !(0..=MAX_PARTITION).contains(&partition) || offset < 0 {
                return Err(CursorError);
            }
            cursor.0.insert((topic, partition), offset);
        }
        Ok(cursor)
    }

    pub fn get(&self, topic: TopicKind, partition: i32) -> Option<i64> {
        self.0.get(&(topic, partition)).copied()
    }

    /// How many partitions of `topic` the cursor names.
    pub fn partitions(&self, topic: TopicKind) -> usize {
        self.0.keys().filter(|(t, _)| *t == topic).count()
    }

    pub fn set(&mut self, topic: TopicKind, partition: i32, offset: i64) {
        self.0.insert((topic, partition), offset);
    }

    /// Every partition named, in order, with its offset.
    pub fn iter(&self) -> impl Iterator<Item = (TopicKind, i32, i64)> + '_ {
        self.0
            .iter()
            .map(|(&(topic, partition), &offset)| (topic, partition, offset))
    }

    /// Moves each partition `ahead` names up to its offset there (never back).
    pub fn advance_to(&mut self, ahead: &Cursor) {
        for (topic, partition, offset) in ahead.iter() {
            let slot = self.0.entry((topic, partition)).or_insert(offset);
            *slot = (*slot).max(offset);
        }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("1:")?;
        for (i, ((topic, partition), offset)) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            write!(f, "{sep}{}{partition}.{offset}", topic.code())?;
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
    }

    #[test]
    fn rejects_anything_else() {
        for bad in [
            "",
            "2:d0.1",
            "1:x0.1",
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
