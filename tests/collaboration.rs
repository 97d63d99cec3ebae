//! Collaboration rooms across two bridge nodes behind nginx (the tested
//! `deploy/nginx` configuration), with the stock client's transports:
//! long-polling first, then the WebSocket upgrade. Presence and typing cross
//! between the nodes through the presence topic on the real broker.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crm_bridge::config::Config;
use crm_bridge::domain::Action;
use serde_json::{Value, json};
use support::process::BridgeProcess;
use support::{Broker, Clients, Nginx, Producer, TestBridge, avro, eventually, free_port, token};

/// Connects `client` as `user` of `org` through nginx, from a source address
/// that nginx's sticky hash sends to `node`.
async fn connect_via(
    clients: &mut Clients,
    nginx: &Nginx,
    node: SocketAddr,
    (client, user, org): (&str, &str, &str),
) {
    connect_with(clients, nginx, node, (client, user, org), json!({})).await;
}

/// As [`connect_via`], with `options` added to the driver's connect command.
async fn connect_with(
    clients: &mut Clients,
    nginx: &Nginx,
    node: SocketAddr,
    (client, user, org): (&str, &str, &str),
    options: Value,
) {
    let source = nginx.source_for(node).await;
    let mut command = json!({
        "op": "connect", "client": client, "url": nginx.url(),
        "auth": {"token": token(user, org)},
        "transports": ["polling", "websocket"], "localAddress": source.to_string(),
    });
    for (name, value) in options.as_object().unwrap() {
        command[name] = value.clone();
    }
    clients.send(command).await;
    let connected = clients.event(client, "connected").await;
    assert_eq!(connected["userId"], user, "{}", nginx.logs());
    let upgraded = |o: &Value| o["client"] == client && o["type"] == "upgrade";
    let what = format!("{client} upgrading to websocket through nginx");
    assert_eq!(
        clients.wait_for(&what, upgraded).await["transport"],
        "websocket"
    );
}

fn room(kind: &str, id: &str) -> Value {
    json!({ "type": kind, "id": id })
}

async fn join(clients: &mut Clients, client: &str, room: Value) -> Value {
    let ack = clients.request(client, "join-room", room.clone()).await;
    assert_eq!(ack["ok"], true, "join {room} refused: {ack}");
    ack
}

fn member_ids(ack: &Value) -> Vec<&str> {
    ack["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["userId"].as_str().unwrap())
        .collect()
}

/// Joins until the acknowledgement lists `expected` (joining again only
/// re-reads the room): another node's join reaches this one through Kafka
/// within milliseconds, but the test cannot know exactly when.
async fn join_seeing(clients: &mut Clients, client: &str, room: Value, expected: &[&str]) -> Value {
    let what = format!("{client} to see {expected:?} in {room}");
    let joined = async || join(clients, client, room.clone()).await;
    eventually(&what, joined, |ack| member_ids(ack) == expected).await
}

/// Alice joins `room`, then Bob (on another node); returns once each knows
/// of the other.
async fn alice_then_bob_in(clients: &mut Clients, room: Value) {
    join(clients, "alice", room.clone()).await;
    join_seeing(clients, "bob", room, &["user_alice"]).await;
    event_from(clients, "alice", "user-joined", "user_bob").await;
}

async fn event_from(clients: &mut Clients, client: &str, event: &str, user: &str) -> Value {
    let what = format!("{client} receiving {event} of {user}");
    clients
        .wait_for(&what, |o| {
            o["client"] == client && o["event"] == event && o["data"]["userId"] == user
        })
        .await["data"]
        .clone()
}

struct Cluster {
    clients: Clients,
    nginx: Nginx,
    nodes: Vec<TestBridge>,
    broker: Broker,
}

impl Cluster {
    async fn start() -> Self {
        Self::start_on(Broker::start()).await
    }

    async fn start_on(broker: Broker) -> Self {
        // As deploy/nginx/README.md says: the client's address is X-Real-IP.
        let behind_nginx =
            |c: &mut Config| c.guard.client_address_header = Some("x-real-ip".into());
        let nodes = vec![
            TestBridge::start_with(&broker, behind_nginx).await,
            TestBridge::start_with(&broker, behind_nginx).await,
        ];
        let nginx = Nginx::start(&[nodes[0].addr(), nodes[1].addr()]);
        Self {
            clients: Clients::spawn().await,
            nginx,
            nodes,
            broker,
        }
    }

    async fn connect(&mut self, client: &str, user: &str, org: &str, node: usize) {
        let addr = self.nodes[node].addr();
        connect_via(&mut self.clients, &self.nginx, addr, (client, user, org)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_on_two_nodes_see_each_other_join_type_and_leave() {
    let mut cluster = Cluster::start().await;
    cluster.connect("alice", "user_alice", "org-1", 0).await;
    cluster.connect("bob", "user_bob", "org-1", 1).await;
    cluster.connect("carol", "user_carol", "org-1", 0).await;
    let c = &mut cluster.clients;

    let first = join(c, "alice", room("pipeline", "p1")).await;
    assert_eq!(first["members"], json!([]));
    assert_eq!(first["room"], room("pipeline", "p1"));
    assert_eq!(
        first["subscription"],
        json!({ "resource": "deal", "filter": { "pipelineId": "p1" } })
    );
    join(c, "carol", room("pipeline", "p2")).await;
    let second = join_seeing(c, "bob", room("pipeline", "p1"), &["user_alice"]).await;
    assert_eq!(second["members"][0]["userName"], "user_alice name");

    let joined = event_from(c, "alice", "user-joined", "user_bob").await;
    assert_eq!(joined["userName"], "user_bob name");
    assert_eq!(
        (&joined["roomType"], &joined["roomId"]),
        (&json!("pipeline"), &json!("p1"))
    );
    assert!(joined["timestamp"].as_str().unwrap().ends_with('Z'));

    let typing = json!({ "roomType": "pipeline", "roomId": "p1", "field": "notes" });
    let ack = c.request("bob", "typing", typing.clone()).await;
    assert_eq!(ack, json!({ "ok": true, "throttled": false }));
    let seen = event_from(c, "alice", "user-typing", "user_bob").await;
    assert_eq!(
        (&seen["field"], &seen["userName"]),
        (&json!("notes"), &json!("user_bob name"))
    );
    assert!(seen["expiresAt"].as_str() > seen["timestamp"].as_str());
    let again = c.request("bob", "typing", typing).await;
    assert_eq!(
        again["throttled"], true,
        "a second keystroke within the throttle is not sent"
    );
    let title = json!({ "roomType": "pipeline", "roomId": "p1", "field": "title" });
    c.request("alice", "typing", title).await;
    assert_eq!(
        event_from(c, "bob", "user-typing", "user_alice").await["field"],
        "title"
    );

    // The room delivers its pipeline's deal events to both nodes' members.
    let deal = avro::deal(
        "org-1",
        "deal_9",
        "p1",
        Action::StageChange,
        Some(("lead", "won")),
    );
    Producer::new(&cluster.broker)
        .send("crm.deals", "deal_9", &deal)
        .await;
    for member in ["alice", "bob"] {
        let update = c.event(member, "pipeline-update").await;
        assert_eq!(update["dealId"], "deal_9", "{member}: {update}");
    }

    let left = c.request("bob", "leave-room", room("pipeline", "p1")).await;
    assert_eq!(left["ok"], true);
    let gone = event_from(c, "alice", "user-left", "user_bob").await;
    assert_eq!(
        (&gone["roomType"], &gone["roomId"]),
        (&json!("pipeline"), &json!("p1"))
    );

    c.settle(Duration::from_millis(300)).await;
    assert!(
        c.unclaimed("alice", "user-joined").is_empty(),
        "one join, once"
    );
    for own in ["user-joined", "user-typing", "user-left"] {
        let echoes: Vec<_> = c
            .unclaimed("bob", own)
            .into_iter()
            .filter(|o| o["data"]["userId"] == "user_bob")
            .collect();
        assert!(echoes.is_empty(), "bob heard his own {own}: {echoes:?}");
    }
    for other_room in ["user-joined", "user-typing", "user-left", "pipeline-update"] {
        let leaked = c.unclaimed("carol", other_room);
        assert!(leaked.is_empty(), "carol is in another room: {leaked:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tabs_of_one_user_are_one_presence() {
    let mut cluster = Cluster::start().await;
    cluster.connect("alice", "user_alice", "org-1", 0).await;
    cluster.connect("tab1", "user_bob", "org-1", 0).await;
    cluster.connect("tab2", "user_bob", "org-1", 1).await;
    let c = &mut cluster.clients;
    join(c, "alice", room("deal", "d1")).await;
    join(c, "tab1", room("deal", "d1")).await;
    event_from(c, "alice", "user-joined", "user_bob").await;
    join_seeing(c, "tab2", room("deal", "d1"), &["user_alice"]).await;
    // Once alice sees tab2 type, node 0 has applied tab2's join (each
    // node's records arrive in order).
    let typing = json!({ "roomType": "deal", "roomId": "d1", "field": "amount" });
    c.request("tab2", "typing", typing).await;
    event_from(c, "alice", "user-typing", "user_bob").await;

    c.send(json!({ "op": "disconnect", "client": "tab1" }))
        .await;
    c.settle(Duration::from_millis(800)).await;
    assert!(
        c.unclaimed("alice", "user-left").is_empty(),
        "bob still has a tab open"
    );
    assert!(
        c.unclaimed("alice", "user-joined").is_empty(),
        "a second tab is not a second join"
    );

    c.send(json!({ "op": "disconnect", "client": "tab2" }))
        .await;
    event_from(c, "alice", "user-left", "user_bob").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_module_rejoins_its_rooms_after_a_reconnect() {
    let mut cluster = Cluster::start().await;
    cluster.connect("bob", "user_bob", "org-1", 1).await;
    let (nginx, node) = (&cluster.nginx, cluster.nodes[0].addr());
    let alice = ("alice", "user_alice", "org-1");
    let module = json!({ "module": true });
    connect_with(&mut cluster.clients, nginx, node, alice, module).await;
    let c = &mut cluster.clients;
    join(c, "alice", room("deal", "d7")).await;
    join_seeing(c, "bob", room("deal", "d7"), &["user_alice"]).await;

    c.send(json!({ "op": "drop", "client": "alice" })).await;
    event_from(c, "bob", "user-left", "user_alice").await;
    let rejoined = c
        .wait_for("alice rejoining", |o| {
            o["client"] == "alice" && o["type"] == "room-rejoined"
        })
        .await;
    assert_eq!(member_ids(&rejoined["data"]), ["user_bob"], "{rejoined}");
    event_from(c, "bob", "user-joined", "user_alice").await;
    let typing = json!({ "roomType": "deal", "roomId": "d7", "field": "amount" });
    c.request("bob", "typing", typing).await;
    event_from(c, "alice", "user-typing", "user_bob").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_of_a_node_shut_down_cleanly_leave_at_once() {
    let mut cluster = Cluster::start().await;
    cluster.connect("alice", "user_alice", "org-1", 0).await;
    cluster.connect("bob", "user_bob", "org-1", 1).await;
    let c = &mut cluster.clients;
    alice_then_bob_in(c, room("email-thread", "t1")).await;

    let stopping = Instant::now();
    cluster.nodes.remove(1).stop().await;
    event_from(&mut cluster.clients, "alice", "user-left", "user_bob").await;
    let after = stopping.elapsed();
    assert!(
        after < Duration::from_millis(1500),
        "not at once but after {after:?} (the timeout is 2 s)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_of_a_node_killed_outright_leave_within_the_timeout() {
    let broker = Broker::start();
    let survivor = TestBridge::start(&broker).await;
    let port = free_port();
    let presence = "[presence]\nheartbeat_ms = 250\nnode_timeout_ms = 2000\n";
    let mut doomed = BridgeProcess::start_with(&broker, port, "doomed", presence).await;
    let doomed_addr = SocketAddr::from(([127, 0, 0, 1], port));
    let nginx = Nginx::start(&[survivor.addr(), doomed_addr]);
    let mut c = Clients::spawn().await;
    connect_via(
        &mut c,
        &nginx,
        survivor.addr(),
        ("alice", "user_alice", "org-1"),
    )
    .await;
    connect_via(&mut c, &nginx, doomed_addr, ("bob", "user_bob", "org-1")).await;
    alice_then_bob_in(&mut c, room("contact", "c1")).await;

    let killed = Instant::now();
    doomed.kill();
    event_from(&mut c, "alice", "user-left", "user_bob").await;
    let after = killed.elapsed();
    // The timeout is 2 s, checked every heartbeat (250 ms); allow for a
    // loaded machine, but presence must not stay stuck.
    assert!(after < Duration::from_secs(6), "user-left after {after:?}");
    assert!(
        after >= Duration::from_millis(1500),
        "left before the timeout: {after:?}"
    );
    let rejoin = join(&mut c, "alice", room("contact", "c1")).await;
    assert_eq!(rejoin["members"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_stall_longer_than_the_node_timeout_does_not_empty_rooms() {
    let mut cluster = Cluster::start_on(Broker::dedicated()).await;
    cluster.connect("alice", "user_alice", "org-1", 0).await;
    cluster.connect("bob", "user_bob", "org-1", 1).await;
    let c = &mut cluster.clients;
    alice_then_bob_in(c, room("deal", "d3")).await;

    // Nobody hears anybody for twice the 2 s node timeout: every node knows
    // its own heartbeats are not coming back, so none declares the others dead.
    cluster.broker.stall(Duration::from_secs(4)).await;
    let typing = json!({ "roomType": "deal", "roomId": "d3", "field": "notes" });
    c.request("bob", "typing", typing).await;
    event_from(c, "alice", "user-typing", "user_bob").await;
    c.settle(Duration::from_millis(500)).await;
    for client in ["alice", "bob"] {
        let left = c.unclaimed(client, "user-left");
        assert!(left.is_empty(), "{client} saw a user leave: {left:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_late_knows_who_is_already_in_the_room() {
    let broker = Broker::start();
    let early = TestBridge::start(&broker).await;
    let mut c = Clients::spawn().await;
    // Straight to the early node: nginx is started once both nodes are up,
    // so it never marks the late one as failed.
    let alice = json!({ "token": token("user_alice", "org-1") });
    c.connect("alice", &early.url, alice).await;
    join(&mut c, "alice", room("pipeline", "p1")).await;
    // Her join is in the presence topic before the late node starts: the
    // early node, alone there, has its own records back, up to that one.
    let sent = early.stats().await["presenceSent"].as_u64();
    let received = async || early.stats().await["presenceReceived"].as_u64();
    eventually("alice's join to be in the presence topic", received, |n| {
        *n >= sent
    })
    .await;

    // Ready only once it has heard what the others hold.
    let late = TestBridge::start(&broker).await;
    let nginx = Nginx::start(&[early.addr(), late.addr()]);
    connect_via(&mut c, &nginx, late.addr(), ("bob", "user_bob", "org-1")).await;
    let ack = join(&mut c, "bob", room("pipeline", "p1")).await;
    assert_eq!(member_ids(&ack), ["user_alice"], "{ack}");
    event_from(&mut c, "alice", "user-joined", "user_bob").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_never_cross_organisations_and_bad_requests_are_refused() {
    let mut cluster = Cluster::start().await;
    cluster.connect("alice", "user_alice", "org-1", 0).await;
    cluster.connect("mallory", "user_mallory", "org-2", 1).await;
    let c = &mut cluster.clients;
    join(c, "alice", room("pipeline", "p1")).await;

    let code = |reply: &Value| {
        reply["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let foreign = json!({ "type": "pipeline", "id": "p1", "organizationId": "org-1" });
    let refused = c.request("mallory", "join-room", foreign).await;
    assert_eq!(code(&refused), "FORBIDDEN", "{refused}");
    assert_eq!(c.event("mallory", "error").await["code"], "FORBIDDEN");
    let unknown = c
        .request("mallory", "join-room", room("invoice", "i1"))
        .await;
    assert_eq!(code(&unknown), "RESOURCE_NOT_FOUND", "{unknown}");
    let malformed = c
        .request("mallory", "join-room", json!({ "type": "deal" }))
        .await;
    assert_eq!(code(&malformed), "INVALID_REQUEST", "{malformed}");
    let typing = json!({ "roomType": "pipeline", "roomId": "p1", "field": "notes" });
    let outside = c.request("mallory", "typing", typing.clone()).await;
    assert_eq!(
        code(&outside),
        "FORBIDDEN",
        "typing outside a joined room: {outside}"
    );
    let not_in = c
        .request("mallory", "leave-room", room("pipeline", "p1"))
        .await;
    assert_eq!(code(&not_in), "RESOURCE_NOT_FOUND", "{not_in}");

    // The same room id in another organisation is another room.
    let own = join(c, "mallory", room("pipeline", "p1")).await;
    assert_eq!(own["members"], json!([]), "{own}");
    c.request("mallory", "typing", typing).await;
    c.request("mallory", "leave-room", room("pipeline", "p1"))
        .await;
    c.settle(Duration::from_millis(500)).await;
    for event in ["user-joined", "user-typing", "user-left"] {
        assert!(
            c.unclaimed("alice", event).is_empty(),
            "org-2 reached org-1: {event}"
        );
    }
}
