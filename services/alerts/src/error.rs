use crate::cap::Problem;

/// Why an alert request was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The document is not valid CAP 1.2, or names nothing Bashu can deliver to; every problem listed.
    #[error("the alert is not valid")]
    Invalid(Vec<Problem>),
    /// Unsigned, badly signed, stale, or from a desk Bashu does not know.
    #[error("not authenticated: {0}")]
    Unauthenticated(String),
    /// The desk may not alert some of the targeted counties, or touch this chain.
    #[error("not allowed: {0}")]
    Forbidden(String),
    /// The identifier was used before for a different document.
    #[error("conflict: {0}")]
    Conflict(String),
    /// An Update for a chain that was cancelled.
    #[error("{0}")]
    ChainCancelled(String),
    /// No such alert or county.
    #[error("not found: {0}")]
    NotFound(String),
    /// The body is not declared as XML (`application/cap+xml`, `application/xml`, `text/xml`).
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// The request body is larger than allowed.
    #[error("the document is larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The bus refused or timed out: retry with the same document (it is idempotent).
    #[error(transparent)]
    Bus(#[from] bashu_bus::Error),
    /// The alert state store failed.
    #[error("alert state store failed")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<bashu_alerts_core::Error> for Error {
    fn from(error: bashu_alerts_core::Error) -> Self {
        match error {
            bashu_alerts_core::Error::NotFound(what) => Self::NotFound(what),
            bashu_alerts_core::Error::Bus(error) => Self::Bus(error),
            bashu_alerts_core::Error::Store(source) => Self::Store(source),
        }
    }
}

impl Error {
    pub(crate) fn store(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Store(error.into())
    }

    /// The document problems, for invalid documents.
    pub fn problems(&self) -> &[Problem] {
        match self {
            Error::Invalid(problems) => problems,
            _ => &[],
        }
    }

    /// A stable machine-readable code, documented in docs/alerts.md.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid(_) => "invalid_alert",
            Error::Unauthenticated(_) => "unauthenticated",
            Error::Forbidden(_) => "forbidden",
            Error::Conflict(_) => "identifier_reused",
            Error::ChainCancelled(_) => "chain_cancelled",
            Error::NotFound(_) => "not_found",
            Error::UnsupportedMediaType(_) => "unsupported_media_type",
            Error::TooLarge { .. } => "body_too_large",
            Error::Bus(_) | Error::Store(_) => "unavailable",
        }
    }

    /// The error as a gRPC status (the one place this mapping is made).
    pub fn to_status(&self) -> tonic::Status {
        let details =
            self.problems().iter().map(|p| format!("{}: {}", p.path, p.reason)).collect::<Vec<_>>().join("; ");
        let message = if details.is_empty() { self.to_string() } else { format!("{self}: {details}") };
        match self {
            Error::Invalid(_) => tonic::Status::invalid_argument(message),
            Error::Unauthenticated(_) => tonic::Status::unauthenticated(message),
            Error::Forbidden(_) => tonic::Status::permission_denied(message),
            Error::Conflict(_) => tonic::Status::already_exists(message),
            Error::ChainCancelled(_) => tonic::Status::failed_precondition(message),
            Error::NotFound(_) => tonic::Status::not_found(message),
            Error::UnsupportedMediaType(_) => tonic::Status::invalid_argument(message),
            Error::TooLarge { .. } => tonic::Status::resource_exhausted(message),
            Error::Bus(_) | Error::Store(_) => tonic::Status::unavailable(message),
        }
    }
}

/// Result with the alerts [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
