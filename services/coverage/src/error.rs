//! The coverage service's errors: the domain's refusals, a caller without a valid token, and
//! the one place they become an HTTP answer, a gRPC status or a consumer's outcome.

use bashu_bus::Failure;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A refusal or failure of the domain (a field, a state, a conflict, the store).
    #[error(transparent)]
    Coverage(#[from] bashu_coverage_core::Error),
    /// No valid token.
    #[error("{0}")]
    Unauthenticated(&'static str),
}

impl From<bashu_bus::Error> for Error {
    fn from(error: bashu_bus::Error) -> Self {
        Self::Coverage(error.into())
    }
}

impl Error {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Coverage(error) => error.code(),
            Error::Unauthenticated(_) => "unauthenticated",
        }
    }

    /// Whether the same work may succeed later (the bus or the store was unavailable).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Coverage(error) if error.is_transient())
    }

    fn grpc_code(&self) -> tonic::Code {
        use bashu_coverage_core::Error as E;
        match self {
            Error::Unauthenticated(_) => tonic::Code::Unauthenticated,
            Error::Coverage(E::Invalid { .. }) => tonic::Code::InvalidArgument,
            Error::Coverage(E::Forbidden(_)) => tonic::Code::PermissionDenied,
            Error::Coverage(E::NotFound(_)) => tonic::Code::NotFound,
            Error::Coverage(E::Conflict { code: "plan_exists", .. }) => tonic::Code::AlreadyExists,
            Error::Coverage(E::Conflict { code: "busy", .. }) => tonic::Code::Aborted,
            Error::Coverage(E::Conflict { code: "too_many_open_plans", .. }) => tonic::Code::ResourceExhausted,
            Error::Coverage(E::Conflict { .. }) => tonic::Code::FailedPrecondition,
            Error::Coverage(error) if error.is_transient() => tonic::Code::Unavailable,
            Error::Coverage(_) => tonic::Code::Internal,
        }
    }

    /// The HTTP status of the same answer.
    pub(crate) fn http_status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self.grpc_code() {
            tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
            tonic::Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            tonic::Code::PermissionDenied => StatusCode::FORBIDDEN,
            tonic::Code::NotFound => StatusCode::NOT_FOUND,
            tonic::Code::AlreadyExists
            | tonic::Code::FailedPrecondition
            | tonic::Code::Aborted
            | tonic::Code::ResourceExhausted => StatusCode::CONFLICT,
            tonic::Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// `{"error": {"code", "message", "fields"}}`, as every Bashu door answers.
    pub(crate) fn body(&self) -> serde_json::Value {
        let fields = match self {
            Error::Coverage(bashu_coverage_core::Error::Invalid { field, reason }) => {
                vec![serde_json::json!({"field": field, "reason": reason})]
            }
            _ => Vec::new(),
        };
        serde_json::json!({"error": {"code": self.code(), "message": self.to_string(), "fields": fields}})
    }
}

impl axum::response::IntoResponse for Error {
    fn into_response(self) -> axum::response::Response {
        if self.http_status().is_server_error() {
            tracing::warn!(code = self.code(), error = %bashu_bus::error_chain(&self), "coverage request failed");
        }
        (self.http_status(), axum::Json(self.body())).into_response()
    }
}

impl From<Error> for tonic::Status {
    fn from(error: Error) -> Self {
        bashu_proto::error_status(error.grpc_code(), error.to_string(), error.code())
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let transient = error.is_transient();
        let reason = format!("{}: {}", error.code(), bashu_bus::error_chain(&error));
        if transient { Failure::Retry(reason) } else { Failure::Permanent(reason) }
    }
}
