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
    cut_off(
        gateway,
        client,
        error,
        "slow_client",
        Disconnect::AfterItsPackets,
    );
}

/// When the disconnect follows the `error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disconnect {
    /// At once, for a client that acts on the error: a page reconnecting
    /// with a fresh credential (the seed's "Error Recovery") calls
    /// `socket.connect()`, which does nothing while still connected.
    AtOnce,
    /// [`RETRY_EVERY`] later, for a client that may still be sending (too
    /// slow, flooding): a packet for a socket that has left its namespace
    /// closes the whole Engine.IO session, and with it the error not yet
    /// written.
    AfterItsPackets,
}

/// Tells `client` why with `error`, and disconnects it; `reason` is logged
/// and counted.
pub fn cut_off(
    gateway: &Arc<Gateway>,
    client: &Client,
    error: ClientError,
    reason: &'static str,
    disconnect: Disconnect,
) {
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
                if disconnect == Disconnect::AfterItsPackets {
                    tokio::time::sleep(RETRY_EVERY).await;
                }
            }
            match socket.clone().disconnect() {
                Err(SocketError::InternalChannelFull) => tokio::time::sleep(RETRY_EVERY).await,
                Ok(()) | Err(SocketError::Closed) => return,
            }
        }
    });
}
