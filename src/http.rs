//! Plain HTTP beside Socket.IO: liveness, readiness, counters, the client
//! module, and CORS.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::routing::get;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::kafka::ConsumerHandle;
use crate::metrics::Metrics;
use crate::presence::Presence;

#[derive(Clone)]
pub struct HttpState {
    pub consumer: ConsumerHandle,
    pub presence: Arc<Presence>,
    pub metrics: Arc<Metrics>,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/stats", get(stats))
        .route(CLIENT_MODULE_PATH, get(client_module))
        .with_state(state)
}

/// CORS for browsers on other origins (Socket.IO's long-polling requests):
/// `allowed` origins, or any when empty. Tokens travel in the handshake, not
/// in cookies, so credentials are never allowed. WebSocket upgrades are not
/// covered by CORS; the handshake checks their `Origin` itself.
pub fn cors(allowed: &[String]) -> anyhow::Result<CorsLayer> {
    let origins = if allowed.is_empty() {
        AllowOrigin::any()
    } else {
        let values = allowed
            .iter()
            .map(|o| HeaderValue::from_str(o))
            .collect::<Result<Vec<_>, _>>()?;
        AllowOrigin::list(values)
    };
    Ok(CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]))
}

/// The stable URL of the client module (`client/recovery.js`), built in so
/// the module served always matches the bridge serving it.
pub const CLIENT_MODULE_PATH: &str = "/client/crm-bridge-client.js";

async fn client_module() -> impl axum::response::IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../client/recovery.js"),
    )
}

/// 200 once every partition is assigned at a known position (from then on
/// no record produced is missed) and presence is in sync with the other
/// nodes. Clients are accepted whenever the process runs.
async fn readyz(State(state): State<HttpState>) -> (StatusCode, &'static str) {
    if !state.consumer.is_assigned() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting for Kafka partitions",
        )
    } else if !state.presence.is_ready() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting for presence from the other nodes",
        )
    } else {
        (StatusCode::OK, "ready")
    }
}

async fn stats(State(state): State<HttpState>) -> Json<serde_json::Value> {
    let mut stats = state.metrics.snapshot();
    stats["presencePeers"] = state.presence.peers().into();
    Json(stats)
}
