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

/// An event's place in Kafka: topic, partition, offset. Offsets only grow
/// within a partition, so positions order one resource's events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Position {
    pub topic: TopicKind,
    pub partition: i32,
    pub offset: i64,
}

/// `d.1.1534`: topic code, partition, offset. Sent with every event.
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
