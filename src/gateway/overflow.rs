//! Cutting off a client: one that cannot keep up, floods, or whose
//! credential lapsed.
//!
//! Its subscriptions and rooms are dropped at once, so nothing more is
//! queued for it and its memory stops growing. Its queue may be full, so the
//! `error` and the disconnect packet may not be sendable right away: a short
//! task retries until the client has drained its queue, or gives up after
//! [`GIVE_UP_AFTER`] (a client that reads nothing for that long is dead, and
//! Socket.IO's heartbeat closes it).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use socketioxide::{SendError, SocketError};

use super::{Client, Gateway};
use crate::protocol::{ClientError, ErrorCode};

const RETRY_EVERY: Duration = Duration::from_millis(50);
const GIVE_UP_AFTER: Duration = Duration::from_secs(30);

/// A client whose socket queue is full.
pub fn cut_off_slow(gateway: &Arc<Gateway>, client: &Client) {
    let error = ClientError::new(
        ErrorCode::RateLimited,
        "too slow: the delivery buffer is full; reconnect and resubscribe",
    )
    .with_details(json!({
        "reason": "slow_consumer",
        "bufferSize": gateway.limits.socket_buffer
    }));
    cut_off(gateway, client, error, "slow_client");
}

/// Tells `client` why with `error`, and disconnects it; `reason` is logged
/// and counted.
pub fn cut_off(gateway: &Arc<Gateway>, client: &Client, error: ClientError, reason: &'static str) {
    let (socket, session) = (client.socket.clone(), &client.session);
    if !session.close(gateway) {
        return; // already being cut off or disconnecting
    }
    gateway.metrics.cut_off.inc(reason);
    tracing::warn!(sid = %socket.id, user = %session.principal.user, reason, "cutting off a client");
    tokio::spawn(async move {
        let mut told = false;
        let deadline = tokio::time::Instant::now() + GIVE_UP_AFTER;
        while tokio::time::Instant::now() < deadline {
            if !told {
                match socket.emit("error", &error.payload()) {
                    Ok(()) => told = true,
                    Err(SendError::Socket(SocketError::Closed)) => return,
                    Err(_) => {
                        tokio::time::sleep(RETRY_EVERY).await;
                        continue;
                    }
                }
            }
            // At once after the error, which is queued ahead of it: a page
            // that reconnects on the error (the seed's "Error Recovery")
            // calls `socket.connect()`, which does nothing while the socket
            // is still connected.
            match socket.clone().disconnect() {
                Err(SocketError::InternalChannelFull) => tokio::time::sleep(RETRY_EVERY).await,
                Ok(()) | Err(SocketError::Closed) => return,
            }
        }
    });
}
