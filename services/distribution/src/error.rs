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
    /// A content pool request without a valid county token.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// A content pool request field is wrong.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// What a content pool request names is not there for the county (or not shared with it:
    /// the same answer, so a county cannot probe for others' stories).
    #[error("{0}")]
    NotFound(String),
    /// The content pool refused the request (a query that does not parse, a bad filter) or
    /// failed.
    #[error(transparent)]
    Pool(#[from] bashu_pool::Error),
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
            Error::Unauthenticated(_) => "unauthenticated",
            Error::Invalid { .. } | Error::Pool(bashu_pool::Error::Invalid { .. }) => "invalid_request",
            Error::Pool(bashu_pool::Error::Query(_)) => "invalid_query",
            Error::Pool(bashu_pool::Error::Index(_)) => "pool_unavailable",
            Error::NotFound(_) => "not_found",
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
            Error::Pool(bashu_pool::Error::Index(_)) => true,
            Error::Corrupt { .. }
            | Error::Incomplete(_)
            | Error::WebhookRefused { .. }
            | Error::Encode { .. }
            | Error::Unauthenticated(_)
            | Error::Invalid { .. }
            | Error::NotFound(_)
            | Error::Pool(_) => false,
        }
    }

    /// A store failure, for `map_err`.
    pub(crate) fn store(error: impl std::fmt::Display) -> Self {
        Self::Store(error.to_string())
    }
}

impl Error {
    /// The field a refused request names, and why.
    fn problems(&self) -> Vec<serde_json::Value> {
        match self {
            Error::Invalid { field, reason } | Error::Pool(bashu_pool::Error::Invalid { field, reason }) => {
                vec![serde_json::json!({"field": field, "reason": reason})]
            }
            Error::Pool(bashu_pool::Error::Query(error)) => {
                vec![serde_json::json!({"field": "q", "reason": error.reason, "position": error.position})]
            }
            _ => Vec::new(),
        }
    }

    /// The HTTP status of a content pool answer: the one place this mapping is made.
    pub(crate) fn http_status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self.grpc_code() {
            tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
            tonic::Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            tonic::Code::NotFound => StatusCode::NOT_FOUND,
            tonic::Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn grpc_code(&self) -> tonic::Code {
        match self {
            Error::Invalid { .. } | Error::Pool(bashu_pool::Error::Invalid { .. } | bashu_pool::Error::Query(_)) => {
                tonic::Code::InvalidArgument
            }
            Error::Unauthenticated(_) => tonic::Code::Unauthenticated,
            Error::NotFound(_) => tonic::Code::NotFound,
            _ if self.retryable() => tonic::Code::Unavailable,
            _ => tonic::Code::Internal,
        }
    }

    /// The JSON body of a refused request: `{"error": {"code", "message", "fields"}}`, as
    /// ingest's.
    pub(crate) fn body(&self) -> serde_json::Value {
        serde_json::json!({"error": {"code": self.code(), "message": self.to_string(), "fields": self.problems()}})
    }
}

impl axum::response::IntoResponse for Error {
    fn into_response(self) -> axum::response::Response {
        if self.http_status().is_server_error() {
            tracing::warn!(code = self.code(), error = %bashu_bus::error_chain(&self), "content pool request failed");
        }
        (self.http_status(), axum::Json(self.body())).into_response()
    }
}

/// The one mapping to a gRPC status, with the stable code in `bashu-error-code`.
impl From<Error> for tonic::Status {
    fn from(error: Error) -> Self {
        bashu_proto::error_status(error.grpc_code(), error.to_string(), error.code())
    }
}

/// The one mapping from a distribution error to what the consumer does with the message.
impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let reason = format!("{}: {}", error.code(), bashu_bus::error_chain(&error));
        if error.retryable() { Failure::Retry(reason) } else { Failure::Permanent(reason) }
    }
}
