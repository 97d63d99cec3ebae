//! The dashboard's dev sign-in: `GET /dev/users` lists the dev tenants'
//! organisations and users, `POST /dev/token { user, name, org, ttlSeconds? }`
//! answers `{ token, expiresAt }`, signed with the public dev secret.
//!
//! Mounted only when [`Config::dev_sign_in`](crate::config::Config::dev_sign_in)
//! holds (`dev_mode` and the dev secret); otherwise both paths are 404. It
//! grants nothing new: anyone can sign a token with the published dev secret.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{DEV_JWT_SECRET, sign_dev_token};
use crate::dev_tenants::ORGS;

/// A dev session lasts a working day unless the page asks for less.
const DEFAULT_TTL_SECONDS: u64 = 8 * 3600;
const MAX_TTL_SECONDS: u64 = 24 * 3600;
/// Longest user id, name or organisation id accepted (as the JWT claims).
const MAX_LEN: usize = 128;

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/dev/users", get(users))
        .route("/dev/token", post(token))
}

async fn users() -> Json<Value> {
    let orgs: Vec<Value> = ORGS
        .iter()
        .map(|org| {
            let users: Vec<Value> = org
                .users
                .iter()
                .map(|(id, name)| json!({ "id": id, "name": name }))
                .collect();
            json!({ "id": org.id, "name": org.name, "pipeline": org.pipeline, "users": users })
        })
        .collect();
    Json(json!({ "organizations": orgs }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TokenRequest {
    user: String,
    name: String,
    org: String,
    ttl_seconds: Option<u64>,
}

async fn token(
    request: Result<Json<TokenRequest>, JsonRejection>,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    let refuse = |message: String| (StatusCode::BAD_REQUEST, Json(json!({ "error": message })));
    let Json(request) = request.map_err(|e| refuse(e.body_text()))?;
    for (field, value) in [
        ("user", &request.user),
        ("name", &request.name),
        ("org", &request.org),
    ] {
        if value.is_empty() || value.len() > MAX_LEN {
            return Err(refuse(format!("`{field}` must be 1 to {MAX_LEN} bytes")));
        }
    }
    let ttl = request.ttl_seconds.unwrap_or(DEFAULT_TTL_SECONDS);
    if !(1..=MAX_TTL_SECONDS).contains(&ttl) {
        return Err(refuse(format!(
            "`ttlSeconds` must be 1 to {MAX_TTL_SECONDS}"
        )));
    }
    let token = sign_dev_token(
        DEV_JWT_SECRET,
        &request.user,
        &request.name,
        &request.org,
        ttl,
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok(Json(
        json!({ "token": token, "expiresAt": (now + ttl) * 1000 }),
    ))
}
