//! Bashu distribution: for each approved story version, resolves its audience from the sharing
//! policy and the registry, places the version in each receiving county's feed, and records
//! the publication.

pub mod audience;

use std::sync::Arc;

use bashu_bus::{Bus, Delivery, Failure, RetryConfig};
use bashu_proto::story::v1::{ModerationDecision, StoryDelivery, StoryPublished, Verdict};
use bashu_registry::{Counties, RegistryView};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tracing::info;

/// Distribution's settings.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// How the consumer of moderation decisions retries.
    pub consumer: RetryConfig,
}

impl Config {
    /// Checks the settings make sense.
    pub fn validate(&self) -> Result<(), String> {
        self.consumer.validate().map_err(|e| format!("distribution.consumer: {e}"))
    }
}

/// The distribution service.
pub struct Distribution {
    config: Config,
    state: Arc<State>,
}

struct State {
    bus: Bus,
    counties: Arc<Counties>,
    sharing: RegistryView,
}

impl Distribution {
    /// Builds the service and makes sure every county's feed consumer exists.
    pub async fn build(
        config: Config,
        bus: Bus,
        counties: Arc<Counties>,
        sharing: RegistryView,
    ) -> Result<Self, bashu_bus::Error> {
        bus.provision_county_feeds(counties.all().iter().map(|c| c.code.as_str())).await?;
        Ok(Self { config, state: Arc::new(State { bus, counties, sharing }) })
    }

    /// Distributes approved stories until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), bashu_bus::Error> {
        let spec = self.state.bus.distribution_consumer((&self.config.consumer).into());
        let state = self.state.clone();
        self.state
            .bus
            .consume(spec, move |delivery: Delivery<ModerationDecision>| distribute(state.clone(), delivery), shutdown)
            .await
    }
}

/// Idempotent: every feed message carries `feed.<county>.<origin>.<id>.<version>` as its
/// `Nats-Msg-Id`, so a redelivered decision re-publishes harmlessly and the FEEDS stream stores
/// each version once per county.
async fn distribute(state: Arc<State>, delivery: Delivery<ModerationDecision>) -> Result<(), Failure> {
    let decision = delivery.event;
    if decision.verdict() != Verdict::Approved {
        return Ok(());
    }
    let story = decision.story.ok_or_else(|| Failure::Permanent("ModerationDecision without a story".into()))?;
    let audience = audience::resolve(&story, &state.counties, &state.sharing.current());
    let now = bashu_proto::time::now();
    let deliveries: Vec<StoryDelivery> = audience
        .iter()
        .map(|county| StoryDelivery { story: Some(story.clone()), county: county.clone(), delivered_at: Some(now) })
        .collect();
    state.bus.publish_all(&deliveries).await?;
    state
        .bus
        .publish(&StoryPublished {
            story_id: story.id.clone(),
            version: story.version,
            origin_county: story.origin_county.clone(),
            audience: audience.into_iter().collect(),
            published_at: Some(now),
        })
        .await?;
    info!(story_id = %story.id, version = story.version, receivers = deliveries.len(), "story distributed");
    Ok(())
}
