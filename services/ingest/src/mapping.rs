//! Declarative mapping adapters: a JSON file that says where, in a platform's or CMS's own JSON,
//! each `Story` field is (JSON Pointer), how categories and times are written there, and what
//! to assume when a value is absent. The result is the canonical story JSON, so a mapped story
//! meets exactly the rules of a canonical one. How to write one: docs/ingest-mappings.md.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset, format_description::OwnedFormatItem};

use crate::FieldError;

/// The `Story` fields a mapping may fill, in proto3 JSON names (nested with dots).
const TARGETS: &[&str] = &[
    "id",
    "version",
    "originCounty",
    "headline",
    "summary",
    "body",
    "language",
    "category",
    "tags",
    "countiesConcerned",
    "byline",
    "attribution.source",
    "attribution.originalAuthor",
    "attribution.responsibleEditor",
    "createdAt",
    "embargoUntil",
    "expiresAt",
    "sharing.partners",
    "sharing.alliances",
    "sharing.province",
    "sharing.region",
    "sharing.counties",
    "sharing.attributionRequired",
    "sharing.editsAllowed",
    "status",
    "coverage.planId",
    "coverage.phase",
    "coverage.kind",
];
const TIME_TARGETS: &[&str] = &["createdAt", "embargoUntil", "expiresAt"];
const MAX_MAPPING_BYTES: usize = 64 * 1024;

/// A mapping file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MappingFile {
    /// Lowercase `[a-z0-9-]`, at most 64: how submissions name it (`/v1/stories/mapped/<name>`).
    pub name: String,
    /// What the source is, for people.
    #[serde(default)]
    pub description: String,
    /// Target field → where its value comes from.
    pub fields: BTreeMap<String, FieldRule>,
}

/// Where one `Story` field comes from.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FieldRule {
    /// JSON Pointer (RFC 6901) into the source document.
    #[serde(default)]
    pub pointer: Option<String>,
    /// Used when the pointer finds nothing (or null), or when there is no pointer.
    #[serde(default)]
    pub default: Option<Value>,
    /// Source value (as text) → the value to use, for example `"时政": "CATEGORY_POLICY"`.
    #[serde(default)]
    pub values: Option<BTreeMap<String, Value>>,
    /// Splits a text value into a list at this separator (for `tags`, `countiesConcerned`).
    #[serde(default)]
    pub split: Option<String>,
    /// For times: `rfc3339`, `unix`, `unix_ms`, or a `time` format description such as
    /// `[year]-[month]-[day] [hour]:[minute]:[second]` (then `utcOffset` applies).
    #[serde(default)]
    pub format: Option<String>,
    /// For times without an offset of their own, for example `+08:00`.
    #[serde(default)]
    pub utc_offset: Option<String>,
}

/// A mapping checked and ready to apply.
#[derive(Clone, Debug)]
pub struct Mapping {
    file: MappingFile,
    formats: BTreeMap<String, (OwnedFormatItem, UtcOffset)>,
}

fn offset(text: &str) -> Option<UtcOffset> {
    let format = time::macros::format_description!("[offset_hour sign:mandatory]:[offset_minute]");
    UtcOffset::parse(text, format).ok()
}

impl Mapping {
    /// Parses and checks a mapping file; every problem is named by its path in the file.
    pub fn parse(bytes: &[u8]) -> Result<Self, Vec<FieldError>> {
        if bytes.len() > MAX_MAPPING_BYTES {
            return Err(vec![FieldError::new("", format!("a mapping file is at most {MAX_MAPPING_BYTES} bytes"))]);
        }
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        let file: MappingFile = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
            let path = error.path().to_string();
            vec![FieldError::new(if path == "." { String::new() } else { path }, error.into_inner().to_string())]
        })?;
        let mut errors = Vec::new();
        let name_ok = !file.name.is_empty()
            && file.name.len() <= 64
            && file.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !name_ok {
            errors.push(FieldError::new("name", "1-64 of a-z, 0-9 and '-'"));
        }
        let mut formats = BTreeMap::new();
        for (target, rule) in &file.fields {
            let at = |what: &str| format!("fields.{target}{what}");
            if !TARGETS.contains(&target.as_str()) {
                errors.push(FieldError::new(at(""), format!("not a Story field; one of {}", TARGETS.join(", "))));
                continue;
            }
            if rule.pointer.is_none() && rule.default.is_none() {
                errors.push(FieldError::new(at(""), "needs a pointer, a default, or both"));
            }
            if let Some(pointer) = &rule.pointer
                && !pointer.is_empty()
                && !pointer.starts_with('/')
            {
                errors.push(FieldError::new(at(".pointer"), "a JSON Pointer starts with '/' (RFC 6901)"));
            }
            if rule.split.as_deref() == Some("") {
                errors.push(FieldError::new(at(".split"), "an empty separator splits nothing"));
            }
            let is_time = TIME_TARGETS.contains(&target.as_str());
            if !is_time && (rule.format.is_some() || rule.utc_offset.is_some()) {
                errors.push(FieldError::new(at(".format"), "only times have a format"));
            }
            if is_time {
                let offset = match rule.utc_offset.as_deref() {
                    None => Some(UtcOffset::UTC),
                    Some(text) => offset(text),
                };
                let Some(offset) = offset else {
                    errors.push(FieldError::new(at(".utcOffset"), "an offset such as +08:00"));
                    continue;
                };
                match rule.format.as_deref() {
                    None | Some("rfc3339" | "unix" | "unix_ms") => {}
                    Some(description) => match time::format_description::parse_owned::<2>(description) {
                        Ok(items) => {
                            formats.insert(target.clone(), (items, offset));
                        }
                        Err(error) => errors.push(FieldError::new(at(".format"), error.to_string())),
                    },
                }
            }
            if target == "category"
                && let Some(values) = &rule.values
            {
                for (given, category) in values {
                    let known = category.as_str().and_then(bashu_proto::story::v1::Category::from_str_name);
                    if known.is_none() {
                        errors.push(FieldError::new(
                            at(&format!(".values.{given}")),
                            "not a category such as CATEGORY_POLICY",
                        ));
                    }
                }
            }
        }
        for required in ["id", "headline", "body", "category"] {
            if !file.fields.contains_key(required) {
                errors
                    .push(FieldError::new(format!("fields.{required}"), "required: a story cannot be made without it"));
            }
        }
        if errors.is_empty() { Ok(Self { file, formats }) } else { Err(errors) }
    }

    /// The mapping's name.
    pub fn name(&self) -> &str {
        &self.file.name
    }

    /// Applies the mapping to a source document: the canonical story JSON, or every field that
    /// could not be read (named by target field and source pointer).
    pub fn apply(&self, source: &Value) -> Result<Value, Vec<FieldError>> {
        let mut story = Map::new();
        let mut errors = Vec::new();
        for (target, rule) in &self.file.fields {
            let found = rule.pointer.as_deref().and_then(|p| source.pointer(p)).filter(|v| !v.is_null());
            let Some(mut value) = found.cloned().or_else(|| rule.default.clone()) else { continue };
            let origin = rule.pointer.as_deref().unwrap_or("default");
            if let Some(values) = &rule.values {
                let key = match &value {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                match values.get(&key) {
                    Some(mapped) => value = mapped.clone(),
                    None => match &rule.default {
                        Some(default) => value = default.clone(),
                        None => {
                            errors.push(FieldError::new(
                                target.clone(),
                                format!("{origin}: {key:?} has no entry in values"),
                            ));
                            continue;
                        }
                    },
                }
            }
            if let (Some(separator), Value::String(text)) = (&rule.split, &value) {
                value =
                    text.split(separator.as_str()).map(str::trim).filter(|s| !s.is_empty()).map(Value::from).collect();
            }
            if TIME_TARGETS.contains(&target.as_str()) {
                match self.time(target, rule, &value) {
                    Some(text) => value = Value::String(text),
                    None => {
                        errors.push(FieldError::new(
                            target.clone(),
                            format!("{origin}: {value} is not a time in the mapping's format"),
                        ));
                        continue;
                    }
                }
            }
            // Numbers written as text in many CMS exports: the version must be a number.
            if target == "version"
                && let Value::String(text) = &value
                && let Ok(number) = text.trim().parse::<u32>()
            {
                value = Value::from(number);
            }
            if ["id", "originCounty"].contains(&target.as_str())
                && let Value::Number(number) = &value
            {
                value = Value::String(number.to_string());
            }
            insert(&mut story, target, value);
        }
        // A source without versions sends each story once: version 1.
        story.entry("version").or_insert(Value::from(1));
        if errors.is_empty() { Ok(Value::Object(story)) } else { Err(errors) }
    }

    /// Applies the mapping and reads the result as a `Story` (its rules are checked on submission).
    pub fn to_story(&self, source: &Value) -> Result<bashu_proto::story::v1::Story, Vec<FieldError>> {
        let canonical = self.apply(source)?;
        crate::http::parse_story(canonical.to_string().as_bytes()).map_err(|e| e.fields().to_vec())
    }

    fn time(&self, target: &str, rule: &FieldRule, value: &Value) -> Option<String> {
        let rfc3339 = &time::format_description::well_known::Rfc3339;
        let moment = match (rule.format.as_deref(), value) {
            (None | Some("rfc3339"), Value::String(text)) => OffsetDateTime::parse(text, rfc3339).ok()?,
            (Some("unix"), value) => OffsetDateTime::from_unix_timestamp(number(value)?).ok()?,
            (Some("unix_ms"), value) => {
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(number(value)?) * 1_000_000).ok()?
            }
            (Some(_), Value::String(text)) => {
                let (format, offset) = self.formats.get(target)?;
                PrimitiveDateTime::parse(text, format).ok()?.assume_offset(*offset)
            }
            _ => return None,
        };
        moment.format(rfc3339).ok()
    }
}

fn number(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

fn insert(story: &mut Map<String, Value>, target: &str, value: Value) {
    match target.split_once('.') {
        None => {
            story.insert(target.to_owned(), value);
        }
        Some((parent, child)) => {
            let entry = story.entry(parent.to_owned()).or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(inner) = entry {
                inner.insert(child.to_owned(), value);
            }
        }
    }
}

/// Applies a mapping file to a sample without a running system: the normalised story, or every
/// problem (of the mapping file, the sample, or the story it makes). Alliance names are checked
/// only by a running system, which knows them (`POST /v1/mappings/<name>/dry-run`).
pub fn dry_run(
    mapping: &[u8],
    sample: &[u8],
    counties: &bashu_registry::Counties,
) -> Result<bashu_proto::story::v1::Story, Vec<FieldError>> {
    let mapping = Mapping::parse(mapping)?;
    let sample: Value = serde_json::from_slice(sample).map_err(|e| vec![FieldError::new("sample", e.to_string())])?;
    let mut story = mapping.to_story(&sample)?;
    let alliances = story.sharing.as_mut().map(|s| std::mem::take(&mut s.alliances)).unwrap_or_default();
    let registry = bashu_registry::RegistrySnapshot::default();
    let mut story = crate::validate::normalise(story, counties, &registry, std::time::SystemTime::now())?.story;
    if let Some(sharing) = story.sharing.as_mut() {
        sharing.alliances = alliances;
    }
    Ok(story)
}

/// The example mappings shipped in `examples/mappings/`, registered at start-up.
pub fn builtin() -> Vec<Mapping> {
    [
        include_str!("../../../examples/mappings/tianfu-rongmei.json"),
        include_str!("../../../examples/mappings/xin-chongqing.json"),
    ]
    .into_iter()
    .map(|text| Mapping::parse(text.as_bytes()).expect("the shipped example mappings are valid (tested)"))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_mapping_names_every_problem() {
        let errors = Mapping::parse(
            br#"{"name": "Bad Name", "fields": {
                "headline": {"pointer": "title"},
                "colour": {"pointer": "/c"},
                "createdAt": {"pointer": "/t", "format": "[year]-[nonsense]"},
                "category": {"pointer": "/c", "values": {"x": "CATEGORY_NOPE"}}
            }}"#,
        )
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        for expected in [
            "name",
            "fields.headline.pointer",
            "fields.colour",
            "fields.createdAt.format",
            "fields.category.values.x",
            "fields.id",
            "fields.body",
        ] {
            assert!(fields.contains(&expected), "{expected} missing from {errors:?}");
        }
        let errors = Mapping::parse(br#"{"name": "x", "fields": {}, "extra": 1}"#).unwrap_err();
        assert!(errors[0].reason.contains("extra"), "{errors:?}");
    }

    #[test]
    fn the_shipped_examples_are_valid_and_their_samples_make_valid_stories() {
        assert_eq!(builtin().len(), 2);
        let counties = bashu_registry::Counties::builtin().unwrap();
        let story = dry_run(
            include_bytes!("../../../examples/mappings/xin-chongqing.json"),
            include_bytes!("../../../examples/mappings/xin-chongqing.sample.json"),
            &counties,
        )
        .unwrap();
        assert_eq!((story.id.as_str(), story.language.as_str()), ("wz-2026-1128-07", "zh-CN"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 300, ..Default::default() })]
        #[test]
        fn any_mapping_and_sample_apply_or_fail_cleanly(mapping in r#"\{"name":"[a-z]{1,4}","fields":\{("(id|headline|body|category|createdAt|tags|version)":\{("pointer":"/[a-z]{0,3}"|"default":[0-9a-z"]{1,5}|"format":"[a-z_\[\] ]{0,12}"|"split":","),?\},?){0,5}\}\}"#,
                                                        sample in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            if let Ok(mapping) = Mapping::parse(mapping.as_bytes()) {
                let _ = mapping.apply(&serde_json::from_slice(&sample).unwrap_or(Value::Null));
                let _ = mapping.apply(&serde_json::json!({"a": "2026-11-28", "b": [1, "x"], "c": {"d": null}}));
            }
        }
    }
}
