//! What nodes tell each other on the presence topic: JSON records, keyed by
//! the sending instance so each instance's records stay in order (one
//! partition per instance; the producer keeps one request in flight).
//!
//! Membership is held per instance: an instance announces the users it holds
//! in a room (`join`/`leave`), and a `snapshot` replaces everything it held
//! (sent on request, and periodically so that a lost record heals).

use serde::{Deserialize, Serialize};

use crate::domain::{RoomKey, UserId};

/// One run of one bridge process. A restarted node is a new instance.
pub type InstanceId = Box<str>;

/// A record on the presence topic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub from: InstanceId,
    /// The sender's node id, for operators reading the topic.
    pub node: Box<str>,
    /// The sender's wall clock, Unix ms.
    pub at: u64,
    #[serde(flatten)]
    pub message: Message,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Message {
    /// A new instance: everyone sends it a snapshot.
    Hello,
    /// Still alive; an instance silent for `node_timeout` is gone.
    Heartbeat,
    /// Shutting down: drop everything it held now.
    Bye,
    /// Asks one instance for a snapshot (one that was heard but not known).
    SyncRequest {
        to: InstanceId,
    },
    /// Everything the sender holds; `reset` starts a new snapshot (a large
    /// one comes in several records; it takes effect at the `last`).
    Snapshot {
        reset: bool,
        last: bool,
        members: Vec<Member>,
    },
    Join {
        member: Member,
    },
    Leave {
        room: RoomKey,
        user: UserId,
    },
    Typing {
        room: RoomKey,
        user: UserId,
        name: Box<str>,
        field: Box<str>,
    },
}

/// A user present in a room through the sending instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub room: RoomKey,
    pub user: UserId,
    pub name: Box<str>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::{OrgId, RoomKind};

    #[test]
    fn records_are_flat_tagged_json() {
        let envelope = Envelope {
            from: "i-1".into(),
            node: "node-a".into(),
            at: 42,
            message: Message::Leave {
                room: RoomKey {
                    org: OrgId::new("org-a").unwrap(),
                    kind: RoomKind::EmailThread,
                    id: "t1".into(),
                },
                user: UserId::new("u1").unwrap(),
            },
        };
        let json = serde_json::to_value(&envelope).unwrap();
        assert_eq!(
            json,
            json!({
                "from": "i-1", "node": "node-a", "at": 42, "type": "leave",
                "room": { "org": "org-a", "type": "email-thread", "id": "t1" },
                "user": "u1"
            })
        );
        assert_eq!(serde_json::from_value::<Envelope>(json).unwrap(), envelope);
    }

    #[test]
    fn records_with_invalid_ids_are_refused() {
        let bad = json!({ "from": "i", "node": "n", "at": 1, "type": "leave",
            "room": { "org": " ", "type": "deal", "id": "d" }, "user": "u" });
        assert!(serde_json::from_value::<Envelope>(bad).is_err());
    }
}
