//! The alert domain's contract, shared by the alert service, the admin API, the duty board and
//! bashuctl so that none of them imports another: how a desk signs an alert and which headers
//! carry it, how alerts and chains are keyed in the alert state bucket, that bucket's read side,
//! and the status board read from it.

mod board;
pub mod signature;
mod state;

pub use board::AlertBoard;
pub use state::{AlertState, alert_key};

/// The desk's id, on an HTTP submission and a NATS request alike.
pub const DESK_HEADER: &str = "Bashu-Desk";
/// Unix seconds when the desk signed the submission.
pub const TIMESTAMP_HEADER: &str = "Bashu-Timestamp";
/// Base64 of the desk's ed25519 signature (see [`signature`]).
pub const SIGNATURE_HEADER: &str = "Bashu-Signature";
/// The HTTP status a NATS answer to a desk stands for.
pub const STATUS_HEADER: &str = "Bashu-Status";

/// Why the alert state could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such alert (or it is still being delivered).
    #[error("not found: {0}")]
    NotFound(String),
    /// The bus refused or timed out.
    #[error(transparent)]
    Bus(#[from] bashu_bus::Error),
    /// The alert state bucket could not be read, or holds something unreadable.
    #[error("alert state store failed")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    pub(crate) fn store(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Store(error.into())
    }
}

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
