//! Counters for what the bridge does: the one source of both `/stats`
//! (JSON, [`Metrics::snapshot`]) and `/metrics` (Prometheus text,
//! [`Metrics::render`]). Labels have few values (a reason, never a user,
//! socket or resource id).
//!
//! Each metric is declared once, below: its field, type, label names,
//! Prometheus name (after `crm_bridge_`) and help, which is also the
//! field's doc. Its `/stats` key is the field's name in camelCase.
//! [`Metrics::catalogue`] lists the declarations, for documentation.
//!
//! - `declare.rs`: the macro that turns the declarations into the struct.
//! - `kinds.rs`: the metric types and what each writes.
//! - `histogram.rs`: histograms and their buckets.
//! - `exposition.rs`: the Prometheus text format.
//! - `process.rs`: the standard `process_*` metrics (file descriptors,
//!   memory, CPU), read from `/proc` at scrape time rather than counted, so
//!   not declared here; `/metrics` adds them (`http.rs`).

mod declare;
mod exposition;
mod histogram;
mod kinds;
#[cfg(target_os = "linux")]
pub mod process;

pub use exposition::{CONTENT_TYPE, Exposition};
pub use histogram::LatencyHistogram;
pub use kinds::{
    BuildInfo, Counter, Gauge, GaugeHold, Metric, PartitionCounter, ReasonCounter, ReplayDurations,
};

use declare::declare_metrics;

/// One metric as declared: what `/metrics` and `/stats` call it and what it
/// means.
#[derive(Debug)]
pub struct Family {
    /// The field of [`Metrics`].
    pub field: &'static str,
    /// The Prometheus name, `crm_bridge_…`.
    pub name: &'static str,
    /// The Prometheus type: `counter`, `gauge` or `histogram`.
    pub kind: &'static str,
    /// Label names, in the order the type takes them.
    pub labels: &'static [&'static str],
    /// The Prometheus help, also the field's doc.
    pub help: &'static str,
}

impl Family {
    /// The key in `/stats`: the field's name in camelCase.
    pub fn stats_key(&self) -> String {
        let mut parts = self.field.split('_');
        let mut key = parts.next().unwrap_or_default().to_owned();
        for part in parts {
            let mut chars = part.chars();
            key.extend(chars.next().map(|c| c.to_ascii_uppercase()));
            key.push_str(chars.as_str());
        }
        key
    }
}

declare_metrics! {
    // The commit: `build.rs`.
    build_info: BuildInfo["version", "commit"] => "build_info",
        "The version and commit this binary was built from, valued 1.";
    records_consumed: Counter => "records_consumed_total",
        "Kafka records read by the live consumer.";
    records_decoded: Counter => "records_decoded_total",
        "Kafka records decoded into events.";
    decode_failures: ReasonCounter["reason"] => "decode_failures_total",
        "Undecodable Kafka records, skipped, by reason.";
    dead_lettered: Counter => "records_dead_lettered_total",
        "Undecodable records produced to the dead-letter topic.";
    dead_letter_failures: Counter => "dead_letter_failures_total",
        "Undecodable records the dead-letter topic did not take (skipped anyway).";
    consume_errors: Counter => "consume_errors_total",
        "Errors the live and replay consumers got past (librdkafka reconnects by itself).";
    // The kinds: `kafka/context.rs`.
    kafka_client_errors: ReasonCounter["kind"] => "kafka_client_errors_total",
        "Errors librdkafka reported for the bridge's Kafka clients, by kind (authentication, tls, authorization, other).";
    partition_resets: PartitionCounter["topic", "partition", "reason"] => "partition_resets_total",
        "Partitions whose log went backwards under live delivery (topic recreated, broker data lost), by reason.";
    events_routed: Counter => "events_routed_total",
        "Events that matched at least one client.";
    deliveries: Counter => "deliveries_total",
        "Events emitted to a socket.";
    dropped: ReasonCounter["reason"] => "events_dropped_total",
        "Events not delivered, by reason.";
    withheld: ReasonCounter["delivery"] => "deliveries_withheld_total",
        "Events matched by a subscription but not sent: the permissions policy does not show them to the subscriber, by delivery (live, replayed).";
    revoked: ReasonCounter["what"] => "revoked_total",
        "Subscriptions and room seats ended because a grant was revoked, by what (subscription, room).";
    grants: Gauge => "grants",
        "Grants and team memberships held from the permissions topic.";
    grant_records: ReasonCounter["outcome"] => "grant_records_total",
        "Permissions topic records read, by outcome (granted, revoked: a tombstone, undecodable: skipped and logged).";
    inbound_rate_limited: Counter => "inbound_rate_limited_total",
        "Inbound client events refused by the event rate limit (answered RATE_LIMITED, not handled).";
    clients_connected: Gauge => "clients_connected",
        "Socket.IO connections on this node.";
    subscriptions: Gauge => "subscriptions",
        "Active subscriptions on this node.";
    auth_failures: ReasonCounter["reason"] => "auth_failures_total",
        "Handshakes refused for their credentials, by reason.";
    replay_requests: Counter => "replay_requests_total",
        "Subscriptions resumed with a cursor.";
    replayed_events: Counter => "replayed_events_total",
        "Events sent by replays.";
    replay_reads: ReasonCounter["source"] => "replay_reads_total",
        "Partition ranges read by replays, by source (memory: recent records; kafka).";
    replays_cancelled: ReasonCounter["reason"] => "replays_cancelled_total",
        "Replays stopped early at the client's request, by reason (replaced: subscribed again with since; unsubscribed).";
    // The slots: `replay/slots.rs`.
    replays_running: Gauge => "replays_running",
        "Replays holding a replay slot: reading, at most replay.concurrency.";
    replays_waiting_for_slot: Gauge => "replays_waiting_for_slot",
        "Replays queued for a replay slot (node, organisation and user shares).";
    replays_waiting_for_socket: Gauge => "replays_waiting_for_socket",
        "Replays waiting, without a slot, for room in a client's full socket.";
    // The outcomes: `gateway/replay.rs`.
    replay_duration: ReplayDurations["outcome"] => "replay_duration_seconds",
        "Replays from the connection's worker taking one up to its end, by outcome (resumed, cancelled, client_gone, kafka_unavailable).";
    client_errors: ReasonCounter["code"] => "client_errors_total",
        "Error replies sent to clients, by error code.";
    cut_off: ReasonCounter["reason"] => "clients_cut_off_total",
        "Clients disconnected by the bridge, by reason.";
    connections_refused: ReasonCounter["reason"] => "connections_refused_total",
        "Connections refused by a connection limit or origin check, by reason.";
    room_seats: Gauge => "room_seats",
        "Socket memberships of collaboration rooms on this node.";
    presence_sent: Counter => "presence_records_sent_total",
        "Presence records produced to the presence topic.";
    presence_received: Counter => "presence_records_received_total",
        "Presence records read from the other nodes.";
    presence_failures: ReasonCounter["step"] => "presence_failures_total",
        "Presence records not sent, not readable or not received, by step.";
    delivery_latency: LatencyHistogram => "delivery_latency_seconds",
        "From a record's Kafka timestamp (CreateTime) to its hand-off to every matching socket, once per decoded live record.";
}

impl Metrics {
    pub fn decode_failed(&self, reason: &'static str) {
        self.decode_failures.inc(reason);
    }
}

#[cfg(test)]
mod tests;
