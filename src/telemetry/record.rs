//! Which work is traced, and the spans of work that is.
//!
//! Sampling is decided *before* a span exists: the configured sampler is
//! asked once per record (per replay), with the producer's W3C trace context
//! from the record's headers as parent. A record that is not sampled gets
//! [`Span::none`] for every stage, so it costs one sampler call and no
//! allocation; with no trace export installed, not even that. A sampled one
//! gets real spans, which the provider (sampling everything it is given)
//! exports.
//!
//! A record's spans: `process <topic>` (a child of the producer's span when
//! the record carries `traceparent`, else the root of a new trace; named
//! and attributed by the OpenTelemetry messaging conventions, see
//! `kafka/consumer/record.rs`), and as its
//! children, in order, `decode`, `route` and `emit` (see
//! `gateway/dispatch.rs`).

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SamplingDecision, SpanKind, TraceContextExt, TraceId};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::ShouldSample;
use rdkafka::message::{BorrowedHeaders, Headers};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The `process <topic>` span of a record with `headers`, made by `make` when the
/// record is traced; else [`Span::none`]. `headers` is called only when
/// traces are exported: librdkafka parses a record's headers when asked.
pub fn consume_span<'h>(
    headers: impl FnOnce() -> Option<&'h BorrowedHeaders>,
    make: impl FnOnce() -> Span,
) -> Span {
    let Some(sampler) = super::installed_sampler() else {
        return Span::none();
    };
    // Most records carry no headers: nothing to parse.
    let parent =
        headers().map(|headers| TraceContextPropagator::new().extract(&KafkaHeaders(headers)));
    sampled_span(sampler, parent, SpanKind::Consumer, make)
}

/// The span of work that starts a new trace (a replay), made by `make` when
/// sampled; else [`Span::none`].
pub fn root_span(make: impl FnOnce() -> Span) -> Span {
    let Some(sampler) = super::installed_sampler() else {
        return Span::none();
    };
    sampled_span(sampler, None, SpanKind::Internal, make)
}

/// A stage of `parent`'s work, made by `make` (with `parent` as its parent,
/// or current), only when `parent` is traced.
pub fn child_span(parent: &Span, make: impl FnOnce() -> Span) -> Span {
    if parent.is_disabled() {
        Span::none()
    } else {
        make()
    }
}

fn sampled_span(
    sampler: &impl ShouldSample,
    parent: Option<Context>,
    kind: SpanKind,
    make: impl FnOnce() -> Span,
) -> Span {
    let parent = parent.filter(|cx| cx.span().span_context().is_valid());
    // A new trace's id is drawn by the SDK later; the ratio samplers only
    // need a uniformly random one to decide.
    let trace_id = match &parent {
        Some(cx) => cx.span().span_context().trace_id(),
        None => TraceId::from_bytes(fastrand::u128(..).to_be_bytes()),
    };
    let decision = sampler
        .should_sample(parent.as_ref(), trace_id, "", &kind, &[], &[])
        .decision;
    if decision != SamplingDecision::RecordAndSample {
        return Span::none();
    }
    let span = make();
    if let Some(parent) = parent {
        // Fails only when the span is disabled (no layer wants it).
        let _ = span.set_parent(parent);
    }
    span
}

/// rdkafka headers as the propagator reads them. Header names are exact
/// (`traceparent`, `tracestate`); values that are not UTF-8 are ignored.
struct KafkaHeaders<'a>(&'a BorrowedHeaders);

impl Extractor for KafkaHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        (0..self.0.count())
            .map(|i| self.0.get(i))
            .find(|header| header.key == key)
            .and_then(|header| std::str::from_utf8(header.value?).ok())
    }

    fn keys(&self) -> Vec<&str> {
        (0..self.0.count()).map(|i| self.0.get(i).key).collect()
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceState};
    use opentelemetry_sdk::trace::Sampler;

    use super::*;

    fn remote_parent(sampled: bool) -> Context {
        let flags = if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from(7u128),
            SpanId::from(9u64),
            flags,
            true,
            TraceState::default(),
        ))
    }

    fn traced(sampler: &Sampler, parent: Option<Context>) -> bool {
        let mut made = false;
        sampled_span(sampler, parent, SpanKind::Consumer, || {
            made = true;
            Span::none()
        });
        made
    }

    #[test]
    fn the_default_sampler_follows_the_producer_and_samples_a_few_new_traces() {
        let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            super::super::DEFAULT_RATIO,
        )));
        assert!(traced(&sampler, Some(remote_parent(true))));
        assert!(!traced(&sampler, Some(remote_parent(false))));
        let roots = (0..20_000).filter(|_| traced(&sampler, None)).count();
        // 1% of 20,000 is 200; ±50% is far beyond chance.
        assert!((100..=300).contains(&roots), "{roots} of 20,000 sampled");
    }

    #[test]
    fn no_span_is_made_when_tracing_is_off() {
        assert!(consume_span(|| None, || panic!("not sampled, not made")).is_none());
        assert!(root_span(|| panic!("not sampled, not made")).is_none());
    }
}
