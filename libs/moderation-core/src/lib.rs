//! The moderation domain's contract, shared by the moderation service, the admin API and the duty
//! board so that none of them imports another: the automatic rules (their JSON format, their
//! checks, their evaluation), the rules in force as stored in the moderation bucket, and the
//! review queue's read side.

mod queue;
pub mod rules;

use bashu_bus::Bus;

pub use queue::{ReviewQueue, next_level};

/// The key of the rules in force in the moderation bucket (JSON).
pub const RULES_KEY: &str = "rules";

/// Why moderation's state could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The rules are not valid.
    #[error("{0}")]
    Rules(String),
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] bashu_bus::Error),
    /// The moderation bucket could not be read or written.
    #[error("moderation store failed")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The rules in force, as stored (JSON); none: no rules were ever stored.
pub async fn stored_rules(bus: &Bus) -> Result<Option<String>, Error> {
    let kv = bus.stories().moderation_bucket().await?;
    let value = kv.get(RULES_KEY).await.map_err(|e| Error::Store(e.into()))?;
    Ok(value.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
}

/// The rules in force for stored `json`: every setting, defaults included, as JSON.
pub fn effective_rules(json: &str) -> Result<String, Error> {
    let config = rules::RulesConfig::from_json(json.as_bytes()).map_err(Error::Rules)?;
    serde_json::to_string_pretty(&config).map_err(|e| Error::Rules(e.to_string()))
}

/// Checks and stores new rules; moderation picks them up for the next story.
pub async fn store_rules(bus: &Bus, json: &str) -> Result<(), Error> {
    rules::Rules::new(rules::RulesConfig::from_json(json.as_bytes()).map_err(Error::Rules)?).map_err(Error::Rules)?;
    let kv = bus.stories().moderation_bucket().await?;
    kv.put(RULES_KEY, json.to_owned().into_bytes().into()).await.map(drop).map_err(|e| Error::Store(e.into()))
}
