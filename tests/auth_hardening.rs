//! Authentication hardening, black-box: the official socket.io-client against
//! the bridge and a real broker, keys rotating at a stand-in identity provider
//! (JWKS) and in the API keys file, with no restart; forged and invalid tokens
//! refused with `UNAUTHORIZED`; a refused socket, driven at the wire level,
//! gets nothing but its refusal.

mod support;

#[allow(dead_code)] // the codec also has what only the load generator reads
#[path = "../bench/suite/load/wire.rs"]
mod wire;

use std::time::{SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use support::avro::deal_seq;
use support::idp::{Idp, jwks, rsa_key};
use support::{Broker, Clients, PATIENCE, Producer, TestBridge, eventually, token};
use tokio_tungstenite::tungstenite::Message;
use wire::Inbound;

const ISSUER: &str = "https://idp.test";
const AUDIENCE: &str = "crm-bridge";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims the bridge accepts: an hour to live, the configured issuer and audience.
fn claims(user: &str) -> Value {
    json!({
        "sub": user, "name": user, "organizationId": "org-1",
        "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 3600,
    })
}

fn sign(alg: Algorithm, kid: &str, claims: &Value, key: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// A token claiming `alg: none`, with no signature.
fn unsigned(kid: &str, claims: &Value) -> String {
    let encode = |v: Value| {
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            v.to_string(),
        )
    };
    format!(
        "{}.{}.",
        encode(json!({"alg": "none", "typ": "JWT", "kid": kid})),
        encode(claims.clone())
    )
}

async fn bridge_trusting(broker: &Broker, idp: &Idp) -> TestBridge {
    let jwks_url = idp.jwks_url.clone();
    TestBridge::start_with(broker, |config| {
        let jwt = &mut config.auth.jwt;
        jwt.algorithms = vec![Algorithm::HS256, Algorithm::RS256];
        jwt.jwks_url = Some(jwks_url);
        jwt.issuer = Some(ISSUER.into());
        jwt.audience = Some(AUDIENCE.into());
    })
    .await
}

async fn assert_refused(clients: &mut Clients, client: &str, url: &str, auth: Value) {
    let refused = clients
        .try_connect(client, url, auth)
        .await
        .expect_err(&format!("{client} must be refused"));
    assert_eq!(refused["code"], "UNAUTHORIZED", "{client}: {refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_keys_rotate_without_a_restart() {
    let broker = Broker::start();
    let (key1, key2) = (rsa_key("rs256-private.pem"), rsa_key("rs256-2-private.pem"));
    let idp = Idp::start(jwks(&[("kid1", &key1)])).await;
    let bridge = bridge_trusting(&broker, &idp).await;
    let mut clients = Clients::spawn().await;
    let url = bridge.url.clone();

    let kid1 = sign(Algorithm::RS256, "kid1", &claims("user_1"), &key1);
    let hello = clients
        .try_connect("kid1", &url, json!({"token": kid1}))
        .await
        .expect("kid1 accepted");
    assert_eq!(hello["userId"], "user_1");

    // The identity provider rotates to kid2 only. The first kid2 token asks
    // for an early refresh and is accepted.
    idp.serve(jwks(&[("kid2", &key2)]));
    let kid2 = sign(Algorithm::RS256, "kid2", &claims("user_2"), &key2);
    let hello = clients
        .try_connect("kid2", &url, json!({"token": kid2}))
        .await
        .expect("kid2 accepted after the early refresh");
    assert_eq!(hello["userId"], "user_2");

    // kid1 left the key set with that refresh.
    assert_refused(&mut clients, "kid1-again", &url, json!({"token": kid1})).await;
    let stats = bridge.stats().await;
    assert!(
        stats["authFailures"]["unknown_key"].as_u64() >= Some(1),
        "{stats}"
    );
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_invalid_tokens_are_refused() {
    let broker = Broker::start();
    let (key1, key2) = (rsa_key("rs256-private.pem"), rsa_key("rs256-2-private.pem"));
    let idp = Idp::start(jwks(&[("kid1", &key1)])).await;
    let bridge = bridge_trusting(&broker, &idp).await;
    let mut clients = Clients::spawn().await;
    let url = bridge.url.clone();

    let valid = sign(Algorithm::RS256, "kid1", &claims("user_ok"), &key1);
    clients
        .try_connect("valid", &url, json!({"token": valid}))
        .await
        .expect("a valid token is accepted");

    let public_pem =
        std::fs::read(support::repo_path("tests/fixtures/jwt/rs256-public.pem")).unwrap();
    let with = |field: &str, value: Value| {
        let mut c = claims("user_bad");
        c[field] = value;
        c
    };
    let cases = [
        (
            "forged-signature",
            sign(Algorithm::RS256, "kid1", &claims("user_bad"), &key2),
        ),
        ("alg-none", unsigned("kid1", &claims("user_bad"))),
        (
            "hs256-with-the-public-key",
            sign(
                Algorithm::HS256,
                "kid1",
                &claims("user_bad"),
                &EncodingKey::from_secret(&public_pem),
            ),
        ),
        (
            "expired",
            sign(
                Algorithm::RS256,
                "kid1",
                &with("exp", json!(now() - 120)),
                &key1,
            ),
        ),
        (
            "not-yet-valid",
            sign(
                Algorithm::RS256,
                "kid1",
                &with("nbf", json!(now() + 600)),
                &key1,
            ),
        ),
        (
            "wrong-issuer",
            sign(
                Algorithm::RS256,
                "kid1",
                &with("iss", json!("https://evil.test")),
                &key1,
            ),
        ),
        // The signature verifies; the claims do not: counted as any other
        // invalid token, so metrics do not tell a forger how far they got.
        (
            "blank-organization",
            sign(
                Algorithm::RS256,
                "kid1",
                &with("organizationId", json!(" ")),
                &key1,
            ),
        ),
        (
            "overlong-name",
            sign(
                Algorithm::RS256,
                "kid1",
                &with("name", json!("n".repeat(300))),
                &key1,
            ),
        ),
        (
            "wrong-audience",
            sign(
                Algorithm::RS256,
                "kid1",
                &with("aud", json!("another-service")),
                &key1,
            ),
        ),
    ];
    for (client, token) in cases {
        assert_refused(&mut clients, client, &url, json!({"token": token})).await;
    }
    let failures = bridge.stats().await["authFailures"].clone();
    let reasons: Vec<&String> = failures.as_object().unwrap().keys().collect();
    assert!(
        reasons
            .iter()
            .all(|r| ["invalid_token", "algorithm", "unknown_key"].contains(&r.as_str())),
        "{failures}"
    );
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_removed_from_the_keys_file_is_cut_off_and_refused_without_a_restart() {
    const KEY_A: &str = "file-key-a-0123456789abcdef";
    const KEY_B: &str = "file-key-b-0123456789abcdef";
    let entry = |key: &str, user: &str| {
        format!(
            "[[api_keys]]\nsha256 = \"{}\"\norganization_id = \"org-1\"\nuser_id = \"{user}\"\nname = \"{user}\"\n\n",
            crm_bridge::auth::hash_api_key(key)
        )
    };
    let path = std::env::temp_dir().join(format!("crm-bridge-keys-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&path, entry(KEY_A, "svc_a") + &entry(KEY_B, "svc_b")).unwrap();

    let broker = Broker::start();
    let keys_file = path.clone();
    let bridge = TestBridge::start_with(&broker, |config| {
        config.auth.api_keys_file = Some(keys_file);
        config.auth.reload_seconds = 1;
    })
    .await;
    let mut clients = Clients::spawn().await;
    let url = bridge.url.clone();
    for (client, key, user) in [("a", KEY_A, "svc_a"), ("b", KEY_B, "svc_b")] {
        let hello = clients
            .try_connect(client, &url, json!({"apiKey": key}))
            .await
            .expect("keys from the file are accepted");
        assert_eq!(hello["userId"], user);
    }

    // Revoke A: write the new file beside it and rename it into place.
    let staged = path.with_extension("toml.new");
    std::fs::write(&staged, entry(KEY_B, "svc_b")).unwrap();
    std::fs::rename(&staged, &path).unwrap();
    let mut attempt = 0;
    let connect_a = async || {
        attempt += 1;
        let client = format!("a-{attempt}");
        clients
            .try_connect(&client, &url, json!({"apiKey": KEY_A}))
            .await
    };
    let refused = eventually("key A to be refused", connect_a, Result::is_err).await;
    assert_eq!(refused.unwrap_err()["code"], "UNAUTHORIZED");
    clients
        .try_connect("b-again", &url, json!({"apiKey": KEY_B}))
        .await
        .expect("key B is still accepted");

    // The connection made with A is told and closed; B's lives on.
    let told = clients
        .wait_for("a revoked", |o| o["client"] == "a" && o["event"] == "error")
        .await;
    assert_eq!(told["data"]["code"], "UNAUTHORIZED", "{told}");
    assert_eq!(told["data"]["details"]["reason"], "revoked", "{told}");
    let gone = clients
        .wait_for("a disconnected", |o| {
            o["client"] == "a" && o["type"] == "disconnect"
        })
        .await;
    assert_eq!(gone["reason"], "io server disconnect");
    assert_eq!(clients.request("b", "ping", json!({})).await["ok"], true);
    bridge.stop().await;
    std::fs::remove_file(&path).unwrap();
}

/// Raw WebSocket clients with a forged token for org-1, while an event they
/// would match is delivered to an authenticated neighbour, get nothing but
/// their refusals. One asks for everything the moment CONNECT is answered:
/// the requests find no handler, or, after the disconnect, close its
/// session. The other CONNECTs again on the same session: charged to the
/// handshake rate, it is refused again; then it keeps the session open and
/// silent, and the bridge ends it at the connect timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_socket_gets_its_error_and_nothing_else() {
    let broker = Broker::start();
    let bridge = TestBridge::start_with(&broker, |c| {
        // One handshake per address (each client has its own): a CONNECT
        // sent again a round trip after the first finds none left.
        c.guard.handshake_burst = 1;
        c.guard.handshakes_per_second_per_address = 1;
        c.guard.connect_timeout_seconds = 3;
    })
    .await;
    let producer = Producer::new(&broker);
    let mut clients = Clients::spawn().await;
    let deals = json!({"resource": "deal", "filter": {"pipelineId": "pipeline_h"}});
    let auth = json!({"token": token("user_n", "org-1")});
    clients
        .send(json!({"op": "connect", "client": "neighbour", "url": bridge.url, "auth": auth, "localAddress": "127.0.0.2"}))
        .await;
    clients.event("neighbour", "connected").await;
    clients.subscribe("neighbour", deals.clone()).await;
    let deal = |seq| deal_seq("org-1", "deal_h", "pipeline_h", seq);
    // Delivery flows before the forged clients come.
    producer.send("crm.deals", "deal_h", &deal(1)).await;
    clients.deliveries("neighbour", 1).await;

    let forged = jsonwebtoken::encode(
        &Header::default(),
        &claims("user_h"),
        &EncodingKey::from_secret(b"not-the-bridge-secret-0123456789"),
    )
    .unwrap();
    let asking = RawClient::start(&bridge, "127.0.0.3", &forged, Some(deals)).await;
    let reconnecting = RawClient::start(&bridge, "127.0.0.4", &forged, None).await;
    producer.send("crm.deals", "deal_h", &deal(2)).await;
    assert_eq!(clients.deliveries("neighbour", 1).await[0]["id"], "deal_h");
    assert!(
        !reconnecting.frames.is_finished(),
        "the event went out while the refused session was open"
    );

    let refused = ["open", "CONNECT", "error UNAUTHORIZED", "DISCONNECT"];
    let asked = asking.frames.await.unwrap();
    // A request that comes after the disconnect closes the Engine.IO
    // session: the bridge says so ("1") once for each.
    let told = asked
        .iter()
        .rposition(|f| f != "1")
        .map_or(0, |last| last + 1);
    assert_eq!(summary(&asked[..told]), refused, "{asked:#?}");
    let limited = ["CONNECT", "error RATE_LIMITED handshake_rate", "DISCONNECT"];
    let mut reconnecting = reconnecting;
    // socketioxide drops a CONNECT that arrives while it is still inside
    // the previous one's handling (its `ConnectingGuard`, which the
    // refusal's DISCONNECT is sent from): a CONNECT sent back at once can
    // fall in that gap, go unanswered, and the bridge ends the session at
    // the connect timeout. Such a session is tried again from a fresh
    // address, at most twice more; every other outcome fails at once.
    let mut sessions = 1;
    loop {
        let ended = tokio::time::timeout(PATIENCE, reconnecting.frames).await;
        let again = ended.expect("the bridge ends the refused session").unwrap();
        if summary(&again) == refused && sessions < 3 {
            sessions += 1;
            let from = format!("127.0.0.{}", 3 + sessions);
            reconnecting = RawClient::start(&bridge, &from, &forged, None).await;
            continue;
        }
        assert_eq!(
            summary(&again),
            [&refused[..], &limited[..]].concat(),
            "{again:#?}"
        );
        break;
    }
    let stats = bridge.stats().await;
    assert_eq!(stats["clientsConnected"], 1, "{stats}");
    assert_eq!(stats["connectionsRefused"]["handshake_rate"], 1, "{stats}");
    assert_eq!(
        stats["authFailures"]["invalid_token"],
        1 + sessions,
        "{stats}"
    );
    bridge.stop().await;
}

/// A hostile session at the wire level, from its own loopback address.
struct RawClient {
    /// Every frame the bridge sent but pings, until the connection ended.
    frames: tokio::task::JoinHandle<Vec<String>>,
}

impl RawClient {
    /// Opens the session and CONNECTs with `token`; returns once CONNECT was
    /// answered and, with `ask`, that subscription, a room, typing and a
    /// ping were requested. Without, it CONNECTs again after the first
    /// disconnect.
    async fn start(bridge: &TestBridge, from: &str, token: &str, ask: Option<Value>) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        let tcp = socket.connect(bridge.addr()).await.unwrap();
        let url = wire::websocket_url(&bridge.url);
        let (ws, _) = tokio_tungstenite::client_async(url, tcp).await.unwrap();
        let requests = ask.map(|deals| {
            let room = json!({"type": "pipeline", "id": "pipeline_h"});
            let typing = json!({"roomType": "pipeline", "roomId": "pipeline_h", "field": "notes"});
            vec![
                wire::emit_with_ack(1, "subscribe", &deals),
                wire::emit_with_ack(2, "join-room", &room),
                wire::emit_with_ack(3, "typing", &typing),
                wire::emit_with_ack(4, "ping", &json!({})),
            ]
        });
        let (answered, answered_rx) = tokio::sync::oneshot::channel();
        let connect = wire::connect(&json!({ "token": token }));
        let frames = tokio::spawn(Self::run(ws, connect, requests, answered));
        answered_rx.await.expect("CONNECT was answered");
        Self { frames }
    }

    async fn run(
        mut ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
        connect: String,
        requests: Option<Vec<String>>,
        answered: tokio::sync::oneshot::Sender<()>,
    ) -> Vec<String> {
        let mut connect_again = requests.is_none();
        let (mut requests, mut answered) = (requests.unwrap_or_default(), Some(answered));
        let mut frames = Vec::new();
        // Until the bridge ends the connection: an error or the stream's end.
        while let Some(Ok(frame)) = ws.next().await {
            let Message::Text(text) = frame else { continue };
            let text = text.as_str().to_owned();
            let replies = match wire::classify(&text) {
                Inbound::Ping => vec![wire::PONG.to_owned()],
                Inbound::Open => vec![connect.clone()],
                Inbound::Connected => std::mem::take(&mut requests),
                _ if text == "41" && std::mem::take(&mut connect_again) => vec![connect.clone()],
                _ => vec![],
            };
            for reply in replies {
                // Fails once the bridge has closed the session.
                let _ = ws.send(Message::text(reply)).await;
            }
            match wire::classify(&text) {
                Inbound::Ping => continue,
                Inbound::Connected => drop(answered.take().map(|tx| tx.send(()))),
                _ => {}
            }
            frames.push(text);
        }
        frames
    }
}

/// Frames as the assertions read them: the packet, or an event's name with
/// its error's code and reason.
fn summary(frames: &[String]) -> Vec<String> {
    let one = |frame: &String| match wire::classify(frame) {
        Inbound::Open => "open".to_owned(),
        Inbound::Connected => "CONNECT".to_owned(),
        Inbound::Event { name, raw } => {
            let error = wire::arg(raw, 1).unwrap_or_default();
            let reason = error["details"]["reason"].as_str();
            let words = [Some(name), error["code"].as_str(), reason];
            words.into_iter().flatten().collect::<Vec<_>>().join(" ")
        }
        _ if frame == "41" => "DISCONNECT".to_owned(),
        _ => frame.clone(),
    };
    frames.iter().map(one).collect()
}
