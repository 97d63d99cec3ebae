//! Hostile input from clients: the checked-in corpus
//! (`tests/fixtures/hostile-inbound.json`) replayed through the parsers and
//! through the official socket.io-client against a real bridge, and packets
//! socketioxide cannot parse at all.

mod support;

use std::time::Duration;

use crm_bridge::domain::{OrgId, UserId};
use crm_bridge::protocol::{
    Caller, ClientError, parse_room, parse_subscribe, parse_typing, parse_unsubscribe,
};
use serde_json::{Value, json};
use support::hostile::{HostileEntry, corpus};
use support::{Broker, Clients, TestBridge, token};

/// What the bridge's parser for `event` says to `raw`; `None`: no handler.
fn parse(event: &str, raw: Option<&Value>) -> Option<Result<(), ClientError>> {
    let org = OrgId::new("org-1").unwrap();
    let user = UserId::new("user_1").unwrap();
    let caller = Caller {
        org: &org,
        user: &user,
    };
    Some(match event {
        "subscribe" => parse_subscribe(caller, raw).map(drop),
        "unsubscribe" => parse_unsubscribe(caller, raw).map(drop),
        "join-room" | "leave-room" => parse_room(caller, raw).map(drop),
        "typing" => parse_typing(caller, raw).map(drop),
        _ => return None,
    })
}

#[test]
fn the_parsers_refuse_every_corpus_entry_with_its_seed_code() {
    let entries = corpus();
    assert!(entries.len() >= 50, "the corpus lost entries");
    for HostileEntry {
        event,
        args,
        expect,
        why,
    } in entries
    {
        let outcome = parse(&event, args.first());
        match (expect, outcome) {
            (None, None) => {}
            (Some(code), Some(Err(error))) => {
                let got = serde_json::to_value(error.code).unwrap();
                assert_eq!(got, code, "{why}: {error}");
            }
            (expect, outcome) => panic!("{why}: expected {expect:?}, got {outcome:?}"),
        }
    }
}

/// A connected client `name` of org-1.
async fn connect(clients: &mut Clients, bridge: &TestBridge, name: &str) {
    clients
        .connect(name, &bridge.url, json!({"token": token(name, "org-1")}))
        .await;
}

/// `client` still answers: `ping` is acknowledged and `pong` comes back.
async fn answers_ping(clients: &mut Clients, client: &str) {
    let reply = clients.request(client, "ping", json!(null)).await;
    assert_eq!(reply["ok"], true, "{client}: {reply}");
    clients.event(client, "pong").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_corpus_through_the_official_client_gets_seed_errors_and_the_connection_lives_on() {
    let broker = Broker::start();
    let bridge = TestBridge::start(&broker).await;
    let mut clients = Clients::spawn().await;
    connect(&mut clients, &bridge, "hostile").await;
    connect(&mut clients, &bridge, "bystander").await;

    let mut ignored = Vec::new();
    for (at, entry) in corpus().into_iter().enumerate() {
        let reference = format!("hostile-{at}");
        clients
            .send(json!({
                "op": "emit", "client": "hostile", "event": entry.event,
                "args": entry.args, "ack": reference,
            }))
            .await;
        let Some(code) = entry.expect else {
            ignored.push(reference);
            continue;
        };
        let ack = clients
            .wait_for(&entry.why, |o| o["type"] == "ack" && o["ref"] == reference)
            .await;
        let reply = &ack["data"];
        assert_eq!(reply["ok"], false, "{}: {reply}", entry.why);
        assert_eq!(reply["error"]["code"], code, "{}: {reply}", entry.why);
        assert!(reply["error"]["message"].is_string(), "{}", entry.why);
        assert!(reply["error"]["timestamp"].is_string(), "{}", entry.why);
    }
    answers_ping(&mut clients, "hostile").await;
    answers_ping(&mut clients, "bystander").await;
    clients.settle(Duration::from_millis(300)).await;
    for observation in &clients.seen {
        let unanswered = observation["type"] == "ack"
            && ignored.contains(&observation["ref"].as_str().unwrap().to_owned());
        assert!(!unanswered, "an ignored event was answered: {observation}");
        assert_ne!(observation["type"], "disconnect", "{observation}");
    }
    bridge.stop().await;
}

/// Packets socketioxide cannot parse close the engine.io connection they
/// came on (the client sees `transport close`); the node
/// and every other connection carry on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unparseable_packet_closes_only_its_own_connection() {
    let broker = Broker::start();
    let bridge = TestBridge::start(&broker).await;
    let mut clients = Clients::spawn().await;
    connect(&mut clients, &bridge, "bystander").await;

    let oversized = "x".repeat(1_100_000);
    let packets = [
        (
            "malformed JSON",
            json!({"op": "raw", "text": "42[\"subscribe\","}),
        ),
        (
            "event name not a string",
            json!({"op": "raw", "text": "42[7,{}]"}),
        ),
        (
            "event name with a JSON escape",
            json!({"op": "raw", "text": "42[\"sub\\\"scribe\",{}]"}),
        ),
        ("unknown packet type", json!({"op": "raw", "text": "9[]"})),
        (
            "invalid UTF-8 in a text frame",
            json!({"op": "raw", "bytes": "NDL//g=="}),
        ),
        (
            "a message over limits.max_message_bytes",
            json!({"op": "emit", "event": "subscribe", "data": {"resource": "contact", "id": oversized}}),
        ),
    ];
    for (at, (what, mut command)) in packets.into_iter().enumerate() {
        let client = format!("victim-{at}");
        connect(&mut clients, &bridge, &client).await;
        command["client"] = json!(client);
        clients.send(command).await;
        let closed = clients
            .wait_for(&format!("{what} closing {client}"), |o| {
                o["client"] == client && o["type"] == "disconnect"
            })
            .await;
        assert_eq!(closed["reason"], "transport close", "{what}");
        answers_ping(&mut clients, "bystander").await;
    }
    connect(&mut clients, &bridge, "newcomer").await;
    answers_ping(&mut clients, "newcomer").await;
    bridge.stop().await;
}
