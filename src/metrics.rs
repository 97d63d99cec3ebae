//! Counters for what the bridge does: the one source of both `/stats`
//! (JSON, [`Metrics::snapshot`]) and `/metrics` (Prometheus text,
//! [`Metrics::render`]). Labels have few values (a reason, never a user,
//! socket or resource id).
//!
//! - `histogram.rs`: the end-to-end latency histogram.
//! - `exposition.rs`: the Prometheus text format.

mod exposition;
mod histogram;

pub use exposition::{CONTENT_TYPE, Exposition};
pub use histogram::LatencyHistogram;

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

/// Counters by Kafka partition and reason: partitions are few (the CRM
/// topics'), and these events rare, so a mutex is fine.
#[derive(Default)]
pub struct PartitionCounter(Mutex<BTreeMap<(String, i32, &'static str), u64>>);

impl PartitionCounter {
    pub fn inc(&self, topic: &str, partition: i32, reason: &'static str) {
        *self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((topic.to_owned(), partition, reason))
            .or_default() += 1;
    }

    pub fn snapshot(&self) -> Vec<((String, i32, &'static str), u64)> {
        let counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        counts.iter().map(|(k, v)| (k.clone(), *v)).collect()
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

    /// Counts one until the returned guard is dropped (however the holder
    /// ends: returned early, failed or cancelled).
    pub fn hold(&self) -> GaugeHold<'_> {
        self.inc();
        GaugeHold(self)
    }
}

pub struct GaugeHold<'a>(&'a Gauge);

impl Drop for GaugeHold<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Counters by a low-cardinality reason. Rare events, so a mutex is fine.
#[derive(Default)]
pub struct ReasonCounter(Mutex<BTreeMap<&'static str, u64>>);

impl ReasonCounter {
    pub fn inc(&self, reason: &'static str) {
        self.add(reason, 1);
    }

    pub fn add(&self, reason: &'static str, n: u64) {
        *self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(reason)
            .or_default() += n;
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
    /// Errors the live and replay consumers got past.
    pub consume_errors: Counter,
    /// Errors librdkafka reported for any of the bridge's Kafka clients, by
    /// kind (`kafka/context.rs`).
    pub kafka_client_errors: ReasonCounter,
    /// Partitions whose log went backwards under live delivery (a topic
    /// recreated, a broker that lost its data), by reason.
    pub partition_resets: PartitionCounter,
    /// Events that matched at least one client.
    pub events_routed: Counter,
    pub deliveries: Counter,
    pub dropped: ReasonCounter,
    pub clients_connected: Gauge,
    pub subscriptions: Gauge,
    pub auth_failures: ReasonCounter,
    pub replay_requests: Counter,
    pub replayed_events: Counter,
    /// Partition ranges replays read, by source: `memory` (the live
    /// consumer's recent records) or `kafka`.
    pub replay_reads: ReasonCounter,
    /// Replays stopped before they finished because the client asked:
    /// `replaced` (subscribed again with `since`) or `unsubscribed`.
    pub replays_cancelled: ReasonCounter,
    /// Replays waiting for a replay slot (see `replay/slots.rs`).
    pub replays_waiting_for_slot: Gauge,
    /// Replays waiting, without a slot, for room in a full socket.
    pub replays_waiting_for_socket: Gauge,
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
    /// From a record's Kafka timestamp to its hand-off to every matching
    /// socket, once per decoded live record.
    pub delivery_latency: LatencyHistogram,
}

impl Metrics {
    pub fn decode_failed(&self, reason: &'static str) {
        self.decode_failures.inc(reason);
    }

    pub fn snapshot(&self) -> Value {
        let latency = self.delivery_latency.snapshot();
        json!({
            "recordsConsumed": self.records_consumed.get(),
            "recordsDecoded": self.records_decoded.get(),
            "decodeFailures": self.decode_failures.snapshot(),
            "deadLettered": self.dead_lettered.get(),
            "deadLetterFailures": self.dead_letter_failures.get(),
            "consumeErrors": self.consume_errors.get(),
            "kafkaClientErrors": self.kafka_client_errors.snapshot(),
            "partitionResets": self.partition_resets.snapshot().into_iter()
                .map(|((topic, partition, reason), count)| json!({
                    "topic": topic, "partition": partition, "reason": reason, "count": count,
                }))
                .collect::<Vec<_>>(),
            "eventsRouted": self.events_routed.get(),
            "deliveries": self.deliveries.get(),
            "dropped": self.dropped.snapshot(),
            "clientsConnected": self.clients_connected.get(),
            "subscriptions": self.subscriptions.get(),
            "authFailures": self.auth_failures.snapshot(),
            "replayRequests": self.replay_requests.get(),
            "replayedEvents": self.replayed_events.get(),
            "replayReads": self.replay_reads.snapshot(),
            "replaysCancelled": self.replays_cancelled.snapshot(),
            "replaysWaitingForSlot": self.replays_waiting_for_slot.get(),
            "replaysWaitingForSocket": self.replays_waiting_for_socket.get(),
            "clientErrors": self.client_errors.snapshot(),
            "cutOff": self.cut_off.snapshot(),
            "connectionsRefused": self.connections_refused.snapshot(),
            "roomSeats": self.room_seats.get(),
            "presenceSent": self.presence_sent.get(),
            "presenceReceived": self.presence_received.get(),
            "presenceFailures": self.presence_failures.snapshot(),
            "deliveryLatency": { "count": latency.count, "sumSeconds": latency.sum_seconds },
        })
    }

    /// Every counter above in Prometheus text, the names `crm_bridge_*`.
    pub fn render(&self, out: &mut Exposition) {
        let counters = [
            (
                "records_consumed_total",
                "Kafka records read by the live consumer.",
                &self.records_consumed,
            ),
            (
                "records_decoded_total",
                "Kafka records decoded into events.",
                &self.records_decoded,
            ),
            (
                "records_dead_lettered_total",
                "Undecodable records produced to the dead-letter topic.",
                &self.dead_lettered,
            ),
            (
                "dead_letter_failures_total",
                "Undecodable records the dead-letter topic did not take (skipped anyway).",
                &self.dead_letter_failures,
            ),
            (
                "consume_errors_total",
                "Errors the live and replay consumers got past (librdkafka reconnects by itself).",
                &self.consume_errors,
            ),
            (
                "events_routed_total",
                "Events that matched at least one client.",
                &self.events_routed,
            ),
            (
                "deliveries_total",
                "Events emitted to a socket.",
                &self.deliveries,
            ),
            (
                "replay_requests_total",
                "Subscriptions resumed with a cursor.",
                &self.replay_requests,
            ),
            (
                "replayed_events_total",
                "Events sent by replays.",
                &self.replayed_events,
            ),
            (
                "presence_records_sent_total",
                "Presence records produced to the presence topic.",
                &self.presence_sent,
            ),
            (
                "presence_records_received_total",
                "Presence records read from the other nodes.",
                &self.presence_received,
            ),
        ];
        for (name, help, counter) in counters {
            out.counter(&format!("crm_bridge_{name}"), help, counter.get());
        }
        let by_reason = [
            (
                "decode_failures_total",
                "Undecodable Kafka records, skipped, by reason.",
                "reason",
                &self.decode_failures,
            ),
            (
                "kafka_client_errors_total",
                "Errors librdkafka reported for the bridge's Kafka clients, by kind (authentication, tls, authorization, other).",
                "kind",
                &self.kafka_client_errors,
            ),
            (
                "events_dropped_total",
                "Events not delivered, by reason (rate_limited: inbound client events refused by the rate limit).",
                "reason",
                &self.dropped,
            ),
            (
                "auth_failures_total",
                "Handshakes refused for their credentials, by reason.",
                "reason",
                &self.auth_failures,
            ),
            (
                "connections_refused_total",
                "Connections refused by a connection limit or origin check, by reason.",
                "reason",
                &self.connections_refused,
            ),
            (
                "clients_cut_off_total",
                "Clients disconnected by the bridge, by reason.",
                "reason",
                &self.cut_off,
            ),
            (
                "client_errors_total",
                "Error replies sent to clients, by error code.",
                "code",
                &self.client_errors,
            ),
            (
                "replay_reads_total",
                "Partition ranges read by replays, by source (memory: recent records; kafka).",
                "source",
                &self.replay_reads,
            ),
            (
                "replays_cancelled_total",
                "Replays stopped early at the client's request, by reason (replaced: subscribed again with since; unsubscribed).",
                "reason",
                &self.replays_cancelled,
            ),
            (
                "presence_failures_total",
                "Presence records not sent, not readable or not received, by step.",
                "step",
                &self.presence_failures,
            ),
        ];
        for (name, help, label, counter) in by_reason {
            let counts = counter.snapshot();
            out.counter_by(&format!("crm_bridge_{name}"), help, label, counts);
        }
        let resets = "crm_bridge_partition_resets_total";
        out.family(
            resets,
            "counter",
            "Partitions whose log went backwards under live delivery (topic recreated, broker data lost), by reason.",
        );
        for ((topic, partition, reason), count) in self.partition_resets.snapshot() {
            let partition = partition.to_string();
            let labels = [
                ("topic", topic.as_str()),
                ("partition", &partition),
                ("reason", reason),
            ];
            out.sample(resets, &labels, count);
        }
        let gauges = [
            (
                "clients_connected",
                "Socket.IO connections on this node.",
                &self.clients_connected,
            ),
            (
                "subscriptions",
                "Active subscriptions on this node.",
                &self.subscriptions,
            ),
            (
                "room_seats",
                "Socket memberships of collaboration rooms on this node.",
                &self.room_seats,
            ),
            (
                "replays_waiting_for_slot",
                "Replays queued for a replay slot (node, organisation and user shares).",
                &self.replays_waiting_for_slot,
            ),
            (
                "replays_waiting_for_socket",
                "Replays waiting, without a slot, for room in a client's full socket.",
                &self.replays_waiting_for_socket,
            ),
        ];
        for (name, help, gauge) in gauges {
            out.gauge(&format!("crm_bridge_{name}"), help, gauge.get());
        }
        out.histogram(
            "crm_bridge_delivery_latency_seconds",
            "From a record's Kafka timestamp (CreateTime) to its hand-off to every matching socket, once per decoded live record.",
            &self.delivery_latency.snapshot(),
        );
    }
}
