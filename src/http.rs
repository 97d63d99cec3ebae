//! Plain HTTP on two ports. The public one, beside Socket.IO
//! ([`public_router`]): liveness, the client module, the AsyncAPI document
//! of the client contract ([`crate::contract`]), the dashboard ([`web`])
//! and its dev sign-in ([`dev_sign_in`], dev mode only). The internal one
//! ([`internal_router`]), for operators and orchestrators: liveness,
//! readiness, counters (`/stats` as JSON, `/metrics` for Prometheus, both
//! from [`Metrics`]). Also CORS, [`own_request_head`], which lets hyper's read buffer go
//! once a connection becomes a websocket, [`check_websocket_version`], and
//! [`limit_engine_opens`], the rate of new Engine.IO sessions per address.

mod dev_sign_in;
mod engine_open;
mod request_head;
mod serve;
mod upgrade;
mod web;

pub use engine_open::{EngineOpens, limit_engine_opens};
pub use request_head::own_request_head;
pub use serve::{ServeLimits, serve};
pub use upgrade::check_websocket_version;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio_util::sync::CancellationToken;
use tower::{Layer, ServiceExt};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::access::Grants;
use crate::contract;
use crate::kafka::{ConsumerHandle, TopicNames};
use crate::metrics::{self, Exposition, Metrics};
use crate::presence::Presence;

#[derive(Clone)]
pub struct HttpState {
    pub consumer: ConsumerHandle,
    pub presence: Arc<Presence>,
    pub metrics: Arc<Metrics>,
    /// The permissions view: not ready until the topic was read.
    pub grants: Arc<Grants>,
    /// Cancelled when the node starts leaving: `/readyz` answers 503 from
    /// then on, so load balancers stop sending it clients.
    pub leaving: CancellationToken,
}

/// The public port's routes (Socket.IO is layered on by `app`), the
/// AsyncAPI document naming the configured `topics`; with
/// `dev_sign_in` (see
/// [`Config::dev_sign_in`](crate::config::Config::dev_sign_in)), the
/// dashboard's dev token endpoints, and `/stats` for its operations view.
pub fn public_router(state: HttpState, dev_sign_in: bool, topics: &TopicNames) -> Router {
    let asyncapi: Arc<str> = contract::asyncapi(topics).to_string().into();
    let router = Router::new()
        .route(LIVENESS_PATH, get(healthz))
        .merge(client_routes())
        .route(ASYNCAPI_PATH, get(move || asyncapi_document(asyncapi)))
        .merge(web::routes());
    let router = if dev_sign_in {
        router
            .merge(dev_sign_in::routes())
            .route(STATS_PATH, get(stats))
    } else {
        router
    };
    router.with_state(state)
}

/// The internal port's routes, for what watches the node (orchestrators,
/// Prometheus, operators): never exposed to clients (`SECURITY.md`).
pub fn internal_router(state: HttpState) -> Router {
    Router::new()
        .route(LIVENESS_PATH, get(healthz))
        .route(READINESS_PATH, get(readyz))
        .route(STATS_PATH, get(stats))
        .route(METRICS_PATH, get(prometheus))
        .with_state(state)
}

/// 200 while the process serves (Kubernetes' liveness probe).
pub const LIVENESS_PATH: &str = "/healthz";
/// 200 while the node should get clients ([`readyz`]; the readiness probe).
pub const READINESS_PATH: &str = "/readyz";
/// The counters as JSON.
pub const STATS_PATH: &str = "/stats";
/// The counters in Prometheus text format.
pub const METRICS_PATH: &str = "/metrics";

async fn healthz() -> &'static str {
    "ok"
}

/// CORS for browsers on other origins, for Socket.IO's long-polling
/// requests only ([`cors_for_socket_io`]): `allowed` origins, or any when
/// empty. Tokens travel in the handshake, not in cookies, so credentials
/// are never allowed. WebSocket upgrades are not covered by CORS; the
/// handshake checks their `Origin` itself.
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

/// Applies `cors` to Socket.IO's requests and to nothing else: a page on
/// another origin may talk Socket.IO to the bridge, but not read its
/// operational endpoints (`/stats`, `/metrics`, `/readyz`) or the dev
/// sign-in.
pub async fn cors_for_socket_io(
    State(cors): State<CorsLayer>,
    req: Request,
    next: Next,
) -> Response {
    if !is_socket_io_path(req.uri().path()) {
        return next.run(req).await;
    }
    // `Next` runs once; the service CORS wraps is called at most once.
    let mut next = Some(next);
    let inner = tower::service_fn(move |req: Request| {
        let next = next.take();
        async move {
            Ok::<_, std::convert::Infallible>(match next {
                Some(next) => next.run(req).await,
                None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            })
        }
    });
    match cors.layer(inner).oneshot(req).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// Where Socket.IO is served: engineioxide answers at its path
/// (socketioxide's default, `/socket.io`) and anything below it.
fn is_socket_io_path(path: &str) -> bool {
    path.strip_prefix("/socket.io")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The stable URL of the client module (`client/recovery.js`).
pub const CLIENT_MODULE_PATH: &str = "/client/crm-bridge-client.js";

/// The client contract as an AsyncAPI 3 document (`docs/asyncapi.json` is
/// the same for the default topics), for producer and frontend teams' tools.
pub const ASYNCAPI_PATH: &str = "/asyncapi.json";

async fn asyncapi_document(document: Arc<str>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document.to_string(),
    )
}

/// The client module's files, built in so the module served always matches
/// the bridge serving it: its entry, then the files it imports, beside it
/// under `/client/` (a test checks every relative import is here).
const CLIENT_FILES: [(&str, &str); 3] = [
    (CLIENT_MODULE_PATH, include_str!("../client/recovery.js")),
    ("/client/cursor.js", include_str!("../client/cursor.js")),
    ("/client/requests.js", include_str!("../client/requests.js")),
];

fn client_routes() -> Router<HttpState> {
    CLIENT_FILES
        .iter()
        .fold(Router::new(), |router, &(path, text)| {
            router.route(path, get(move || async move { client_file(text) }))
        })
}

fn client_file(text: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        text,
    )
}

/// 200 once every partition is assigned at a known position (from then on
/// no record produced is missed), while the broker answers and live
/// delivery is near the head (see `kafka/readiness.rs`), once presence
/// is in sync with the other nodes, and once the permissions topic was read
/// (when permissions are on); never again once the node is leaving.
/// Clients are accepted whenever the process runs, until it drains.
async fn readyz(State(state): State<HttpState>) -> (StatusCode, String) {
    match not_ready(&state) {
        Some(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason),
        None => (StatusCode::OK, "ready".into()),
    }
}

fn not_ready(state: &HttpState) -> Option<String> {
    if state.leaving.is_cancelled() {
        return Some("draining: this node is shutting down".into());
    }
    let waiting = |what: &str| format!("{what}{}", state.consumer.kafka_denials());
    state
        .consumer
        .not_ready()
        .or_else(|| {
            (!state.presence.is_ready())
                .then(|| waiting("waiting for presence from the other nodes"))
        })
        .or_else(|| (!state.grants.is_ready()).then(|| waiting("reading the permissions topic")))
}

async fn stats(State(state): State<HttpState>) -> Json<serde_json::Value> {
    let mut stats = state.metrics.snapshot();
    stats["presencePeers"] = state.presence.peers().into();
    stats["consumerLag"] = state
        .consumer
        .lag()
        .into_iter()
        .map(|lag| serde_json::json!({"topic": lag.topic, "partition": lag.partition, "records": lag.records}))
        .collect();
    stats["ready"] = not_ready(&state).is_none().into();
    stats["librdkafka"] =
        serde_json::to_value(crate::kafka::librdkafka_build()).expect("strings serialise");
    Json(stats)
}

/// The counters of `/stats` in Prometheus text format, plus lag, readiness
/// and the process's own metrics.
async fn prometheus(State(state): State<HttpState>) -> impl IntoResponse {
    let mut out = Exposition::default();
    state.metrics.render(&mut out);
    #[cfg(target_os = "linux")]
    metrics::process::render(&mut out);
    out.gauge(
        "crm_bridge_presence_peers",
        "Other bridge nodes this node hears on the presence topic.",
        state.presence.peers(),
    );
    out.gauge(
        "crm_bridge_ready",
        "1 while /readyz answers 200, else 0.",
        u8::from(not_ready(&state).is_none()),
    );
    out.family(
        "crm_bridge_consumer_lag_records",
        "gauge",
        "Records between live delivery and the partition's last stable offset (the high watermark under read_committed; last look-up).",
    );
    for lag in state.consumer.lag() {
        let partition = lag.partition.to_string();
        out.sample(
            "crm_bridge_consumer_lag_records",
            &[("topic", &lag.topic), ("partition", &partition)],
            lag.records,
        );
    }
    if let Some(silence) = state.consumer.broker_silence() {
        out.gauge(
            "crm_bridge_broker_silence_seconds",
            "Time since Kafka last answered (a watermark look-up, or metadata during a leader change).",
            silence.as_secs_f64(),
        );
    }
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        out.finish(),
    )
}

#[cfg(test)]
mod tests {
    use super::CLIENT_FILES;

    /// What `text` imports from beside it: `from "./cursor.js"` → `cursor.js`.
    fn relative_imports(text: &str) -> Vec<&str> {
        text.split("from \"./")
            .skip(1)
            .filter_map(|rest| rest.split_once('"').map(|(file, _)| file))
            .collect()
    }

    #[test]
    fn every_file_the_client_module_imports_is_served_beside_it() {
        let served: Vec<&str> = CLIENT_FILES.iter().map(|(path, _)| *path).collect();
        for (path, text) in CLIENT_FILES {
            for file in relative_imports(text) {
                let wanted = format!("/client/{file}");
                assert!(served.contains(&wanted.as_str()), "{path} imports {wanted}");
            }
        }
        assert!(relative_imports(CLIENT_FILES[0].1).contains(&"cursor.js"));
    }
}
