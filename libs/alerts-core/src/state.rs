//! The alert state bucket's layout and read side: intake's record of every accepted message
//! (`record.<alert_key>`) and the tracker's chains with every county's state (`chain.<chain_key>`).
//! The alert service writes them; anyone may read them through [`AlertState`].

use async_nats::jetstream::kv;
use bashu_proto::alert::v1::{AlertChain, AlertRecord};
use futures::StreamExt;
use prost::Message;
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// Bashu's key of an alert: hex of sha256 over sender and identifier, 32 characters (CAP
/// identifiers are unique per sender, and may hold characters a NATS key cannot).
pub fn alert_key(sender: &str, identifier: &str) -> String {
    let digest = Sha256::digest(format!("{sender}\n{identifier}").as_bytes());
    hex::encode(&digest[..16])
}

/// Reads the alert state bucket.
#[derive(Clone)]
pub struct AlertState {
    kv: kv::Store,
}

impl AlertState {
    /// Opens (creating if needed) the alert state bucket.
    pub async fn open(bus: &bashu_bus::Bus) -> Result<Self> {
        Ok(Self::new(bus.alerts().state_bucket().await?))
    }

    /// Reads the given bucket.
    pub fn new(kv: kv::Store) -> Self {
        Self { kv }
    }

    /// The bucket itself, for the alert service's writes.
    pub fn bucket(&self) -> &kv::Store {
        &self.kv
    }

    /// The key of an accepted message's record.
    pub fn record_key(alert_key: &str) -> String {
        format!("record.{alert_key}")
    }

    /// The key of a chain.
    pub fn chain_key(chain_key: &str) -> String {
        format!("chain.{chain_key}")
    }

    /// The chain key a bucket key names, if it names one.
    pub fn chain_of_key(key: &str) -> Option<&str> {
        key.strip_prefix("chain.")
    }

    async fn get<M: Message + Default>(&self, key: &str) -> Result<Option<M>> {
        match self.kv.get(key).await.map_err(Error::store)? {
            Some(bytes) => M::decode(bytes).map(Some).map_err(Error::store),
            None => Ok(None),
        }
    }

    /// Intake's record of an accepted message.
    pub async fn record(&self, alert_key: &str) -> Result<Option<AlertRecord>> {
        self.get(&Self::record_key(alert_key)).await
    }

    /// A chain with every county's state.
    pub async fn chain(&self, chain_key: &str) -> Result<Option<AlertChain>> {
        self.get(&Self::chain_key(chain_key)).await
    }

    /// A chain and the revision it was read at, for a compare-and-set.
    pub async fn chain_at(&self, chain_key: &str) -> Result<Option<(AlertChain, u64)>> {
        match self.kv.entry(Self::chain_key(chain_key)).await.map_err(Error::store)? {
            Some(entry) if entry.operation == kv::Operation::Put => {
                Ok(Some((AlertChain::decode(entry.value).map_err(Error::store)?, entry.revision)))
            }
            _ => Ok(None),
        }
    }

    /// The chain of an accepted alert, found by the key of any of its messages.
    pub async fn chain_of_alert(&self, alert_key: &str) -> Result<AlertChain> {
        let record = self.record(alert_key).await?.ok_or_else(|| Error::NotFound(format!("no alert {alert_key}")))?;
        self.chain(&record.chain_key)
            .await?
            .ok_or_else(|| Error::NotFound(format!("alert {alert_key} is still being delivered")))
    }

    /// Every chain.
    pub async fn all_chains(&self) -> Result<Vec<AlertChain>> {
        let mut keys = self.kv.keys().await.map_err(Error::store)?;
        let mut chains = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(Error::store)?;
            if let Some(chain_key) = Self::chain_of_key(&key)
                && let Some(chain) = self.chain(chain_key).await?
            {
                chains.push(chain);
            }
        }
        Ok(chains)
    }

    /// Every chain as it changes (a snapshot first).
    pub async fn watch_chains(&self) -> Result<kv::Watch> {
        self.kv.watch_with_history("chain.>").await.map_err(Error::store)
    }
}
