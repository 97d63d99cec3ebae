//! Cutting off a client that cannot keep up.
//!
//! Its subscriptions leave the index at once, so nothing more is queued for
//! it and its memory stops growing. Its queue is full, so the `error` and the
//! disconnect packet cannot be sent right away: a short task retries until
//! the client has drained its queue, or gives up after [`GIVE_UP_AFTER`] (a
//! client that reads nothing for that long is dead, and Socket.IO's heartbeat
//! closes it).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use socketioxide::SocketError;

use super::{Client, Gateway};
use crate::protocol::{ClientError, ErrorCode};

const RETRY_EVERY: Duration = Duration::from_millis(50);
const GIVE_UP_AFTER: Duration = Duration::from_secs(30);

pub fn cut_off(gateway: &Arc<Gateway>, client: &Client) {
    let (socket, session) = (client.socket.clone(), &client.session);
    if !session.close(gateway) {
        return; // already being cut off or disconnecting
    }
    tracing::warn!(sid = %socket.id, user = %session.principal.user, "socket buffer full; cutting off slow client");
    let buffer = gateway.limits.socket_buffer;
    tokio::spawn(async move {
        let error = ClientError::new(
            ErrorCode::RateLimited,
            "too slow: the delivery buffer is full; reconnect and resubscribe",
        )
        .with_details(json!({ "reason": "slow_consumer", "bufferSize": buffer }));
        let mut told = false;
        let deadline = tokio::time::Instant::now() + GIVE_UP_AFTER;
        while tokio::time::Instant::now() < deadline {
            if !told {
                told = socket.emit("error", &error.payload()).is_ok();
            }
            match socket.clone().disconnect() {
                Err(SocketError::InternalChannelFull) => tokio::time::sleep(RETRY_EVERY).await,
                Ok(()) | Err(SocketError::Closed) => return,
            }
        }
    });
}
