//! Collaboration requests: `join-room`, `leave-room` and `typing`. Answers
//! and refusals go out as in `requests.rs`.

use std::sync::Arc;

use serde_json::Value;
use socketioxide::extract::{AckSender, Extension, SocketRef, State, TryData};

use super::replies::{Done, Joined, Typed};
use super::requests::{admit_request, answer_removal, refuse};
use super::session::Session;
use super::{Client, Gateway, permits};
use crate::presence::NotInRoom;
use crate::protocol::{
    ClientError, ErrorCode, describe_key, describe_room, parse_room, parse_typing,
};
use crate::routing::SubscriptionKey;

pub fn register(socket: &SocketRef) {
    socket.on("join-room", on_join);
    socket.on("leave-room", on_leave);
    socket.on("typing", on_typing);
}

/// Acknowledged with the others already in the room, who is typing there,
/// and the subscription the room holds for its resource's events.
async fn on_join(
    socket: SocketRef,
    TryData(data): TryData<Value>,
    ack: AckSender,
    Extension(session): Extension<Arc<Session>>,
    State(gateway): State<Arc<Gateway>>,
) {
    let data = data.as_ref().ok();
    let Some((room, ack)) = admit_request(&gateway, &socket, &session, ack, data, parse_room)
    else {
        return;
    };
    if let Err(error) = permits::admit_room(&gateway, &session, &room) {
        return refuse(&gateway, &socket, ack, &error);
    }
    let client = Client::new(&socket, &session);
    match session.join_room(&gateway, &client, &room) {
        Ok(view) => {
            let reply = Done::new(Joined {
                room: describe_room(&room),
                view,
                subscription: describe_key(&SubscriptionKey::of_room(&room), None),
            });
            ack.send(&reply).ok();
        }
        Err(error) => refuse(&gateway, &socket, ack, &error),
    }
}

async fn on_leave(
    socket: SocketRef,
    TryData(data): TryData<Value>,
    ack: AckSender,
    Extension(session): Extension<Arc<Session>>,
    State(gateway): State<Arc<Gateway>>,
) {
    let data = data.as_ref().ok();
    let Some((room, ack)) = admit_request(&gateway, &socket, &session, ack, data, parse_room)
    else {
        return;
    };
    let client = Client::new(&socket, &session);
    let removed = session.leave_room(&gateway, &client, &room);
    answer_removal(&gateway, &socket, ack, removed, "not in this room");
}

/// Acknowledged with `throttled: true` when the indicator was shown less
/// than the throttle interval ago (nothing is sent then).
async fn on_typing(
    socket: SocketRef,
    TryData(data): TryData<Value>,
    ack: AckSender,
    Extension(session): Extension<Arc<Session>>,
    State(gateway): State<Arc<Gateway>>,
) {
    let data = data.as_ref().ok();
    let Some(((room, field), ack)) =
        admit_request(&gateway, &socket, &session, ack, data, parse_typing)
    else {
        return;
    };
    match gateway.presence.typing(&room, session.client, &field) {
        Ok(shown) => {
            ack.send(&Done::new(Typed { throttled: !shown })).ok();
        }
        Err(NotInRoom) => {
            let error = ClientError::new(ErrorCode::Forbidden, "join the room before typing in it");
            refuse(&gateway, &socket, ack, &error);
        }
    }
}
