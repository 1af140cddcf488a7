//! The registry's buckets: alliances and partnerships, and the digests of every token.

use async_nats::jetstream::kv;

use crate::{Bus, Result};

/// Alliances and partnerships (key-value bucket).
pub const REGISTRY_BUCKET: &str = "REGISTRY";
/// Digests of county and staff tokens (key-value bucket).
pub const CREDENTIALS_BUCKET: &str = "CREDENTIALS";

/// The registry's part of the bus ([`Bus::registry`]).
#[derive(Clone, Copy)]
pub struct RegistryTopology<'a> {
    bus: &'a Bus,
}

impl Bus {
    /// The registry's buckets.
    pub fn registry(&self) -> RegistryTopology<'_> {
        RegistryTopology { bus: self }
    }
}

impl RegistryTopology<'_> {
    pub(crate) async fn provision(&self) -> Result<()> {
        self.bucket().await?;
        self.credentials_bucket().await?;
        Ok(())
    }

    /// Alliances and partnerships, with a little history for operators.
    pub async fn bucket(&self) -> Result<kv::Store> {
        self.bus.bucket(REGISTRY_BUCKET, 10).await
    }

    /// County and staff tokens (digests only).
    pub async fn credentials_bucket(&self) -> Result<kv::Store> {
        self.bus.bucket(CREDENTIALS_BUCKET, 1).await
    }
}
