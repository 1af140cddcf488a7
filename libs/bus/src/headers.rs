//! Header names and W3C trace context carried in NATS headers.

use async_nats::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// JetStream's idempotency key: a second publish with the same id inside the stream's
/// duplicate window is acknowledged as a duplicate and not stored.
pub const MSG_ID: &str = "Nats-Msg-Id";
/// The protobuf full name of the payload, for example `bashu.story.v1.StoryDelivery`.
pub const EVENT_TYPE: &str = "Bashu-Type";
/// W3C trace context.
pub const TRACEPARENT: &str = "traceparent";
/// Why a message was dead-lettered.
pub const DLQ_REASON: &str = "Bashu-Dlq-Reason";
/// The consumer that gave up on it.
pub const DLQ_CONSUMER: &str = "Bashu-Dlq-Consumer";
/// The stream it came from.
pub const DLQ_STREAM: &str = "Bashu-Dlq-Stream";
/// Its original subject.
pub const DLQ_SUBJECT: &str = "Bashu-Dlq-Subject";
/// Its sequence in the original stream.
pub const DLQ_SEQUENCE: &str = "Bashu-Dlq-Sequence";
/// How many times it was delivered before it was given up on.
pub const DLQ_ATTEMPTS: &str = "Bashu-Dlq-Attempts";
/// On a re-delivered feed message: the id of the operator's replay that sent it again.
pub const REPLAY: &str = "Bashu-Replay";

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value.as_str());
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|value| value.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| -> &str { name.as_ref() }).collect()
    }
}

/// Writes the current span's trace context into `headers` (nothing when no trace is recorded).
pub(crate) fn inject_trace_context(headers: &mut HeaderMap) {
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(headers));
}

/// Makes `span` a child of the trace context in `headers`, when there is one.
pub(crate) fn adopt_trace_context(span: &tracing::Span, headers: Option<&HeaderMap>) {
    if let Some(headers) = headers {
        let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
        let _ = span.set_parent(parent);
    }
}
