//! A stand-in identity provider: a JWKS served on 127.0.0.1:0, which a test
//! can swap to rotate keys. Stops when dropped.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use super::repo_path;

pub struct Idp {
    jwks: Arc<Mutex<Value>>,
    /// Where the JWKS is served (`auth.jwt.jwks_url`).
    pub jwks_url: String,
    server: tokio::task::JoinHandle<()>,
}

impl Idp {
    pub async fn start(jwks: Value) -> Self {
        let jwks = Arc::new(Mutex::new(jwks));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let jwks_url = format!("http://{}/jwks", listener.local_addr().unwrap());
        let router = axum::Router::new()
            .route(
                "/jwks",
                axum::routing::get(|State(jwks): State<Arc<Mutex<Value>>>| async move {
                    axum::Json(jwks.lock().unwrap().clone())
                }),
            )
            .with_state(jwks.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            jwks,
            jwks_url,
            server,
        }
    }

    /// Serves `jwks` from now on.
    pub fn serve(&self, jwks: Value) {
        *self.jwks.lock().unwrap() = jwks;
    }
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
