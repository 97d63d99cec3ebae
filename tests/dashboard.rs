//! The dashboard (`web/`) in a real browser: Debian's headless Chromium,
//! driven by playwright-core (`tests/browser/dashboard.mjs`), against the
//! bridge in dev mode behind a TCP proxy (the network the test can cut),
//! with a real broker and an independent producer. Screenshots go to
//! `target/test-artifacts/dashboard/`.
//!
//! Also: the page and its files are served by the bridge, and the dev
//! sign-in exists only in dev mode with the dev secret.

mod support;

use std::process::Stdio;
use std::time::Duration;

use crm_bridge::auth::{DEV_JWT_SECRET, Secret};
use crm_bridge::config::Config;
use crm_bridge::domain::{Action, ResourceKind};
use serde_json::{Value, json};
use support::proxy::Proxy;
use support::{Broker, Producer, TestBridge, avro, repo_path};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

/// The whole browser scenario; each of its steps waits for a condition.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(300);

fn dev_mode(config: &mut Config) {
    config.dev_mode = true;
    config.auth.jwt.hs_secret = Some(Secret::new(DEV_JWT_SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_watch_a_pipeline_live_a_third_org_sees_none_of_it_and_drops_recover() {
    let script = repo_path("tests/browser/dashboard.mjs");
    assert!(
        repo_path("tests/browser/node_modules/playwright-core").exists(),
        "run `make deps` (npm ci in tests/browser, Debian's chromium)"
    );
    let broker = Broker::start();
    // No leeway: the scenario's short-lived session lapses at once.
    let bridge = TestBridge::start_with(&broker, |c| {
        dev_mode(c);
        c.auth.jwt.leeway_seconds = 0;
    })
    .await;
    let proxy = Proxy::start(bridge.addr()).await;
    let producer = Producer::new(&broker);
    let artifacts = repo_path("target/test-artifacts/dashboard");

    let mut browser = Command::new("node")
        .arg(script)
        .arg(&proxy.url)
        .arg(&artifacts)
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
            perform(&message, &producer, &proxy).await;
            let done = format!("{}\n", json!({ "done": message["n"] }));
            stdin.write_all(done.as_bytes()).await.unwrap();
        }
        false
    };
    let passed = tokio::time::timeout(SCENARIO_TIMEOUT, scenario)
        .await
        .expect("the browser scenario timed out");
    let status = browser.wait().await.unwrap();
    assert!(
        passed && status.success(),
        "the browser scenario failed ({status}); see its error above"
    );
    for shot in [
        "board-laptop",
        "board-phone",
        "deal-typing-phone",
        "recovered",
        "ops-laptop",
    ] {
        assert!(
            artifacts.join(format!("{shot}.png")).exists(),
            "no {shot}.png"
        );
    }
    bridge.stop().await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_serves_the_dashboard_and_dev_tokens_only_in_dev_mode() {
    let broker = Broker::start();
    let http = reqwest::Client::new();
    let token_request = json!({ "user": "user_alice", "name": "Alice Martin", "org": "org-acme" });

    // Production configuration: the page, but no dev sign-in.
    let production = TestBridge::start(&broker).await;
    let page = http.get(&production.url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    assert!(page.text().await.unwrap().contains("/web/app.js"));
    let vendored = http
        .get(format!(
            "{}/web/vendor/socket.io.esm.min.js",
            production.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(vendored.status(), 200);
    assert!(
        vendored.text().await.unwrap().contains("export{"),
        "socket.io-client's browser build is not built in: run `make deps`, then build again"
    );
    let missing = http
        .get(format!("{}/web/nothing.js", production.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_dev_sign_in_absent(&http, &production.url, &token_request).await;
    production.stop().await;

    // dev_mode with a real secret: still no dev tokens.
    let real_secret = TestBridge::start_with(&broker, |c| c.dev_mode = true).await;
    assert_dev_sign_in_absent(&http, &real_secret.url, &token_request).await;
    real_secret.stop().await;

    // dev_mode and the dev secret: the demo users, and tokens for them.
    let dev = TestBridge::start_with(&broker, dev_mode).await;
    let users: Value = http
        .get(format!("{}/dev/users", dev.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(users["organizations"][0]["id"], "org-acme");
    assert_eq!(
        users["organizations"][0]["users"][0]["name"],
        "Alice Martin"
    );
    let signed: Value = http
        .post(format!("{}/dev/token", dev.url))
        .json(&token_request)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let claims = jsonwebtoken::decode::<Value>(
        signed["token"].as_str().unwrap(),
        &jsonwebtoken::DecodingKey::from_secret(DEV_JWT_SECRET.as_bytes()),
        &jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256),
    )
    .unwrap()
    .claims;
    assert_eq!(
        (&claims["sub"], &claims["organizationId"], &claims["name"]),
        (
            &json!("user_alice"),
            &json!("org-acme"),
            &json!("Alice Martin")
        )
    );
    let empty = http
        .post(format!("{}/dev/token", dev.url))
        .json(&json!({ "user": "", "name": "x", "org": "org-acme" }))
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 400);
    dev.stop().await;
}

async fn assert_dev_sign_in_absent(http: &reqwest::Client, url: &str, request: &Value) {
    let users = http.get(format!("{url}/dev/users")).send().await.unwrap();
    assert_eq!(users.status(), 404, "GET /dev/users at {url}");
    let token = http
        .post(format!("{url}/dev/token"))
        .json(request)
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 404, "POST /dev/token at {url}");
}
