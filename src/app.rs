//! Builds and runs the bridge; `main` and the tests both start it through
//! [`start`]. Shutdown order lives in [`RunningApp::shutdown`], its longest
//! time in [`stop_budget`].
//!
//! - `open_files.rs`: raising the open-files limit to what clients need.

mod open_files;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use socketioxide::SocketIo;
use socketioxide::layer::SocketIoLayer;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::Layer;
use tower::util::MapRequestLayer;

use crate::access::{Grants, Policy};
use crate::auth::Authenticator;
use crate::config::Config;
use crate::decode::{Decoder, LocalRegistry, SchemaRegistry};
use crate::drain::{DrainConfig, OpenConnections};
use crate::gateway::{self, Dispatcher, Gateway, GatewayParts};
use crate::guard::ConnectionGate;
use crate::http::{self, EngineOpens, HttpState, ServeLimits};
use crate::kafka::{
    BridgeContext, ConsumerHandle, GrantSources, KafkaConfig, LivePositions,
    ensure_compacted_topic, ensure_topics, follow_grants, librdkafka_build, spawn_consumer,
};
use crate::metrics::Metrics;
use crate::presence::Presence;
use crate::replay::Replayer;

/// How long shutdown waits for the live consumer to stop and commit. With
/// Kafka reachable it takes milliseconds; with Kafka gone librdkafka would
/// wait for the coordinator for ever, and the commit is lost anyway (clients
/// resume from their own cursors).
const CONSUMER_STOP_BUDGET: Duration = Duration::from_secs(10);

/// How long shutdown waits for clients to be sent what is queued for them
/// and disconnected: one that reads nothing is closed with its queue.
const CLIENTS_CLOSE_BUDGET: Duration = Duration::from_secs(5);

/// How long shutdown waits for tasks before giving up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Shutdown after the drain is bounded whatever Kafka and the clients do:
/// the sum of the consumer's, the clients' and the tasks' budgets, plus the
/// trace flush's own timeout.
pub const SHUTDOWN_BUDGET: Duration = Duration::from_secs(
    CONSUMER_STOP_BUDGET.as_secs() + CLIENTS_CLOSE_BUDGET.as_secs() + SHUTDOWN_GRACE.as_secs(),
);

/// The longest a node configured so takes to exit once told to stop: its
/// drain delay, closing `guard.max_connections` at the drain's pace, then
/// [`SHUTDOWN_BUDGET`]. An orchestrator's grace period must exceed it
/// (`deploy/k8s`).
pub fn stop_budget(config: &Config) -> Duration {
    config.drain.delay() + config.drain.close_time(config.guard.max_connections) + SHUTDOWN_BUDGET
}

pub struct RunningApp {
    /// The public port: Socket.IO and the dashboard (the real port when
    /// configured with 0).
    pub addr: SocketAddr,
    /// The internal port: `/readyz`, `/stats`, `/metrics`.
    pub internal_addr: SocketAddr,
    pub consumer: ConsumerHandle,
    pub metrics: Arc<Metrics>,
    io: SocketIo,
    drain: DrainConfig,
    /// The public port's connections, closed paced when leaving.
    open: Arc<OpenConnections>,
    /// Turns `/readyz` to 503: the first step of leaving.
    leaving: CancellationToken,
    /// Stops accepting connections (after the drain delay, so nobody
    /// reconnects to a node that is leaving).
    stop_accepting: CancellationToken,
    /// Stops the live consumer (before clients are disconnected, so that
    /// every record it committed reached their sockets).
    stop_consuming: CancellationToken,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

/// Starts the bridge, in this order: schemas and topics; presence; the
/// gateway and its Socket.IO server; the live consumer feeding it; the
/// HTTP listeners last. [`RunningApp::shutdown`] stops it.
pub async fn start(mut config: Config) -> anyhow::Result<RunningApp> {
    config.resolve_secrets()?;
    config.validate()?;
    open_files::raise_limit(config.guard.max_connections);
    log_kafka_client(&config.kafka);
    let metrics = Arc::new(Metrics::default());
    let kafka_context = BridgeContext::new(metrics.clone());
    let decoder = Arc::new(Decoder::new(Arc::new(schema_registry(&config)?)));
    if let Some(partitions) = config.kafka.create_topics {
        create_topics(&config, &kafka_context, partitions).await?;
    }
    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    let presence = Presence::start(
        &config.presence,
        &config.kafka,
        &kafka_context,
        metrics.clone(),
        &tasks,
        shutdown.clone(),
    )?;

    let live = Arc::new(LivePositions::new(config.replay.memory_bytes));
    let replayer = Replayer::new(
        config.replay.clone(),
        config.kafka.clone(),
        kafka_context.clone(),
        decoder.clone(),
        metrics.clone(),
        live.clone(),
    );
    let connections = ConnectionGate::new(&config.guard);
    let auth = Authenticator::new(&config.auth)?;
    auth.spawn_refresh(&tasks, shutdown.clone());
    let policy = Policy::new(&config.permissions)?;
    let grants = Arc::new(Grants::default());
    match (&config.permissions.topic, policy.is_enabled()) {
        (Some(topic), true) => {
            let sources = GrantSources {
                decoder: decoder.clone(),
                grants: grants.clone(),
                metrics: metrics.clone(),
            };
            follow_grants(
                &config.kafka,
                &kafka_context,
                topic,
                sources,
                &tasks,
                shutdown.child_token(),
            )?;
        }
        _ => grants.mark_ready(), // never asked
    }
    let gateway = Arc::new(Gateway::new(GatewayParts {
        auth,
        limits: config.limits.clone(),
        index_shards: config.index_shards,
        metrics: metrics.clone(),
        replayer: Arc::new(replayer),
        live: live.clone(),
        presence: presence.clone(),
        policy,
        grants: grants.clone(),
        guard: config.guard.clone(),
        connections: connections.clone(),
        token_grace: Duration::from_secs(config.auth.jwt.leeway_seconds),
        revocation_check: Duration::from_secs(config.auth.reload_seconds),
    }));
    let (socket_layer, io) = socket_io(&config, gateway.clone());
    gateway::spawn_revocations(&gateway, &tasks, shutdown.child_token());

    let stop_consuming = shutdown.child_token();
    let consumer = spawn_consumer(
        &config.kafka,
        &kafka_context,
        decoder,
        Dispatcher::new(gateway),
        live,
        &tasks,
        stop_consuming.clone(),
    )?;

    let leaving = CancellationToken::new();
    let state = HttpState {
        consumer: consumer.clone(),
        presence,
        metrics: metrics.clone(),
        grants,
        leaving: leaving.clone(),
    };
    let internal = http::internal_router(state.clone());
    let internal_addr = serve(
        &config,
        config.internal_listen,
        internal,
        Arc::default(),
        &tasks,
        shutdown.clone(),
    )
    .await?;
    let router = http_router(&config, state, socket_layer, connections)?;
    let stop_accepting = shutdown.child_token();
    let open = Arc::new(OpenConnections::default());
    let addr = serve(
        &config,
        config.listen,
        router,
        open.clone(),
        &tasks,
        stop_accepting.clone(),
    )
    .await?;
    tracing::info!(%addr, %internal_addr, "crm-bridge listening");
    Ok(RunningApp {
        addr,
        internal_addr,
        consumer,
        metrics,
        io,
        drain: config.drain,
        open,
        leaving,
        stop_accepting,
        stop_consuming,
        shutdown,
        tasks,
    })
}

/// The schema registry configured, or the local directory of schemas.
fn schema_registry(config: &Config) -> anyhow::Result<SchemaRegistry> {
    Ok(match config.schemas.http_registry()? {
        Some(http) => SchemaRegistry::Http(http),
        None => SchemaRegistry::Local(LocalRegistry::load(&config.schemas.local_dir)?),
    })
}

/// Creates whichever of the topics the bridge reads and writes are missing,
/// with `partitions` each (`kafka.create_topics`, for development).
async fn create_topics(
    config: &Config,
    kafka_context: &BridgeContext,
    partitions: i32,
) -> anyhow::Result<()> {
    let mut names: Vec<&str> = config.kafka.topics.all().map(|(_, name)| name).collect();
    names.push(&config.presence.topic);
    names.extend(config.kafka.dead_letter_topic.as_deref());
    ensure_topics(&config.kafka, kafka_context, &names, partitions).await?;
    // Compacted: the CRM's own in production, created here for dev.
    if let Some(topic) = &config.permissions.topic {
        ensure_compacted_topic(&config.kafka, kafka_context, topic, partitions).await?;
    }
    Ok(())
}

/// The Socket.IO server over `gateway`, and its layer for the router.
fn socket_io(config: &Config, gateway: Arc<Gateway>) -> (SocketIoLayer, SocketIo) {
    let limits = &config.limits;
    let (socket_layer, io) = SocketIo::builder()
        .with_state(gateway)
        .max_buffer_size(limits.socket_buffer)
        .max_payload(limits.max_message_bytes as u64)
        .ws_max_message_size(limits.max_message_bytes)
        .ws_max_frame_size(limits.max_message_bytes)
        .ws_read_buffer_size(limits.read_buffer_bytes)
        .connect_timeout(Duration::from_secs(config.guard.connect_timeout_seconds))
        .build_layer();
    gateway::attach(&io);
    (socket_layer, io)
}

/// The HTTP routes and Socket.IO, inside the guards every request passes
/// (outermost last): engine opens limited, WebSocket versions checked,
/// CORS for Socket.IO.
fn http_router(
    config: &Config,
    state: HttpState,
    socket_layer: SocketIoLayer,
    connections: Arc<ConnectionGate>,
) -> anyhow::Result<Router> {
    let metrics = state.metrics.clone();
    let topics = &config.kafka.topics;
    Ok(http::public_router(state, config.dev_sign_in(), topics)
        .layer(socket_layer)
        .layer(axum::middleware::from_fn_with_state(
            EngineOpens {
                gate: connections,
                guard: Arc::new(config.guard.clone()),
                metrics,
            },
            http::limit_engine_opens,
        ))
        .layer(axum::middleware::from_fn(http::check_websocket_version))
        .layer(axum::middleware::from_fn_with_state(
            http::cors(&config.guard.allowed_origins)?,
            http::cors_for_socket_io,
        )))
}

/// Binds `at` and serves `router` until `stop_accepting`, its connections
/// tracked in `open`; the address bound (the real port when given 0).
async fn serve(
    config: &Config,
    at: SocketAddr,
    router: Router,
    open: Arc<OpenConnections>,
    tasks: &TaskTracker,
    stop_accepting: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(at)
        .await
        .with_context(|| format!("binding {at}"))?;
    let addr = listener.local_addr()?;
    // Outside the router: it clones the URI into the extensions first.
    let app = MapRequestLayer::new(http::own_request_head).layer(router);
    let limits = ServeLimits {
        header_read_timeout: Duration::from_secs(config.guard.header_read_timeout_seconds),
        max_head_bytes: config.guard.max_request_head_bytes,
    };
    tasks.spawn(http::serve(
        listener,
        app,
        limits,
        open,
        tasks.clone(),
        stop_accepting,
    ));
    Ok(addr)
}

/// What an operator checks first when a broker refuses the bridge: which
/// librdkafka, built with what (`ssl`, `sasl_scram`, `zstd`, ...), and which
/// extra properties it was given, by name only (values may be secrets).
fn log_kafka_client(kafka: &KafkaConfig) {
    let build = librdkafka_build();
    let properties: Vec<&str> = kafka.properties.keys().map(String::as_str).collect();
    tracing::info!(
        version = %build.version,
        builtin_features = %build.builtin_features.join(","),
        properties = %properties.join(","),
        "librdkafka"
    );
}

impl RunningApp {
    /// Stops in order: `/readyz` turns 503, and the node serves on for the
    /// drain delay while load balancers notice; stop accepting connections;
    /// stop the consumer (which commits its offsets); close client
    /// connections in paced batches ([`crate::drain`]), so their reconnects
    /// to other nodes spread out, each client holding everything up to its
    /// own cursor (it resumes from there, elsewhere or here once restarted,
    /// from memory, and leaves its rooms); stop presence (which says
    /// `bye`), wait for tasks, then export the spans of what they did. The
    /// trace exporter itself belongs to the process (`main` stops it): tests
    /// run many bridges in one.
    pub async fn shutdown(self) {
        let started = Instant::now();
        let clients = self.metrics.clients_connected.get();
        self.leaving.cancel();
        tracing::info!(delay = ?self.drain.delay(), clients, "draining: /readyz answers 503");
        tokio::time::sleep(self.drain.delay()).await;
        self.stop_accepting.cancel();
        self.stop_consuming.cancel();
        if tokio::time::timeout(CONSUMER_STOP_BUDGET, self.consumer.stopped())
            .await
            .is_err()
        {
            tracing::warn!(
                budget = ?CONSUMER_STOP_BUDGET,
                "the consumer did not stop in time (is Kafka reachable?); going on without its final commit"
            );
        }
        let closed = self.open.close_paced(&self.drain).await;
        tracing::info!(closed, elapsed = ?started.elapsed(), "connections closed, paced");
        // Long-polling sessions outlive their connections: Socket.IO's own
        // close ends them, and any websocket still closing.
        if tokio::time::timeout(CLIENTS_CLOSE_BUDGET, self.io.close())
            .await
            .is_err()
        {
            tracing::warn!(budget = ?CLIENTS_CLOSE_BUDGET, "clients still closing; going on");
        }
        tracing::info!(clients, elapsed = ?started.elapsed(), "clients disconnected");
        self.shutdown.cancel();
        self.tasks.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("tasks still running after the shutdown grace period");
        }
        tracing::info!(elapsed = ?started.elapsed(), "tasks stopped");
        // Flushing blocks while the collector answers: off the async workers.
        let _ = tokio::task::spawn_blocking(crate::telemetry::flush_traces).await;
    }
}
