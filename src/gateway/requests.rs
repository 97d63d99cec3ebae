//! Client requests. Each answers through the acknowledgement callback when the
//! client passed one (`{ ok: true, ... }` or `{ ok: false, error }`), and every
//! refusal is also emitted as the seed's `error` event.

use std::sync::Arc;

use serde_json::{Value, json};
use socketioxide::extract::{AckSender, Extension, SocketRef, State, TryData};

use super::Gateway;
use super::session::{Session, Subscribed};
use crate::protocol::{ClientError, ErrorCode, parse_subscribe, parse_unsubscribe};

pub fn register(socket: &SocketRef) {
    socket.on("subscribe", on_subscribe);
    socket.on("unsubscribe", on_unsubscribe);
    socket.on("ping", on_ping);
}

async fn on_subscribe(
    socket: SocketRef,
    TryData(data): TryData<Value>,
    ack: AckSender,
    Extension(session): Extension<Arc<Session>>,
    State(gateway): State<Arc<Gateway>>,
) {
    let result = parse_subscribe(&session.principal.org, data.as_ref().ok())
        .and_then(|request| Ok((session.subscribe(&gateway, &socket, &request)?, request)));
    match result {
        Ok((outcome, request)) => {
            let replaced = matches!(outcome, Subscribed::Replaced);
            ack.send(
                &json!({ "ok": true, "subscription": request.describe(), "replaced": replaced }),
            )
            .ok();
        }
        Err(error) => refuse(&gateway, &socket, ack, &error),
    }
}

async fn on_unsubscribe(
    socket: SocketRef,
    TryData(data): TryData<Value>,
    ack: AckSender,
    Extension(session): Extension<Arc<Session>>,
    State(gateway): State<Arc<Gateway>>,
) {
    match parse_unsubscribe(&session.principal.org, data.as_ref().ok()) {
        Ok(key) if session.unsubscribe(&gateway, &key) => {
            ack.send(&json!({ "ok": true })).ok();
        }
        Ok(_) => {
            let error = ClientError::new(
                ErrorCode::ResourceNotFound,
                "no such subscription on this connection",
            );
            refuse(&gateway, &socket, ack, &error);
        }
        Err(error) => refuse(&gateway, &socket, ack, &error),
    }
}

async fn on_ping(socket: SocketRef, ack: AckSender) {
    socket.emit("pong", &()).ok();
    ack.send(&json!({ "ok": true })).ok();
}

fn refuse(gateway: &Gateway, socket: &SocketRef, ack: AckSender, error: &ClientError) {
    gateway.metrics.client_errors.inc(error_label(error.code));
    let payload = error.payload();
    ack.send(&json!({ "ok": false, "error": &payload })).ok();
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
