//! Withdrawn stories and their takedown confirmations, read from the distribution bucket by any
//! process (admin serves it).

use async_nats::jetstream::kv;
use bashu_bus::Bus;
use bashu_proto::{
    admin::v1::{Takedown, TakedownConfirmed},
    story::v1::StoryDistribution,
};
use futures::StreamExt;
use prost::Message;

/// Reads takedowns.
#[derive(Clone)]
pub struct TakedownBoard {
    kv: kv::Store,
}

impl TakedownBoard {
    /// Opens the board over the distribution bucket.
    pub async fn open(bus: &Bus) -> Result<Self, bashu_bus::Error> {
        Ok(Self { kv: bus.stories().distribution_bucket().await? })
    }

    /// Every withdrawn story, with who confirmed and who has not.
    pub async fn takedowns(
        &self,
        missing_only: bool,
    ) -> Result<Vec<Takedown>, Box<dyn std::error::Error + Send + Sync>> {
        let mut keys = self.kv.keys().await?;
        let mut takedowns = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key?;
            if !key.starts_with(crate::RECORD_PREFIX) {
                continue;
            }
            let Some(bytes) = self.kv.get(&key).await? else { continue };
            let record = StoryDistribution::decode(bytes)?;
            if record.killed_version == 0 {
                continue;
            }
            let missing: Vec<String> = record
                .takedown_requested
                .iter()
                .filter(|c| !record.takedown_confirmed.contains_key(*c))
                .cloned()
                .collect();
            if missing_only && missing.is_empty() {
                continue;
            }
            let mut confirmed: Vec<TakedownConfirmed> = record
                .takedown_confirmed
                .iter()
                .map(|(county, at)| TakedownConfirmed { county: county.clone(), confirmed_at: Some(*at) })
                .collect();
            confirmed.sort_by(|a, b| a.county.cmp(&b.county));
            takedowns.push(Takedown {
                origin_county: record.origin_county,
                story_id: record.story_id,
                version: record.killed_version,
                killed_at: record.killed_at,
                confirmed,
                missing,
            });
        }
        Ok(takedowns)
    }
}
