//! What monitoring relies on: `/metrics` is valid Prometheus text whose
//! counters move with what the bridge does, `/readyz` follows the broker,
//! and the deploy artefacts (alert rules, dashboard) are valid and name only
//! metrics the bridge exports. `promtool` (Debian package `prometheus`,
//! installed by `make deps`) judges the formats.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crm_bridge::domain::Action;
use serde_json::json;
use support::{Broker, Clients, TestBridge, eventually, token};

/// Watermarks looked up every second; not ready after 3 s without an answer.
fn fast_lag(config: &mut crm_bridge::config::Config) {
    config.kafka.lag_refresh_seconds = 1;
    config.kafka.ready_broker_silence_seconds = 3;
}

async fn scrape(bridge: &TestBridge) -> String {
    let response = reqwest::get(format!("{}/metrics", bridge.internal_url))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    response.text().await.unwrap()
}

/// The value of one series, e.g. `name{reason="x"}`, exactly as written.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

fn promtool(args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(support::repo_path(""))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; `make deps` installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.unwrap_or("").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{said}");
    said
}

/// Scrapes `/metrics` until `ok` holds for the text.
async fn wait_metrics(bridge: &TestBridge, what: &str, ok: impl Fn(&str) -> bool) -> String {
    eventually(what, async || scrape(bridge).await, |text| ok(text)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_valid_prometheus_text_and_move_with_events_drops_and_poison() {
    let broker = Broker::start();
    let bridge = TestBridge::start_with(&broker, |c| {
        fast_lag(c);
        // Two events at once, then refusals; the fourth refusal cuts off.
        c.guard.events_per_second = 1;
        c.guard.event_burst = 2;
        c.guard.flood_refusals = 4;
    })
    .await;
    let idle = scrape(&bridge).await;
    promtool(&["check", "metrics"], Some(&idle));
    assert_eq!(value(&idle, "crm_bridge_ready"), Some(1.0), "{idle}");
    assert_eq!(value(&idle, "crm_bridge_records_consumed_total"), Some(0.0));
    assert_eq!(value(&idle, "crm_bridge_replays_running"), Some(0.0));
    let version = env!("CARGO_PKG_VERSION");
    let build = format!(r#"crm_bridge_build_info{{version="{version}",commit=""#);
    assert!(idle.contains(&build), "{idle}");
    // The process collector's names, from /proc (Linux).
    let open = value(&idle, "process_open_fds").expect("process_open_fds");
    assert!(value(&idle, "process_max_fds") >= Some(open), "{idle}");
    assert!(value(&idle, "process_resident_memory_bytes") > Some(0.0));

    let mut clients = Clients::spawn().await;
    clients
        .connect("m", &bridge.url, json!({"token": token("user_m", "org-1")}))
        .await;
    clients
        .subscribe("m", json!({"resource": "deal", "id": "deal_m"}))
        .await;
    let producer = support::Producer::new(&broker);
    let good = support::avro::deal("org-1", "deal_m", "p", Action::Update, None);
    producer
        .send("crm.deals", "deal_m", b"{\"json\":true}")
        .await;
    producer.send("crm.deals", "deal_m", &good).await;
    assert_eq!(clients.event("m", "resource-update").await["id"], "deal_m");

    // Lag is looked up every second: it reaches zero once both are consumed.
    let text = wait_metrics(&bridge, "lag back to zero", |t| {
        value(t, "crm_bridge_records_consumed_total") == Some(2.0)
            && t.lines()
                .filter(|l| l.starts_with("crm_bridge_consumer_lag_records{"))
                .all(|l| l.ends_with(" 0"))
    })
    .await;
    let lag_series = text
        .lines()
        .filter(|l| l.starts_with("crm_bridge_consumer_lag_records{"))
        .count();
    assert_eq!(lag_series, 4 * 2, "every topic's two partitions:\n{text}");
    let lag = format!(
        r#"crm_bridge_consumer_lag_records{{topic="{}",partition="1"}}"#,
        broker.topic("crm.deals")
    );
    assert!(text.contains(&lag), "{lag}");
    for (series, expected) in [
        ("crm_bridge_records_decoded_total", 1.0),
        (
            r#"crm_bridge_decode_failures_total{reason="bad_magic"}"#,
            1.0,
        ),
        ("crm_bridge_events_routed_total", 1.0),
        ("crm_bridge_deliveries_total", 1.0),
        ("crm_bridge_clients_connected", 1.0),
        ("crm_bridge_subscriptions", 1.0),
        ("crm_bridge_delivery_latency_seconds_count", 1.0),
        (
            r#"crm_bridge_delivery_latency_seconds_bucket{le="+Inf"}"#,
            1.0,
        ),
    ] {
        assert_eq!(value(&text, series), Some(expected), "{series}:\n{text}");
    }
    // Produced a moment ago: well under the 30 s bucket.
    assert_eq!(
        value(
            &text,
            r#"crm_bridge_delivery_latency_seconds_bucket{le="30"}"#
        ),
        Some(1.0)
    );

    // /stats reads the same counters.
    let stats = bridge.stats().await;
    assert_eq!(stats["recordsConsumed"], 2);
    assert_eq!(stats["decodeFailures"]["bad_magic"], 1);
    assert_eq!(stats["deliveryLatency"]["count"], 1);
    assert_eq!(stats["ready"], true);
    assert_eq!(stats["consumerLag"].as_array().unwrap().len(), 8, "{stats}");

    // Over the event rate: dropped, then cut off as a flood.
    for _ in 0..8 {
        clients.emit("m", "ping", json!({})).await;
    }
    let gone = clients
        .wait_for("flooding client disconnected", |o| {
            o["client"] == "m" && o["type"] == "disconnect"
        })
        .await;
    assert_eq!(gone["reason"], "io server disconnect");
    let text = wait_metrics(&bridge, "the client gone", |t| {
        value(t, "crm_bridge_clients_connected") == Some(0.0)
    })
    .await;
    // Refusals are counted apart, not as drops.
    let rate_limited = value(&text, "crm_bridge_inbound_rate_limited_total");
    assert!(rate_limited >= Some(3.0), "{text}");
    assert!(!text.contains(r#"reason="rate_limited""#), "{text}");
    assert_eq!(
        bridge.stats().await["inboundRateLimited"].as_f64(),
        rate_limited
    );
    assert_eq!(
        value(&text, r#"crm_bridge_clients_cut_off_total{reason="flood"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(value(&text, "crm_bridge_subscriptions"), Some(0.0));
    promtool(&["check", "metrics"], Some(&text));
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_while_the_broker_does_not_answer_and_returns_after() {
    let broker = Broker::dedicated();
    let bridge = TestBridge::start_with(&broker, fast_lag).await;
    let readyz = format!("{}/readyz", bridge.internal_url);
    let check = || async {
        let response = reqwest::get(&readyz).await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    assert_eq!(check().await.0, 200);

    let watch = async {
        let what = "/readyz to fail with the broker frozen";
        let (_, body) = eventually(what, check, |(status, _)| *status == 503).await;
        (body, scrape(&bridge).await)
    };
    let (_, (body, text)) = tokio::join!(broker.stall(Duration::from_secs(8)), watch);
    assert!(body.starts_with("Kafka has not answered for"), "{body}");
    assert_eq!(value(&text, "crm_bridge_ready"), Some(0.0), "{text}");
    assert!(
        value(&text, "crm_bridge_broker_silence_seconds") >= Some(3.0),
        "{text}"
    );

    eventually("/readyz to pass again", check, |(status, _)| *status == 200).await;
    bridge.stop().await;
}

/// What the bridge's metric names start with: its own, and the process
/// collector's.
const PREFIXES: [&str; 2] = ["crm_bridge_", "process_"];

/// Every `crm_bridge_*` and `process_*` name in `text` (a prefix at the
/// start of a word), histogram suffixes removed.
fn metric_names(text: &str) -> Vec<String> {
    let word_start = |at: usize| {
        let before = text[..at].chars().next_back();
        !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let mut names: Vec<String> = PREFIXES
        .iter()
        .flat_map(|prefix| text.match_indices(prefix))
        .filter(|(at, _)| word_start(*at))
        .map(|(at, _)| {
            let name: String = text[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .filter(|base| base.ends_with("_seconds"))
                .map_or(name.clone(), str::to_owned)
        })
        .collect();
    // A bare prefix is prose (`process_*`), not a name.
    names.retain(|name| !PREFIXES.contains(&name.as_str()));
    names.sort_unstable();
    names.dedup();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_rules_pass_their_unit_tests_and_deploy_artefacts_name_exported_metrics() {
    let rules = "deploy/prometheus/crm-bridge-alerts.yml";
    promtool(&["check", "rules", rules], None);
    let tested = promtool(
        &[
            "test",
            "rules",
            "deploy/prometheus/crm-bridge-alerts.test.yml",
        ],
        None,
    );
    assert!(tested.contains("SUCCESS"), "{tested}");

    let dashboard_text = std::fs::read_to_string(support::repo_path(
        "deploy/grafana/crm-bridge-dashboard.json",
    ))
    .unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard_text).unwrap();
    assert!(
        dashboard["panels"]
            .as_array()
            .is_some_and(|p| p.len() >= 10)
    );

    // Every metric the artefacts query is one the bridge declares.
    let broker = Broker::start();
    let bridge = TestBridge::start(&broker).await;
    let exported = scrape(&bridge).await;
    let declared: Vec<&str> = exported
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next())
        .collect();
    let rules_text = std::fs::read_to_string(support::repo_path(rules)).unwrap();
    for artefact in [&rules_text, &dashboard_text] {
        for name in metric_names(artefact) {
            assert!(declared.contains(&name.as_str()), "{name} is not exported");
        }
    }
    // The operations guide's table names every exported metric, and only those.
    let guide = std::fs::read_to_string(support::repo_path("docs/operations.md")).unwrap();
    let documented = documented_metrics(&guide);
    for name in &declared {
        assert!(
            documented.iter().any(|d| d == name),
            "{name} is exported but not in docs/operations.md's metrics table"
        );
    }
    for name in &documented {
        assert!(
            declared.contains(&name.as_str()),
            "docs/operations.md lists {name}, which is not exported"
        );
    }
    bridge.stop().await;
}

/// The metric names of `guide`'s metrics table: each row's backticked
/// names, `_suffix` short for `crm_bridge_suffix` (in `crm_bridge_` rows),
/// labels (`{...}`) dropped.
fn documented_metrics(guide: &str) -> Vec<String> {
    let rows = guide.lines().map(str::trim_start).filter(|line| {
        PREFIXES
            .iter()
            .any(|p| line.starts_with(&format!("| `{p}")))
    });
    rows.flat_map(|row| {
        let cells: Vec<&str> = row.split('|').collect();
        let names = cells.get(1).copied().unwrap_or("");
        names
            .split('`')
            .skip(1)
            .step_by(2)
            .map(|name| {
                let name = name.split('{').next().unwrap();
                match name.strip_prefix('_') {
                    Some(short) => format!("crm_bridge_{short}"),
                    None => name.to_owned(),
                }
            })
            .collect::<Vec<_>>()
    })
    .collect()
}

/// Each alert of the rules file with its `runbook_url`, in order: the rules
/// file is ours, so a line scan does (`- alert:` opens a rule).
fn alerts_and_runbooks(rules: &str) -> Vec<(String, Option<String>)> {
    let mut alerts: Vec<(String, Option<String>)> = Vec::new();
    for line in rules.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("- alert: ") {
            alerts.push((name.to_owned(), None));
        } else if let Some(url) = line.strip_prefix("runbook_url: ") {
            let last = alerts.last_mut().expect("a runbook_url inside a rule");
            last.1 = Some(url.trim_matches('"').to_owned());
        }
    }
    alerts
}

#[test]
fn every_alert_has_a_runbook_section_and_a_unit_test() {
    let read = |path| std::fs::read_to_string(support::repo_path(path)).unwrap();
    let rules = read("deploy/prometheus/crm-bridge-alerts.yml");
    let tests = read("deploy/prometheus/crm-bridge-alerts.test.yml");
    let runbook = read("docs/runbook.md");
    // One section per alert, under its name: GitHub's anchor is the
    // heading in lower case.
    let sections: Vec<&str> = runbook
        .lines()
        .filter_map(|line| line.strip_prefix("## "))
        .collect();
    let alerts = alerts_and_runbooks(&rules);
    assert!(alerts.len() >= 9, "{alerts:?}");
    // The repository's URL is Cargo.toml's, written once.
    let base = format!(
        "{}/blob/main/docs/runbook.md#",
        env!("CARGO_PKG_REPOSITORY")
    );
    for (alert, url) in &alerts {
        let url = url
            .as_deref()
            .unwrap_or_else(|| panic!("{alert} has no runbook_url"));
        let anchor = url
            .strip_prefix(&base)
            .unwrap_or_else(|| panic!("{url}: not under {base}"));
        assert_eq!(anchor, alert.to_lowercase(), "{alert}'s runbook_url");
        assert!(
            sections.contains(&alert.as_str()),
            "docs/runbook.md has no ## {alert}"
        );
        let tested = format!("alertname: {alert}\n");
        assert!(
            tests.contains(&tested),
            "crm-bridge-alerts.test.yml does not test {alert}"
        );
    }
    for section in sections {
        assert!(
            alerts.iter().any(|(alert, _)| alert == section),
            "docs/runbook.md's section {section} is no alert"
        );
    }
}
