//! Bashu alerts: the fast-response path. Emergency desks issue, update and cancel CAP 1.2 alerts
//! (signed, checked against their areas); each accepted alert is stored once, delivered live to
//! every targeted county within milliseconds and durably to each county's alert feed; every
//! county's receipt and acknowledgement is tracked, and a county that does not acknowledge in
//! time is re-sent to and then escalated to its prefecture's and province's desks and operators.

mod callers;
pub mod cap;
mod error;
mod fanout;
mod grpc;
mod http;
mod intake;
mod nats;
mod state;
pub mod targeting;
mod tracker;
pub mod xml_signature;

use std::sync::Arc;

use bashu_bus::{Bus, RetryConfig};
use bashu_registry::{Counties, RegistryView};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

// The domain's contract, for the service's own users (tests, the bench) that reach it here.
pub use bashu_alerts_core::{
    AlertBoard, DESK_HEADER, SIGNATURE_HEADER, STATUS_HEADER, TIMESTAMP_HEADER, alert_key, signature,
};
pub use callers::Callers;
pub use error::{Error, Result};
pub use intake::{Recorder, Submission};
pub use tracker::OPERATORS;

/// Escalation deadlines: how long a county has to acknowledge, by the alert's severity.
#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct EscalationConfig {
    /// How long a county has to acknowledge an Extreme alert before it is re-sent and escalated, in
    /// milliseconds.
    pub extreme_ms: u64,
    /// How long a county has to acknowledge a Severe alert before it is re-sent and escalated, in
    /// milliseconds.
    pub severe_ms: u64,
    /// How long a county has to acknowledge a Moderate alert before it is re-sent and escalated, in
    /// milliseconds.
    pub moderate_ms: u64,
    /// How long a county has to acknowledge a Minor alert before it is re-sent and escalated, in
    /// milliseconds.
    pub minor_ms: u64,
    /// How long a county has to acknowledge an alert of Unknown severity before it is re-sent and escalated, in
    /// milliseconds.
    pub unknown_ms: u64,
    /// How often deadlines are checked.
    pub tick_ms: u64,
}

impl Default for EscalationConfig {
    fn default() -> Self {
        Self {
            extreme_ms: 2 * 60_000,
            severe_ms: 5 * 60_000,
            moderate_ms: 15 * 60_000,
            minor_ms: 30 * 60_000,
            unknown_ms: 15 * 60_000,
            tick_ms: 250,
        }
    }
}

/// The alert service's settings.
#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Largest accepted CAP document, in bytes (HTTP 413 above it). At most 1.5 MiB: an accepted
    /// alert carries its document twice within nats-server's `max_payload` (4 MiB in `make run`
    /// and k8s/nats/values.yaml).
    pub max_document_bytes: usize,
    /// How far a signature's timestamp may be from the server's clock, in seconds.
    pub max_clock_skew_secs: u64,
    /// Escalation deadlines.
    pub escalation: EscalationConfig,
    /// How long after acceptance the durable copies are written, so that the live copies have
    /// the server to themselves first (milliseconds; the durable copies are the catch-up path).
    pub durable_copy_delay_ms: u64,
    /// How the fan-out consumer retries.
    pub fanout: RetryConfig,
    /// How the tracker consumer retries.
    pub tracker: RetryConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            // Real agency alerts with embedded resources run to 882 KB.
            max_document_bytes: 1024 * 1024,
            max_clock_skew_secs: 300,
            escalation: EscalationConfig::default(),
            durable_copy_delay_ms: 10,
            fanout: RetryConfig::default(),
            tracker: RetryConfig::default(),
        }
    }
}

impl Config {
    /// Checks the settings make sense.
    pub fn validate(&self) -> std::result::Result<(), String> {
        // An accepted alert carries the document twice, within nats-server's max_payload (4 MiB).
        if !(1024..=1536 * 1024).contains(&self.max_document_bytes) {
            return Err("alerts.max_document_bytes must be between 1 KiB and 1.5 MiB (nats-server's max_payload, 4 MiB, carries it twice)".into());
        }
        if self.durable_copy_delay_ms > 1000 {
            return Err("alerts.durable_copy_delay_ms must be at most 1000".into());
        }
        if !(1..=3600).contains(&self.max_clock_skew_secs) {
            return Err("alerts.max_clock_skew_secs must be between 1 and 3600".into());
        }
        let e = &self.escalation;
        if [e.extreme_ms, e.severe_ms, e.moderate_ms, e.minor_ms, e.unknown_ms].contains(&0) || e.tick_ms == 0 {
            return Err("alerts.escalation deadlines and tick_ms must be positive".into());
        }
        self.fanout.validate().map_err(|e| format!("alerts.fanout: {e}"))?;
        self.tracker.validate().map_err(|e| format!("alerts.tracker: {e}"))
    }
}

/// The alert service: intake (HTTP and gRPC), fan-out and tracking. Cheap to clone.
#[derive(Clone)]
pub struct Alerts {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    bus: Bus,
    counties: Arc<Counties>,
    registry: RegistryView,
    store: state::StateStore,
}

impl Alerts {
    /// Builds the service on a provisioned bus and makes sure every county's alert consumer exists.
    pub async fn build(config: Config, bus: Bus, counties: Arc<Counties>, registry: RegistryView) -> Result<Self> {
        bus.alerts().provision_county_feeds(counties.all().iter().map(|c| c.code.as_str())).await?;
        let store = state::StateStore::new(bus.alerts().state_bucket().await?);
        Ok(Self { inner: Arc::new(Inner { config, bus, counties, registry, store }) })
    }

    /// The HTTP routes (`/v1/alerts…`); acknowledgements and status need a token `callers` knows.
    pub fn http_router(&self, callers: Callers) -> axum::Router {
        http::router(self.clone(), callers)
    }

    /// The gRPC `bashu.alert.v1.AlertService`; acknowledgements and status need a token.
    pub fn grpc_service(
        &self,
        callers: Callers,
    ) -> bashu_proto::alert::v1::alert_service_server::AlertServiceServer<grpc::AlertApi> {
        grpc::service(self.clone(), callers)
    }

    /// The areas a desk may alert (none for an unknown desk).
    pub(crate) fn desk_areas(&self, desk_id: &str) -> Vec<String> {
        self.inner.registry.current().desk(desk_id).map(|desk| desk.areas.clone()).unwrap_or_default()
    }

    /// The current code of a county (old codes resolved), or why it is none.
    pub(crate) fn county_code(&self, county: &str) -> Result<String> {
        self.inner
            .counties
            .resolve(county)
            .map(|resolved| resolved.county.code.clone())
            .map_err(|e| Error::Invalid(vec![cap::Problem { path: "county".into(), reason: e.to_string() }]))
    }

    /// Fans out accepted alerts and tracks every county's state until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> std::result::Result<(), bashu_bus::Error> {
        let inner = &self.inner;
        let tracker = tracker::Tracker::new(
            inner.bus.clone(),
            inner.store.clone(),
            inner.registry.clone(),
            inner.config.escalation.clone(),
        );
        let fanout_spec = inner.bus.alerts().fanout_consumer((&inner.config.fanout).into());
        let bus = inner.bus.clone();
        let delay = std::time::Duration::from_millis(inner.config.durable_copy_delay_ms);
        let fan_out = move |delivery| fanout::fan_out(bus.clone(), delay, delivery);
        // Alerts side by side: one alert's fan-out never waits for another's.
        let fanout = inner.bus.consume_keyed(
            fanout_spec.in_parallel(64),
            |issued: &bashu_proto::alert::v1::AlertIssued| issued.alert_key.clone(),
            fan_out,
            shutdown.clone(),
        );
        let desks = nats::serve(self.clone(), shutdown.clone());
        let tracking = Arc::new(tracker).run((&inner.config.tracker).into(), shutdown);
        let (fanout, tracking, desks) = tokio::join!(fanout, tracking, desks);
        fanout.and(tracking).and(desks)
    }
}
