//! Bashu joint coverage (协同报道): counties propose plans, invite partners, take phases and
//! deliver their stories into a plan's chain; the ledger records every contribution from the
//! story events already on the bus; a timer warns a phase's owner before it is late; a closed
//! plan's pool is divided by its weights (docs/coverage.md).

mod api;
mod channel;
mod error;
mod flags;
mod ledger;
mod plans;

use std::{sync::Arc, time::Duration};

use bashu_bus::{Bus, RetryConfig};
use bashu_coverage_core::{PlanIndex, PlanStore};
use bashu_registry::{Counties, CountyTokens, RegistryView, StaffTokens};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

pub use api::CoverageApi;
pub use error::Error;

/// Joint coverage's settings.
#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// How the reader of submissions, decisions and reuse notes (the contribution ledger)
    /// retries.
    pub consumer: RetryConfig,
    /// A phase with nothing delivered is flagged "due soon" to its owner this many milliseconds
    /// before its due time.
    pub due_soon_warning_ms: u64,
    /// How often each replica looks for phases to flag, in milliseconds.
    pub flag_interval_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self { consumer: RetryConfig::default(), due_soon_warning_ms: 2 * 3_600_000, flag_interval_ms: 10_000 }
    }
}

impl Config {
    /// Checks the settings make sense.
    pub fn validate(&self) -> Result<(), String> {
        self.consumer.validate().map_err(|e| format!("coverage.consumer: {e}"))?;
        if !(100..=3_600_000).contains(&self.flag_interval_ms) {
            return Err("coverage.flag_interval_ms must be between 100 and 3600000".into());
        }
        if self.due_soon_warning_ms > 30 * 86_400_000 {
            return Err("coverage.due_soon_warning_ms must be at most 30 days".into());
        }
        Ok(())
    }

    fn warning_seconds(&self) -> i64 {
        (self.due_soon_warning_ms / 1000) as i64
    }
}

/// The coverage service. Cheap to clone.
#[derive(Clone)]
pub struct Coverage {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    bus: Bus,
    store: PlanStore,
    /// Every plan, followed into memory while the service runs: what the phase timer reads.
    plans: PlanIndex,
    counties: Arc<Counties>,
    registry: RegistryView,
    tokens: CountyTokens,
    staff: StaffTokens,
    /// `<plan>.<phase>` of phases this replica knows have a delivery, with the earliest delivery
    /// time it knows (which only ever moves earlier): a later one need not read the plan again.
    delivered_phases: dashmap::DashMap<String, (i64, i32)>,
}

impl Coverage {
    /// Builds the service on a provisioned bus.
    pub async fn build(
        config: Config,
        bus: Bus,
        counties: Arc<Counties>,
        registry: RegistryView,
        tokens: CountyTokens,
        staff: StaffTokens,
    ) -> Result<Self, Error> {
        let store = PlanStore::open(&bus).await?;
        let delivered_phases = dashmap::DashMap::new();
        let plans = PlanIndex::default();
        Ok(Self {
            inner: Arc::new(Inner { config, bus, store, plans, counties, registry, tokens, staff, delivered_phases }),
        })
    }

    /// The doors counties and staff use: HTTP `/v1/coverage/…` and gRPC
    /// `bashu.coverage.v1.CoverageService`.
    pub fn api(&self) -> CoverageApi {
        CoverageApi::new(self.clone())
    }

    /// The durable consumer the ledger reads.
    pub fn consumer(&self) -> bashu_bus::ConsumerSpec {
        self.inner.bus.coverage().contributions_consumer((&self.inner.config.consumer).into())
    }

    /// Records contributions and flags phases until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), bashu_bus::Error> {
        let (store, index) = (self.inner.store.clone(), self.inner.plans.clone());
        let follow = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { store.follow_plans(index, shutdown).await }
        });
        let flags = tokio::spawn(self.clone().flag_phases(shutdown.clone()));
        let ledger = self.clone();
        let spec = self.consumer().in_parallel(16);
        // A story's events in stream order; different stories side by side.
        let result = self
            .inner
            .bus
            .consume_keyed(
                spec,
                ledger::order_key,
                move |delivery| {
                    let ledger = ledger.clone();
                    async move { ledger.record(delivery).await }
                },
                shutdown,
            )
            .await;
        flags.await.ok();
        follow.await.ok();
        result
    }

    fn flag_interval(&self) -> Duration {
        Duration::from_millis(self.inner.config.flag_interval_ms)
    }
}
