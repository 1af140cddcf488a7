//! alerts
pub mod cap;
