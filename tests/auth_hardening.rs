//! Authentication hardening, black-box: the official socket.io-client against
//! the bridge and a real broker, keys rotating at a stand-in identity provider
//! (JWKS) and in the API keys file, with no restart; forged and invalid tokens
//! refused with `UNAUTHORIZED`.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use support::idp::{Idp, jwks, rsa_key};
use support::{Broker, Clients, TestBridge, eventually};

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

/// Connects `client`: `Ok(connected)` or `Err(error object of connect_error)`.
async fn connect(
    clients: &mut Clients,
    client: &str,
    url: &str,
    auth: Value,
) -> Result<Value, Value> {
    clients
        .send(json!({"op": "connect", "client": client, "url": url, "auth": auth}))
        .await;
    let outcome = clients
        .wait_for(&format!("{client} connecting"), |o| {
            o["client"] == client
                && (o["type"] == "connect_error"
                    || (o["type"] == "event" && o["event"] == "connected"))
        })
        .await;
    if outcome["type"] == "connect_error" {
        let message = outcome["message"].as_str().unwrap();
        Err(serde_json::from_str(message).expect("message is the error JSON"))
    } else {
        Ok(outcome["data"].clone())
    }
}

async fn assert_refused(clients: &mut Clients, client: &str, url: &str, auth: Value) {
    let refused = connect(clients, client, url, auth)
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
    let hello = connect(&mut clients, "kid1", &url, json!({"token": kid1}))
        .await
        .expect("kid1 accepted");
    assert_eq!(hello["userId"], "user_1");

    // The identity provider rotates to kid2 only. The first kid2 token asks
    // for an early refresh and is accepted.
    idp.serve(jwks(&[("kid2", &key2)]));
    let kid2 = sign(Algorithm::RS256, "kid2", &claims("user_2"), &key2);
    let hello = connect(&mut clients, "kid2", &url, json!({"token": kid2}))
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
    connect(&mut clients, "valid", &url, json!({"token": valid}))
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
        let hello = connect(&mut clients, client, &url, json!({"apiKey": key}))
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
        connect(&mut clients, &client, &url, json!({"apiKey": KEY_A})).await
    };
    let refused = eventually("key A to be refused", connect_a, Result::is_err).await;
    assert_eq!(refused.unwrap_err()["code"], "UNAUTHORIZED");
    connect(&mut clients, "b-again", &url, json!({"apiKey": KEY_B}))
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
