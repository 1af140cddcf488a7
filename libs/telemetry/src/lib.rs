//! Tracing for every Bashu process: `tracing` with an OpenTelemetry layer, so that spans carry
//! W3C trace ids that `bashu-bus` propagates through NATS headers; and the Prometheus metrics.

pub mod metrics;

pub use metrics::metrics;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::{EnvFilter, Layer, filter::Targets, layer::SubscriberExt, util::SubscriberInitExt};

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
/// trace context keeps flowing through NATS headers when logs are quiet. No exporter is
/// configured here, so nothing leaves the process.
pub fn init(service: &'static str, filter: &str, format: LogFormat) -> TelemetryGuard {
    let provider = SdkTracerProvider::builder()
        .with_resource(opentelemetry_sdk::Resource::builder().with_service_name(service).build())
        .build();
    let otel = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("bashu"))
        .with_filter(Targets::new().with_target("bashu", LevelFilter::INFO));
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_filter(filter).boxed(),
        LogFormat::Json => {
            tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr).with_filter(filter).boxed()
        }
    };
    // A second call (several services in one test process) keeps the first subscriber.
    let _ = tracing_subscriber::registry().with(fmt).with(otel).try_init();
    TelemetryGuard { provider }
}
