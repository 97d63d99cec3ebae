//! A tiny OTLP/HTTP trace receiver: `POST /v1/traces` with a protobuf
//! `ExportTraceServiceRequest`, decoded with the official definitions
//! (`opentelemetry-proto`). It runs on a thread of its own, so it outlives
//! any one test's runtime (the bridge's trace export is per process).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
pub use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;

/// One received span, flattened.
#[derive(Clone, Debug)]
pub struct ReceivedSpan {
    pub name: String,
    pub kind: SpanKind,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub start_unix_nano: u64,
    /// Values as text (`"1"` for the integer 1).
    pub attributes: HashMap<String, String>,
    /// The keys of `attributes` whose values are integers.
    pub integers: HashSet<String>,
    /// The attributes of the resource that sent it, as text.
    pub resource: HashMap<String, String>,
}

#[derive(Clone, Default)]
struct Received {
    /// `None`: count only (benchmarks).
    spans: Option<Arc<Mutex<Vec<ReceivedSpan>>>>,
    count: Arc<Mutex<u64>>,
}

pub struct OtlpReceiver {
    /// The traces URL to give the exporter.
    pub url: String,
    received: Received,
}

impl OtlpReceiver {
    /// Keeps every span it receives.
    pub fn start() -> Self {
        Self::start_with(Received {
            spans: Some(Arc::default()),
            ..Received::default()
        })
    }

    /// Accepts spans and only counts them.
    pub fn discarding() -> Self {
        Self::start_with(Received::default())
    }

    fn start_with(received: Received) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        let app = Router::new()
            .route("/v1/traces", post(export))
            .with_state(received.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        Self { url, received }
    }

    pub fn spans(&self) -> Vec<ReceivedSpan> {
        let spans = self.received.spans.as_ref().expect("a keeping receiver");
        spans.lock().unwrap().clone()
    }

    pub fn count(&self) -> u64 {
        *self.received.count.lock().unwrap()
    }
}

async fn export(
    State(received): State<Received>,
    body: Bytes,
) -> (StatusCode, [(header::HeaderName, &'static str); 1], Vec<u8>) {
    let request = match ExportTraceServiceRequest::decode(body) {
        Ok(request) => request,
        Err(_) => {
            return (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "text/plain")],
                Vec::new(),
            );
        }
    };
    let spans: Vec<ReceivedSpan> = request
        .resource_spans
        .into_iter()
        .flat_map(|r| {
            let resource = flatten(r.resource.map(|r| r.attributes).unwrap_or_default());
            r.scope_spans
                .into_iter()
                .flat_map(|s| s.spans)
                .map(move |span| ReceivedSpan {
                    integers: integers(&span.attributes),
                    kind: span.kind(),
                    name: span.name,
                    trace_id: hex::encode(span.trace_id),
                    span_id: hex::encode(span.span_id),
                    parent_span_id: hex::encode(span.parent_span_id),
                    start_unix_nano: span.start_time_unix_nano,
                    attributes: flatten(span.attributes),
                    resource: resource.clone(),
                })
        })
        .collect();
    *received.count.lock().unwrap() += spans.len() as u64;
    if let Some(kept) = &received.spans {
        kept.lock().unwrap().extend(spans);
    }
    let response = ExportTraceServiceResponse::default().encode_to_vec();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        response,
    )
}

/// The keys of the attributes whose values are integers.
fn integers(attributes: &[KeyValue]) -> HashSet<String> {
    let is_integer = |kv: &&KeyValue| {
        let value = kv.value.as_ref().and_then(|v| v.value.as_ref());
        matches!(value, Some(Value::IntValue(_)))
    };
    attributes
        .iter()
        .filter(is_integer)
        .map(|kv| kv.key.clone())
        .collect()
}

/// Attributes by key, values as text.
fn flatten(attributes: Vec<KeyValue>) -> HashMap<String, String> {
    attributes
        .into_iter()
        .map(|kv| {
            let value = match kv.value.and_then(|v| v.value) {
                Some(Value::StringValue(s)) => s,
                Some(Value::IntValue(i)) => i.to_string(),
                Some(Value::BoolValue(b)) => b.to_string(),
                Some(Value::DoubleValue(d)) => d.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key, value)
        })
        .collect()
}
