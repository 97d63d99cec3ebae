//! Permissions end to end, against Apache Kafka and the official
//! socket.io-client: users of one organisation (reps, a manager, support)
//! each receive their share of the same org-wide subscription, with the
//! fields their roles hide absent; grants arrive on the permissions topic,
//! and a tombstone there revokes, mid-stream, with `subscription-revoked`
//! (its latency measured and printed); a resume replays with the
//! permissions of now, not of when the events were written.

mod support;

use std::time::Duration;

use crm_bridge::access::{PermissionsConfig, RoleConfig, RuleConfig, See};
use crm_bridge::domain::{Action, Grant, Granted, Grantee, OrgId, ResourceKind, TeamId, UserId};
use serde_json::{Map, Value, json};
use support::avro::{self, deal_with};
use support::bridge::TEST_SECRET;
use support::{Broker, Clients, Producer, TestBridge, wall_clock_ms};

const ORG: &str = "org-1";
const ACCESS: &str = "crm.access";

/// A token for `user` of [`ORG`] with `roles` and `teams` (the claim the
/// test configures as `teams_claim`).
fn token(user: &str, roles: &[&str], teams: &[&str]) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let claims = json!({
        "sub": user, "name": user, "organizationId": ORG,
        "roles": roles, "teams": teams, "exp": exp,
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(TEST_SECRET.as_bytes()),
    )
    .unwrap()
}

fn rule(see: See, hide: &[&str]) -> Option<RuleConfig> {
    Some(RuleConfig {
        see,
        events: None,
        hide: hide.iter().map(|f| (*f).to_owned()).collect(),
    })
}

fn policy(topic: String) -> PermissionsConfig {
    let deals = |rule| RoleConfig {
        deal: rule,
        ..RoleConfig::default()
    };
    PermissionsConfig {
        enabled: true,
        topic: Some(topic),
        replay_before_grant: false,
        roles: [
            ("rep".into(), deals(rule(See::Granted, &[]))),
            ("manager".into(), deals(rule(See::All, &[]))),
            ("support".into(), deals(rule(See::All, &["changes.value"]))),
        ]
        .into(),
    }
}

fn grant(grantee: Grantee, granted: Granted) -> Vec<u8> {
    grant_at(grantee, granted, 0)
}

fn grant_at(grantee: Grantee, granted: Granted, granted_at_ms: i64) -> Vec<u8> {
    let grant = Grant {
        org: OrgId::new(ORG).unwrap(),
        grantee,
        granted,
        granted_at_ms,
    };
    avro::encoder().encode_grant(&grant).unwrap()
}

fn user(id: &str) -> Grantee {
    Grantee::User(UserId::new(id).unwrap())
}

fn deal_grant(id: &str) -> Granted {
    Granted::Resource(ResourceKind::Deal, id.into())
}

fn west() -> TeamId {
    TeamId::new("west").unwrap()
}

/// A deal update with a value and a stage among its changes.
fn deal_update(id: &str) -> Vec<u8> {
    let changes: Map<String, Value> = [
        ("value".into(), json!(5000)),
        ("stage".into(), json!("won")),
    ]
    .into_iter()
    .collect();
    deal_with(ORG, id, "pipeline_1", Action::Update, None, &changes)
}

async fn start() -> (Broker, TestBridge, Producer, Clients) {
    let broker = Broker::start();
    let topic = broker.topic(ACCESS);
    let bridge = TestBridge::start_with(&broker, |config| {
        config.permissions = policy(topic);
        config.auth.jwt.teams_claim = Some("teams".into());
    })
    .await;
    let producer = Producer::new(&broker);
    (broker, bridge, producer, Clients::spawn().await)
}

/// Sends `records` (key, value or tombstone) to the permissions topic and
/// waits until the bridge has read `total` of them since it started.
async fn publish(
    producer: &Producer,
    bridge: &TestBridge,
    records: &[(&str, Option<Vec<u8>>)],
    total: u64,
) {
    for (key, value) in records {
        match value {
            Some(value) => producer.send(ACCESS, key, value).await,
            None => producer.send_tombstone(ACCESS, key).await,
        }
    }
    let read = |stats: &Value| {
        let by = &stats["grantRecords"];
        by["granted"].as_u64().unwrap_or(0) + by["revoked"].as_u64().unwrap_or(0)
    };
    bridge
        .stats_until("the bridge to read the grants", |s| read(s) >= total)
        .await;
}

/// The ids of the deals `client` received, until it receives `last`.
async fn deals_until(clients: &mut Clients, client: &str, last: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let event = clients.event(client, "resource-update").await;
        let done = event["id"] == last;
        seen.push(event);
        if done {
            return seen;
        }
    }
}

fn ids(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["id"].as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_user_receives_their_share_and_loses_it_when_revoked() {
    let (_broker, bridge, producer, mut clients) = start().await;
    // rep: deal_1 directly. rep2: a member of west by the topic, west holds
    // deal_2. rep3: in west by its token.
    let grants = [
        ("g-rep-d1", Some(grant(user("rep"), deal_grant("deal_1")))),
        (
            "g-west-d2",
            Some(grant(Grantee::Team(west()), deal_grant("deal_2"))),
        ),
        (
            "g-rep2-west",
            Some(grant(user("rep2"), Granted::Team(west()))),
        ),
    ];
    publish(&producer, &bridge, &grants, 3).await;

    let people = [
        ("rep", token("rep", &["rep"], &[])),
        ("rep2", token("rep2", &["rep"], &[])),
        ("rep3", token("rep3", &["rep"], &["west"])),
        ("manager", token("manager", &["manager"], &[])),
        ("support", token("support", &["support"], &[])),
    ];
    let org_wide = json!({"resource": "deal", "filter": {"organizationId": ORG}});
    for (name, token) in &people {
        clients
            .connect(name, &bridge.url, json!({"token": token}))
            .await;
        clients.subscribe(name, org_wide.clone()).await;
    }
    // An `id` subscription needs a grant of that deal.
    clients
        .subscribe("rep", json!({"resource": "deal", "id": "deal_1"}))
        .await;
    let refused = clients
        .request(
            "rep",
            "subscribe",
            json!({"resource": "deal", "id": "deal_2"}),
        )
        .await;
    assert_eq!(refused["error"]["code"], "FORBIDDEN", "{refused}");

    for id in ["deal_1", "deal_2", "deal_3"] {
        producer.send("crm.deals", id, &deal_update(id)).await;
    }
    let manager = deals_until(&mut clients, "manager", "deal_3").await;
    assert_eq!(ids(&manager), ["deal_1", "deal_2", "deal_3"]);
    assert_eq!(manager[0]["data"]["value"], 5000, "{}", manager[0]);
    let support = deals_until(&mut clients, "support", "deal_3").await;
    assert_eq!(ids(&support), ["deal_1", "deal_2", "deal_3"]);
    for event in &support {
        let changes = event["data"].as_object().unwrap();
        assert!(
            !changes.contains_key("value"),
            "support saw a value: {event}"
        );
        assert_eq!(changes["stage"], "won");
    }
    // rep: deal_1 twice (org-wide and by id), nothing of deal_2 or deal_3.
    let rep = deals_until(&mut clients, "rep", "deal_1").await;
    assert_eq!(ids(&rep), ["deal_1"]);
    let rep2 = deals_until(&mut clients, "rep2", "deal_2").await;
    assert_eq!(ids(&rep2), ["deal_2"]);
    let rep3 = deals_until(&mut clients, "rep3", "deal_2").await;
    assert_eq!(ids(&rep3), ["deal_2"]);

    // Revoked mid-stream: rep's grant of deal_1, rep2's membership of west.
    let sent_at = wall_clock_ms();
    publish(
        &producer,
        &bridge,
        &[("g-rep-d1", None), ("g-rep2-west", None)],
        5,
    )
    .await;
    let revoked = clients
        .wait_for("rep's subscription-revoked", |o| {
            o["client"] == "rep" && o["event"] == "subscription-revoked"
        })
        .await;
    let latency = revoked["at"].as_f64().unwrap() - sent_at;
    eprintln!("revocation to subscription-revoked: {latency:.1} ms");
    assert_eq!(revoked["data"]["code"], "FORBIDDEN");
    assert_eq!(revoked["data"]["subscription"]["id"], "deal_1");

    let second_round_at = wall_clock_ms();
    for id in ["deal_1", "deal_2", "deal_3"] {
        producer.send("crm.deals", id, &deal_update(id)).await;
    }
    let manager = deals_until(&mut clients, "manager", "deal_3").await;
    assert_eq!(ids(&manager), ["deal_1", "deal_2", "deal_3"]);
    // rep3 still holds west by its token: deal_2 again.
    let rep3 = deals_until(&mut clients, "rep3", "deal_2").await;
    assert_eq!(ids(&rep3), ["deal_2"]);
    // Records are delivered in order per partition; give stragglers a
    // moment: rep and rep2 were handed nothing of the second round.
    clients.settle(Duration::from_millis(300)).await;
    for name in ["rep", "rep2"] {
        let late: Vec<_> = clients
            .unclaimed_deliveries(name)
            .into_iter()
            .filter(|o| o["at"].as_f64().unwrap() > second_round_at)
            .collect();
        assert!(
            late.is_empty(),
            "{name} received after revocation: {late:?}"
        );
    }
    let stats = bridge.stats().await;
    assert_eq!(stats["revoked"]["subscription"], 1, "{stats}");
    assert!(stats["withheld"]["live"].as_u64().unwrap() >= 6, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_applies_the_permissions_of_now() {
    let (_broker, bridge, producer, mut clients) = start().await;
    publish(
        &producer,
        &bridge,
        &[("g-rep-d1", Some(grant(user("rep"), deal_grant("deal_1"))))],
        1,
    )
    .await;
    let rep = token("rep", &["rep"], &[]);
    clients
        .connect("rep", &bridge.url, json!({"token": rep}))
        .await;
    let org_wide = json!({"resource": "deal", "filter": {"organizationId": ORG}});
    let ack = clients.request("rep", "subscribe", org_wide.clone()).await;
    let cursor = ack["cursor"].as_str().expect("a cursor").to_owned();
    clients
        .send(json!({"op": "disconnect", "client": "rep"}))
        .await;

    // While rep is away: an event of deal_1 (then revoked) and of deal_5
    // (granted only after it).
    producer
        .send("crm.deals", "deal_1", &deal_update("deal_1"))
        .await;
    producer
        .send("crm.deals", "deal_5", &deal_update("deal_5"))
        .await;
    bridge.wait_consumed(2).await;
    let granted_at = avro::now_ms() + 1;
    let away = [
        ("g-rep-d1", None),
        (
            "g-rep-d5",
            Some(grant_at(user("rep"), deal_grant("deal_5"), granted_at)),
        ),
    ];
    publish(&producer, &bridge, &away, 3).await;
    let after_grant = deal_update("deal_5");
    producer.send("crm.deals", "deal_5", &after_grant).await;
    bridge.wait_consumed(3).await;

    clients
        .connect("rep-back", &bridge.url, json!({"token": rep}))
        .await;
    let mut resume = org_wide;
    resume["since"] = json!(cursor);
    let reply = clients.request("rep-back", "subscribe", resume).await;
    assert_eq!(reply["replaying"], true, "{reply}");
    let resumed = clients.event("rep-back", "subscription-resumed").await;
    assert_eq!(resumed["replayed"], 1, "{resumed}");
    let replayed = clients.deliveries("rep-back", 1).await;
    assert_eq!(replayed[0]["id"], "deal_5");
    assert_eq!(replayed[0]["replayed"], true);
    let stats = bridge.stats().await;
    assert_eq!(stats["withheld"]["replayed"], 2, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_on_partitions_added_later_are_read() {
    use rdkafka::admin::{AdminOptions, NewPartitions};
    use rdkafka::producer::FutureRecord;
    use support::semantics::{admin, producer};

    let broker = Broker::start();
    let topic = broker.topic(ACCESS);
    let bridge = TestBridge::start_with(&broker, |config| {
        config.permissions = policy(topic.clone());
        config.kafka.partition_refresh_seconds = 1;
    })
    .await;
    let added = admin(&broker)
        .create_partitions(&[NewPartitions::new(&topic, 3)], &AdminOptions::new())
        .await
        .unwrap();
    for result in added {
        result.expect("partitions added");
    }
    let value = grant(user("rep"), deal_grant("deal_7"));
    let record = FutureRecord::to(&topic)
        .key("g-rep-d7")
        .payload(&value)
        .partition(2);
    producer(&broker, &[])
        .send(record, Duration::from_secs(10))
        .await
        .expect("sent");
    bridge
        .stats_until("the grant on the new partition to be read", |s| {
            s["grantRecords"]["granted"] == 1
        })
        .await;
    let mut clients = Clients::spawn().await;
    let rep = token("rep", &["rep"], &[]);
    clients
        .connect("rep", &bridge.url, json!({"token": rep}))
        .await;
    clients
        .subscribe("rep", json!({"resource": "deal", "id": "deal_7"}))
        .await;
}
