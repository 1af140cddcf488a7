//! Why distributing a story or sending a webhook did not finish: one error type with a stable
//! code, and the one place it becomes a consumer's outcome (try again later, or dead-letter now
//! with the code leading the reason, as `bashuctl dlq list` shows it).

use bashu_bus::Failure;

/// Distribution's failures.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The story records could not be read or written now.
    #[error("the story records are unavailable: {0}")]
    Store(String),
    /// The bus failed (a publish, its acknowledgement, an event's subject).
    #[error(transparent)]
    Bus(#[from] bashu_bus::Error),
    /// A stored record does not decode.
    #[error("corrupt {key}: {reason}")]
    Corrupt {
        /// Its key in the bucket.
        key: String,
        /// What the decoder said.
        reason: String,
    },
    /// An event lacks a part it must have.
    #[error("{0}")]
    Incomplete(&'static str),
    /// A county's webhook URL is refused by the egress policy (it was registered before the
    /// policy was what it is now).
    #[error("webhook {url} refused: {reason}")]
    WebhookRefused {
        /// The URL without its query or credentials.
        url: String,
        /// Why.
        reason: String,
    },
    /// A webhook answered with an error status.
    #[error("webhook {url} answered {status}")]
    WebhookAnswered {
        /// The URL without its query or credentials.
        url: String,
        /// The status it answered.
        status: reqwest::StatusCode,
    },
    /// A webhook could not be reached.
    #[error("webhook {url} unreachable: {reason}")]
    WebhookUnreachable {
        /// The URL without its query or credentials.
        url: String,
        /// Why.
        reason: String,
    },
    /// An event could not be written in a webhook's format.
    #[error("cannot encode {what}: {reason}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

impl Error {
    /// A stable machine-readable code.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Error::Store(_) => "store_unavailable",
            Error::Bus(error) if error.is_transient() => "bus_unavailable",
            Error::Bus(_) => "bus_refused",
            Error::Corrupt { .. } => "corrupt_record",
            Error::Incomplete(_) => "incomplete_event",
            Error::WebhookRefused { .. } => "webhook_refused",
            Error::WebhookAnswered { .. } if self.retryable() => "webhook_unavailable",
            Error::WebhookAnswered { .. } => "webhook_rejected",
            Error::WebhookUnreachable { .. } => "webhook_unreachable",
            Error::Encode { .. } => "unencodable",
        }
    }

    /// Whether the same work may succeed later.
    fn retryable(&self) -> bool {
        match self {
            Error::Store(_) | Error::WebhookUnreachable { .. } => true,
            Error::Bus(error) => error.is_transient(),
            // A client error will be the same next time, except a timeout or a rate limit.
            Error::WebhookAnswered { status, .. } => {
                !status.is_client_error() || *status == reqwest::StatusCode::REQUEST_TIMEOUT || *status == 429
            }
            Error::Corrupt { .. } | Error::Incomplete(_) | Error::WebhookRefused { .. } | Error::Encode { .. } => false,
        }
    }

    /// A store failure, for `map_err`.
    pub(crate) fn store(error: impl std::fmt::Display) -> Self {
        Self::Store(error.to_string())
    }
}

/// The one mapping from a distribution error to what the consumer does with the message.
impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let reason = format!("{}: {}", error.code(), bashu_bus::error_chain(&error));
        if error.retryable() { Failure::Retry(reason) } else { Failure::Permanent(reason) }
    }
}
