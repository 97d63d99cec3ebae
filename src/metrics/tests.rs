use std::collections::BTreeSet;
use std::time::Duration;

use super::*;

/// Metrics with a sample in every family that has labels.
fn touched() -> Metrics {
    let metrics = Metrics::default();
    metrics.decode_failed("bad_magic");
    metrics.kafka_client_errors.inc("tls");
    metrics.partition_resets.inc("crm.deals", 3, "truncated");
    metrics.dropped.inc("slow_client");
    metrics.withheld.inc("live");
    metrics.revoked.inc("subscription");
    metrics.grant_records.inc("granted");
    metrics.auth_failures.inc("missing");
    metrics.replay_reads.inc("memory");
    metrics.replays_cancelled.inc("replaced");
    metrics.client_errors.inc("RATE_LIMITED");
    metrics.cut_off.inc("flood");
    metrics.connections_refused.inc("origin");
    metrics.presence_failures.inc("send");
    metrics.delivery_latency.observe(Duration::from_millis(3));
    metrics
        .replay_duration
        .observe("resumed", Duration::from_millis(40));
    metrics
}

#[test]
fn metrics_render_every_declared_family_and_no_other() {
    let mut out = Exposition::default();
    touched().render(&mut out);
    let text = out.finish();
    let mut lines = text.lines().peekable();
    let mut rendered = Vec::new();
    while let Some(help) = lines.next() {
        let (name, help) = help
            .strip_prefix("# HELP ")
            .and_then(|rest| rest.split_once(' '))
            .unwrap_or_else(|| panic!("a family starts with # HELP: {help}"));
        let kind = lines.next().unwrap();
        let kind = kind.strip_prefix(&format!("# TYPE {name} ")).unwrap();
        let mut labels = BTreeSet::new();
        while let Some(sample) = lines.next_if(|line| !line.starts_with('#')) {
            assert!(sample.starts_with(name), "{sample} under {name}");
            let inside = sample
                .split_once('{')
                .map(|(_, rest)| rest.split_once('}').unwrap().0);
            for pair in inside.into_iter().flat_map(|labels| labels.split(',')) {
                labels.insert(pair.split_once('=').unwrap().0.to_owned());
            }
        }
        rendered.push((name.to_owned(), kind.to_owned(), help.to_owned(), labels));
    }
    let declared: Vec<_> = Metrics::catalogue()
        .iter()
        .map(|family| {
            let mut labels: BTreeSet<_> = family.labels.iter().map(|l| l.to_string()).collect();
            if family.kind == "histogram" {
                labels.insert("le".into());
            }
            let help = family.help.to_owned();
            (family.name.to_owned(), family.kind.to_owned(), help, labels)
        })
        .collect();
    assert_eq!(rendered, declared);
}

#[test]
fn stats_keys_are_the_declared_fields_in_camel_case() {
    let stats = touched().snapshot();
    let keys: BTreeSet<_> = stats.as_object().unwrap().keys().cloned().collect();
    let declared: BTreeSet<_> = Metrics::catalogue().iter().map(Family::stats_key).collect();
    assert_eq!(keys, declared);
    assert_eq!(stats["recordsConsumed"], 0);
    assert_eq!(stats["decodeFailures"]["bad_magic"], 1);
    assert_eq!(stats["replaysWaitingForSlot"], 0);
    assert_eq!(stats["deliveryLatency"]["count"], 1);
    assert_eq!(stats["replayDuration"]["resumed"]["count"], 1);
    assert_eq!(stats["buildInfo"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        stats["partitionResets"],
        serde_json::json!([{"topic": "crm.deals", "partition": 3, "reason": "truncated", "count": 1}])
    );
}

#[test]
fn names_are_unique_and_conventional() {
    let catalogue = Metrics::catalogue();
    let names: BTreeSet<_> = catalogue.iter().map(|family| family.name).collect();
    assert_eq!(names.len(), catalogue.len());
    for family in catalogue {
        assert!(family.name.starts_with("crm_bridge_"), "{}", family.name);
        let total = family.name.ends_with("_total");
        assert_eq!(
            total,
            family.kind == "counter",
            "{}: _total iff a counter",
            family.name
        );
        assert!(
            family.help.ends_with('.'),
            "{}: help is a sentence",
            family.name
        );
    }
}

#[test]
fn a_labelled_histogram_writes_its_label_on_every_sample() {
    let mut out = Exposition::default();
    touched().render(&mut out);
    let text = out.finish();
    let name = "crm_bridge_replay_duration_seconds";
    let samples: Vec<_> = text.lines().filter(|l| l.starts_with(name)).collect();
    assert!(
        samples.contains(
            &r#"crm_bridge_replay_duration_seconds_bucket{outcome="resumed",le="0.01"} 0"#
        )
    );
    assert!(
        samples.contains(
            &r#"crm_bridge_replay_duration_seconds_bucket{outcome="resumed",le="0.05"} 1"#
        )
    );
    assert!(
        samples.contains(
            &r#"crm_bridge_replay_duration_seconds_bucket{outcome="resumed",le="+Inf"} 1"#
        )
    );
    assert!(samples.contains(&r#"crm_bridge_replay_duration_seconds_count{outcome="resumed"} 1"#));
    assert!(
        samples.iter().all(|s| s.contains(r#"outcome="resumed""#)),
        "{samples:?}"
    );
}

#[test]
fn build_info_names_the_version_and_a_commit() {
    let mut out = Exposition::default();
    Metrics::default().render(&mut out);
    let text = out.finish();
    let info = text
        .lines()
        .find(|l| l.starts_with("crm_bridge_build_info{"))
        .unwrap();
    let version = env!("CARGO_PKG_VERSION");
    let prefix = format!(r#"crm_bridge_build_info{{version="{version}",commit=""#);
    let commit = info
        .strip_prefix(&prefix)
        .unwrap()
        .strip_suffix(r#""} 1"#)
        .unwrap();
    assert!(!commit.is_empty() && !commit.contains('"'), "{info}");
}
