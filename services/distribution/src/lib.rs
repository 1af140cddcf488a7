//! Bashu distribution: for each approved story version, resolves its audience from the sharing
//! policy, the registry and each county's subscription; sends corrections and withdrawals to every
//! county that received an earlier version; holds embargoed versions and releases them on time;
//! never delivers an expired story; tracks takedown confirmations of withdrawn stories; and
//! pushes every delivery to the county's webhook when it has one.

pub mod audience;
mod distributor;
mod error;
mod pool_api;
pub mod webhook;

use std::{sync::Arc, time::Duration};

use bashu_bus::{Bus, Delivery, Failure, FromCounty, RetryConfig};
use bashu_proto::story::v1::{ModerationDecision, StoryReceipt, StoryUse, TakedownConfirmation};
use bashu_registry::{Counties, RegistryView};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

pub use bashu_stories_core::TakedownBoard;
pub use pool_api::PoolApi;

/// The shared content pool's settings.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PoolConfig {
    /// Where this replica keeps its own copy of the pool's index, so that a restart reads only
    /// what it missed; none: in memory, read again from the streams at every start. Each
    /// replica needs a folder of its own.
    pub index_dir: Option<std::path::PathBuf>,
}

/// `<origin>.<id>`: what orders a story's versions.
fn story_key(story: &bashu_proto::story::v1::Story) -> String {
    bashu_stories_core::story_key(&story.origin_county, &story.id)
}

/// Webhook settings.
#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// How long one POST may take.
    pub timeout_ms: u64,
    /// Retries per delivery: attempts before the dead-letter stream, and the backoff between them.
    pub retry: RetryConfig,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            timeout_ms: 10_000,
            retry: RetryConfig {
                ack_wait_ms: 30_000,
                max_deliver: 8,
                backoff_ms: vec![1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000],
            },
        }
    }
}

/// Distribution's settings.
#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// How the consumer of moderation decisions retries.
    pub consumer: RetryConfig,
    /// How the consumer of takedown confirmations retries.
    pub takedowns: RetryConfig,
    /// How often held (embargoed) versions are checked for release, in milliseconds.
    pub release_tick_ms: u64,
    /// Decisions (and takedown confirmations) one process handles at once: different stories
    /// side by side, one story's versions in order.
    pub parallel: usize,
    /// Webhooks.
    pub webhooks: WebhookConfig,
    /// The shared content pool.
    pub pool: PoolConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            consumer: RetryConfig::default(),
            takedowns: RetryConfig::default(),
            release_tick_ms: 250,
            parallel: 64,
            webhooks: WebhookConfig::default(),
            pool: PoolConfig::default(),
        }
    }
}

impl Config {
    /// Checks the settings make sense.
    pub fn validate(&self) -> Result<(), String> {
        self.consumer.validate().map_err(|e| format!("distribution.consumer: {e}"))?;
        self.takedowns.validate().map_err(|e| format!("distribution.takedowns: {e}"))?;
        self.webhooks.retry.validate().map_err(|e| format!("distribution.webhooks.retry: {e}"))?;
        if !(10..=1_000).contains(&self.release_tick_ms) {
            return Err(
                "distribution.release_tick_ms must be between 10 and 1000 (embargoes are released within a second)"
                    .into(),
            );
        }
        if !(1..=1_000).contains(&self.parallel) {
            return Err("distribution.parallel must be between 1 and 1000".into());
        }
        if self.webhooks.timeout_ms == 0 || self.webhooks.timeout_ms >= self.webhooks.retry.ack_wait_ms {
            return Err("distribution.webhooks.timeout_ms must be positive and below retry.ack_wait_ms".into());
        }
        Ok(())
    }
}

/// Why distribution could not start.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] bashu_bus::Error),
    /// The content pool's index could not be opened.
    #[error(transparent)]
    Pool(#[from] bashu_pool::Error),
}

/// The distribution service.
pub struct Distribution {
    config: Config,
    egress: bashu_egress::Config,
    bus: Bus,
    registry: RegistryView,
    distributor: Arc<distributor::Distributor>,
    follower: bashu_pool::Follower,
    pool_api: PoolApi,
}

impl Distribution {
    /// Builds the service and makes sure every county's feed consumer exists; webhooks are
    /// posted only where `egress` permits; the content pool answers counties that `tokens` knows.
    pub async fn build(
        config: Config,
        egress: bashu_egress::Config,
        bus: Bus,
        counties: Arc<Counties>,
        registry: RegistryView,
        tokens: bashu_registry::CountyTokens,
    ) -> Result<Self, BuildError> {
        bus.stories().provision_county_feeds(counties.all().iter().map(|c| c.code.as_str())).await?;
        let kv = bus.stories().distribution_bucket().await?;
        let pool = bashu_pool::PoolIndex::open(config.pool.index_dir.as_deref(), counties.clone())?;
        let follower = bashu_pool::Follower::new(pool.clone());
        let pool_api = PoolApi::new(pool, bus.clone(), tokens);
        let distributor = Arc::new(distributor::Distributor::new(bus.clone(), counties, registry.clone(), kv));
        Ok(Self { config, egress, bus, registry, distributor, follower, pool_api })
    }

    /// The content pool's HTTP routes (`/v1/pool/…`).
    pub fn http_router(&self) -> axum::Router {
        self.pool_api.router()
    }

    /// The content pool's gRPC service.
    pub fn grpc_service(&self) -> bashu_proto::pool::v1::pool_service_server::PoolServiceServer<PoolApi> {
        bashu_proto::pool::v1::pool_service_server::PoolServiceServer::new(self.pool_api.clone())
    }

    /// Distributes approved stories, releases embargoes, tracks takedowns and sends webhooks until
    /// `shutdown`. Everything runs inside this future: if it is dropped, all of it stops. Any
    /// number of processes may run it at once (see `distributor`).
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), bashu_bus::Error> {
        let distributor = self.distributor.clone();
        let decisions = self.bus.consume_keyed(
            self.bus.stories().distribution_consumer((&self.config.consumer).into()).in_parallel(self.config.parallel),
            |decision: &ModerationDecision| decision.story.as_ref().map(story_key).unwrap_or_default(),
            move |delivery: Delivery<ModerationDecision>| {
                let distributor = distributor.clone();
                async move { distributor.decided(delivery.event).await.map_err(Failure::from) }
            },
            shutdown.clone(),
        );
        let distributor = self.distributor.clone();
        let takedowns = self.bus.consume_keyed(
            self.bus.stories().takedown_consumer((&self.config.takedowns).into()).in_parallel(self.config.parallel),
            |FromCounty(confirmation): &FromCounty<TakedownConfirmation>| {
                bashu_stories_core::story_key(&confirmation.origin_county, &confirmation.story_id)
            },
            move |delivery: Delivery<FromCounty<TakedownConfirmation>>| {
                let distributor = distributor.clone();
                async move { distributor.takedown_confirmed(delivery.event.0).await.map_err(Failure::from) }
            },
            shutdown.clone(),
        );
        // What counties publish about the stories they received is checked as it comes: a
        // malformed receipt or reuse note, or one naming another county, is a dead letter with
        // the reason (the collaboration report counts only the well-formed, for their own county).
        let receipts = self.bus.consume(
            self.bus.stories().county_receipts_consumer((&self.config.takedowns).into()),
            |_: Delivery<FromCounty<StoryReceipt>>| async { Ok(()) },
            shutdown.clone(),
        );
        let uses = self.bus.consume(
            self.bus.stories().county_uses_consumer((&self.config.takedowns).into()),
            |_: Delivery<FromCounty<StoryUse>>| async { Ok(()) },
            shutdown.clone(),
        );
        let held = self.distributor.follow_held(shutdown.clone());
        let releases = async {
            let tick = Duration::from_millis(self.config.release_tick_ms);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(tick) => {}
                }
                if let Err(error) = self.distributor.release_due().await {
                    tracing::warn!(code = error.code(), error = %bashu_bus::error_chain(&error), "embargo release round failed; retried next tick");
                }
            }
        };
        let webhooks = webhook::run(
            self.bus.clone(),
            self.registry.clone(),
            (&self.config.webhooks.retry).into(),
            Duration::from_millis(self.config.webhooks.timeout_ms),
            self.egress.clone(),
            shutdown.clone(),
        );
        let pool = self.follower.clone().run(self.bus.clone(), shutdown.clone());
        let rebuilds = pool_api::serve_rebuilds(self.bus.clone(), self.follower.clone(), shutdown.clone());
        let (decisions, takedowns, receipts, uses, (), (), (), (), ()) =
            tokio::join!(decisions, takedowns, receipts, uses, held, releases, webhooks, pool, rebuilds);
        decisions.and(takedowns).and(receipts).and(uses)
    }
}
