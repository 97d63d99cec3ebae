//! The seed's client snippets (docs/websocket-api.md), run verbatim by
//! `tests/client/seed_page.mjs` with the stock socket.io-client against the
//! bridge and a real broker, get what they expect: "Error Recovery" for
//! `UNAUTHORIZED` (a refused handshake, a token expiring while connected)
//! and `RATE_LIMITED`, and the "Best Practices" re-subscription across a
//! reconnect. Where a snippet cannot work as written, the page applies the
//! fix that client/README.md ("The seed's snippets") documents, and only it.

mod support;

use serde_json::{Value, json};
use support::bridge::{TEST_SECRET, expired_token};
use support::proxy::Proxy;
use support::semantics::assert_exactly_once_in_order;
use support::{Broker, Clients, Producer, TestBridge, token};

const PAGE: &str = "tests/client/seed_page.mjs";
const PIPELINE: &str = "pipeline_seed";

fn snippet(heading: &str) -> Value {
    json!({ "heading": heading, "index": 0 })
}

/// A page to open: the seed's `snippets` in one script after `glue` (the
/// page's own code, which defines `exports`), on the stock client or
/// (`module`) the client module.
#[derive(Default)]
struct Page<'a> {
    name: &'a str,
    url: &'a str,
    auth: Value,
    module: bool,
    snippets: Value,
    glue: &'a str,
    exports: &'a [&'a str],
}

impl<'a> Page<'a> {
    /// A page running the seed's "Error Recovery" alone.
    fn error_recovery(name: &'a str, url: &'a str, auth: Value) -> Self {
        let snippets = json!([snippet("Error Recovery")]);
        Page {
            name,
            url,
            auth,
            snippets,
            ..Page::default()
        }
    }

    async fn open(self, pages: &mut Clients) {
        let Page {
            name,
            url,
            auth,
            module,
            snippets,
            glue,
            exports,
        } = self;
        pages
            .send(json!({
                "op": "open", "client": name, "url": url, "auth": auth, "module": module,
                "snippets": snippets, "glue": glue, "exports": exports,
            }))
            .await;
    }
}

/// Waits for the page's `refreshAuthToken()` and answers it with `token`.
async fn refresh_with(pages: &mut Clients, name: &str, token: String) {
    pages
        .wait_for(&format!("{name} refreshing its token"), |o| {
            o["client"] == name && o["type"] == "token-wanted"
        })
        .await;
    pages
        .send(json!({"op": "token", "client": name, "token": token}))
        .await;
}

async fn act(pages: &mut Clients, name: &str, event: &str, data: Value) -> Value {
    pages
        .send(json!({"op": "act", "client": name, "event": event, "data": data}))
        .await;
    let ack = pages
        .wait_for(&format!("{name}'s {event} acknowledged"), |o| {
            o["client"] == name && o["type"] == "ack" && o["ref"] == "act"
        })
        .await;
    ack["data"].clone()
}

fn pipeline() -> Value {
    json!({"resource": "deal", "filter": {"pipelineId": PIPELINE}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_recovery_reconnects_a_refused_handshake_with_a_fresh_token() {
    let broker = Broker::start();
    let bridge = TestBridge::start(&broker).await;
    let producer = Producer::new(&broker);
    let mut pages = Clients::spawn_script(PAGE).await;
    for (name, auth) in [
        (
            "expired",
            json!({"token": expired_token("user_e", "org-1")}),
        ),
        ("forged", json!({"token": "not-a-jwt"})),
        ("none", json!({})),
    ] {
        Page::error_recovery(name, &bridge.url, auth)
            .open(&mut pages)
            .await;
        // Asked before the handshake's outcome (socket.io-client sends it on
        // `connect`): it goes unanswered, and changes nothing of the refusal.
        pages
            .send(json!({"op": "act", "client": name, "event": "subscribe", "data": pipeline()}))
            .await;
        let refused = pages.refusal(name).await;
        assert_eq!(refused["code"], "UNAUTHORIZED", "{name}: {refused}");
        refresh_with(&mut pages, name, token("user_e", "org-1")).await;
        assert_eq!(pages.event(name, "connected").await["userId"], "user_e");
        assert_eq!(
            act(&mut pages, name, "subscribe", pipeline()).await["ok"],
            true
        );
    }
    producer.send_deal_seqs(PIPELINE, 0..1).await;
    for name in ["expired", "forged", "none"] {
        assert_eq!(pages.deliveries(name, 1).await[0]["data"]["seq"], 0);
    }
    bridge.stop().await;
}

/// With the client module, a page whose token expires is cut off; the
/// snippet refreshes the token, which the first time is refused too (a
/// stale one), then succeeds: the page resumes, and what was produced while
/// it was away arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_recovery_after_a_token_expires_resumes_with_the_client_module() {
    let broker = Broker::start();
    let bridge = TestBridge::start_with(&broker, |c| c.auth.jwt.leeway_seconds = 0).await;
    let producer = Producer::new(&broker);
    let mut pages = Clients::spawn_script(PAGE).await;
    let short = crm_bridge::auth::sign_dev_token(TEST_SECRET, "user_x", "X", "org-1", 2);
    let auth = json!({"token": short});
    Page {
        module: true,
        ..Page::error_recovery("page", &bridge.url, auth)
    }
    .open(&mut pages)
    .await;
    pages.event("page", "connected").await;
    assert_eq!(
        act(&mut pages, "page", "subscribe", pipeline()).await["ok"],
        true
    );
    producer.send_deal_seqs(PIPELINE, 0..10).await;
    let mut received = pages.deliveries("page", 10).await;

    let cut = pages.event("page", "error").await;
    assert_eq!(cut["details"]["reason"], "token_expired", "{cut}");
    let gone = pages
        .wait_for("the cut-off", |o| {
            o["client"] == "page" && o["type"] == "disconnect"
        })
        .await;
    assert_eq!(gone["reason"], "io server disconnect");
    // Away: what is produced now is resumed later.
    producer.send_deal_seqs(PIPELINE, 10..20).await;
    refresh_with(&mut pages, "page", expired_token("user_x", "org-1")).await;
    let stale = pages.refusal("page").await;
    assert_eq!(stale["code"], "UNAUTHORIZED", "{stale}");
    refresh_with(&mut pages, "page", token("user_x", "org-1")).await;
    pages.event("page", "connected").await;
    let report = pages.recovered("page").await;
    assert_eq!(report["data"]["recovered"], true, "{report}");
    producer.send_deal_seqs(PIPELINE, 20..25).await;
    received.extend(pages.deliveries("page", 15).await);
    assert_exactly_once_in_order(&received, 0..25);
    bridge.stop().await;
}

/// Over the event rate, the page gets `RATE_LIMITED` with a top-level
/// `retryAfter`; the snippet's `retryLastAction()` runs that long after and
/// is admitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_recovery_retries_a_rate_limited_action_after_retry_after() {
    let broker = Broker::start();
    let bridge = TestBridge::start_with(&broker, |c| {
        c.guard.events_per_second = 10;
        c.guard.event_burst = 10;
    })
    .await;
    let mut pages = Clients::spawn_script(PAGE).await;
    let auth = json!({"token": token("user_r", "org-1")});
    Page::error_recovery("page", &bridge.url, auth)
        .open(&mut pages)
        .await;
    pages.event("page", "connected").await;

    pages
        .send(json!({"op": "act", "client": "page", "event": "ping", "data": {}, "count": 15}))
        .await;
    let limited = pages
        .wait_for("the rate limit's error", |o| {
            o["client"] == "page" && o["type"] == "event" && o["event"] == "error"
        })
        .await;
    let error = &limited["data"];
    assert_eq!(error["code"], "RATE_LIMITED", "{error}");
    let retry_after = error["retryAfter"]
        .as_f64()
        .expect("a top-level retryAfter");
    let retried = pages
        .wait_for("retryLastAction()", |o| {
            o["client"] == "page" && o["type"] == "retried"
        })
        .await;
    let waited = retried["at"].as_f64().unwrap() - limited["at"].as_f64().unwrap();
    assert!(
        waited >= retry_after - 1.0,
        "retried {waited} ms after, not {retry_after}"
    );
    let again = pages
        .wait_for("the retry's acknowledgement", |o| {
            o["client"] == "page" && o["type"] == "ack" && o["ref"] == "retry"
        })
        .await;
    assert_eq!(again["data"]["ok"], true, "{again}");
    bridge.stop().await;
}

/// The page's own part of "Best Practices": re-subscribing, from the
/// subscriptions "Subscription Management" tracks.
const RESUBSCRIBE: &str = r#"
function resubscribeToResources() {
  subscriptions.forEach(({ resource, id, events }) => {
    socket.emit('subscribe', { resource, id, events }, (reply) => report('resubscribed', reply));
  });
}
"#;

/// socket.io-client 4 emits `reconnect` on the Manager (`socket.io`), never
/// on the socket: the fix client/README.md documents.
const RECONNECT_ON_THE_MANAGER: [&str; 2] = ["socket.on('reconnect'", "socket.io.on('reconnect'"];

/// "Connection Management" and "Subscription Management" together, with the
/// stock client, through a connection cut: the page re-subscribes on
/// `connect` and gets its events again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn best_practices_resubscribe_after_a_reconnect() {
    let broker = Broker::start();
    let bridge = TestBridge::start(&broker).await;
    let proxy = Proxy::start(bridge.addr()).await;
    let producer = Producer::new(&broker);
    let mut pages = Clients::spawn_script(PAGE).await;
    let snippets = json!([
        {"heading": "Connection Management", "index": 0, "fixes": [RECONNECT_ON_THE_MANAGER]},
        snippet("Subscription Management"),
    ]);
    let auth = json!({"token": token("user_b", "org-1")});
    Page {
        name: "page",
        url: &proxy.url,
        auth,
        snippets,
        glue: RESUBSCRIBE,
        exports: &["subscribeToResource"],
        ..Page::default()
    }
    .open(&mut pages)
    .await;
    pages.event("page", "connected").await;
    pages
        .send(json!({"op": "call", "client": "page", "name": "subscribeToResource", "args": ["deal", "deal_b", ["update"]]}))
        .await;
    // The snippet asks for no acknowledgement: the bridge counts it.
    bridge
        .stats_until("the page's subscription", |s| s["subscriptions"] == 1)
        .await;
    let deal = |seq| support::avro::deal_seq("org-1", "deal_b", PIPELINE, seq);
    producer.send("crm.deals", "deal_b", &deal(0)).await;
    assert_eq!(pages.deliveries("page", 1).await[0]["data"]["seq"], 0);

    proxy.switch(bridge.addr());
    let gone = pages
        .wait_for("the cut", |o| {
            o["client"] == "page" && o["type"] == "disconnect"
        })
        .await;
    assert_ne!(
        gone["reason"], "io server disconnect",
        "cut, not disconnected"
    );
    pages.event("page", "connected").await;
    let resubscribed = pages
        .wait_for("the page re-subscribing", |o| {
            o["client"] == "page" && o["type"] == "report" && o["name"] == "resubscribed"
        })
        .await;
    assert_eq!(resubscribed["data"]["ok"], true, "{resubscribed}");
    pages
        .wait_for("the fixed reconnect listener", |o| {
            o["client"] == "page"
                && o["type"] == "log"
                && o["text"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("Reconnected after"))
        })
        .await;
    producer.send("crm.deals", "deal_b", &deal(1)).await;
    assert_eq!(pages.deliveries("page", 1).await[0]["data"]["seq"], 1);
    bridge.stop().await;
}
