//! The dashboard (`web/`) in a real browser: Debian's headless Chromium,
//! driven by playwright-core (`tests/browser/dashboard.mjs`), against the
//! bridge in dev mode behind a TCP proxy (the network the test can cut),
//! with a real broker and an independent producer. Screenshots go to
//! `target/test-artifacts/dashboard/`.
//!
//! Also: the page and its files are served by the bridge, and the dev
//! sign-in exists only in dev mode with the dev secret.

mod support;

use std::time::Duration;

use crm_bridge::auth::DEV_JWT_SECRET;
use serde_json::{Value, json};
use support::browser::{dev_mode, run_scenario};
use support::proxy::Proxy;
use support::{Broker, Producer, TestBridge, repo_path};

/// The whole browser scenario; each of its steps waits for a condition.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_watch_a_pipeline_live_a_third_org_sees_none_of_it_and_drops_recover() {
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
    let args = [proxy.url.as_str(), artifacts.to_str().unwrap()];
    run_scenario("dashboard.mjs", &args, &producer, &proxy, SCENARIO_TIMEOUT).await;
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
