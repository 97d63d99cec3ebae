//! Log lines inside a traced span carry its ids, so a log search leads to
//! the trace and back: JSON lines get top-level `trace_id` and `span_id`
//! fields, text lines end with `trace_id=… span_id=…`. Lines outside any
//! traced span are formatted exactly as before.

use std::fmt;

use opentelemetry::trace::{SpanId, TraceId};
use tracing::{Event, Subscriber};
use tracing_opentelemetry::OtelData;
use tracing_subscriber::fmt::format::{self, Format, Full, Json, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

pub struct WithTraceIds<F> {
    inner: Format<F>,
    json: bool,
}

impl WithTraceIds<Json> {
    pub fn json() -> Self {
        Self {
            inner: format().json(),
            json: true,
        }
    }
}

impl WithTraceIds<Full> {
    pub fn text() -> Self {
        Self {
            inner: format(),
            json: false,
        }
    }
}

fn format() -> Format<Full> {
    format::format()
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    Format<F>: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some((trace_id, span_id)) = current_ids(ctx) else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let line = line.trim_end_matches('\n');
        match line.strip_suffix('}').filter(|_| self.json) {
            Some(object) => writeln!(
                writer,
                r#"{object},"trace_id":"{trace_id}","span_id":"{span_id}"}}"#
            ),
            None => writeln!(writer, "{line} trace_id={trace_id} span_id={span_id}"),
        }
    }
}

/// The ids of the current span, when it is traced. (The span must be
/// enabled for the log layer: see `telemetry::init`.)
fn current_ids<S, N>(ctx: &FmtContext<'_, S, N>) -> Option<(TraceId, SpanId)>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    let span = ctx.lookup_current()?;
    let extensions = span.extensions();
    let otel = extensions.get::<OtelData>()?;
    Some((otel.trace_id()?, otel.span_id()?))
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<String> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }

    /// Logs one line outside any span and one inside a traced span; returns
    /// both and the span's trace and span ids.
    fn log_twice(json: bool) -> (Vec<String>, String, String) {
        let captured = Captured::default();
        let writer = {
            let captured = captured.clone();
            move || captured.clone()
        };
        let provider = SdkTracerProvider::builder().build();
        let logs = tracing_subscriber::fmt::layer().with_writer(writer);
        let logs: Box<dyn tracing_subscriber::Layer<_> + Send + Sync> = if json {
            Box::new(logs.json().event_format(WithTraceIds::json()))
        } else {
            Box::new(logs.event_format(WithTraceIds::text()))
        };
        let subscriber = tracing_subscriber::registry()
            .with(logs)
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let ids = tracing::subscriber::with_default(subscriber, || {
            tracing::info!("outside");
            let span = tracing::info_span!("work");
            let _entered = span.enter();
            tracing::info!(answer = 42, "inside");
            let context = span.context();
            let ids = context.span().span_context().clone();
            (ids.trace_id().to_string(), ids.span_id().to_string())
        });
        (captured.lines(), ids.0, ids.1)
    }

    #[test]
    fn json_lines_in_a_traced_span_carry_its_ids_as_fields() {
        let (lines, trace_id, span_id) = log_twice(true);
        let outside: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert!(outside.get("trace_id").is_none());
        let inside: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(inside["fields"]["message"], "inside");
        assert_eq!(inside["trace_id"], trace_id.as_str());
        assert_eq!(inside["span_id"], span_id.as_str());
        assert_eq!(trace_id.len(), 32);
    }

    #[test]
    fn text_lines_in_a_traced_span_end_with_its_ids() {
        let (lines, trace_id, span_id) = log_twice(false);
        assert!(!lines[0].contains("trace_id"), "{}", lines[0]);
        assert!(
            lines[1].ends_with(&format!("trace_id={trace_id} span_id={span_id}")),
            "{}",
            lines[1]
        );
    }
}
