//! Client requests. Each answers through the acknowledgement callback when the
//! client passed one (`{ ok: true, ... }` or `{ ok: false, error }`), and every
//! refusal is also emitted as the seed's `error` event.

use std::sync::Arc;

use serde_json::Value;
use socketioxide::extract::{AckSender, Extension, SocketRef, State, TryData};

use super::replies::{Done, Nothing, Refused, Replaying, Subscribed};
use super::session::Session;
use super::{Client, Gateway, permits, rate, replay};
use crate::protocol::{Caller, ClientError, ErrorCode, parse_subscribe, parse_unsubscribe};
use crate::routing::topics_of;

pub fn register(socket: &SocketRef) {
    socket.on("subscribe", on_subscribe);
    socket.on("unsubscribe", on_unsubscribe);
    socket.on("ping", on_ping);
    socket.on_fallback(on_unknown);
}

/// Unknown event names are ignored, but count toward the event rate.
async fn on_unknown(
    socket: SocketRef,
    ack: AckSender,
    Extension(session): Extension<Arc<Session>>,
    State(gateway): State<Arc<Gateway>>,
) {
    rate::admit(&gateway, &socket, &session, ack);
}

/// The start of every request handler: charge the event to the rate, then
/// parse it as the caller. `None` when refused (already answered).
pub(super) fn admit_request<T>(
    gateway: &Arc<Gateway>,
    socket: &SocketRef,
    session: &Arc<Session>,
    ack: AckSender,
    data: Option<&Value>,
    parse: impl FnOnce(Caller<'_>, Option<&Value>) -> Result<T, ClientError>,
) -> Option<(T, AckSender)> {
    let ack = rate::admit(gateway, socket, session, ack)?;
    match parse(caller(session), data) {
        Ok(request) => Some((request, ack)),
        Err(error) => {
            refuse(gateway, socket, ack, &error);
            None
        }
    }
}

fn caller(session: &Session) -> Caller<'_> {
    Caller {
        org: &session.principal.org,
        user: &session.principal.user,
    }
}

/// The permissions policy may refuse it (`FORBIDDEN`) or narrow its events
/// (see `permits.rs`). Without `since`, the subscription is live at once and the acknowledgement
/// carries its cursor. With `since`, it is acknowledged at once (`replaying:
/// true`), replays what was missed, then sends `subscription-resumed` with
/// its cursor, the number replayed and any gaps, and continues live.
async fn on_subscribe(
    socket: SocketRef,
    TryData(data): TryData<Value>,
    ack: AckSender,
    Extension(session): Extension<Arc<Session>>,
    State(gateway): State<Arc<Gateway>>,
) {
    let data = data.as_ref().ok();
    let Some((request, ack)) =
        admit_request(&gateway, &socket, &session, ack, data, parse_subscribe)
    else {
        return;
    };
    let request = match permits::admit_subscription(&gateway, &session, request) {
        Ok(request) => request,
        Err(error) => return refuse(&gateway, &socket, ack, &error),
    };
    let client = Client::new(&socket, &session);
    let Some(since) = request.since.clone() else {
        match session.subscribe(&gateway, &client, &request) {
            Ok(is_new) => {
                let topics = topics_of(&request.key, request.actions);
                let reply = Done::new(Subscribed {
                    subscription: request.describe(),
                    replaced: !is_new,
                    cursor: replay::live_cursor(&gateway, &topics).to_string(),
                    replayed: 0,
                });
                ack.send(&reply).ok();
            }
            Err(error) => refuse(&gateway, &socket, ack, &error),
        }
        return;
    };
    let reply = Done::new(Replaying {
        subscription: request.describe(),
        cursor: since.to_string(),
        replaying: true,
    });
    let mut ack = Some(ack);
    let acknowledge = || {
        if let Some(ack) = ack.take() {
            ack.send(&reply).ok();
        }
    };
    match session.subscribe_replaying(&gateway, &client, request, since, acknowledge) {
        Ok(true) => drop(tokio::spawn(replay::run(gateway.clone(), client))),
        Ok(false) => {}
        Err(error) => {
            if let Some(ack) = ack {
                refuse(&gateway, &socket, ack, &error);
            }
        }
    }
}

async fn on_unsubscribe(
    socket: SocketRef,
    TryData(data): TryData<Value>,
    ack: AckSender,
    Extension(session): Extension<Arc<Session>>,
    State(gateway): State<Arc<Gateway>>,
) {
    let data = data.as_ref().ok();
    let Some((key, ack)) = admit_request(&gateway, &socket, &session, ack, data, parse_unsubscribe)
    else {
        return;
    };
    let client = Client::new(&socket, &session);
    let removed = session.unsubscribe(&gateway, &client, &key);
    let missing = "no such subscription on this connection";
    answer_removal(&gateway, &socket, ack, removed, missing);
}

async fn on_ping(
    socket: SocketRef,
    ack: AckSender,
    Extension(session): Extension<Arc<Session>>,
    State(gateway): State<Arc<Gateway>>,
) {
    let Some(ack) = rate::admit(&gateway, &socket, &session, ack) else {
        return;
    };
    socket.emit("pong", &()).ok();
    ack.send(&Done::new(Nothing {})).ok();
}

/// The answer to a request that removes something: `{ ok: true }`, or
/// `RESOURCE_NOT_FOUND` with `missing` when there was nothing to remove.
pub(super) fn answer_removal(
    gateway: &Gateway,
    socket: &SocketRef,
    ack: AckSender,
    removed: bool,
    missing: &str,
) {
    if removed {
        ack.send(&Done::new(Nothing {})).ok();
    } else {
        let error = ClientError::new(ErrorCode::ResourceNotFound, missing);
        refuse(gateway, socket, ack, &error);
    }
}

pub(super) fn refuse(gateway: &Gateway, socket: &SocketRef, ack: AckSender, error: &ClientError) {
    gateway.metrics.client_errors.inc(error_label(error.code));
    let payload = error.payload();
    ack.send(&Refused::new(&payload)).ok();
    socket.emit("error", &payload).ok();
}

fn error_label(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::Unauthorized => "unauthorized",
        ErrorCode::Forbidden => "forbidden",
        ErrorCode::InvalidRequest => "invalid_request",
        ErrorCode::ResourceNotFound => "resource_not_found",
        ErrorCode::RateLimited => "rate_limited",
        ErrorCode::ServerError => "server_error",
    }
}
