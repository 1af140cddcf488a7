use std::error::Error as StdError;

/// A failure on the bus.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value that must be a single subject token or name (a county code, a prefix) is not one.
    #[error("invalid {what}: {value:?}")]
    InvalidToken {
        /// What the value was meant to be.
        what: &'static str,
        /// The value as given.
        value: String,
    },
    /// An event lacks a field its subject or idempotency key is made from.
    #[error("{event} has no {field}")]
    MissingField {
        /// The event's protobuf type.
        event: &'static str,
        /// The field that is empty.
        field: &'static str,
    },
    /// A NATS or JetStream operation failed (connection, publish, ack, stream or consumer API).
    #[error("nats {operation} failed")]
    Nats {
        /// What was being done, for example `publish` or `create stream STORIES`.
        operation: String,
        /// What NATS said.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

impl Error {
    pub(crate) fn nats(operation: impl Into<String>, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::Nats { operation: operation.into(), source: source.into() }
    }
}

/// Result with the bus [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
