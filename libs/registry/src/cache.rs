//! The CREDENTIALS bucket held in memory and kept current by a watch, so that checking a known
//! token costs no round trip: every process that checks tokens follows the bucket, and a
//! revocation (a purge) reaches it as soon as NATS delivers the change, typically well under a
//! millisecond after it is stored. Until the watch has caught up with the bucket, whenever it is
//! broken, and for a key it does not hold, lookups read the bucket itself.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use async_nats::jetstream::kv;
use bashu_bus::Followed;
use bytes::Bytes;
use dashmap::DashMap;
use tokio_util::sync::CancellationToken;

use crate::{Result, credentials::store};

/// The bucket's entries, shared by every token checker of one process. Cheap to clone.
#[derive(Clone)]
pub struct CredentialCache {
    kv: kv::Store,
    entries: Arc<DashMap<String, Bytes>>,
    /// Keys this process revoked whose purge the watch has not brought yet: never answered from
    /// memory, so that the revoking process refuses the token on its very next use.
    revoked: Arc<DashMap<String, ()>>,
    current: Arc<AtomicBool>,
}

impl CredentialCache {
    /// A cache of the bus's CREDENTIALS bucket; it answers from memory once [`follow`]ed.
    ///
    /// [`follow`]: CredentialCache::follow
    pub async fn open(bus: &bashu_bus::Bus) -> Result<Self> {
        Ok(Self::new(bus.registry().credentials_bucket().await?))
    }

    pub(crate) fn new(kv: kv::Store) -> Self {
        Self {
            kv,
            entries: Arc::new(DashMap::new()),
            revoked: Arc::new(DashMap::new()),
            current: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The value of `key`: from memory while the watch is current, else from the bucket. A key
    /// not in memory is read from the bucket too, so that a token issued a moment ago works at
    /// once (misses are rare: a typo, a guess, which the rate limits bound).
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        if self.current.load(Ordering::Acquire)
            && !self.revoked.contains_key(key)
            && let Some(value) = self.entries.get(key)
        {
            return Ok(Some(value.clone()));
        }
        self.kv.get(key).await.map_err(store("read credentials"))
    }

    /// `key` was just purged by this process: answer it from the bucket until the watch agrees.
    pub(crate) fn forget(&self, key: &str) {
        self.revoked.insert(key.to_owned(), ());
        self.entries.remove(key);
    }

    /// True once the cache answers from memory.
    pub fn is_current(&self) -> bool {
        self.current.load(Ordering::Acquire)
    }

    /// Follows the bucket until `shutdown`, opening the watch again whenever it ends; answers
    /// from memory only while the watch is current.
    pub async fn follow(self, shutdown: CancellationToken) {
        bashu_bus::follow_keys(&self.kv, ">", true, &shutdown, |followed| match followed {
            Followed::Opened => {
                self.current.store(false, Ordering::Release);
                self.entries.clear();
            }
            Followed::Entry(entry) => match entry.operation {
                kv::Operation::Put => {
                    self.entries.insert(entry.key, entry.value);
                }
                kv::Operation::Delete | kv::Operation::Purge => {
                    self.entries.remove(&entry.key);
                    self.revoked.remove(&entry.key);
                }
            },
            Followed::CaughtUp => self.current.store(true, Ordering::Release),
        })
        .await;
        self.current.store(false, Ordering::Release);
    }
}
