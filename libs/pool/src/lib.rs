//! The shared content pool (共享内容资源池): a Chinese full-text index of every story delivered
//! through Bashu, kept by each replica from the bus, and searched as one county, which sees only
//! its own stories and what was delivered to it.

pub mod analyzer;
mod follow;
mod index;
pub mod query;
mod schema;
mod search;
mod trends;

pub use follow::{Follower, Progress};
pub use index::{Change, Checkpoint, PoolIndex};
pub use query::QueryError;
pub use search::{DEFAULT_PAGE, MAX_DEPTH, MAX_PAGE};
pub use trends::MAX_REUSES;

/// Why the pool could not answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The query does not parse (the position is in the message).
    #[error(transparent)]
    Query(#[from] QueryError),
    /// A request field is wrong.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The index failed.
    #[error("the pool's index failed: {0}")]
    Index(String),
}

impl From<tantivy::TantivyError> for Error {
    fn from(error: tantivy::TantivyError) -> Self {
        Error::Index(error.to_string())
    }
}

/// Result with the pool [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
