//! Delivery: the consumer's sink. Routes an event through the index, renders
//! its payload once, and emits it to each matching socket.
//!
//! Emitting never waits: each socket has a bounded queue
//! (`limits.socket_buffer`). A socket whose queue is full cannot keep up: it
//! is cut off (see [`super::overflow`]) rather than buffered without bound,
//! and counted. Kafka still holds what it missed.

use std::sync::Arc;

use socketioxide::SendError;
use socketioxide::SocketError;
use socketioxide::extract::SocketRef;

use super::{Gateway, overflow};
use crate::domain::CrmEvent;
use crate::kafka::Deliver;
use crate::protocol::render;
use crate::routing::ClientId;

pub struct Dispatcher {
    gateway: Arc<Gateway>,
    /// Reused for every event so routing does not allocate in steady state.
    recipients: Vec<(ClientId, SocketRef)>,
}

impl Dispatcher {
    pub fn new(gateway: Arc<Gateway>) -> Self {
        Self {
            gateway,
            recipients: Vec::new(),
        }
    }
}

impl Deliver for Dispatcher {
    fn deliver(&mut self, event: &CrmEvent) {
        self.recipients.clear();
        self.gateway.index.route(event, &mut self.recipients);
        if self.recipients.is_empty() {
            return;
        }
        let metrics = &self.gateway.metrics;
        metrics.events_routed.inc();
        let outbound = render(event);
        for (_, socket) in self.recipients.drain(..) {
            match socket.emit(outbound.name, &*outbound.payload) {
                Ok(()) => metrics.deliveries.inc(),
                Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                    metrics.dropped.inc("slow_client");
                    overflow::cut_off(&self.gateway, socket);
                }
                // Already disconnecting; its cleanup removes it from the index.
                Err(SendError::Socket(SocketError::Closed)) => metrics.dropped.inc("closed"),
                Err(SendError::Serialize(e)) => {
                    metrics.dropped.inc("serialize");
                    tracing::error!(error = %e, "cannot serialise an event");
                }
            }
        }
    }
}
