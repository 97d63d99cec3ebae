//! What one simulated client received, checked as it arrives: every event's
//! Kafka position must be past the last one it had from that partition (a
//! duplicate or a reordering shows up at once), and its resource must be one
//! the client asked for. Cursors advance from positions the way the client
//! contract says, so a reconnect resumes exactly where the client was.

use std::collections::BTreeMap;

use serde_json::Value;

/// `d.1.1534` → (`'d'`, 1, 1534).
pub fn parse_position(position: &str) -> Option<(char, u32, u64)> {
    let mut parts = position.split('.');
    let topic = parts.next()?.chars().next()?;
    let partition = parts.next()?.parse().ok()?;
    let offset = parts.next()?.parse().ok()?;
    Some((topic, partition, offset))
}

/// A subscription's cursor: per topic and partition, the next offset.
#[derive(Default, Clone)]
pub struct Cursor(BTreeMap<(char, u32), u64>);

impl Cursor {
    /// Parses `1:d0.120,d1.87` (the format both servers use).
    pub fn parse(text: &str) -> Self {
        let body = text.split_once(':').map_or("", |(_, body)| body);
        Self(
            body.split(',')
                .filter_map(|entry| {
                    let topic = entry.chars().next()?;
                    let (partition, offset) = entry[1..].split_once('.')?;
                    Some(((topic, partition.parse().ok()?), offset.parse().ok()?))
                })
                .collect(),
        )
    }

    pub fn render(&self) -> String {
        let entries: Vec<String> = self
            .0
            .iter()
            .map(|((topic, partition), next)| format!("{topic}{partition}.{next}"))
            .collect();
        format!("1:{}", entries.join(","))
    }

    fn advance(&mut self, topic: char, partition: u32, offset: u64) {
        if let Some(next) = self.0.get_mut(&(topic, partition)) {
            *next = (*next).max(offset + 1);
        }
    }
}

#[derive(Default)]
pub struct Ledger {
    /// Data events (live and replayed) that passed the checks.
    pub received: u64,
    pub replayed: u64,
    /// Positions at or before one already received from that partition.
    pub repeated: u64,
    /// Events for a resource the client never asked for.
    pub misrouted: u64,
    /// `error` events.
    pub errors: u64,
    last_offset: BTreeMap<(char, u32), u64>,
    /// One cursor per subscription, in the order they were requested.
    pub cursors: Vec<Option<Cursor>>,
    /// A Centrifugo client's counterpart of `cursors`: per subscription
    /// whose channel keeps a history, where in that history it is.
    pub streams: Vec<Option<StreamPosition>>,
}

/// Where a Centrifugo subscriber is in its channel's history: the
/// history's epoch and the offset of the last publication it received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamPosition {
    pub epoch: String,
    pub offset: u64,
}

impl Ledger {
    /// Records a data event at `position`; `false` if it repeats or reorders.
    pub fn record(&mut self, position: &str, replayed: bool) -> bool {
        let Some((topic, partition, offset)) = parse_position(position) else {
            self.repeated += 1;
            return false;
        };
        let last = self.last_offset.entry((topic, partition)).or_insert(0);
        if offset < *last {
            self.repeated += 1;
            return false;
        }
        *last = offset + 1;
        self.received += 1;
        self.replayed += u64::from(replayed);
        // One connection gets a partition's events in order, so an event of
        // any subscription proves every earlier one of the others arrived.
        for cursor in self.cursors.iter_mut().flatten() {
            cursor.advance(topic, partition, offset);
        }
        true
    }

    /// Takes the cursor of a first acknowledgement for subscription
    /// `index`. A resumed subscription keeps the cursor it resumed from,
    /// advanced by what its replay delivers.
    pub fn acknowledged(&mut self, index: usize, ack: &Value) {
        if self.cursors.len() <= index {
            self.cursors.resize(index + 1, None);
        }
        if let (None, Some(text)) = (&self.cursors[index], ack["cursor"].as_str()) {
            self.cursors[index] = Some(Cursor::parse(text));
        }
    }

    /// Notes that subscription `index` is at `offset` of its channel's
    /// history `epoch` (a subscribe reply's, or a publication's).
    pub fn at_stream(&mut self, index: usize, epoch: Option<&str>, offset: u64) {
        if self.streams.len() <= index {
            self.streams.resize(index + 1, None);
        }
        match (&mut self.streams[index], epoch) {
            (_, Some(epoch)) => {
                self.streams[index] = Some(StreamPosition {
                    epoch: epoch.to_owned(),
                    offset,
                });
            }
            (Some(stream), None) => stream.offset = stream.offset.max(offset),
            (None, None) => {}
        }
    }

    /// Clears counts between phases; cursors and positions carry over.
    pub fn reset_counts(&mut self) {
        self.received = 0;
        self.replayed = 0;
        self.repeated = 0;
        self.misrouted = 0;
        self.errors = 0;
    }
}
