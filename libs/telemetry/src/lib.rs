//! Tracing for every Bashu process: `tracing` with an OpenTelemetry layer, so that spans carry
//! W3C trace ids that `bashu-bus` propagates through NATS headers; log lines that name their
//! trace; an OTLP exporter when an endpoint is configured; and the Prometheus metrics.

pub mod metrics;

pub use metrics::metrics;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter, TracerProviderBuilder};
use tracing::{Subscriber, level_filters::LevelFilter};
use tracing_subscriber::{
    EnvFilter, Layer,
    filter::Targets,
    fmt::{FmtContext, FormatEvent, FormatFields, format::Writer},
    layer::SubscriberExt,
    registry::LookupSpan,
    util::SubscriberInitExt,
};

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Keeps the tracer provider alive; flushes and shuts it down when dropped, which `main` does last.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
    }
}

/// Installs the global subscriber: log lines to stderr filtered by `filter` (`RUST_LOG` syntax),
/// and an OpenTelemetry layer that records Bashu's own spans whatever the log filter says, so
/// trace context keeps flowing through NATS headers when logs are quiet. With `otlp_endpoint`
/// (an OTLP/HTTP collector, e.g. `http://otel-collector:4318/v1/traces`) spans are exported in
/// batches; without it nothing leaves the process and nothing is said about it.
pub fn init(service: &'static str, filter: &str, format: LogFormat, otlp_endpoint: Option<&str>) -> TelemetryGuard {
    let mut builder = SdkTracerProvider::builder();
    if let Some(endpoint) = otlp_endpoint.filter(|e| !e.is_empty()) {
        use opentelemetry_otlp::WithExportConfig as _;
        match opentelemetry_otlp::SpanExporter::builder().with_http().with_endpoint(endpoint).build() {
            Ok(exporter) => builder = builder.with_batch_exporter(exporter),
            Err(error) => eprintln!("bashu: OTLP exporter not started ({endpoint}): {error}"),
        }
    }
    install(service, filter, format, builder)
}

/// As [`init`], exporting every span to `exporter` as it ends (tests use an in-memory one).
pub fn init_with_exporter<E: SpanExporter + 'static>(
    service: &'static str,
    filter: &str,
    format: LogFormat,
    exporter: E,
) -> TelemetryGuard {
    install(service, filter, format, SdkTracerProvider::builder().with_simple_exporter(exporter))
}

fn install(service: &'static str, filter: &str, format: LogFormat, builder: TracerProviderBuilder) -> TelemetryGuard {
    let provider =
        builder.with_resource(opentelemetry_sdk::Resource::builder().with_service_name(service).build()).build();
    // Without context activation a span's trace comes from its tracing parent alone, never from
    // an OpenTelemetry context left attached to a worker thread by a span entered there.
    let otel = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("bashu"))
        .with_context_activation(false)
        .with_filter(Targets::new().with_target("bashu", LevelFilter::INFO));
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .event_format(WithTraceId(tracing_subscriber::fmt::format()))
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .event_format(WithTraceId(tracing_subscriber::fmt::format().json()))
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
    };
    // A second call (several services in one test process) keeps the first subscriber.
    let _ = tracing_subscriber::registry().with(fmt).with(otel).try_init();
    TelemetryGuard { provider }
}

/// A log line's formatter that adds the trace id of the innermost span that has one: a
/// `"trace_id"` field first in a JSON line, a `trace_id=` prefix in a text line.
struct WithTraceId<F>(F);

impl<S, N, F> FormatEvent<S, N> for WithTraceId<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let trace_id = ctx.event_scope().and_then(|scope| {
            scope.into_iter().find_map(|span| span.extensions().get::<tracing_opentelemetry::OtelData>()?.trace_id())
        });
        let Some(trace_id) = trace_id else { return self.0.format_event(ctx, writer, event) };
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => write!(writer, "{{\"trace_id\":\"{trace_id}\",{rest}"),
            None => write!(writer, "trace_id={trace_id} {line}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer into a shared buffer, for reading what the formatter wrote.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(json: bool) -> (String, String) {
        let provider = SdkTracerProvider::builder().build();
        let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("bashu"));
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let fmt = if json {
            tracing_subscriber::fmt::layer()
                .event_format(WithTraceId(tracing_subscriber::fmt::format().json()))
                .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
                .with_writer(move || writer.clone())
                .boxed()
        } else {
            tracing_subscriber::fmt::layer()
                .event_format(WithTraceId(tracing_subscriber::fmt::format()))
                .with_writer(move || writer.clone())
                .boxed()
        };
        let subscriber = tracing_subscriber::registry().with(fmt).with(otel);
        let trace_id = tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("bashu.test");
            let _entered = span.enter();
            tracing::info!("inside");
            use opentelemetry::trace::TraceContextExt as _;
            use tracing_opentelemetry::OpenTelemetrySpanExt as _;
            span.context().span().span_context().trace_id().to_string()
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        (text, trace_id)
    }

    #[test]
    fn a_text_line_starts_with_its_trace_id() {
        let (line, trace_id) = logged(false);
        assert!(line.starts_with(&format!("trace_id={trace_id} ")), "{line}");
    }

    #[test]
    fn a_json_line_has_its_trace_id_field() {
        let (line, trace_id) = logged(true);
        let value: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON object");
        assert_eq!(value["trace_id"], trace_id);
        assert_eq!(value["fields"]["message"], "inside");
    }
}
