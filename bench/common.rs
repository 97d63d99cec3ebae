//! What the single-purpose benchmarks (latency, replay, typing) share beside
//! the test harness: settings to compare, and the cost of a bridge at rest.
//!
//! `BENCH_KAFKA_PROPERTIES="fetch.wait.max.ms=500,fetch.max.bytes=1048576"`
//! adds librdkafka properties to the bridge's `kafka.properties` (applied
//! last, so to every consumer, presence's too), to measure a default against
//! another value in the same benchmark.
#![allow(dead_code)] // each benchmark uses a different part

use std::process::Command;
use std::time::Duration;

use crm_bridge::config::Config;

/// Applies `BENCH_KAFKA_PROPERTIES` to `config`.
pub fn kafka_properties_from_env(config: &mut Config) {
    let Ok(list) = std::env::var("BENCH_KAFKA_PROPERTIES") else {
        return;
    };
    for pair in list.split(',').filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .expect("BENCH_KAFKA_PROPERTIES is key=value,key=value");
        config.kafka.properties.insert(key.into(), value.into());
    }
}

/// The kafka properties a run compared, for its output.
pub fn settings_label() -> String {
    std::env::var("BENCH_KAFKA_PROPERTIES").unwrap_or_else(|_| "defaults".into())
}

/// What a bridge costs while nothing is produced and nobody asks anything.
pub struct AtRest {
    /// Requests this process's Kafka clients sent per second (TCP data
    /// segments toward the broker: one per request, as idle requests are small).
    pub requests_per_second: f64,
    /// CPU of this process (the bridge and the benchmark's idle producer).
    pub bridge_core_share: f64,
    /// CPU of the broker.
    pub broker_core_share: f64,
}

/// Measures [`AtRest`] over `window`. Every client of `broker_addr`'s node
/// lives in this process (the harness runs a node per benchmark binary).
pub async fn at_rest(broker_addr: &str, window: Duration) -> AtRest {
    let port = broker_addr.rsplit_once(':').expect("host:port").1;
    let broker_pid = shell(&format!("ss -ltnpH 'sport = :{port}'"))
        .split("pid=")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .expect("the broker's pid (ss -ltnp)")
        .to_owned();
    let before = (
        segments_to(port),
        cpu_seconds("self"),
        cpu_seconds(&broker_pid),
    );
    tokio::time::sleep(window).await;
    let seconds = window.as_secs_f64();
    AtRest {
        requests_per_second: (segments_to(port) - before.0) as f64 / seconds,
        bridge_core_share: (cpu_seconds("self") - before.1) / seconds,
        broker_core_share: (cpu_seconds(&broker_pid) - before.2) / seconds,
    }
}

fn shell(command: &str) -> String {
    let output = Command::new("sh").args(["-c", command]).output().unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Data segments sent so far on every connection to local `port`.
fn segments_to(port: &str) -> u64 {
    shell(&format!("ss -tinH state established 'dport = :{port}'"))
        .split_whitespace()
        .filter_map(|field| field.strip_prefix("data_segs_out:"))
        .map(|n| n.parse::<u64>().unwrap())
        .sum()
}

/// User + system CPU seconds of process `pid` (every thread).
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = stat.rsplit_once(')').unwrap().1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}
