//! Delivery: the consumer's sink. Routes a record through the index, and
//! when anyone matched, builds its event, renders its payload once, and
//! offers it to each matching connection: emitted at once, or held while
//! that connection replays (see `seam.rs`). A record that matches nobody
//! (most of them, on a node whose clients watch a few resources) costs the
//! index lookups and nothing else.
//!
//! Emitting never waits: each socket has a bounded queue
//! (`limits.socket_buffer`), and a replaying connection holds at most
//! `replay.live_buffer` events. A client past either bound cannot keep up: it
//! is cut off (see [`super::overflow`]) rather than buffered without bound,
//! and counted. Kafka still holds what it missed; its cursor resumes it.
//!
//! A traced record (see [`crate::telemetry`]) gets spans `route` (with
//! `matched_clients`) and, when anyone matched, `emit` (with `emitted`, the
//! sockets it was emitted to at once), children of the consumer's `process <topic>`.

use std::sync::Arc;

use socketioxide::{SendError, SocketError};
use tracing::Span;
use tracing::field::Empty;

use super::seam::{Offer, Waiting};
use super::{Client, Gateway, overflow};
use crate::decode::Decoded;
use crate::domain::CrmEvent;
use crate::kafka::Deliver;
use crate::protocol::{Delivery, render};
use crate::routing::ClientId;
use crate::telemetry;

pub struct Dispatcher {
    gateway: Arc<Gateway>,
    /// Reused for every event so routing does not allocate in steady state.
    recipients: Vec<(ClientId, Client)>,
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
    fn deliver(&mut self, record: &Decoded<'_>, span: &Span) -> bool {
        let route = telemetry::child_span(
            span,
            || tracing::info_span!(parent: span, "route", matched_clients = Empty),
        );
        route.in_scope(|| {
            self.recipients.clear();
            self.gateway
                .index
                .route(record.keys(), &mut self.recipients);
        });
        route.record("matched_clients", self.recipients.len());
        if self.recipients.is_empty() {
            return false;
        }
        let event = record.event();
        let event: &CrmEvent = &event;
        let gateway = &self.gateway;
        let metrics = &gateway.metrics;
        metrics.events_routed.inc();
        let log = gateway.live.log(event.position.topic);
        let outbound = Arc::new(render(event, Delivery::Live, log));
        let emit = telemetry::child_span(
            span,
            || tracing::info_span!(parent: span, "emit", event = outbound.name, emitted = Empty),
        );
        let _emitting = emit.enter();
        let mut emitted = 0usize;
        // Shared by every connection that has to hold it; made on first need.
        let mut shared_event: Option<Arc<CrmEvent>> = None;
        let live_buffer = gateway.replayer.config().live_buffer;
        let position = event.position;
        let reset_epoch = gateway.live.reset_epoch(position.topic, position.partition);
        for (_, client) in self.recipients.drain(..) {
            let hold = || Waiting {
                event: shared_event
                    .get_or_insert_with(|| Arc::new(event.clone()))
                    .clone(),
                outbound: outbound.clone(),
                reset_epoch,
            };
            let emit = || match client.socket.emit(outbound.name, &*outbound.payload) {
                Ok(()) => Offer::Emitted,
                Err(SendError::Socket(SocketError::InternalChannelFull)) => Offer::Overflow,
                Err(SendError::Socket(SocketError::Closed)) => Offer::Closed,
                Err(SendError::Serialize(e)) => {
                    tracing::error!(error = %e, "cannot serialise an event");
                    Offer::Closed
                }
            };
            match client
                .session
                .offer(live_buffer, event, reset_epoch, hold, emit)
            {
                Offer::Emitted => {
                    metrics.deliveries.inc();
                    emitted += 1;
                }
                Offer::Held | Offer::Skipped => {}
                // Already disconnecting; its cleanup removes it from the index.
                Offer::Closed => metrics.dropped.inc("closed"),
                Offer::Overflow => {
                    metrics.dropped.inc("slow_client");
                    overflow::cut_off_slow(gateway, &client);
                }
            }
        }
        emit.record("emitted", emitted);
        true
    }
}
