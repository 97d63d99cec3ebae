//! Delivery: the consumer's sink. Routes a record through the index, and
//! when anyone matched, builds its event, asks the permissions policy what
//! each matching connection may see of it (`permits.rs`), renders its
//! payload once per set of hidden fields, and offers it to each connection
//! shown it: emitted at once, or held while that connection replays (see
//! `seam.rs`). A record that matches nobody
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
use super::{Client, Gateway, overflow, permits};
use crate::access::{Mask, Moment};
use crate::decode::Decoded;
use crate::domain::CrmEvent;
use crate::kafka::Deliver;
use crate::protocol::{Delivery, Outbound, render};
use crate::routing::ClientId;
use crate::telemetry;

pub struct Dispatcher {
    gateway: Arc<Gateway>,
    /// Reused for every event so routing does not allocate in steady state.
    recipients: Vec<(ClientId, Client)>,
    /// The event's payload once per set of hidden fields its recipients
    /// need: most events have one.
    rendered: Vec<(Mask, Arc<Outbound>)>,
}

/// The payload for recipients who see `mask`'s fields hidden, rendered on
/// first need.
fn rendered(
    payloads: &mut Vec<(Mask, Arc<Outbound>)>,
    mask: Mask,
    render: impl FnOnce() -> Outbound,
) -> Arc<Outbound> {
    if let Some((_, outbound)) = payloads.iter().find(|(m, _)| *m == mask) {
        return outbound.clone();
    }
    let outbound = Arc::new(render());
    payloads.push((mask, outbound.clone()));
    outbound
}

impl Dispatcher {
    pub fn new(gateway: Arc<Gateway>) -> Self {
        Self {
            gateway,
            recipients: Vec::new(),
            rendered: Vec::new(),
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
        let emit = telemetry::child_span(
            span,
            || tracing::info_span!(parent: span, "emit", event = Empty, emitted = Empty),
        );
        let _emitting = emit.enter();
        let mut emitted = 0usize;
        // Shared by every connection that has to hold it; made on first need.
        let mut shared_event: Option<Arc<CrmEvent>> = None;
        let live_buffer = gateway.replayer.config().live_buffer;
        let position = event.position;
        let reset_epoch = gateway.live.reset_epoch(position.topic, position.partition);
        // Held for the recipients' decisions; writers wait for this record.
        let view = gateway.grants.read();
        let held = view.about(event.keys());
        for (_, client) in self.recipients.drain(..) {
            let session = &client.session;
            let Some(mask) =
                permits::decide(gateway, session, event, &held, Moment::Live, Delivery::Live)
            else {
                continue;
            };
            let outbound = rendered(&mut self.rendered, mask, || {
                let hidden = permits::hidden(gateway, event, mask);
                render(event, Delivery::Live, log, hidden)
            });
            let hold = || Waiting {
                event: shared_event
                    .get_or_insert_with(|| Arc::new(event.clone()))
                    .clone(),
                outbound: outbound.clone(),
                hidden: mask,
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
            match session.offer(live_buffer, event, reset_epoch, hold, emit) {
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
        if let Some((_, outbound)) = self.rendered.first() {
            emit.record("event", outbound.name);
        }
        self.rendered.clear();
        emit.record("emitted", emitted);
        true
    }
}
