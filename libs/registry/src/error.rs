/// A registry failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The value is not a six-digit code.
    #[error("{code:?} is not a six-digit GB/T 2260 county code")]
    MalformedCode {
        /// The value as given.
        code: String,
    },
    /// Six digits, but no county of Sichuan or Chongqing has (or had) this code.
    #[error("{code} is not a county of Sichuan or Chongqing (GB/T 2260)")]
    UnknownCode {
        /// The code as given.
        code: String,
    },
    /// The built-in data files do not parse (a build defect, caught by the crate's tests).
    #[error("built-in registry data {file} is invalid: {reason}")]
    BuiltinData {
        /// Which file.
        file: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// An alliance or partnership is not valid.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field path, for example `members[3]`.
        field: String,
        /// Why.
        reason: String,
    },
    /// The key-value bucket could not be read or written.
    #[error("registry bucket {operation} failed")]
    Store {
        /// What was being done.
        operation: &'static str,
        /// What NATS said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A stored value does not decode.
    #[error("registry entry {key} is corrupt")]
    Corrupt {
        /// The key.
        key: String,
        /// The decode error.
        #[source]
        source: prost::DecodeError,
    },
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] bashu_bus::Error),
}

/// Result with the registry [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
