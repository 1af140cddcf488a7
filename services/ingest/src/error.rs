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
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { field: field.into(), reason: reason.into() }
    }
}

/// Why a submission was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input parsed but breaks the rules; every problem is listed.
    #[error("the story is not valid")]
    Invalid(Vec<FieldError>),
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
    #[error("unsupported content type {0:?}: send application/json")]
    UnsupportedMediaType(String),
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
            Error::Invalid(fields) => fields,
            Error::Malformed(field) => std::slice::from_ref(field),
            _ => &[],
        }
    }

    /// A stable machine-readable code, documented in the README.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid(_) => "invalid_story",
            Error::Malformed(_) => "malformed_body",
            Error::TooLarge { .. } => "body_too_large",
            Error::Conflict { .. } => "version_conflict",
            Error::UnsupportedMediaType(_) => "unsupported_media_type",
            Error::Bus(_) | Error::Store(_) => "unavailable",
        }
    }

    /// The error as a gRPC status (the one place this mapping is made).
    pub fn to_status(&self) -> tonic::Status {
        let details = self.fields().iter().map(|f| format!("{}: {}", f.field, f.reason)).collect::<Vec<_>>().join("; ");
        let message = if details.is_empty() { self.to_string() } else { format!("{self}: {details}") };
        match self {
            Error::Invalid(_) | Error::Malformed(_) | Error::UnsupportedMediaType(_) => {
                tonic::Status::invalid_argument(message)
            }
            Error::TooLarge { .. } => tonic::Status::resource_exhausted(message),
            Error::Conflict { .. } => tonic::Status::already_exists(message),
            Error::Bus(_) | Error::Store(_) => tonic::Status::unavailable(message),
        }
    }
}

/// Result with the ingest [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
