//! What each seam step returns: the changes the caller applies to the
//! index and the metrics.

use crate::domain::{ActionSet, RoomKey};
use crate::routing::SubscriptionKey;

/// What the index must now hold for a key of this connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Indexed {
    /// These actions (the key is new to the index, or its actions changed).
    Actions(ActionSet),
    /// Nothing: remove the key.
    Removed,
}

/// A subscription accepted.
#[derive(Debug, PartialEq, Eq)]
pub struct Subscribed {
    /// The index's actions for the key now.
    pub actions: ActionSet,
    /// The connection did not hold the key through `subscribe` before.
    pub is_new: bool,
}

/// A replaying subscription accepted.
#[derive(Debug, PartialEq, Eq)]
pub struct Queued {
    pub subscribed: Subscribed,
    /// The connection was live: the caller starts its replay worker.
    pub start_worker: bool,
    /// It replaced the key's queued or running replay.
    pub replaced: bool,
}

/// A subscription removed.
#[derive(Debug, PartialEq, Eq)]
pub struct Unsubscribed {
    pub indexed: Indexed,
    /// It had a replay queued or running, now cancelled.
    pub cancelled_replay: bool,
    /// It counted towards the subscription limit (a resource's).
    pub counted: bool,
}

/// What a connection held when it closed, for the caller to undo.
pub struct Closed {
    pub rooms: Vec<RoomKey>,
    /// Every key it had in the index, and whether it counted (see
    /// [`Unsubscribed::counted`]).
    pub keys: Vec<(SubscriptionKey, bool)>,
}
