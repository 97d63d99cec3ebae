//! Counters for what the bridge does, served as JSON on `/stats`.
//! Labels have few values (a reason, never a user, socket or resource id).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use serde_json::{Value, json};

#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Counters by a low-cardinality reason. Rare events, so a mutex is fine.
#[derive(Default)]
pub struct ReasonCounter(Mutex<BTreeMap<&'static str, u64>>);

impl ReasonCounter {
    pub fn inc(&self, reason: &'static str) {
        *self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(reason)
            .or_default() += 1;
    }

    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[derive(Default)]
pub struct Metrics {
    pub records_consumed: Counter,
    pub records_decoded: Counter,
    pub decode_failures: ReasonCounter,
    /// Undecodable records produced to the dead-letter topic.
    pub dead_lettered: Counter,
    /// Undecodable records the dead-letter topic did not take (skipped anyway).
    pub dead_letter_failures: Counter,
    pub consume_errors: Counter,
    /// Events that matched at least one client.
    pub events_routed: Counter,
    pub deliveries: Counter,
    pub dropped: ReasonCounter,
    pub clients_connected: Gauge,
    pub subscriptions: Gauge,
    pub auth_failures: ReasonCounter,
    pub replay_requests: Counter,
    pub replayed_events: Counter,
    pub client_errors: ReasonCounter,
    /// Clients disconnected by the bridge, by reason.
    pub cut_off: ReasonCounter,
    /// Connections refused at the handshake, by reason.
    pub connections_refused: ReasonCounter,
    /// Socket-room memberships on this node.
    pub room_seats: Gauge,
    pub presence_sent: Counter,
    pub presence_received: Counter,
    /// Presence records not sent, not readable, or not received, by step.
    pub presence_failures: ReasonCounter,
}

impl Metrics {
    pub fn decode_failed(&self, reason: &'static str) {
        self.decode_failures.inc(reason);
    }

    pub fn snapshot(&self) -> Value {
        json!({
            "recordsConsumed": self.records_consumed.get(),
            "recordsDecoded": self.records_decoded.get(),
            "decodeFailures": self.decode_failures.snapshot(),
            "deadLettered": self.dead_lettered.get(),
            "deadLetterFailures": self.dead_letter_failures.get(),
            "consumeErrors": self.consume_errors.get(),
            "eventsRouted": self.events_routed.get(),
            "deliveries": self.deliveries.get(),
            "dropped": self.dropped.snapshot(),
            "clientsConnected": self.clients_connected.get(),
            "subscriptions": self.subscriptions.get(),
            "authFailures": self.auth_failures.snapshot(),
            "replayRequests": self.replay_requests.get(),
            "replayedEvents": self.replayed_events.get(),
            "clientErrors": self.client_errors.snapshot(),
            "cutOff": self.cut_off.snapshot(),
            "connectionsRefused": self.connections_refused.snapshot(),
            "roomSeats": self.room_seats.get(),
            "presenceSent": self.presence_sent.get(),
            "presenceReceived": self.presence_received.get(),
            "presenceFailures": self.presence_failures.snapshot(),
        })
    }
}
