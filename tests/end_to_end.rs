//! The whole path, black-box: Avro records produced to a real broker reach
//! the official socket.io-client through the bridge, as the seed describes.

mod support;

use std::time::Duration;

use crm_bridge::domain::Action;
use serde_json::{Value, json};
use support::avro::{self, contact, deal, email, notification};
use support::{Broker, Clients, Producer, TEST_API_KEY, TestBridge, token};

async fn setup() -> (Broker, TestBridge, Producer, Clients) {
    let broker = Broker::start();
    let bridge = TestBridge::start(&broker).await;
    let producer = Producer::new(&broker);
    let clients = Clients::spawn().await;
    (broker, bridge, producer, clients)
}

fn is_timestamp(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() >= 20 && s.ends_with('Z') && s.contains('T'))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_seed_event_reaches_a_subscribed_client() {
    let (_broker, bridge, producer, mut clients) = setup().await;
    let hello = clients
        .connect(
            "jane",
            &bridge.url,
            json!({"token": token("user_jane", "org-1")}),
        )
        .await;
    assert_eq!(hello["userId"], "user_jane");
    assert!(hello["sessionId"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(is_timestamp(&hello["timestamp"]));

    clients
        .subscribe(
            "jane",
            json!({"resource": "contact", "id": "contact_123", "events": ["update", "delete"]}),
        )
        .await;
    clients
        .subscribe("jane", json!({"resource": "deal", "filter": {"pipelineId": "pipeline_456"}, "events": ["create", "stage-change"]}))
        .await;
    clients
        .subscribe("jane", json!({"resource": "email-thread", "id": "thread_1", "events": ["new-email", "reply", "forward"]}))
        .await;

    producer
        .send(
            "crm.contacts",
            "contact_123",
            &contact(
                "org-1",
                "contact_123",
                Action::Update,
                "user_bob",
                &[("phone", "+1 555")],
            ),
        )
        .await;
    let update = clients.event("jane", "resource-update").await;
    assert_eq!(update["resource"], "contact");
    assert_eq!(update["id"], "contact_123");
    assert_eq!(update["action"], "update");
    assert_eq!(update["data"], json!({"phone": "+1 555"}));
    assert_eq!(update["userId"], "user_bob");
    assert!(is_timestamp(&update["timestamp"]));

    producer
        .send(
            "crm.contacts",
            "contact_123",
            &contact("org-1", "contact_123", Action::Delete, "user_bob", &[]),
        )
        .await;
    let deleted = clients.event("jane", "resource-delete").await;
    assert_eq!(
        (
            deleted["resource"].clone(),
            deleted["id"].clone(),
            deleted["userId"].clone()
        ),
        (json!("contact"), json!("contact_123"), json!("user_bob"))
    );

    producer
        .send(
            "crm.deals",
            "deal_789",
            &deal(
                "org-1",
                "deal_789",
                "pipeline_456",
                Action::StageChange,
                Some(("negotiation", "closed-won")),
            ),
        )
        .await;
    let moved = clients.event("jane", "pipeline-update").await;
    assert_eq!(moved["pipelineId"], "pipeline_456");
    assert_eq!(moved["dealId"], "deal_789");
    assert_eq!(moved["previousStage"], "negotiation");
    assert_eq!(moved["newStage"], "closed-won");
    assert_eq!(moved["userId"], "user_mover");
    assert!(is_timestamp(&moved["timestamp"]));

    producer
        .send(
            "crm.email",
            "thread_1",
            &email("org-1", "thread_1", Some("contact_9"), "Re: Follow up"),
        )
        .await;
    let mail = clients.event("jane", "email-received").await;
    assert_eq!(mail["subject"], "Re: Follow up");
    assert_eq!(mail["from"], "client@example.com");
    assert_eq!(mail["contactId"], "contact_9");
    assert!(mail["emailId"].as_str().unwrap().starts_with("email_"));

    // Notifications need no subscription: they go to their target user only.
    producer
        .send(
            "crm.notifications",
            "user_jane",
            &notification("org-1", "user_jane", "You were mentioned"),
        )
        .await;
    let note = clients.event("jane", "notification").await;
    assert_eq!(note["type"], "mention");
    assert_eq!(note["title"], "You were mentioned");
    assert_eq!(note["link"], "/deals/deal_789");
    assert!(note["id"].as_str().unwrap().starts_with("notif-"));

    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_lists_filters_and_unsubscribe_decide_what_arrives() {
    let (_broker, bridge, producer, mut clients) = setup().await;
    clients
        .connect("a", &bridge.url, json!({"token": token("user_a", "org-1")}))
        .await;
    clients
        .subscribe(
            "a",
            json!({"resource": "contact", "id": "contact_1", "events": ["delete"]}),
        )
        .await;
    clients
        .subscribe("a", json!({"resource": "contact", "filter": {"organizationId": "org-1"}, "events": ["create"]}))
        .await;

    // Not in either events list: an update of contact_1.
    producer
        .send(
            "crm.contacts",
            "contact_1",
            &contact("org-1", "contact_1", Action::Update, "u", &[]),
        )
        .await;
    // Org-wide `create`: arrives.
    producer
        .send(
            "crm.contacts",
            "contact_2",
            &contact("org-1", "contact_2", Action::Create, "u", &[]),
        )
        .await;
    let created = clients.event("a", "resource-update").await;
    assert_eq!(
        (created["id"].clone(), created["action"].clone()),
        (json!("contact_2"), json!("create"))
    );

    let reply = clients
        .request(
            "a",
            "unsubscribe",
            json!({"resource": "contact", "filter": {"organizationId": "org-1"}}),
        )
        .await;
    assert_eq!(reply["ok"], true);
    producer
        .send(
            "crm.contacts",
            "contact_3",
            &contact("org-1", "contact_3", Action::Create, "u", &[]),
        )
        .await;
    producer
        .send(
            "crm.contacts",
            "contact_1",
            &contact("org-1", "contact_1", Action::Delete, "u", &[]),
        )
        .await;
    let deleted = clients.event("a", "resource-delete").await;
    assert_eq!(deleted["id"], "contact_1");
    // Records are delivered in order per partition; give stragglers a moment.
    clients.settle(Duration::from_millis(300)).await;
    assert!(
        clients.unclaimed_deliveries("a").is_empty(),
        "unexpected: {:?}",
        clients.unclaimed_deliveries("a")
    );

    // Unsubscribing what is not subscribed is refused.
    let again = clients
        .request(
            "a",
            "unsubscribe",
            json!({"resource": "contact", "filter": {"organizationId": "org-1"}}),
        )
        .await;
    assert_eq!(again["error"]["code"], "RESOURCE_NOT_FOUND");
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_authenticate_with_token_api_key_or_bearer_header() {
    let (_broker, bridge, producer, mut clients) = setup().await;
    let by_key = clients
        .connect("key", &bridge.url, json!({"apiKey": TEST_API_KEY}))
        .await;
    assert_eq!(by_key["userId"], "svc_reporting");

    let bearer = format!("Bearer {}", token("user_h", "org-1"));
    clients
        .send(json!({"op": "connect", "client": "header", "url": bridge.url, "headers": {"Authorization": bearer}}))
        .await;
    assert_eq!(
        clients.event("header", "connected").await["userId"],
        "user_h"
    );

    // The API key is bound to org-1: it sees org-1's events.
    clients
        .subscribe("key", json!({"resource": "deal", "id": "deal_1"}))
        .await;
    producer
        .send(
            "crm.deals",
            "deal_1",
            &deal("org-1", "deal_1", "p", Action::Update, None),
        )
        .await;
    assert_eq!(
        clients.event("key", "resource-update").await["id"],
        "deal_1"
    );

    for (client, auth) in [
        ("none", json!({})),
        ("garbage", json!({"token": "not-a-jwt"})),
        ("wrong-key", json!({"apiKey": "nope"})),
        (
            "expired",
            json!({"token": support::bridge::expired_token("user_e", "org-1")}),
        ),
    ] {
        let error = clients
            .try_connect(client, &bridge.url, auth)
            .await
            .expect_err(client);
        assert_eq!(error["code"], "UNAUTHORIZED", "{client}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(is_timestamp(&error["timestamp"]));
    }
    let stats = bridge.stats().await;
    assert!(
        stats["authFailures"]["missing"].as_u64() >= Some(1),
        "{stats}"
    );
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_event_crosses_organisations() {
    let (_broker, bridge, producer, mut clients) = setup().await;
    clients
        .connect(
            "acme",
            &bridge.url,
            json!({"token": token("user_same", "org-acme")}),
        )
        .await;
    clients
        .connect(
            "globex",
            &bridge.url,
            json!({"token": token("user_same", "org-globex")}),
        )
        .await;
    for client in ["acme", "globex"] {
        clients
            .subscribe(client, json!({"resource": "deal", "id": "deal_shared"}))
            .await;
        clients
            .subscribe(
                client,
                json!({"resource": "deal", "filter": {"pipelineId": "pipeline_shared"}}),
            )
            .await;
    }
    // Same ids, same user id, different organisations.
    producer
        .send(
            "crm.deals",
            "deal_shared",
            &deal(
                "org-acme",
                "deal_shared",
                "pipeline_shared",
                Action::Update,
                None,
            ),
        )
        .await;
    producer
        .send(
            "crm.notifications",
            "user_same",
            &notification("org-acme", "user_same", "for acme"),
        )
        .await;
    producer
        .send(
            "crm.deals",
            "deal_shared",
            &deal(
                "org-globex",
                "deal_shared",
                "pipeline_shared",
                Action::Comment,
                None,
            ),
        )
        .await;

    let acme = clients.event("acme", "resource-update").await;
    assert_eq!(acme["action"], "update");
    assert_eq!(
        clients.event("acme", "notification").await["title"],
        "for acme"
    );
    let globex = clients.event("globex", "resource-update").await;
    assert_eq!(globex["action"], "comment");
    clients.settle(Duration::from_millis(300)).await;
    assert!(clients.unclaimed_deliveries("acme").is_empty());
    assert!(clients.unclaimed_deliveries("globex").is_empty());

    // Naming another organisation is refused, on the ack and as an `error` event.
    let reply = clients
        .request(
            "acme",
            "subscribe",
            json!({"resource": "contact", "filter": {"organizationId": "org-globex"}}),
        )
        .await;
    assert_eq!(reply["ok"], false);
    assert_eq!(reply["error"]["code"], "FORBIDDEN");
    assert_eq!(clients.event("acme", "error").await["code"], "FORBIDDEN");
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_get_the_seed_error_and_the_connection_lives_on() {
    let (_broker, bridge, producer, mut clients) = setup().await;
    clients
        .connect("c", &bridge.url, json!({"token": token("user_c", "org-1")}))
        .await;

    let unknown = clients
        .request(
            "c",
            "subscribe",
            json!({"resource": "invoice", "id": "inv_1"}),
        )
        .await;
    assert_eq!(unknown["error"]["code"], "RESOURCE_NOT_FOUND");
    let error = clients.event("c", "error").await;
    assert_eq!(error["code"], "RESOURCE_NOT_FOUND");
    assert!(is_timestamp(&error["timestamp"]));

    for bad in [
        json!("contact"),
        json!({"resource": "contact"}),
        json!({"resource": "deal", "id": "d", "events": ["typo"]}),
    ] {
        let reply = clients.request("c", "subscribe", bad.clone()).await;
        assert_eq!(reply["error"]["code"], "INVALID_REQUEST", "{bad}");
        assert_eq!(clients.event("c", "error").await["code"], "INVALID_REQUEST");
    }
    // No data at all, and no callback: still an `error` event.
    clients
        .send(json!({"op": "emit", "client": "c", "event": "subscribe"}))
        .await;
    assert_eq!(clients.event("c", "error").await["code"], "INVALID_REQUEST");

    clients
        .send(json!({"op": "emit", "client": "c", "event": "ping"}))
        .await;
    clients.event("c", "pong").await;

    // Still subscribed and receiving after all that.
    clients
        .subscribe("c", json!({"resource": "deal", "id": "deal_ok"}))
        .await;
    producer
        .send(
            "crm.deals",
            "deal_ok",
            &deal("org-1", "deal_ok", "p", Action::Assignment, None),
        )
        .await;
    assert_eq!(
        clients.event("c", "resource-update").await["action"],
        "assignment"
    );
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_records_are_counted_and_skipped_without_stalling() {
    let (_broker, bridge, producer, mut clients) = setup().await;
    clients
        .connect("p", &bridge.url, json!({"token": token("user_p", "org-1")}))
        .await;
    clients
        .subscribe("p", json!({"resource": "deal", "id": "deal_p"}))
        .await;

    let good = deal("org-1", "deal_p", "p", Action::Update, None);
    let no_org = deal("", "deal_p", "p", Action::Update, None);
    let unknown_schema = avro::frame(4242, &good[5..]);
    // Same key: same partition, so the good record waits behind the bad ones.
    for poison in [
        &b"{\"json\":true}"[..],
        &good[..3],
        &unknown_schema,
        &good[..good.len() - 3],
        &no_org,
    ] {
        producer.send("crm.deals", "deal_p", poison).await;
    }
    producer.send("crm.deals", "deal_p", &good).await;
    assert_eq!(clients.event("p", "resource-update").await["id"], "deal_p");

    let stats = bridge.stats().await;
    let failures = &stats["decodeFailures"];
    for reason in [
        "bad_magic",
        "truncated",
        "unknown_schema",
        "avro",
        "invalid_field",
    ] {
        assert_eq!(failures[reason], 1, "{reason}: {stats}");
    }
    bridge.stop().await;
}
