//! The review queue's read side: the held stories in the moderation bucket (`review.<origin>.<id>.
//! <version>`), as the review desk, the admin API and the duty board read them. Only the
//! moderation service writes them, by compare-and-set.

use std::time::SystemTime;

use async_nats::jetstream::kv;
use bashu_bus::Bus;
use bashu_proto::{
    moderation::v1::{Claim, ReviewItem, ReviewState},
    time::to_system_time,
};
use futures::StreamExt;
use prost::Message;

use crate::Error;

const PREFIX: &str = "review.";

/// The level a held story waits at: one past the approvals it has.
pub fn next_level(item: &ReviewItem) -> u32 {
    item.approvals.len() as u32 + 1
}

/// Reads the review queue.
#[derive(Clone)]
pub struct ReviewQueue {
    kv: kv::Store,
}

impl ReviewQueue {
    /// Opens (creating if needed) the moderation bucket.
    pub async fn open(bus: &Bus) -> Result<Self, Error> {
        Ok(Self::new(bus.stories().moderation_bucket().await?))
    }

    /// Reads the given bucket.
    pub fn new(kv: kv::Store) -> Self {
        Self { kv }
    }

    /// The bucket key of an item (`item.key` is `<origin>.<id>.<version>`).
    pub fn key_of(item_key: &str) -> String {
        format!("{PREFIX}{item_key}")
    }

    /// An item and the revision it was read at; none if it is not (or no longer) there.
    pub async fn read(&self, item_key: &str) -> Result<Option<(ReviewItem, u64)>, Error> {
        let Some(entry) = self.kv.entry(Self::key_of(item_key)).await.map_err(|e| Error::Store(e.into()))? else {
            return Ok(None);
        };
        if entry.operation != kv::Operation::Put {
            return Ok(None);
        }
        let item = ReviewItem::decode(entry.value).map_err(|e| Error::Store(e.into()))?;
        Ok(Some((item, entry.revision)))
    }

    /// A claim, if it has not lapsed by `now`.
    pub fn live_claim(claim: &Option<Claim>, now: SystemTime) -> Option<&Claim> {
        claim.as_ref().filter(|c| c.expires_at.as_ref().and_then(to_system_time).is_some_and(|t| t > now))
    }

    /// Every story still waiting for review, oldest first, with lapsed claims cleared.
    pub async fn held(&self) -> Result<Vec<ReviewItem>, Error> {
        let now = SystemTime::now();
        let mut keys = self.kv.keys().await.map_err(|e| Error::Store(e.into()))?;
        let mut items = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| Error::Store(e.into()))?;
            let Some(key) = key.strip_prefix(PREFIX) else { continue };
            // An item decided between listing and reading is simply gone.
            let Ok(Some((mut item, _))) = self.read(key).await else { continue };
            if item.state() != ReviewState::Pending {
                continue;
            }
            if Self::live_claim(&item.claim, now).is_none() {
                item.claim = None;
            }
            items.push(item);
        }
        items.sort_by_key(|i| i.held_at.map(|t| (t.seconds, t.nanos)));
        Ok(items)
    }
}
