//! Every inbound event is charged to its connection's rate before any other
//! work (see [`crate::guard`]). A refused event is answered (its
//! acknowledgement gets `RATE_LIMITED` with `retryAfter`; the `error` event
//! goes out once per run of refusals, so a flood is not mirrored back),
//! dropped and counted in `inbound_rate_limited`, apart from the events the
//! bridge failed to deliver. A flooding client is cut off.

use std::sync::Arc;

use serde_json::json;
use socketioxide::extract::{AckSender, SocketRef};

use super::overflow::{self, Disconnect};
use super::replies::Refused;
use super::session::Session;
use super::{Client, Gateway};
use crate::guard::Admission;
use crate::protocol::ClientError;

/// The acknowledgement back when the event may be handled; `None` when it
/// was refused (and answered).
pub(super) fn admit(
    gateway: &Arc<Gateway>,
    socket: &SocketRef,
    session: &Arc<Session>,
    ack: AckSender,
) -> Option<AckSender> {
    let per_second = gateway.guard.events_per_second;
    match session.admit_event() {
        Admission::Admitted => Some(ack),
        Admission::Refused { retry_after, tell } => {
            gateway.metrics.inbound_rate_limited.inc();
            let retry_ms = retry_after.as_millis().max(1) as u64;
            let error = ClientError::rate_limited(
                format!("more than {per_second} events per second; this one was dropped"),
                retry_ms,
            );
            let payload = error.payload();
            ack.send(&Refused::new(&payload)).ok();
            if tell {
                gateway.metrics.client_errors.inc("rate_limited");
                socket.emit("error", &payload).ok();
            }
            None
        }
        Admission::Flooding => {
            let error = ClientError::rate_limited(
                "kept sending over the event rate: disconnected",
                gateway.guard.flood_window_seconds * 1000,
            )
            .with_details(json!({ "reason": "flood", "eventsPerSecond": per_second }));
            let client = Client::new(socket, session);
            overflow::cut_off(
                gateway,
                &client,
                error,
                "flood",
                Disconnect::AfterItsPackets,
            );
            None
        }
    }
}
