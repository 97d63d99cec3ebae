//! A browser scenario: a Node script of `tests/browser/` driving Debian's
//! headless Chromium (playwright-core) against a bridge behind a
//! [`Proxy`], which asks the Rust test, one JSON line on stdout each, for
//! what only the test can do (produce a record, cut or restore the
//! network) and waits for `{"done": n}` on stdin, until it prints
//! `{"passed": true}`. Its `{"log": ...}` lines are echoed.

use std::process::Stdio;
use std::time::Duration;

use crm_bridge::auth::{DEV_JWT_SECRET, Secret};
use crm_bridge::config::Config;
use crm_bridge::domain::{Action, ResourceKind};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use super::proxy::Proxy;
use super::{Producer, avro, repo_path};

/// Dev mode with the dev secret: the bridge's dev sign-in (`/dev/token`),
/// which the browser scenarios sign in with.
pub fn dev_mode(config: &mut Config) {
    config.dev_mode = true;
    config.auth.jwt.hs_secret = Some(Secret::new(DEV_JWT_SECRET));
}

/// Runs `script` (under `tests/browser/`) with `args` until it passes;
/// panics with what failed (its error is on stderr, above).
pub async fn run_scenario(
    script: &str,
    args: &[&str],
    producer: &Producer,
    proxy: &Proxy,
    timeout: Duration,
) {
    assert!(
        repo_path("tests/browser/node_modules/playwright-core").exists(),
        "run `make deps` (npm ci in tests/browser, Debian's chromium)"
    );
    let mut browser = Command::new("node")
        .arg(repo_path(&format!("tests/browser/{script}")))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starting node");
    let mut stdin = browser.stdin.take().unwrap();
    let mut lines = BufReader::new(browser.stdout.take().unwrap()).lines();
    let scenario = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let message: Value =
                serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
            if message["passed"] == true {
                return true;
            }
            if let Some(log) = message["log"].as_str() {
                eprintln!("[browser] {log}");
                continue;
            }
            perform(&message, producer, proxy).await;
            let done = format!("{}\n", json!({ "done": message["n"] }));
            stdin.write_all(done.as_bytes()).await.unwrap();
        }
        false
    };
    let passed = tokio::time::timeout(timeout, scenario)
        .await
        .unwrap_or_else(|_| panic!("the browser scenario {script} timed out"));
    let status = browser.wait().await.unwrap();
    assert!(
        passed && status.success(),
        "the browser scenario {script} failed ({status}); see its error above"
    );
}

/// Does what the browser scenario asks: produce a record, or cut or restore
/// the network between the browser and the bridge.
async fn perform(ask: &Value, producer: &Producer, proxy: &Proxy) {
    let text = |field: &str| {
        ask[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field} missing in {ask}"))
    };
    match text("ask") {
        "deal" => {
            let (deal, changes) = (text("deal"), ask["changes"].as_object().unwrap());
            let record = avro::deal_with(
                text("org"),
                deal,
                text("pipeline"),
                Action::parse_for(ResourceKind::Deal, text("action")).unwrap(),
                None,
                changes,
            );
            producer.send("crm.deals", deal, &record).await;
        }
        "stage" => {
            let deal = text("deal");
            let stages = Some((text("from"), text("to")));
            let record = avro::deal(
                text("org"),
                deal,
                text("pipeline"),
                Action::StageChange,
                stages,
            );
            producer.send("crm.deals", deal, &record).await;
        }
        "contact" => {
            let contact = text("contact");
            let changes: Vec<(&str, &str)> = ask["changes"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(field, value)| (field.as_str(), value.as_str().unwrap()))
                .collect();
            let record = avro::contact(text("org"), contact, Action::Update, "user_bob", &changes);
            producer.send("crm.contacts", contact, &record).await;
        }
        "email" => {
            let record = avro::email(text("org"), text("thread"), None, text("subject"));
            producer.send("crm.email", text("thread"), &record).await;
        }
        "notification" => {
            let record = avro::notification(text("org"), text("user"), text("title"));
            producer
                .send("crm.notifications", text("user"), &record)
                .await;
        }
        "burst" => {
            for i in 0..ask["count"].as_u64().unwrap() {
                let deal = format!("deal_acme_{}", 1 + i % 3);
                let changes = json!({ "value": 10_000 + i * 250 });
                let record = avro::deal_with(
                    text("org"),
                    &deal,
                    text("pipeline"),
                    Action::Update,
                    None,
                    changes.as_object().unwrap(),
                );
                producer.send("crm.deals", &deal, &record).await;
                // Spread over a few seconds, so the charts draw a shape.
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        }
        "network-down" => proxy.down(),
        "network-up" => proxy.up(),
        other => panic!("the browser scenario asked for {other}"),
    }
}
