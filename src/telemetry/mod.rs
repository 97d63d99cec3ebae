//! Logs and traces: the process-wide `tracing` subscriber.
//!
//! - Logs go to stderr, human-readable or JSON (`log.format`); a line logged
//!   inside a traced record carries its trace and span ids (`log_ids.rs`).
//! - Traces are exported over OTLP only when a [`TraceExport`] is given (by
//!   `main`, from `OTEL_*`): without one there is no OpenTelemetry layer and
//!   no record ever gets a span.
//! - Which records are traced, and their spans: `record.rs`.
//!
//! The subscriber is global: the first [`init`] of a process wins, later
//! calls change nothing (tests start many bridges in one process).

mod export;
mod log_ids;
mod record;

use std::sync::OnceLock;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tracing::{Level, Metadata};
use tracing_subscriber::filter::{self, EnvFilter, FilterExt, LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry, fmt};

pub use export::{DEFAULT_RATIO, OtlpProtocol, TraceExport};
pub use record::{child_span, consume_span, root_span};

/// The installed trace export, when there is one.
struct Tracing {
    provider: SdkTracerProvider,
    sampler: Sampler,
}

static TRACING: OnceLock<Tracing> = OnceLock::new();

/// Client libraries whose debug logs can print what they send, exporter
/// headers (`OTEL_EXPORTER_OTLP_HEADERS`, often a collector API key)
/// included: never logged below `info`, whatever the filter says.
const TRANSPORT_TARGETS: [&str; 7] = [
    "opentelemetry",
    "tonic",
    "h2",
    "hyper",
    "reqwest",
    "tower",
    "rustls",
];

/// How the bridge logs (`[log]` in the configuration).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` for people, `json` for log pipelines.
    pub format: LogFormat,
    /// A `tracing` filter such as `info,crm_bridge=debug`; `RUST_LOG` wins.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info".into(),
        }
    }
}

// `Serialize` puts the default in the configuration reference.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global subscriber. `RUST_LOG`, when set, overrides the log
/// filter. With `traces`, also the OpenTelemetry layer, for the bridge's
/// own spans only.
pub fn init(config: &LogConfig, traces: Option<&TraceExport>) -> anyhow::Result<()> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.filter));
    // The bridge's spans exist only for traced records; the log layer sees
    // them all so its lines can name their trace (`log_ids.rs`).
    //
    // The level hints keep the process-wide maximum level at what `filter`
    // lets through (a filter without one counts as `TRACE`). `log` records,
    // which librdkafka's Rust wrapper writes (a `trace!` for every message it
    // frees), are checked against that maximum before anything else: above
    // it they cost one comparison instead of a dispatch through the
    // subscriber (7% of the consumer's CPU when reading a backlog).
    let logs = fmt_layer(config.format).with_filter(
        filter
            .and(filter::filter_fn(not_transport_debug).with_max_level_hint(LevelFilter::TRACE))
            .or(filter::filter_fn(is_bridge_span).with_max_level_hint(LevelFilter::INFO)),
    );
    let Some(traces) = traces else {
        // `try_init`: tests may set up logging more than once per process.
        let _ = tracing_subscriber::registry().with(logs).try_init();
        return Ok(());
    };
    let provider = traces.provider()?;
    let spans = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("crm-bridge"))
        .with_filter(Targets::new().with_target("crm_bridge", Level::INFO));
    if tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .try_init()
        .is_err()
    {
        // Another subscriber came first: its spans would go nowhere.
        let _ = provider.shutdown();
        return Ok(());
    }
    tracing::info!(
        endpoint = %traces.endpoint,
        protocol = ?traces.protocol,
        sampler = ?traces.sampler,
        "exporting traces"
    );
    let _ = TRACING.set(Tracing {
        provider,
        sampler: traces.sampler.clone(),
    });
    Ok(())
}

fn fmt_layer(format: LogFormat) -> Box<dyn Layer<Registry> + Send + Sync> {
    use std::io::IsTerminal;
    // Colours for a person at a terminal, none for a file or a collector.
    let layer = fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Json => Box::new(layer.json().event_format(log_ids::WithTraceIds::json())),
        LogFormat::Text => Box::new(layer.event_format(log_ids::WithTraceIds::text())),
    }
}

fn not_transport_debug(metadata: &Metadata<'_>) -> bool {
    *metadata.level() <= Level::INFO
        || !TRANSPORT_TARGETS
            .iter()
            .any(|target| metadata.target().starts_with(target))
}

fn is_bridge_span(metadata: &Metadata<'_>) -> bool {
    metadata.is_span() && metadata.target().starts_with("crm_bridge")
}

/// Exports every span finished so far. Blocks up to the SDK's flush
/// timeout when the collector is slow: call it off the async workers.
pub fn flush_traces() {
    if let Some(tracing) = TRACING.get()
        && let Err(e) = tracing.provider.force_flush()
    {
        tracing::warn!(error = %e, "flushing traces failed");
    }
}

/// Flushes and stops the exporter; spans ended afterwards are dropped.
/// For the end of the process.
pub fn shutdown_traces() {
    if let Some(tracing) = TRACING.get()
        && let Err(e) = tracing.provider.shutdown()
    {
        tracing::warn!(error = %e, "stopping the trace exporter failed");
    }
}

fn installed_sampler() -> Option<&'static Sampler> {
    TRACING.get().map(|tracing| &tracing.sampler)
}
