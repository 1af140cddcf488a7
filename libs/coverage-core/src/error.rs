//! Why a plan operation was refused or failed: one error with a stable code.

/// Joint coverage's refusals and failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field is wrong.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field, as the HTTP door names it (`phases[1].dueAt`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The caller may not do this (another county's answer, a proposer-only change).
    #[error("{0}")]
    Forbidden(String),
    /// No such plan or phase for this caller (a plan a county is not invited to is not found:
    /// the same answer, so nobody probes for others' plans).
    #[error("{0}")]
    NotFound(String),
    /// The plan is not in a state that allows it, or someone else got there first.
    #[error("{message}")]
    Conflict {
        /// Stable: `plan_exists`, `phase_taken`, `wrong_state`, `not_participant`,
        /// `no_weights_proposal`, `plan_open`, `busy`.
        code: &'static str,
        /// What happened, for a person.
        message: String,
    },
    /// The plans bucket could not be read or written now.
    #[error("the coverage records are unavailable: {0}")]
    Store(String),
    /// A stored record does not decode.
    #[error("corrupt {key}: {reason}")]
    Corrupt {
        /// Its key.
        key: String,
        /// What the decoder said.
        reason: String,
    },
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] bashu_bus::Error),
}

impl Error {
    /// A refusal of `field` because of `reason`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid { field: field.into(), reason: reason.into() }
    }

    /// A conflict with a stable code.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict { code, message: message.into() }
    }

    /// A store failure, for `map_err`.
    pub fn store(error: impl std::fmt::Display) -> Self {
        Self::Store(error.to_string())
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid { .. } => "invalid_request",
            Error::Forbidden(_) => "forbidden",
            Error::NotFound(_) => "not_found",
            Error::Conflict { code, .. } => code,
            Error::Store(_) => "store_unavailable",
            Error::Corrupt { .. } => "corrupt_record",
            Error::Bus(error) if error.is_transient() => "bus_unavailable",
            Error::Bus(_) => "bus_refused",
        }
    }

    /// Whether the same work may succeed later.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Store(_) => true,
            Error::Conflict { code, .. } => *code == "busy",
            Error::Bus(error) => error.is_transient(),
            _ => false,
        }
    }
}
