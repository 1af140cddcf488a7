//! Why a reviewer's call was refused: one error type with a stable code for each kind, and the one
//! place it becomes a gRPC status.

use tonic::{Code, Status};

/// A review call that did not succeed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReviewError {
    /// No staff token reached the desk.
    #[error("a bearer token is required")]
    Unauthenticated,
    /// The caller is not a reviewer, or not one of the level the story waits for.
    #[error("{0}")]
    Forbidden(String),
    /// No such story in the queue.
    #[error("no held story {0}")]
    NotFound(String),
    /// The story was approved, rejected or expired meanwhile.
    #[error("the story is no longer waiting for review")]
    NotWaiting,
    /// The caller acts on a story without a live claim of their own.
    #[error("claim the story first (claims lapse)")]
    NotClaimed,
    /// Another reviewer holds a live claim.
    #[error("claimed by {0}")]
    ClaimedByAnother(String),
    /// The caller already approved the story at an earlier level.
    #[error("each level needs a different reviewer")]
    SameReviewer,
    /// The story expired while it waited: it was rejected instead (the message says when).
    #[error("{0}")]
    Expired(String),
    /// A request field is wrong (the message names it).
    #[error("{0}")]
    Invalid(String),
    /// The queue or the bus cannot be reached now; the call may be tried again.
    #[error("the review queue is unavailable: {0}")]
    Unavailable(String),
}

impl ReviewError {
    /// A failure of the queue or the bus, for `map_err`.
    pub(crate) fn unavailable(error: impl std::fmt::Display) -> Self {
        Self::Unavailable(error.to_string())
    }

    /// A stable machine-readable code, documented in docs/operations.md.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            ReviewError::Unauthenticated => "unauthenticated",
            ReviewError::Forbidden(_) => "permission_denied",
            ReviewError::NotFound(_) => "not_found",
            ReviewError::NotWaiting => "not_waiting",
            ReviewError::NotClaimed => "not_claimed",
            ReviewError::ClaimedByAnother(_) => "claimed_by_another",
            ReviewError::SameReviewer => "same_reviewer",
            ReviewError::Expired(_) => "expired",
            ReviewError::Invalid(_) => "invalid_argument",
            ReviewError::Unavailable(_) => "unavailable",
        }
    }

    fn grpc_code(&self) -> Code {
        match self {
            ReviewError::Unauthenticated => Code::Unauthenticated,
            ReviewError::Forbidden(_) => Code::PermissionDenied,
            ReviewError::NotFound(_) => Code::NotFound,
            ReviewError::NotWaiting
            | ReviewError::NotClaimed
            | ReviewError::ClaimedByAnother(_)
            | ReviewError::SameReviewer
            | ReviewError::Expired(_) => Code::FailedPrecondition,
            ReviewError::Invalid(_) => Code::InvalidArgument,
            ReviewError::Unavailable(_) => Code::Unavailable,
        }
    }
}

/// The one mapping to what a gRPC client sees: status code, message, and the stable code in the
/// `bashu-error-code` metadata.
impl From<ReviewError> for Status {
    fn from(error: ReviewError) -> Self {
        bashu_proto::error_status(error.grpc_code(), error.to_string(), error.code())
    }
}
