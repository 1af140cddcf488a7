//! The shipped schemas (official ninjs 3.2, the GeoJSON schema it references, the Bashu
//! profile), compiled once with retrieval switched off: nothing is fetched at run time.

use std::sync::LazyLock;

use jsonschema::{Registry, Validator};
use serde_json::Value;

/// IPTC ninjs 3.2 (CC BY 4.0), from iptc/newsinjson `specification/ninjs-schema_3.2.json`.
pub const OFFICIAL_SCHEMA: &str = include_str!("../schemas/ninjs-schema_3.2.json");
/// The GeoJSON schema ninjs 3.2 references for `places[].geoJSON`.
pub const GEOJSON_SCHEMA: &str = include_str!("../schemas/GeoJSON.json");
/// The Bashu profile of ninjs 3.2, published at `GET /v1/schemas/bashu-ninjs-profile_1.0.json`.
pub const PROFILE_SCHEMA: &str = include_str!("../schemas/bashu-ninjs-profile_1.0.json");

/// The `$id` of the official schema.
pub const OFFICIAL_URI: &str = "http://www.iptc.org/std/ninjs/ninjs-schema_3.2.json";
/// The `$id` of the GeoJSON schema.
pub const GEOJSON_URI: &str = "https://geojson.org/schema/GeoJSON.json";
/// The `$id` of the Bashu profile, and what `standard.schema` says in every rendering.
pub const PROFILE_URI: &str = "urn:bashu:ninjs-profile:1.0";

/// One way a document breaks a schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where, as a JSON Pointer into the document (`/headlines/0/value`; empty for the root).
    pub path: String,
    /// Why.
    pub reason: String,
}

struct Schemas {
    official: Validator,
    profile: Validator,
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("the shipped schemas are JSON (checked by the crate's tests)")
}

static SCHEMAS: LazyLock<Schemas> = LazyLock::new(|| {
    let registry = Registry::new()
        .add(GEOJSON_URI, parse(GEOJSON_SCHEMA))
        .and_then(|registry| registry.add(OFFICIAL_URI, parse(OFFICIAL_SCHEMA)))
        .and_then(|registry| registry.prepare())
        .expect("the shipped schemas register (checked by the crate's tests)");
    // Formats stay annotations, as draft 2020-12 and IPTC's own test runner have them: the
    // mapping to `Story` parses every date itself and names the field it could not read.
    let build = |schema: &Value| {
        jsonschema::options()
            .offline()
            .with_registry(&registry)
            .build(schema)
            .expect("the shipped schemas compile (checked by the crate's tests)")
    };
    Schemas { official: build(&parse(OFFICIAL_SCHEMA)), profile: build(&parse(PROFILE_SCHEMA)) }
});

fn problems(validator: &Validator, document: &Value) -> Result<(), Vec<Problem>> {
    let found: Vec<Problem> = validator
        .iter_errors(document)
        .take(50)
        .map(|error| Problem { path: error.instance_path().to_string(), reason: error.to_string() })
        .collect();
    if found.is_empty() { Ok(()) } else { Err(found) }
}

/// Checks a document against the official ninjs 3.2 schema.
pub fn validate_official(document: &Value) -> Result<(), Vec<Problem>> {
    problems(&SCHEMAS.official, document)
}

/// Checks a document against the Bashu profile (which includes the official schema).
pub fn validate_profile(document: &Value) -> Result<(), Vec<Problem>> {
    problems(&SCHEMAS.profile, document)
}
