//! Where traces go: the OTLP exporter, its batch queue and the sampler.
//!
//! [`TraceExport`] is explicit so tests can point one bridge at their own
//! receiver; `main` fills it from the standard `OTEL_*` variables
//! ([`TraceExport::from_env`]). The SDK itself still reads the variables
//! this does not name (`OTEL_EXPORTER_OTLP_HEADERS`, `_TIMEOUT`,
//! `_COMPRESSION`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*`).
//!
//! The resource names the service (`service.name`), the build
//! (`service.version`) and the node (`service.instance.id`: the node id,
//! whose consumer group `<group_prefix>-<node_id>` the spans also name), so
//! a trace leads to the node and the release that handled it.
//!
//! Exporting never slows delivery: finished spans wait in the batch
//! processor's bounded queue (`OTEL_BSP_MAX_QUEUE_SIZE`, default 2048) and
//! are exported from its own thread. When the collector is down or slow and
//! the queue is full, further spans are dropped; the SDK logs the first drop
//! and the total at shutdown (target `opentelemetry_sdk`, warn).

use std::env;

use anyhow::Context as _;
use opentelemetry::{Key, KeyValue};
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::resource::{EnvResourceDetector, ResourceDetector};
use opentelemetry_sdk::trace::{BatchSpanProcessor, Sampler, SdkTracerProvider};
use opentelemetry_semantic_conventions::resource::{
    SERVICE_INSTANCE_ID, SERVICE_NAME, SERVICE_VERSION,
};

/// The sampler when `OTEL_TRACES_SAMPLER` is unset: follow the producer's
/// decision when a record carries a `traceparent`, else trace 1 record in
/// 100. A traced record makes four spans, so 10,000 records/s export about
/// 400 spans/s, in batches of 512: the queue (2048) holds seconds of them.
/// A producer that samples a record always sees it followed.
pub const DEFAULT_RATIO: f64 = 0.01;

/// The service name when neither `OTEL_SERVICE_NAME` nor `service.name` in
/// `OTEL_RESOURCE_ATTRIBUTES` says otherwise.
const DEFAULT_SERVICE_NAME: &str = "crm-bridge";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtlpProtocol {
    Grpc,
    HttpProtobuf,
}

/// An OTLP trace export.
#[derive(Clone, Debug)]
pub struct TraceExport {
    /// gRPC: the collector's address (`http://collector:4317`).
    /// HTTP: the full traces URL (`http://collector:4318/v1/traces`).
    pub endpoint: String,
    pub protocol: OtlpProtocol,
    pub service_name: String,
    /// `service.instance.id`: the node id ([`crate::kafka::KafkaConfig::node_id`]).
    pub service_instance_id: String,
    /// Decides per record (and per replay) whether it is traced.
    pub sampler: Sampler,
}

impl TraceExport {
    /// From the standard variables, for the node `node_id`; `None` when no
    /// endpoint is configured (then there is no OpenTelemetry layer at all).
    pub fn from_env(node_id: &str) -> anyhow::Result<Option<Self>> {
        Self::from_lookup(node_id, |name| {
            env::var(name).ok().filter(|v| !v.is_empty())
        })
    }

    fn from_lookup(
        node_id: &str,
        var: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Option<Self>> {
        let protocol = match var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .as_deref()
        {
            Some("grpc") => OtlpProtocol::Grpc,
            // The specification's default.
            Some("http/protobuf") | None => OtlpProtocol::HttpProtobuf,
            Some(other) => {
                anyhow::bail!("OTEL_EXPORTER_OTLP_PROTOCOL {other:?}: use grpc or http/protobuf")
            }
        };
        // A signal-specific endpoint is used as is; the generic one gets the
        // signal's path for HTTP (OTLP exporter specification).
        let endpoint = match (var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), protocol) {
            (Some(endpoint), _) => endpoint,
            (None, OtlpProtocol::Grpc) => match var("OTEL_EXPORTER_OTLP_ENDPOINT") {
                Some(endpoint) => endpoint,
                None => return Ok(None),
            },
            (None, OtlpProtocol::HttpProtobuf) => match var("OTEL_EXPORTER_OTLP_ENDPOINT") {
                Some(base) => format!("{}/v1/traces", base.trim_end_matches('/')),
                None => return Ok(None),
            },
        };
        // `OTEL_RESOURCE_ATTRIBUTES` wins over the defaults, as the
        // specification has it.
        let from_resource = |key: &'static str| {
            var("OTEL_RESOURCE_ATTRIBUTES")?;
            let resource = EnvResourceDetector::new().detect();
            resource
                .get(&Key::from_static_str(key))
                .map(|value| value.to_string())
        };
        let service_name = var("OTEL_SERVICE_NAME")
            .or_else(|| from_resource(SERVICE_NAME))
            .unwrap_or_else(|| DEFAULT_SERVICE_NAME.into());
        let service_instance_id =
            from_resource(SERVICE_INSTANCE_ID).unwrap_or_else(|| node_id.to_owned());
        let sampler = sampler(
            var("OTEL_TRACES_SAMPLER").as_deref(),
            var("OTEL_TRACES_SAMPLER_ARG").as_deref(),
        )?;
        Ok(Some(Self {
            endpoint,
            protocol,
            service_name,
            service_instance_id,
            sampler,
        }))
    }

    /// The provider, exporting in batches from its own thread. The
    /// provider's own sampler samples everything it is given: records are
    /// sampled before their spans exist (see `record.rs`).
    pub fn provider(&self) -> anyhow::Result<SdkTracerProvider> {
        let exporter = match self.protocol {
            OtlpProtocol::Grpc => SpanExporter::builder()
                .with_tonic()
                .with_endpoint(&self.endpoint)
                .build(),
            OtlpProtocol::HttpProtobuf => SpanExporter::builder()
                .with_http()
                .with_endpoint(&self.endpoint)
                .build(),
        }
        .with_context(|| format!("OTLP exporter for {}", self.endpoint))?;
        let resource = Resource::builder()
            .with_service_name(self.service_name.clone())
            .with_attributes([
                KeyValue::new(SERVICE_VERSION, env!("CARGO_PKG_VERSION")),
                KeyValue::new(SERVICE_INSTANCE_ID, self.service_instance_id.clone()),
            ])
            .build();
        Ok(SdkTracerProvider::builder()
            .with_span_processor(BatchSpanProcessor::builder(exporter).build())
            .with_sampler(Sampler::AlwaysOn)
            .with_resource(resource)
            .build())
    }
}

/// `OTEL_TRACES_SAMPLER` and `_ARG` as the specification names them.
fn sampler(name: Option<&str>, arg: Option<&str>) -> anyhow::Result<Sampler> {
    let ratio = || -> anyhow::Result<f64> {
        let Some(arg) = arg else {
            return Ok(DEFAULT_RATIO);
        };
        let ratio: f64 = arg
            .parse()
            .with_context(|| format!("OTEL_TRACES_SAMPLER_ARG {arg:?}"))?;
        anyhow::ensure!(
            (0.0..=1.0).contains(&ratio),
            "OTEL_TRACES_SAMPLER_ARG {ratio} is not between 0 and 1"
        );
        Ok(ratio)
    };
    let parent_based = |root: Sampler| Sampler::ParentBased(Box::new(root));
    Ok(match name {
        Some("always_on") => Sampler::AlwaysOn,
        Some("always_off") => Sampler::AlwaysOff,
        Some("traceidratio") => Sampler::TraceIdRatioBased(ratio()?),
        Some("parentbased_always_on") => parent_based(Sampler::AlwaysOn),
        Some("parentbased_always_off") => parent_based(Sampler::AlwaysOff),
        Some("parentbased_traceidratio") | None => {
            parent_based(Sampler::TraceIdRatioBased(ratio()?))
        }
        Some(other) => anyhow::bail!("OTEL_TRACES_SAMPLER {other:?} is not supported"),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(vars: &[(&str, &str)]) -> anyhow::Result<Option<TraceExport>> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TraceExport::from_lookup("node-7", |name| vars.get(name).cloned())
    }

    #[test]
    fn no_endpoint_means_no_export() {
        assert!(from(&[("OTEL_SERVICE_NAME", "x")]).unwrap().is_none());
    }

    #[test]
    fn endpoints_follow_the_specification() {
        let http = from(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")])
            .unwrap()
            .unwrap();
        assert_eq!(http.endpoint, "http://c:4318/v1/traces");
        assert_eq!(http.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(http.service_name, "crm-bridge");
        assert_eq!(http.service_instance_id, "node-7", "the node id");
        let grpc = from(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_SERVICE_NAME", "bridge-eu"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(grpc.endpoint, "http://c:4317");
        assert_eq!(grpc.protocol, OtlpProtocol::Grpc);
        assert_eq!(grpc.service_name, "bridge-eu");
        let signal = from(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:9/traces"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(signal.endpoint, "http://t:9/traces");
        assert!(
            from(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "x"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
            ])
            .is_err()
        );
    }

    #[test]
    fn samplers_are_parsed_and_the_default_follows_the_parent() {
        let default = format!("{:?}", sampler(None, None).unwrap());
        assert_eq!(default, "ParentBased(TraceIdRatioBased(0.01))");
        let configured = sampler(Some("traceidratio"), Some("0.5")).unwrap();
        assert_eq!(format!("{configured:?}"), "TraceIdRatioBased(0.5)");
        assert!(sampler(Some("traceidratio"), Some("2")).is_err());
        assert!(sampler(Some("jaeger_remote"), None).is_err());
    }

    #[tokio::test]
    async fn the_grpc_exporter_builds_from_config() {
        let export = TraceExport {
            endpoint: "http://127.0.0.1:4317".into(),
            protocol: OtlpProtocol::Grpc,
            service_name: "test".into(),
            service_instance_id: "node-0".into(),
            sampler: Sampler::AlwaysOn,
        };
        let provider = export.provider().unwrap();
        provider.shutdown().unwrap();
        let bad = TraceExport {
            endpoint: "not a uri".into(),
            ..export
        };
        assert!(
            bad.provider().is_err(),
            "an invalid endpoint is refused at start-up"
        );
    }
}
