//! Bashu's county registry: the 220 county-level units of Sichuan and Chongqing (GB/T 2260,
//! old codes resolved to current ones), and the alliances and bilateral partnerships between
//! them, kept in a JetStream key-value bucket and watched live; county and staff credentials.

mod cache;
mod counties;
mod credentials;
mod error;
mod nats_users;
mod staff;
mod store;

pub use cache::CredentialCache;
pub use counties::{Counties, Resolved, Seat};
pub use credentials::{CountyTokens, IssuedToken, Refusal, bearer, digests_equal, token_digest};
pub use error::{Error, Result};
pub use nats_users::{IssuedNatsUser, NatsUsers, ServiceKey, authorization};
pub use staff::{Caller, IssuedStaffToken, StaffTokens, StaticStaff};
pub use store::{RegistrySnapshot, RegistryStore, RegistryView, Replaced, WHOLE_REGION, demo_seed};
