//! One room of the roster: this instance's sockets in it, everyone
//! present cluster-wide, and who is typing; and what a room tells its
//! sockets when someone leaves or types, and a joining socket.

use std::collections::{BTreeSet, HashMap};

use super::{Effects, MemberView, RoomView, Timing, TypingView};
use crate::domain::{RoomKey, UserId};
use crate::presence::wire::InstanceId;
use crate::protocol::{PresenceChange, Typing};
use crate::routing::ClientId;

pub(super) struct Room<C> {
    /// This instance's sockets in the room.
    pub(super) seats: HashMap<ClientId, Seat<C>>,
    /// Everyone present, cluster-wide.
    pub(super) users: HashMap<UserId, Attendance>,
    /// When each (user, field) last typed, by the typing instance's clock.
    pub(super) typing: HashMap<(UserId, Box<str>), u64>,
}

pub(super) struct Seat<C> {
    pub(super) user: UserId,
    pub(super) handle: C,
}

pub(super) struct Attendance {
    pub(super) name: Box<str>,
    /// Sockets of this user in the room on this instance.
    pub(super) here: u32,
    /// Other instances holding this user in the room.
    pub(super) peers: BTreeSet<InstanceId>,
}

impl<C: Clone> Room<C> {
    pub(super) fn new() -> Self {
        Self {
            seats: HashMap::new(),
            users: HashMap::new(),
            typing: HashMap::new(),
        }
    }

    /// Local sockets of everyone but `user`.
    pub(super) fn others(&self, user: &UserId) -> Vec<C> {
        self.seats
            .values()
            .filter(|seat| seat.user != *user)
            .map(|seat| seat.handle.clone())
            .collect()
    }

    /// `user` is no longer present anywhere: tell the room.
    pub(super) fn depart(
        &mut self,
        room: &RoomKey,
        user: &UserId,
        at: u64,
        effects: &mut Effects<C>,
    ) {
        let Some(attendance) = self.users.remove(user) else {
            return;
        };
        self.typing.retain(|(typist, _), _| typist != user);
        let change = PresenceChange::new(room, user, &attendance.name, at);
        effects.notify(self.others(user), "user-left", &change);
    }

    /// Shows `user` typing unless throttled; false when throttled.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn show_typing(
        &mut self,
        room: &RoomKey,
        user: &UserId,
        name: &str,
        field: &str,
        at: u64,
        timing: Timing,
        effects: &mut Effects<C>,
    ) -> bool {
        let key = (user.clone(), Box::<str>::from(field));
        if self
            .typing
            .get(&key)
            .is_some_and(|last| at < last + timing.typing_throttle)
        {
            return false;
        }
        self.typing.insert(key, at);
        let typing = Typing::new(room, user, name, field, at, at + timing.typing_ttl);
        effects.notify(self.others(user), "user-typing", &typing);
        true
    }

    pub(super) fn view(&self, me: &UserId, now: u64, ttl: u64) -> RoomView {
        let name_of = |user: &UserId| {
            self.users
                .get(user)
                .map_or_else(|| "".into(), |a| a.name.clone())
        };
        let mut members: Vec<MemberView> = self
            .users
            .iter()
            .filter(|(user, _)| *user != me)
            .map(|(user, attendance)| MemberView {
                user_id: user.clone(),
                user_name: attendance.name.clone(),
            })
            .collect();
        members.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        let mut typing: Vec<TypingView> = self
            .typing
            .iter()
            .filter(|((user, _), at)| user != me && now < **at + ttl)
            .map(|((user, field), at)| TypingView {
                user_id: user.clone(),
                user_name: name_of(user),
                field: field.clone(),
                expires_at: crate::protocol::format_millis((at + ttl) as i64),
            })
            .collect();
        typing.sort_by(|a, b| (&a.user_id, &a.field).cmp(&(&b.user_id, &b.field)));
        RoomView { members, typing }
    }
}
