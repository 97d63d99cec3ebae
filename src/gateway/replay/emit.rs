//! Emitting at the client's pace: a full socket queue makes a replay wait
//! and retry, not drop, until its deadline.

use std::time::Duration;

use socketioxide::SocketError;
use socketioxide::extract::SocketRef;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Failed::{self, Cancelled, Gone};

/// Pause before retrying an emit into a full socket queue.
pub(super) const FULL_QUEUE_PAUSE: Duration = Duration::from_millis(2);

/// Emits, waiting for room in a full socket queue until `deadline`;
/// `Gone` if the socket stays full past it or goes away.
pub(super) async fn emit_patiently(
    socket: &SocketRef,
    name: &str,
    payload: &serde_json::value::RawValue,
    deadline: Instant,
    cancel: &CancellationToken,
) -> Result<(), Failed> {
    match emit_until(socket, name, payload, deadline, FULL_QUEUE_PAUSE, cancel).await? {
        true => Ok(()),
        false => Err(Gone),
    }
}

/// Emits, retrying every `pause` while the socket queue is full; false if
/// it is still full at `until`.
pub(super) async fn emit_until(
    socket: &SocketRef,
    name: &str,
    payload: &serde_json::value::RawValue,
    until: Instant,
    pause: Duration,
    cancel: &CancellationToken,
) -> Result<bool, Failed> {
    loop {
        match socket.emit(name, payload) {
            Ok(()) => return Ok(true),
            Err(socketioxide::SendError::Socket(SocketError::InternalChannelFull)) => {
                if Instant::now() >= until {
                    return Ok(false);
                }
                tracing::trace!(sid = %socket.id, "replay waits for the socket");
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = cancel.cancelled() => return Err(Cancelled),
                }
            }
            Err(e) => {
                tracing::debug!(sid = %socket.id, error = %e, "replay cannot emit");
                return Err(Gone);
            }
        }
    }
}
