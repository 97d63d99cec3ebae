//! The scenarios of issue 7, each run against crm-bridge, the Node peer and
//! Centrifugo with the same load, one server at a time on the server core.
//! Centrifugo's history recovers at most 300 missed publications and does
//! not outlive a restart, so it runs replay only at that depth and sits out
//! the restart storm (the table says why).

pub mod fanout;
pub mod idle;
pub mod ingest;
pub mod replay;
pub mod restart;
pub mod selective;

use serde_json::{Value, json};

use std::time::Duration;

use crate::load::{ClientSpec, Fleet, RAMP, Totals};
use crate::servers::Server;
use crate::support::token;

pub const ORG: &str = "org-bench";

/// Sizes, overridable for a quick run: `BENCH_CLIENTS` (10,000),
/// `BENCH_SECONDS` per measured phase (10).
pub struct Scale {
    pub clients: usize,
    pub seconds: u64,
}

impl Scale {
    pub fn from_env() -> Self {
        let read = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        Self {
            clients: read("BENCH_CLIENTS", 10_000) as usize,
            seconds: read("BENCH_SECONDS", 10),
        }
    }
}

pub fn pipeline_subscription(pipeline: &str) -> Value {
    json!({"resource": "deal", "filter": {"pipelineId": pipeline}})
}

pub fn deal_subscription(deal: &str) -> Value {
    json!({"resource": "deal", "id": deal})
}

/// The user client `index` signs in as.
pub fn user_of(index: usize) -> String {
    format!("user_{index}")
}

/// Client `index`, a user of its own in [`ORG`].
pub fn client(
    index: usize,
    subscriptions: Vec<Value>,
    allowed_ids: Option<Vec<String>>,
) -> ClientSpec {
    ClientSpec {
        auth: json!({"token": token(&user_of(index), ORG)}),
        subscriptions,
        allowed_ids,
    }
}

/// `clients` clients, each subscribed to `pipeline`, connected and
/// acknowledged (ramped at [`RAMP`]).
pub async fn pipeline_fleet(server: &Server, clients: usize, pipeline: &str) -> Fleet {
    let specs = (0..clients)
        .map(|i| client(i, vec![pipeline_subscription(pipeline)], None))
        .collect();
    let mut fleet = Fleet::new(&server.url, server.protocol(), specs);
    fleet
        .connect_all(false, RAMP, Duration::from_secs(180))
        .await;
    fleet
}

/// Compares what each client received with what it should have; `None` if
/// every client got exactly its events, else what went wrong.
pub fn check(fleet: &Fleet, expected: impl Fn(usize) -> u64) -> Option<String> {
    let totals: Totals = fleet.totals();
    let received = fleet.received_by_client();
    let missing: u64 = received
        .iter()
        .enumerate()
        .map(|(client, got)| expected(client).saturating_sub(*got))
        .sum();
    let extra: u64 = received
        .iter()
        .enumerate()
        .map(|(client, got)| got.saturating_sub(expected(client)))
        .sum();
    let mut problems = Vec::new();
    for (count, what) in [
        (missing, "lost"),
        (extra, "extra"),
        (totals.repeated, "repeated"),
        (totals.misrouted, "misrouted"),
        (totals.errors, "errors"),
    ] {
        if count > 0 {
            problems.push(format!("{count} {what}"));
        }
    }
    (!problems.is_empty()).then(|| format!("LOSSY: {}", problems.join(", ")))
}
