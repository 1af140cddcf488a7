//! Bashu's Prometheus metrics: one process-wide registry, the families every service records
//! into, and the text exposition `/metrics` serves. Each metric is documented in docs/metrics.md
//! (a test checks that every documented name is exposed).

use std::sync::OnceLock;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// An HTTP request's route and outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// `GET`, `POST`, …
    pub method: String,
    /// The route pattern (`/v1/stories/{origin}/{id}/{version}`), never the raw path.
    pub route: String,
    /// The status code.
    pub status: u16,
}

/// A gRPC call's method and outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrpcLabels {
    /// `/package.Service/Method`.
    pub method: String,
    /// The gRPC status code's name (`OK`, `PERMISSION_DENIED`, …).
    pub code: String,
}

/// An event type (`bashu.story.v1.StoryDelivery`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// The protobuf full name.
    pub event: String,
}

/// A durable consumer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConsumerLabels {
    /// Its stream.
    pub stream: String,
    /// Its durable name.
    pub consumer: String,
}

/// A consumer that gave up on a message.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeadLetterLabels {
    /// The durable name.
    pub consumer: String,
}

/// A webhook POST's outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    /// `delivered`, `retry` or `failed`.
    pub outcome: String,
}

/// A county alert state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlertStateLabels {
    /// `sent`, `received`, `acknowledged`, `escalated`, `cancelled`, `expired`.
    pub state: String,
}

/// Every metric family.
pub struct Metrics {
    registry: Registry,
    /// HTTP requests served.
    pub http_requests: Family<HttpLabels, Counter>,
    /// gRPC calls served.
    pub grpc_requests: Family<GrpcLabels, Counter>,
    /// Seconds from publish to JetStream's acknowledgement.
    pub publish_ack_seconds: Family<EventLabels, Histogram>,
    /// Messages not yet delivered, per consumer (refreshed at each scrape by the admin target).
    pub consumer_pending: Family<ConsumerLabels, Gauge>,
    /// Messages delivered more than once and not yet acknowledged.
    pub consumer_redelivered: Family<ConsumerLabels, Gauge>,
    /// Messages a consumer gave up on.
    pub dead_letters: Family<DeadLetterLabels, Counter>,
    /// Webhook POSTs by outcome.
    pub webhook_deliveries: Family<WebhookLabels, Counter>,
    /// Seconds from an alert's acceptance to its live copies being sent to every county.
    pub alert_fanout_seconds: Histogram,
    /// Counties per state across active alert chains (refreshed at each scrape by the admin target).
    pub alert_counties: Family<AlertStateLabels, Gauge>,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms … ~8 s.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.000_25, 2.0, 16))
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("bashu");
        let http_requests = Family::default();
        registry.register("http_requests", "HTTP requests served, by method, route and status", http_requests.clone());
        let grpc_requests = Family::default();
        registry.register("grpc_requests", "gRPC calls served, by method and status code", grpc_requests.clone());
        let publish_ack_seconds = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "publish_ack_seconds",
            "Seconds from publishing an event to JetStream's acknowledgement, by event type",
            publish_ack_seconds.clone(),
        );
        let consumer_pending = Family::default();
        registry.register(
            "consumer_pending",
            "Messages not yet delivered to a durable consumer",
            consumer_pending.clone(),
        );
        let consumer_redelivered = Family::default();
        registry.register(
            "consumer_redelivered",
            "Messages delivered more than once to a durable consumer and not yet acknowledged",
            consumer_redelivered.clone(),
        );
        let dead_letters = Family::default();
        registry.register("dead_letters", "Messages a consumer gave up on, by consumer", dead_letters.clone());
        let webhook_deliveries = Family::default();
        registry.register("webhook_deliveries", "Webhook POSTs by outcome", webhook_deliveries.clone());
        let alert_fanout_seconds = latency_histogram();
        registry.register(
            "alert_fanout_seconds",
            "Seconds from an alert's acceptance until its live copy was sent to every targeted county",
            alert_fanout_seconds.clone(),
        );
        let alert_counties = Family::default();
        registry.register("alert_counties", "Counties per state across active alert chains", alert_counties.clone());
        Self {
            registry,
            http_requests,
            grpc_requests,
            publish_ack_seconds,
            consumer_pending,
            consumer_redelivered,
            dead_letters,
            webhook_deliveries,
            alert_fanout_seconds,
            alert_counties,
        }
    }

    /// The registry in the text exposition format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}
