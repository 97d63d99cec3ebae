//! Where events come from: the CRM topics, and an event's place in them.

use std::fmt;

/// Which CRM topic (and so which typed event) a record belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TopicKind {
    Contacts,
    Deals,
    Email,
    Notifications,
}

impl TopicKind {
    pub const ALL: [TopicKind; 4] = [
        Self::Contacts,
        Self::Deals,
        Self::Email,
        Self::Notifications,
    ];

    pub const fn label(self) -> &'static str {
        match self {
            Self::Contacts => "contacts",
            Self::Deals => "deals",
            Self::Email => "email",
            Self::Notifications => "notifications",
        }
    }

    /// One letter naming the topic in positions and cursors.
    pub const fn code(self) -> char {
        match self {
            Self::Contacts => 'c',
            Self::Deals => 'd',
            Self::Email => 'e',
            Self::Notifications => 'n',
        }
    }

    pub fn from_code(code: char) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }
}

/// Which log of a topic an offset belongs to: a short tag of the topic's id
/// (KIP-516), so that a cursor of a topic deleted and recreated under the
/// same name is told from one of the new log even where its offsets lie
/// within the new log (`kafka/topic_ids.rs` makes it).
///
/// The first [`LogTag::LEN`] characters of the id's base64url form (what
/// Kafka's tools print): its first 6 bytes. Kafka makes ids with
/// `UUID.randomUUID`, whose first 6 bytes are all random, and a tag only
/// has to tell a topic's current log from the few before it that a cursor
/// may still name: two ids of one topic share a tag with probability 2^-48
/// per recreation, and even then the cursor is only read by its offsets,
/// as one without a tag is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LogTag([u8; LogTag::LEN]);

impl LogTag {
    pub const LEN: usize = 8;

    /// The tag of an id's first 6 bytes.
    pub fn of_id(bytes: [u8; 16]) -> Self {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let bits = u64::from_be_bytes([
            0, 0, bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5],
        ]);
        let mut tag = [0u8; Self::LEN];
        for (i, slot) in tag.iter_mut().enumerate() {
            *slot = ALPHABET[((bits >> (42 - 6 * i)) & 63) as usize];
        }
        Self(tag)
    }

    /// Exactly [`Self::LEN`] base64url characters, else `None`.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes: [u8; Self::LEN] = text.as_bytes().try_into().ok()?;
        bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
            .then_some(Self(bytes))
    }

    pub fn as_str(&self) -> &str {
        // Only base64url characters are ever stored.
        std::str::from_utf8(&self.0).expect("ASCII")
    }
}

impl fmt::Display for LogTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event's place in Kafka: topic, partition, offset. Offsets only grow
/// within a partition, so positions order one resource's events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Position {
    pub topic: TopicKind,
    pub partition: i32,
    pub offset: i64,
}

/// `d.1.1534`: topic code, partition, offset. Sent with every event, with
/// the log's tag after it where known ([`Position::tagged`]).
impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}",
            self.topic.code(),
            self.partition,
            self.offset
        )
    }
}

impl Position {
    /// What an event carries as its `position`: `d.1.1534`, and where the
    /// log's tag is known, `d.1.1534.AbCd-_12`. An extra trailing part, so a
    /// client that splits on `.` and takes the first three reads it as before.
    pub fn tagged(&self, log: Option<LogTag>) -> String {
        match log {
            Some(log) => format!("{self}.{log}"),
            None => self.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_tag_is_the_ids_base64url_start() {
        // 0xfb 0xff 0xbf ...: base64url "-_-_" then more.
        let mut id = [0u8; 16];
        id[..6].copy_from_slice(&[0xfb, 0xff, 0xbf, 0x00, 0x10, 0x83]);
        let tag = LogTag::of_id(id);
        assert_eq!(tag.as_str(), "-_-_ABCD");
        assert_eq!(LogTag::parse("-_-_ABCD"), Some(tag));
        for bad in [
            "",
            "-_-_ABC",
            "-_-_ABCDE",
            "-_-_AB.D",
            "-_-_AB=D",
            "-_-_ABCé",
        ] {
            assert_eq!(LogTag::parse(bad), None, "{bad}");
        }
        let at = Position {
            topic: TopicKind::Deals,
            partition: 1,
            offset: 119,
        };
        assert_eq!(at.tagged(None), "d.1.119");
        assert_eq!(at.tagged(Some(tag)), "d.1.119.-_-_ABCD");
    }
}
