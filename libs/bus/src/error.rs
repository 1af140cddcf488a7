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
    /// A NATS or JetStream operation failed.
    #[error("nats {operation} {target} failed")]
    Nats {
        /// Which kind of operation failed: callers decide on this (retry, report, give up).
        operation: Operation,
        /// What it was done to: a subject, a stream, a consumer, a bucket, a server list.
        target: String,
        /// What NATS said.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

/// The kinds of bus operation that can fail, as nats.rs names its error kinds per operation:
/// a caller matches on these instead of reading free text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Connecting to (or parsing the address of) a server.
    Connect,
    /// Handing a message to the server.
    Publish,
    /// Waiting for JetStream to store a published message.
    Acknowledge,
    /// Subscribing to a core NATS subject.
    Subscribe,
    /// Creating or updating a stream, bucket, object store or consumer.
    Provision,
    /// Removing a consumer or a stored message.
    Delete,
    /// Reading a stream: its information, its messages, a durable consumer's batch.
    Read,
    /// Acknowledging, or asking again for, a consumed message.
    Settle,
    /// A stored message that is not the event it should be.
    Decode,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Operation::Connect => "connect",
            Operation::Publish => "publish",
            Operation::Acknowledge => "acknowledgement",
            Operation::Subscribe => "subscribe",
            Operation::Provision => "provision",
            Operation::Delete => "delete",
            Operation::Read => "read",
            Operation::Settle => "settle",
            Operation::Decode => "decode",
        })
    }
}

impl Error {
    /// A failed NATS operation on `target`.
    pub fn nats(
        operation: Operation,
        target: impl std::fmt::Display,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        Self::Nats { operation, target: target.to_string(), source: source.into() }
    }

    /// Whether trying again later may succeed: a NATS operation that failed (the server was
    /// away, a timeout), but not a stored message that does not decode, nor a value that can
    /// never make a subject.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Nats { operation, .. } if *operation != Operation::Decode)
    }

    /// The operation that failed, for a NATS failure.
    pub fn operation(&self) -> Option<Operation> {
        match self {
            Error::Nats { operation, .. } => Some(*operation),
            Error::InvalidToken { .. } | Error::MissingField { .. } => None,
        }
    }
}

/// Result with the bus [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
