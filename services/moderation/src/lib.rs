//! Bashu moderation: reads every submitted story and publishes a decision. In this slice every
//! well-formed story is approved; rules, human review (三审) and the audit trail come next.

use bashu_bus::{Bus, Delivery, Failure, RetryConfig};
use bashu_proto::story::v1::{ModerationDecision, RuleOutcome, StorySubmitted, Verdict};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tracing::info;

/// Moderation's settings.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// How the consumer of submitted stories retries.
    pub consumer: RetryConfig,
}

impl Config {
    /// Checks the settings make sense.
    pub fn validate(&self) -> Result<(), String> {
        self.consumer.validate().map_err(|e| format!("moderation.consumer: {e}"))
    }
}

/// The moderation service.
pub struct Moderation {
    config: Config,
    bus: Bus,
}

impl Moderation {
    /// Builds the service on a provisioned bus.
    pub fn build(config: Config, bus: Bus) -> Self {
        Self { config, bus }
    }

    /// Decides on submitted stories until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), bashu_bus::Error> {
        let spec = self.bus.moderation_consumer((&self.config.consumer).into());
        let bus = self.bus.clone();
        self.bus.consume(spec, move |delivery: Delivery<StorySubmitted>| decide(bus.clone(), delivery), shutdown).await
    }
}

async fn decide(bus: Bus, delivery: Delivery<StorySubmitted>) -> Result<(), Failure> {
    let story = delivery.event.story.ok_or_else(|| Failure::Permanent("StorySubmitted without a story".into()))?;
    let decision = ModerationDecision {
        verdict: Verdict::Approved as i32,
        rules: vec![RuleOutcome { rule: "well-formed".into(), fired: false, evidence: String::new() }],
        decided_by: "rules".into(),
        decided_at: Some(bashu_proto::time::now()),
        reason: String::new(),
        story: Some(story),
    };
    bus.publish(&decision).await?;
    info!("story approved");
    Ok(())
}
