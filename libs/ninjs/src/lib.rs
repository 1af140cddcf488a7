//! IPTC ninjs 3.2 for Bashu: the official schema and the Bashu profile (shipped, never fetched),
//! and the mapping between ninjs documents and `Story`.

mod mapping;
mod schema;

pub use mapping::{Delivery, package_to_ninjs, story_from_ninjs, story_to_ninjs};
pub use schema::{
    GEOJSON_SCHEMA, GEOJSON_URI, OFFICIAL_SCHEMA, OFFICIAL_URI, PROFILE_SCHEMA, PROFILE_URI, Problem,
    validate_official, validate_profile,
};
