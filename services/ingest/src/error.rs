use serde::Serialize;

/// One problem with one field of the input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field path in the proto3 JSON names, for example `sharing.counties[2]`.
    pub field: String,
    /// Why it was refused.
    pub reason: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { field: field.into(), reason: reason.into() }
    }
}

/// Why a submission was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input parsed but breaks the rules; every problem is listed.
    #[error("the story is not valid")]
    Invalid(Vec<FieldError>),
    /// A request other than a story (settings) parsed but breaks the rules.
    #[error("the request is not valid")]
    InvalidRequest(Vec<FieldError>),
    /// The input does not parse (bad JSON, wrong type, unknown field, invalid UTF-8).
    #[error("the request body does not parse")]
    Malformed(FieldError),
    /// This id and version were accepted before with other content: send a new version instead.
    #[error("story {id} version {version} was already accepted with different content: send it as a new version")]
    Conflict {
        /// The story id.
        id: String,
        /// The version.
        version: u32,
    },
    /// The request body is larger than allowed.
    #[error("the request body is larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The request's content type is not one ingest reads.
    #[error("unsupported content type {0:?}: send application/json or application/ninjs+json")]
    UnsupportedMediaType(String),
    /// No token, or one that is unknown or revoked.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The token's county may not do this (submit as another county, read another's story).
    #[error("{0}")]
    Forbidden(String),
    /// The county sent more than its share; it may try again after `retry_after`.
    #[error("too many submissions from this county: retry after {} s", retry_after.as_secs())]
    RateLimited {
        /// When to try again.
        retry_after: std::time::Duration,
    },
    /// A batch larger than a county's whole burst allowance.
    #[error("the batch has more items than a county may send at once")]
    TooManyItems,
    /// No such thing (mapping, media object, feed).
    #[error("{0}")]
    NotFound(String),
    /// The bus refused or timed out: the county should retry (same id and version is safe).
    #[error(transparent)]
    Bus(#[from] bashu_bus::Error),
    /// The idempotency record could not be read or written.
    #[error("ingest record store failed")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    pub(crate) fn store(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Store(error.into())
    }

    /// The field problems, for errors about the input.
    pub fn fields(&self) -> &[FieldError] {
        match self {
            Error::Invalid(fields) | Error::InvalidRequest(fields) => fields,
            Error::Malformed(field) => std::slice::from_ref(field),
            _ => &[],
        }
    }

    /// A stable machine-readable code, documented in the README.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid(_) => "invalid_story",
            Error::InvalidRequest(_) => "invalid_request",
            Error::Malformed(_) => "malformed_body",
            Error::TooLarge { .. } => "body_too_large",
            Error::Conflict { .. } => "version_conflict",
            Error::UnsupportedMediaType(_) => "unsupported_media_type",
            Error::Unauthenticated(_) => "unauthenticated",
            Error::Forbidden(_) => "forbidden",
            Error::RateLimited { .. } => "rate_limited",
            Error::TooManyItems => "batch_too_large",
            Error::NotFound(_) => "not_found",
            Error::Bus(_) | Error::Store(_) => "unavailable",
        }
    }

    /// The error as a gRPC status (the one place this mapping is made).
    pub fn to_status(&self) -> tonic::Status {
        let details = self.fields().iter().map(|f| format!("{}: {}", f.field, f.reason)).collect::<Vec<_>>().join("; ");
        let message = if details.is_empty() { self.to_string() } else { format!("{self}: {details}") };
        match self {
            Error::Invalid(_) | Error::InvalidRequest(_) | Error::Malformed(_) | Error::UnsupportedMediaType(_) => {
                tonic::Status::invalid_argument(message)
            }
            Error::TooLarge { .. } | Error::RateLimited { .. } | Error::TooManyItems => {
                tonic::Status::resource_exhausted(message)
            }
            Error::Unauthenticated(_) => tonic::Status::unauthenticated(message),
            Error::Forbidden(_) => tonic::Status::permission_denied(message),
            Error::NotFound(_) => tonic::Status::not_found(message),
            Error::Conflict { .. } => tonic::Status::already_exists(message),
            Error::Bus(_) | Error::Store(_) => tonic::Status::unavailable(message),
        }
    }
}

/// Result with the ingest [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
