//! Why an admin call failed: one error type with a stable code for each kind, and the one place
//! it becomes a gRPC status.

use tonic::{Code, Status};

/// An admin call that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is wrong: a field is missing, malformed or out of range (the message names it).
    #[error("{0}")]
    Invalid(String),
    /// What the request names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// No staff token, or an unknown or revoked one.
    #[error("{0}")]
    Unauthenticated(String),
    /// The token's role may not call this method.
    #[error("{0}")]
    Forbidden(String),
    /// Something the call needs (the bus, a bucket, a stream) cannot be reached now; the call
    /// may be tried again.
    #[error("{what}: {reason}")]
    Unavailable {
        /// What could not be reached, as the caller should read it.
        what: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The registry refused or failed the change.
    #[error(transparent)]
    Registry(#[from] bashu_registry::Error),
    /// Stored data that must be valid is not: a defect, not the caller's fault.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// `what` could not be reached, because of `reason`.
    pub fn unavailable(what: &'static str, reason: impl std::fmt::Display) -> Self {
        Self::Unavailable { what, reason: reason.to_string() }
    }

    /// A stable machine-readable code, documented in docs/operations.md.
    pub fn code(&self) -> &'static str {
        use bashu_registry::Error as Registry;
        match self {
            Error::Invalid(_) => "invalid_argument",
            Error::NotFound(_) => "not_found",
            Error::Unauthenticated(_) => "unauthenticated",
            Error::Forbidden(_) => "permission_denied",
            Error::Unavailable { .. } => "unavailable",
            Error::Registry(Registry::MalformedCode { .. }) => "malformed_code",
            Error::Registry(Registry::Invalid { .. }) => "invalid_argument",
            Error::Registry(Registry::UnknownCode { .. }) => "unknown_county",
            Error::Registry(Registry::Store { .. } | Registry::Bus(_)) => "unavailable",
            Error::Registry(Registry::BuiltinData { .. } | Registry::Corrupt { .. }) | Error::Internal(_) => "internal",
        }
    }

    fn grpc_code(&self) -> Code {
        use bashu_registry::Error as Registry;
        match self {
            Error::Invalid(_) | Error::Registry(Registry::MalformedCode { .. } | Registry::Invalid { .. }) => {
                Code::InvalidArgument
            }
            Error::NotFound(_) | Error::Registry(Registry::UnknownCode { .. }) => Code::NotFound,
            Error::Unauthenticated(_) => Code::Unauthenticated,
            Error::Forbidden(_) => Code::PermissionDenied,
            Error::Unavailable { .. } | Error::Registry(Registry::Store { .. } | Registry::Bus(_)) => Code::Unavailable,
            Error::Registry(Registry::BuiltinData { .. } | Registry::Corrupt { .. }) | Error::Internal(_) => {
                Code::Internal
            }
        }
    }
}

/// The one mapping from an admin error to what a gRPC client sees: the status code, the
/// message, and the stable code in the `bashu-error-code` metadata.
impl From<Error> for Status {
    fn from(error: Error) -> Self {
        bashu_proto::error_status(error.grpc_code(), error.to_string(), error.code())
    }
}

/// What the alert state's read side says.
impl From<bashu_alerts_core::Error> for Error {
    fn from(error: bashu_alerts_core::Error) -> Self {
        match error {
            bashu_alerts_core::Error::NotFound(what) => Error::NotFound(what),
            other => Error::unavailable("the alert state is unavailable", other),
        }
    }
}

/// What the rules store says.
impl From<bashu_moderation_core::Error> for Error {
    fn from(error: bashu_moderation_core::Error) -> Self {
        match error {
            bashu_moderation_core::Error::Rules(reason) => Error::Invalid(reason),
            other => Error::unavailable("the moderation rules are unavailable", other),
        }
    }
}
