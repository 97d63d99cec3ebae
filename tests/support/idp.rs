//! A stand-in identity provider: a JWKS served on 127.0.0.1:0, which a test
//! can swap to rotate keys, and an OAuth token endpoint granting client
//! credentials (RFC 6749 §4.4) to one client. Stops when dropped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::repo_path;

pub struct Idp {
    jwks: Arc<Mutex<Value>>,
    /// Where the JWKS is served (`auth.jwt.jwks_url`).
    pub jwks_url: String,
    /// The token endpoint (`sasl.oauthbearer.token.endpoint.url`).
    pub token_url: String,
    /// Tokens the endpoint has issued.
    pub issued: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

/// The one client the token endpoint grants, and how it signs the tokens.
pub struct Issuer {
    pub client_id: &'static str,
    pub client_secret: &'static str,
    pub kid: &'static str,
    pub key: EncodingKey,
}

#[derive(Clone)]
struct Served {
    jwks: Arc<Mutex<Value>>,
    issuer: Option<Arc<Issuer>>,
    issued: Arc<AtomicUsize>,
}

impl Idp {
    pub async fn start(jwks: Value) -> Self {
        Self::start_issuing(jwks, None).await
    }

    /// As [`start`](Self::start), with a token endpoint if `issuer` is given.
    pub async fn start_issuing(jwks: Value, issuer: Option<Issuer>) -> Self {
        let served = Served {
            jwks: Arc::new(Mutex::new(jwks)),
            issuer: issuer.map(Arc::new),
            issued: Arc::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = axum::Router::new()
            .route(
                "/jwks",
                axum::routing::get(|State(served): State<Served>| async move {
                    axum::Json(served.jwks.lock().unwrap().clone())
                }),
            )
            .route("/token", axum::routing::post(token))
            .with_state(served.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            jwks: served.jwks,
            jwks_url: format!("http://{addr}/jwks"),
            token_url: format!("http://{addr}/token"),
            issued: served.issued,
            server,
        }
    }

    /// Serves `jwks` from now on.
    pub fn serve(&self, jwks: Value) {
        *self.jwks.lock().unwrap() = jwks;
    }
}

/// The client credentials grant: HTTP Basic client authentication (as
/// librdkafka's `oidc` method sends it), an RS256 access token for an hour.
async fn token(
    State(served): State<Served>,
    headers: HeaderMap,
    body: String,
) -> Result<axum::Json<Value>, StatusCode> {
    let issuer = served.issuer.as_deref().ok_or(StatusCode::NOT_FOUND)?;
    let expected = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", issuer.client_id, issuer.client_secret));
    let authorised = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value == format!("Basic {expected}"));
    if !authorised || !body.contains("grant_type=client_credentials") {
        return Err(StatusCode::UNAUTHORIZED);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"sub": issuer.client_id, "iat": now, "exp": now + 3600, "scope": "kafka"});
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(issuer.kid.to_owned());
    let access_token = jsonwebtoken::encode(&header, &claims, &issuer.key).unwrap();
    served.issued.fetch_add(1, Ordering::Relaxed);
    Ok(axum::Json(json!({
        "access_token": access_token,
        "token_type": "bearer",
        "expires_in": 3600,
    })))
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A test RSA private key from `tests/fixtures/jwt/`.
pub fn rsa_key(fixture: &str) -> EncodingKey {
    let pem = std::fs::read(repo_path(&format!("tests/fixtures/jwt/{fixture}"))).unwrap();
    EncodingKey::from_rsa_pem(&pem).unwrap()
}

/// A JWKS publishing the public halves of `keys` (RS256), each under its kid.
pub fn jwks(keys: &[(&str, &EncodingKey)]) -> Value {
    let keys: Vec<Value> = keys
        .iter()
        .map(|(kid, key)| {
            let mut jwk = Jwk::from_encoding_key(key, Algorithm::RS256).unwrap();
            jwk.common.key_id = Some((*kid).into());
            serde_json::to_value(jwk).unwrap()
        })
        .collect();
    json!({ "keys": keys })
}
