//! Bashu's county registry: the 220 county-level units of Sichuan and Chongqing (GB/T 2260,
//! old codes resolved to current ones), and the alliances and bilateral partnerships between
//! them, kept in a JetStream key-value bucket and watched live.

mod counties;
mod error;
mod sharing;

pub use counties::{Counties, Resolved};
pub use error::{Error, Result};
pub use sharing::{SharingGraph, SharingStore, SharingView, demo_seed};
