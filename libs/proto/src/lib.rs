//! Rust types for Bashu's event contract (`proto/`): prost messages, tonic services and the
//! canonical proto3 JSON mapping (serde, through pbjson).

/// The encoded `FileDescriptorSet` of every Bashu `.proto` file, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bashu_descriptor.bin"));

pub mod codec;

/// The gRPC response metadata in which a refused call names its stable error code
/// (docs/operations.md, docs/pool.md list them).
pub const ERROR_CODE_METADATA: &str = "bashu-error-code";

/// A refused or failed call as gRPC says it: the status `code`, the `message`, and the stable
/// code a program matches on in the [`ERROR_CODE_METADATA`] metadata.
pub fn error_status(code: tonic::Code, message: impl Into<String>, stable_code: &'static str) -> tonic::Status {
    let mut status = tonic::Status::new(code, message);
    if let Ok(value) = stable_code.parse() {
        status.metadata_mut().insert(ERROR_CODE_METADATA, value);
    }
    status
}

/// Re-exported so that users name one timestamp type.
pub use pbjson_types::Timestamp;

macro_rules! generated {
    ($file:literal) => {
        include!(concat!(env!("OUT_DIR"), "/", $file, ".rs"));
        include!(concat!(env!("OUT_DIR"), "/", $file, ".serde.rs"));
    };
}

/// Generated code; documented in the `.proto` files.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod story {
    /// `bashu.story.v1`: the canonical story and its life-cycle events.
    pub mod v1 {
        generated!("bashu.story.v1");

        /// `<origin>.<id>.<version>`: how a story version is named in record keys, message ids
        /// and the review queue, everywhere the same.
        pub fn version_key(origin: &str, id: &str, version: u32) -> String {
            format!("{origin}.{id}.{version}")
        }

        impl SharingPolicy {
            /// Whether it shares with anyone at all: partners, the province, the region, an
            /// alliance or a county. A policy that names no one could reach no one.
            pub fn names_someone(&self) -> bool {
                self.partners || self.province || self.region || !self.alliances.is_empty() || !self.counties.is_empty()
            }
        }

        impl ContributionKind {
            /// The kind without its prefix, lowercase (`video`): as weights, tables and the
            /// HTTP doors name it.
            pub fn short_name(self) -> String {
                self.as_str_name().trim_start_matches("CONTRIBUTION_KIND_").to_lowercase()
            }

            /// The kind of a short name (`video`), if it is one.
            pub fn from_short_name(name: &str) -> Option<Self> {
                Self::from_str_name(&format!("CONTRIBUTION_KIND_{}", name.to_ascii_uppercase()))
                    .filter(|kind| *kind != Self::Unspecified)
            }
        }

        impl Story {
            /// This version's [`version_key`].
            pub fn version_key(&self) -> String {
                version_key(&self.origin_county, &self.id, self.version)
            }
        }
    }
}

/// Generated code; documented in the `.proto` files.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod alert {
    /// `bashu.alert.v1`: CAP 1.2 alerts and their per-county events.
    pub mod v1 {
        generated!("bashu.alert.v1");

        impl CountyAlertState {
            /// The state without its prefix, lowercase (`acknowledged`): as tables, metrics and
            /// the duty board name it.
            pub fn short_name(self) -> String {
                self.as_str_name().trim_start_matches("COUNTY_ALERT_STATE_").to_lowercase()
            }
        }
    }
}

/// Generated code; documented in the `.proto` files.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod registry {
    /// `bashu.registry.v1`: counties, alliances, partnerships.
    pub mod v1 {
        generated!("bashu.registry.v1");

        impl StaffRole {
            /// The role without its prefix, lowercase (`operator`): as people and records name it.
            pub fn short_name(self) -> String {
                self.as_str_name().trim_start_matches("STAFF_ROLE_").to_lowercase()
            }
        }
    }
}

/// Generated code; documented in the `.proto` files.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod ingest {
    /// `bashu.ingest.v1`: the story submission API.
    pub mod v1 {
        generated!("bashu.ingest.v1");
    }
}

/// Generated code; documented in the `.proto` files.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod moderation {
    /// `bashu.moderation.v1`: human review of held stories.
    pub mod v1 {
        generated!("bashu.moderation.v1");
    }
}

/// Generated code; documented in the `.proto` files.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod admin {
    /// `bashu.admin.v1`: the operators' API.
    pub mod v1 {
        generated!("bashu.admin.v1");
    }
}

/// Generated code; documented in the `.proto` files.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod pool {
    /// `bashu.pool.v1`: the shared content pool.
    pub mod v1 {
        generated!("bashu.pool.v1");
    }
}

/// Generated code; documented in the `.proto` files.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod coverage {
    /// `bashu.coverage.v1`: joint coverage plans, their contributions and settlements.
    pub mod v1 {
        generated!("bashu.coverage.v1");
    }
}

/// Timestamps from and to wall-clock time.
pub mod time {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use pbjson_types::Timestamp;

    /// The current time as a protobuf timestamp.
    pub fn now() -> Timestamp {
        from_system_time(SystemTime::now())
    }

    /// A wall-clock time as a protobuf timestamp.
    pub fn from_system_time(t: SystemTime) -> Timestamp {
        let since_epoch = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        Timestamp { seconds: since_epoch.as_secs() as i64, nanos: since_epoch.subsec_nanos() as i32 }
    }

    /// A protobuf timestamp as a wall-clock time; `None` when it is out of range.
    pub fn to_system_time(t: &Timestamp) -> Option<SystemTime> {
        let seconds = u64::try_from(t.seconds).ok()?;
        let nanos = u32::try_from(t.nanos).ok().filter(|n| *n < 1_000_000_000)?;
        UNIX_EPOCH.checked_add(Duration::new(seconds, nanos))
    }
}
