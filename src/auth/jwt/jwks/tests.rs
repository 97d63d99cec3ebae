//! JWKS keys: parsing, choice by `kid`, algorithm pinning against fetched
//! keys, the early refresh and its rate limit, failed refreshes, shutdown.
//! A small axum server on 127.0.0.1:0 plays the identity provider.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::StatusCode;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::super::keys::{self, KeySet};
use super::super::{JwtConfig, JwtVerifier};
use super::EarlyRefreshGate;
use crate::auth::{AuthError, Secret};

const RS1_PRIVATE: &str = include_str!("../../../../tests/fixtures/jwt/rs256-private.pem");
const RS1_PUBLIC: &str = include_str!("../../../../tests/fixtures/jwt/rs256-public.pem");
const RS2_PRIVATE: &str = include_str!("../../../../tests/fixtures/jwt/rs256-2-private.pem");
const ES_PRIVATE: &str = include_str!("../../../../tests/fixtures/jwt/es256-private.pem");
const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";

fn rs1() -> EncodingKey {
    EncodingKey::from_rsa_pem(RS1_PRIVATE.as_bytes()).unwrap()
}

fn rs2() -> EncodingKey {
    EncodingKey::from_rsa_pem(RS2_PRIVATE.as_bytes()).unwrap()
}

/// The public JWK of `key`, as an identity provider publishes it.
fn jwk(key: &EncodingKey, alg: Algorithm, kid: &str) -> Value {
    let mut jwk = Jwk::from_encoding_key(key, alg).unwrap();
    jwk.common.key_id = Some(kid.into());
    serde_json::to_value(jwk).unwrap()
}

fn jwks(keys: &[Value]) -> String {
    json!({ "keys": keys }).to_string()
}

fn token(alg: Algorithm, kid: Option<&str>, key: &EncodingKey) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut header = Header::new(alg);
    header.kid = kid.map(Into::into);
    let claims = json!({"sub": "user_1", "organizationId": "org-1", "exp": now + 60});
    jsonwebtoken::encode(&header, &claims, key).unwrap()
}

/// The identity provider: serves `response` at `/jwks`, counting requests.
#[derive(Clone)]
struct Idp {
    response: Arc<Mutex<(StatusCode, String)>>,
    hits: Arc<AtomicUsize>,
    url: String,
}

impl Idp {
    async fn start(body: String) -> Self {
        let response = Arc::new(Mutex::new((StatusCode::OK, body)));
        let hits = Arc::new(AtomicUsize::new(0));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        let idp = Self {
            response,
            hits,
            url,
        };
        let router = axum::Router::new()
            .route(
                "/jwks",
                axum::routing::get(|State(idp): State<Idp>| async move {
                    idp.hits.fetch_add(1, Ordering::SeqCst);
                    idp.response.lock().unwrap().clone()
                }),
            )
            .with_state(idp.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        idp
    }

    fn serve(&self, status: StatusCode, body: String) {
        *self.response.lock().unwrap() = (status, body);
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn verifier(idp: &Idp, algorithms: Vec<Algorithm>) -> JwtVerifier {
    JwtVerifier::new(&JwtConfig {
        algorithms,
        hs_secret: Some(Secret::new(SECRET)),
        jwks_url: Some(idp.url.clone()),
        ..JwtConfig::default()
    })
    .unwrap()
}

fn jwks_of(verifier: &JwtVerifier) -> &super::Jwks {
    verifier.jwks.as_deref().unwrap()
}

#[test]
fn jwks_keys_are_chosen_by_kid_and_unusable_keys_are_skipped() {
    let es = EncodingKey::from_ec_pem(ES_PRIVATE.as_bytes()).unwrap();
    let mut encryption = jwk(&rs2(), Algorithm::RS256, "enc");
    encryption["use"] = json!("enc");
    let document = jwks(&[
        jwk(&rs1(), Algorithm::RS256, "kid1"),
        jwk(&es, Algorithm::ES256, "ec1"),
        encryption,
        json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}),
        json!({"kty": "EC", "kid": "k1", "crv": "secp256k1", "x": "AA", "y": "AA"}),
        json!({"kty": "RSA", "kid": "broken"}),
        json!("not a key"),
    ]);
    let set = KeySet::from_jwks(document.as_bytes()).unwrap();
    assert_eq!(set.count(), 2);
    assert!(keys::select(set.iter(), Algorithm::RS256, Some("kid1")).is_ok());
    assert!(keys::select(set.iter(), Algorithm::ES256, Some("ec1")).is_ok());
    for skipped in ["enc", "hmac", "k1", "broken"] {
        assert_eq!(
            keys::select(set.iter(), Algorithm::RS256, Some(skipped)).err(),
            Some(AuthError::UnknownKey),
            "{skipped}"
        );
    }
    // Without a kid, the only key of the algorithm.
    assert!(keys::select(set.iter(), Algorithm::ES256, None).is_ok());
}

#[test]
fn a_jwks_without_a_usable_key_is_an_error() {
    assert!(KeySet::from_jwks(br#"{"keys": []}"#).is_err());
    assert!(KeySet::from_jwks(br#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#).is_err());
    assert!(KeySet::from_jwks(b"<html>").is_err());
    assert!(KeySet::from_jwks(br#"{"no": "keys"}"#).is_err());
}

#[test]
fn a_jwk_only_verifies_the_algorithms_of_its_key_type_and_declared_alg() {
    let declared_ps = jwk(&rs1(), Algorithm::PS256, "ps");
    let mut undeclared = jwk(&rs1(), Algorithm::RS256, "any-rsa");
    undeclared.as_object_mut().unwrap().remove("alg");
    let mut lying = jwk(&rs1(), Algorithm::RS256, "lying");
    lying["alg"] = json!("ES256");
    let set = KeySet::from_jwks(jwks(&[declared_ps, undeclared, lying]).as_bytes()).unwrap();
    assert_eq!(
        set.count(),
        2,
        "a key whose alg contradicts its type is skipped"
    );
    assert!(keys::select(set.iter(), Algorithm::PS256, Some("ps")).is_ok());
    assert_eq!(
        keys::select(set.iter(), Algorithm::RS256, Some("ps")).err(),
        Some(AuthError::AlgorithmNotAllowed)
    );
    for alg in [Algorithm::RS256, Algorithm::RS512, Algorithm::PS384] {
        assert!(keys::select(set.iter(), alg, Some("any-rsa")).is_ok());
    }
    assert_eq!(
        keys::select(set.iter(), Algorithm::ES256, Some("any-rsa")).err(),
        Some(AuthError::AlgorithmNotAllowed)
    );
}

#[tokio::test]
async fn a_token_is_verified_with_the_fetched_key_of_its_kid() {
    let idp = Idp::start(jwks(&[jwk(&rs1(), Algorithm::RS256, "kid1")])).await;
    let v = verifier(&idp, vec![Algorithm::RS256]);
    jwks_of(&v).refresh().await.unwrap();
    let p = v
        .verify(&token(Algorithm::RS256, Some("kid1"), &rs1()))
        .await
        .unwrap();
    assert_eq!(p.user.as_str(), "user_1");
    // Signed by another key under kid1's name.
    assert!(matches!(
        v.verify(&token(Algorithm::RS256, Some("kid1"), &rs2()))
            .await,
        Err(AuthError::InvalidToken(_))
    ));
}

#[tokio::test]
async fn algorithm_confusion_and_none_are_refused_with_fetched_keys() {
    let idp = Idp::start(jwks(&[jwk(&rs1(), Algorithm::RS256, "kid1")])).await;
    // The public key, as PEM text and as the JWK's modulus, used as an HMAC secret.
    let modulus = jwk(&rs1(), Algorithm::RS256, "kid1")["n"]
        .as_str()
        .unwrap()
        .to_owned();
    let confused = [
        token(
            Algorithm::HS256,
            Some("kid1"),
            &EncodingKey::from_secret(RS1_PUBLIC.as_bytes()),
        ),
        token(
            Algorithm::HS256,
            Some("kid1"),
            &EncodingKey::from_secret(modulus.as_bytes()),
        ),
    ];
    let rs_only = verifier(&idp, vec![Algorithm::RS256]);
    jwks_of(&rs_only).refresh().await.unwrap();
    let rs_and_hs = verifier(&idp, vec![Algorithm::HS256, Algorithm::RS256]);
    jwks_of(&rs_and_hs).refresh().await.unwrap();
    for token in &confused {
        assert_eq!(
            rs_only.verify(token).await,
            Err(AuthError::AlgorithmNotAllowed)
        );
        // With HS256 allowed, HS tokens are checked against `hs_secret` only.
        assert!(matches!(
            rs_and_hs.verify(token).await,
            Err(AuthError::InvalidToken(_))
        ));
    }
    let valid = token(Algorithm::RS256, Some("kid1"), &rs1());
    let payload = valid.split('.').nth(1).unwrap();
    for header in [
        r#"{"alg":"none","kid":"kid1"}"#,
        r#"{"alg":"None","kid":"kid1"}"#,
    ] {
        let unsigned = format!(
            "{}.{payload}.",
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header)
        );
        assert!(rs_and_hs.verify(&unsigned).await.is_err(), "{header}");
    }
}

#[tokio::test]
async fn an_unknown_kid_refreshes_early_at_most_once_per_interval() {
    let idp = Idp::start(jwks(&[jwk(&rs1(), Algorithm::RS256, "kid1")])).await;
    let v = Arc::new(verifier(&idp, vec![Algorithm::RS256]));
    // No fetch yet: kid1 is unknown, so verifying it fetches early.
    assert!(
        v.verify(&token(Algorithm::RS256, Some("kid1"), &rs1()))
            .await
            .is_ok()
    );
    assert_eq!(idp.hits(), 1);

    // A burst of forged kids, concurrent and in sequence: no more fetches.
    let forged: Vec<_> = (0..20)
        .map(|i| {
            let v = v.clone();
            let token = token(Algorithm::RS256, Some(&format!("forged-{i}")), &rs2());
            tokio::spawn(async move { v.verify(&token).await })
        })
        .collect();
    for verified in forged {
        assert_eq!(verified.await.unwrap(), Err(AuthError::UnknownKey));
    }
    assert_eq!(idp.hits(), 1);
}

#[tokio::test]
async fn the_first_unknown_kid_after_a_rotation_is_fetched_and_concurrent_ones_share_it() {
    let idp = Idp::start(jwks(&[jwk(&rs1(), Algorithm::RS256, "kid1")])).await;
    let v = Arc::new(verifier(&idp, vec![Algorithm::RS256]));
    jwks_of(&v).refresh().await.unwrap();
    idp.serve(
        StatusCode::OK,
        jwks(&[jwk(&rs2(), Algorithm::RS256, "kid2")]),
    );
    let kid2 = token(Algorithm::RS256, Some("kid2"), &rs2());
    let concurrent: Vec<_> = (0..10)
        .map(|_| {
            let (v, kid2) = (v.clone(), kid2.clone());
            tokio::spawn(async move { v.verify(&kid2).await })
        })
        .collect();
    for verified in concurrent {
        assert!(verified.await.unwrap().is_ok());
    }
    assert_eq!(idp.hits(), 2, "one start-up fetch and one early refresh");
    // kid1 left the set with the refresh, and the gate is now closed.
    assert_eq!(
        v.verify(&token(Algorithm::RS256, Some("kid1"), &rs1()))
            .await,
        Err(AuthError::UnknownKey)
    );
    assert_eq!(idp.hits(), 2);
}

#[test]
fn the_early_refresh_gate_opens_once_per_interval() {
    let mut gate = EarlyRefreshGate::new(Duration::from_secs(10));
    let start = Instant::now();
    assert!(gate.try_pass(start));
    assert!(!gate.try_pass(start));
    assert!(!gate.try_pass(start + Duration::from_millis(9_999)));
    assert!(gate.try_pass(start + Duration::from_secs(10)));
    assert!(!gate.try_pass(start + Duration::from_secs(15)));
    assert!(gate.try_pass(start + Duration::from_secs(20)));
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_last_good_keys() {
    let idp = Idp::start(jwks(&[jwk(&rs1(), Algorithm::RS256, "kid1")])).await;
    let v = verifier(&idp, vec![Algorithm::RS256]);
    let source = jwks_of(&v);
    source.refresh().await.unwrap();
    let kid1 = token(Algorithm::RS256, Some("kid1"), &rs1());
    let oversized = jwks(&[json!({"kty": "RSA", "kid": "x".repeat(300 * 1024)})]);
    for (status, body) in [
        (StatusCode::INTERNAL_SERVER_ERROR, String::new()),
        (StatusCode::OK, "<html>".into()),
        (StatusCode::OK, r#"{"keys": []}"#.into()),
        (StatusCode::OK, oversized),
    ] {
        idp.serve(status, body);
        assert!(source.refresh().await.is_err(), "{status}");
        assert!(v.verify(&kid1).await.is_ok(), "{status}");
    }
}

#[tokio::test]
async fn an_unreachable_jwks_refuses_only_tokens_needing_it() {
    // Nothing listens on this port once the listener is dropped.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let v = JwtVerifier::new(&JwtConfig {
        algorithms: vec![Algorithm::HS256, Algorithm::RS256],
        hs_secret: Some(Secret::new(SECRET)),
        jwks_url: Some(format!("http://127.0.0.1:{port}/jwks")),
        ..JwtConfig::default()
    })
    .unwrap();
    assert_eq!(
        v.verify(&token(Algorithm::RS256, Some("kid1"), &rs1()))
            .await,
        Err(AuthError::UnknownKey)
    );
    let hs = token(
        Algorithm::HS256,
        None,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    );
    assert!(v.verify(&hs).await.is_ok());
}

#[tokio::test]
async fn the_background_refresh_fetches_at_once_and_stops_with_shutdown() {
    let idp = Idp::start(jwks(&[jwk(&rs1(), Algorithm::RS256, "kid1")])).await;
    let v = verifier(&idp, vec![Algorithm::RS256]);
    let (tasks, shutdown) = (TaskTracker::new(), CancellationToken::new());
    v.spawn_refresh(&tasks, shutdown.clone());
    let deadline = Instant::now() + Duration::from_secs(5);
    while jwks_of(&v).current().count() == 0 {
        assert!(Instant::now() < deadline, "no fetch at start-up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shutdown.cancel();
    tasks.close();
    tokio::time::timeout(Duration::from_secs(5), tasks.wait())
        .await
        .expect("the refresh task stops with shutdown");
}

#[test]
fn the_jwks_url_must_be_https_or_loopback_http() {
    let config = |url: &str| JwtConfig {
        algorithms: vec![Algorithm::RS256, Algorithm::ES256],
        jwks_url: Some(url.into()),
        ..JwtConfig::default()
    };
    assert!(JwtVerifier::new(&config("http://127.0.0.1:1/jwks")).is_ok());
    assert!(JwtVerifier::new(&config("https://idp.example/jwks")).is_ok());
    assert!(JwtVerifier::new(&config("http://idp.example/jwks")).is_err());
    assert!(JwtVerifier::new(&config("not a url")).is_err());
    let mut never = config("http://127.0.0.1:1/jwks");
    never.jwks_refresh_seconds = 0;
    assert!(JwtVerifier::new(&never).is_err());
}
