//! New Engine.IO sessions per client address, counted at the HTTP edge.
//!
//! The contract's handshake limit (`RATE_LIMITED`, reason `handshake_rate`)
//! applies at the Socket.IO CONNECT, where the client can be told why. An
//! Engine.IO session that never sends CONNECT does not get that far, yet it
//! holds its request head until `guard.connect_timeout_seconds`: unchecked,
//! a client opening sessions in a loop held gigabytes. This limit, looser
//! than the contract's, stops that loop with an HTTP 429 and `Retry-After`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::guard::{ConnectionGate, GuardConfig};
use crate::metrics::Metrics;

/// What the limit needs: the node's connection gate and how to tell
/// clients' addresses apart.
#[derive(Clone)]
pub struct EngineOpens {
    pub gate: Arc<ConnectionGate>,
    pub guard: Arc<GuardConfig>,
    pub metrics: Arc<Metrics>,
}

/// Refuses a request that would open an Engine.IO session when its
/// address opened too many lately; every other request passes.
pub async fn limit_engine_opens(
    State(opens): State<EngineOpens>,
    req: Request,
    next: Next,
) -> Response {
    if !opens_a_session(&req) {
        return next.run(req).await;
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    let address = opens.guard.client_address(req.headers(), peer);
    match opens.gate.engine_open(address, Instant::now()) {
        Ok(()) => next.run(req).await,
        Err(retry_after) => {
            opens.metrics.connections_refused.inc("engine_open_rate");
            let seconds = retry_after.as_secs_f64().ceil().max(1.0).to_string();
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, seconds)],
                "too many new sessions from your address",
            )
                .into_response()
        }
    }
}

/// A request to the Socket.IO path without a session id: the first request
/// of an Engine.IO session (a polling open or a direct websocket).
/// engineioxide serves `/socket.io`, `/socket.io/` and anything below it.
fn opens_a_session(req: &Request) -> bool {
    super::is_socket_io_path(req.uri().path())
        && !req
            .uri()
            .query()
            .is_some_and(|query| query.split('&').any(|pair| pair.starts_with("sid=")))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;

    use super::*;

    fn request(uri: &str) -> Request {
        Request::get(uri).body(Body::empty()).unwrap()
    }

    #[test]
    fn only_requests_without_a_session_id_open_sessions() {
        for uri in [
            "/socket.io/?EIO=4&transport=polling",
            "/socket.io/?EIO=4&transport=websocket",
            "/socket.io/",
            "/socket.io?EIO=4&transport=polling",
            "/socket.io/anything?EIO=4&transport=polling",
        ] {
            assert!(opens_a_session(&request(uri)), "{uri}");
        }
        for uri in [
            "/socket.io/?EIO=4&transport=polling&sid=abc",
            "/socket.io/?sid=abc&EIO=4&transport=websocket",
            "/stats",
            "/socket.io.js",
        ] {
            assert!(!opens_a_session(&request(uri)), "{uri}");
        }
    }
}
