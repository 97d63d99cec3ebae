//! Who is in which room across the cluster, and who there is typing: a pure
//! state machine (no I/O; the clock is passed in) that `link.rs` drives.
//!
//! Presence is per user: a user is in a room while any instance holds them
//! there. This instance holds a user while one of their sockets here has
//! joined; other instances' holdings arrive as [`Message`]s. `user-joined`
//! goes out when a user's first holder appears and `user-left` when the last
//! one goes, so two tabs (or two nodes) of one user make one presence.
//!
//! Every operation returns [`Effects`]: events for local sockets, and records
//! for the other instances. The caller emits and publishes them in order.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap, HashSet};

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use room::{Attendance, Room, Seat};

use super::wire::{Envelope, InstanceId, Member, Message};
use crate::domain::{RoomKey, UserId};
use crate::protocol::PresenceChange;
use crate::routing::ClientId;

/// Most bytes of members in one snapshot record: half of Kafka's default
/// 1 MB record limit, leaving room for the envelope.
const SNAPSHOT_RECORD_BYTES: usize = 512 * 1024;

/// Timing rules, in milliseconds.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// At most one `user-typing` per user, room and field per this interval.
    pub typing_throttle: u64,
    /// A typing indicator lapses this long after its last `typing`.
    pub typing_ttl: u64,
    /// An instance not heard from for this long is gone, with its users.
    pub node_timeout: u64,
}

/// An event for some of this instance's sockets.
#[derive(Debug)]
pub struct Notice<C> {
    pub to: Vec<C>,
    pub event: &'static str,
    pub payload: Value,
}

/// What an operation asks the caller to do, in this order.
#[derive(Debug)]
pub struct Effects<C> {
    pub notices: Vec<Notice<C>>,
    pub publish: Vec<Message>,
}

impl<C> Default for Effects<C> {
    fn default() -> Self {
        Self {
            notices: Vec::new(),
            publish: Vec::new(),
        }
    }
}

/// What a joining socket learns: the others in the room, and who is typing.
#[derive(Debug, Default, PartialEq, Serialize, JsonSchema)]
pub struct RoomView {
    pub members: Vec<MemberView>,
    pub typing: Vec<TypingView>,
}

#[derive(Debug, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    pub user_id: UserId,
    pub user_name: Box<str>,
}

#[derive(Debug, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TypingView {
    pub user_id: UserId,
    pub user_name: Box<str>,
    pub field: Box<str>,
    #[schemars(extend("format" = "date-time"))]
    pub expires_at: String,
}

/// `typing` from a socket that has not joined the room.
#[derive(Debug, PartialEq)]
pub struct NotInRoom;

pub struct Roster<C> {
    me: InstanceId,
    timing: Timing,
    rooms: HashMap<RoomKey, Room<C>>,
    peers: HashMap<InstanceId, Peer>,
}

#[derive(Default)]
struct Peer {
    last_seen: u64,
    /// A snapshot (or its `hello`) has told us everything it holds.
    synced: bool,
    sync_requested_at: Option<u64>,
    holds: HashSet<(RoomKey, UserId)>,
    /// A snapshot arriving in several records, applied at its last.
    incoming: Option<Vec<Member>>,
}

impl<C: Clone> Roster<C> {
    pub fn new(me: InstanceId, timing: Timing) -> Self {
        Self {
            me,
            timing,
            rooms: HashMap::new(),
            peers: HashMap::new(),
        }
    }

    /// A local socket joins `room`. Joining twice changes nothing.
    pub fn join(
        &mut self,
        room: &RoomKey,
        client: ClientId,
        handle: C,
        user: &UserId,
        name: &str,
        now: u64,
    ) -> (RoomView, Effects<C>) {
        let mut effects = Effects::default();
        let entry = self.rooms.entry(room.clone()).or_insert_with(Room::new);
        if let Entry::Vacant(seat) = entry.seats.entry(client) {
            seat.insert(Seat {
                user: user.clone(),
                handle,
            });
            let attendance = entry
                .users
                .entry(user.clone())
                .or_insert_with(|| Attendance {
                    name: name.into(),
                    here: 0,
                    peers: BTreeSet::new(),
                });
            attendance.here += 1;
            let first_here = attendance.here == 1;
            let newly_present = first_here && attendance.peers.is_empty();
            if newly_present {
                let change = PresenceChange::new(room, user, name, now);
                effects.notify(entry.others(user), "user-joined", &change);
            }
            if first_here {
                effects.publish.push(Message::Join {
                    member: Member {
                        room: room.clone(),
                        user: user.clone(),
                        name: name.into(),
                    },
                });
            }
        }
        (entry.view(user, now, self.timing.typing_ttl), effects)
    }

    /// A local socket leaves `room`; `None` if it was not in it.
    pub fn leave(&mut self, room: &RoomKey, client: ClientId, now: u64) -> Option<Effects<C>> {
        let entry = self.rooms.get_mut(room)?;
        let seat = entry.seats.remove(&client)?;
        let mut effects = Effects::default();
        let attendance = entry.users.get_mut(&seat.user)?;
        attendance.here -= 1;
        if attendance.here == 0 {
            effects.publish.push(Message::Leave {
                room: room.clone(),
                user: seat.user.clone(),
            });
            if attendance.peers.is_empty() {
                entry.depart(room, &seat.user, now, &mut effects);
            }
        }
        self.drop_if_empty(room);
        Some(effects)
    }

    /// A local socket types in `field`; `Ok(None)` when throttled.
    pub fn typing(
        &mut self,
        room: &RoomKey,
        client: ClientId,
        field: &str,
        now: u64,
    ) -> Result<Option<Effects<C>>, NotInRoom> {
        let entry = self.rooms.get_mut(room).ok_or(NotInRoom)?;
        let user = entry.seats.get(&client).ok_or(NotInRoom)?.user.clone();
        let name = entry.users.get(&user).map_or("".into(), |a| a.name.clone());
        let mut effects = Effects::default();
        if !entry.show_typing(room, &user, &name, field, now, self.timing, &mut effects) {
            return Ok(None);
        }
        effects.publish.push(Message::Typing {
            room: room.clone(),
            user,
            name,
            field: field.into(),
        });
        Ok(Some(effects))
    }

    /// A record from the presence topic.
    pub fn apply(&mut self, envelope: &Envelope, now: u64) -> Effects<C> {
        let mut effects = Effects::default();
        let from = &envelope.from;
        if *from == self.me {
            return effects;
        }
        let peer = self.peers.entry(from.clone()).or_default();
        peer.last_seen = now;
        match &envelope.message {
            Message::Hello => {
                peer.synced = true;
                self.replace_holdings(from, Vec::new(), now, &mut effects);
                effects.publish.extend(self.snapshot());
            }
            Message::Heartbeat => {
                let asked_lately = peer
                    .sync_requested_at
                    .is_some_and(|at| now < at + self.timing.node_timeout);
                if !peer.synced && !asked_lately {
                    peer.sync_requested_at = Some(now);
                    effects
                        .publish
                        .push(Message::SyncRequest { to: from.clone() });
                }
            }
            Message::Bye => self.drop_peer(from, now, &mut effects),
            Message::SyncRequest { to } if *to == self.me => {
                effects.publish.extend(self.snapshot());
            }
            Message::SyncRequest { .. } => {}
            Message::Snapshot {
                reset,
                last,
                members,
            } => {
                let incoming = match (*reset, peer.incoming.take()) {
                    (true, _) => members.clone(),
                    (false, Some(mut so_far)) => {
                        so_far.extend(members.iter().cloned());
                        so_far
                    }
                    // The rest of a snapshot whose start we missed: useless.
                    (false, None) => return effects,
                };
                if *last {
                    peer.synced = true;
                    self.replace_holdings(from, incoming, now, &mut effects);
                } else {
                    peer.incoming = Some(incoming);
                }
            }
            Message::Join { member } => self.hold(from, member, envelope.at, &mut effects),
            Message::Leave { room, user } => {
                self.release(from, room, user, envelope.at, &mut effects);
            }
            Message::Typing {
                room,
                user,
                name,
                field,
            } => {
                // Timed by this node's clock: a peer's clock that is off
                // must not hide or stretch indicators.
                if let Some(entry) = self.rooms.get_mut(room) {
                    entry.show_typing(room, user, name, field, now, self.timing, &mut effects);
                }
            }
        }
        effects
    }

    /// Drops instances silent for longer than the node timeout (their users
    /// leave) and typing indicators that have lapsed.
    pub fn expire(&mut self, now: u64) -> Effects<C> {
        let mut effects = Effects::default();
        let timeout = self.timing.node_timeout;
        let silent: Vec<InstanceId> = self
            .peers
            .iter()
            .filter(|(_, peer)| now > peer.last_seen + timeout)
            .map(|(id, _)| id.clone())
            .collect();
        for id in silent {
            tracing::warn!(instance = %id, "bridge instance timed out; its users leave their rooms");
            self.drop_peer(&id, now, &mut effects);
        }
        let ttl = self.timing.typing_ttl;
        for room in self.rooms.values_mut() {
            room.typing.retain(|_, at| now < *at + ttl);
        }
        effects
    }

    /// Everything this instance holds, as snapshot records.
    pub fn snapshot(&self) -> Vec<Message> {
        let mut members = Vec::new();
        for (room, entry) in &self.rooms {
            for (user, attendance) in &entry.users {
                if attendance.here > 0 {
                    members.push(Member {
                        room: room.clone(),
                        user: user.clone(),
                        name: attendance.name.clone(),
                    });
                }
            }
        }
        let mut chunks: Vec<Vec<Member>> = vec![Vec::new()];
        let mut bytes = 0;
        for member in members {
            let size = serde_json::to_vec(&member).map_or(0, |json| json.len() + 1);
            if bytes + size > SNAPSHOT_RECORD_BYTES && bytes > 0 {
                chunks.push(Vec::new());
                bytes = 0;
            }
            bytes += size;
            chunks.last_mut().expect("never empty").push(member);
        }
        let count = chunks.len();
        chunks
            .into_iter()
            .enumerate()
            .map(|(i, members)| Message::Snapshot {
                reset: i == 0,
                last: i + 1 == count,
                members,
            })
            .collect()
    }

    /// Other instances currently known (for `/stats`).
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Whether every instance heard from has told us what it holds.
    pub fn is_synced(&self) -> bool {
        self.peers.values().all(|peer| peer.synced)
    }

    fn hold(&mut self, from: &InstanceId, member: &Member, at: u64, effects: &mut Effects<C>) {
        let Some(peer) = self.peers.get_mut(from) else {
            return;
        };
        if !peer
            .holds
            .insert((member.room.clone(), member.user.clone()))
        {
            return;
        }
        let entry = self
            .rooms
            .entry(member.room.clone())
            .or_insert_with(Room::new);
        let attendance = entry
            .users
            .entry(member.user.clone())
            .or_insert_with(|| Attendance {
                name: member.name.clone(),
                here: 0,
                peers: BTreeSet::new(),
            });
        let newly_present = attendance.here == 0 && attendance.peers.is_empty();
        attendance.peers.insert(from.clone());
        if newly_present {
            let change = PresenceChange::new(&member.room, &member.user, &member.name, at);
            effects.notify(entry.others(&member.user), "user-joined", &change);
        }
    }

    fn release(
        &mut self,
        from: &InstanceId,
        room: &RoomKey,
        user: &UserId,
        at: u64,
        effects: &mut Effects<C>,
    ) {
        let Some(peer) = self.peers.get_mut(from) else {
            return;
        };
        if !peer.holds.remove(&(room.clone(), user.clone())) {
            return;
        }
        let Some(entry) = self.rooms.get_mut(room) else {
            return;
        };
        let Some(attendance) = entry.users.get_mut(user) else {
            return;
        };
        attendance.peers.remove(from);
        if attendance.here == 0 && attendance.peers.is_empty() {
            entry.depart(room, user, at, effects);
        }
        self.drop_if_empty(room);
    }

    /// Makes `members` exactly what `from` holds.
    fn replace_holdings(
        &mut self,
        from: &InstanceId,
        members: Vec<Member>,
        now: u64,
        effects: &mut Effects<C>,
    ) {
        let Some(peer) = self.peers.get(from) else {
            return;
        };
        let wanted: HashSet<(RoomKey, UserId)> = members
            .iter()
            .map(|m| (m.room.clone(), m.user.clone()))
            .collect();
        let stale: Vec<(RoomKey, UserId)> = peer.holds.difference(&wanted).cloned().collect();
        for (room, user) in stale {
            self.release(from, &room, &user, now, effects);
        }
        for member in &members {
            self.hold(from, member, now, effects);
        }
    }

    fn drop_peer(&mut self, id: &InstanceId, now: u64, effects: &mut Effects<C>) {
        self.replace_holdings(id, Vec::new(), now, effects);
        self.peers.remove(id);
    }

    fn drop_if_empty(&mut self, room: &RoomKey) {
        if self
            .rooms
            .get(room)
            .is_some_and(|r| r.seats.is_empty() && r.users.is_empty())
        {
            self.rooms.remove(room);
        }
    }
}

impl<C> Effects<C> {
    fn notify(&mut self, to: Vec<C>, event: &'static str, payload: &impl Serialize) {
        if to.is_empty() {
            return;
        }
        let payload = serde_json::to_value(payload).unwrap_or(Value::Null);
        self.notices.push(Notice { to, event, payload });
    }
}

mod room;
#[cfg(test)]
mod tests;
