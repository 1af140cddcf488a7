//! The built-in county table (data/counties.csv) and the old-code table (data/code_changes.csv).

use std::collections::HashMap;

use bashu_proto::registry::v1::{County, CountyKind};
use serde::Deserialize;

use crate::{Error, Result};

const COUNTIES_CSV: &str = include_str!("../data/counties.csv");
const CODE_CHANGES_CSV: &str = include_str!("../data/code_changes.csv");
const COUNTY_SEATS_CSV: &str = include_str!("../data/county_seats.csv");

/// A WGS84 point: a county's seat of government (not a centroid, not a boundary).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Seat {
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
}

/// The county-level units of the region, indexed by code, with the old codes that resolve to them.
#[derive(Clone, Debug)]
pub struct Counties {
    counties: Vec<County>,
    by_code: HashMap<String, usize>,
    old_codes: HashMap<String, String>,
    seats: HashMap<String, Seat>,
}

/// A county found by code.
#[derive(Clone, Copy, Debug)]
pub struct Resolved<'a> {
    /// The current unit.
    pub county: &'a County,
    /// The old code that was given, when it was not the current one.
    pub resolved_from: Option<&'a str>,
}

#[derive(Deserialize)]
struct CountyRow {
    code: String,
    name: String,
    name_pinyin: String,
    kind: String,
    prefecture_code: String,
    prefecture_name: String,
    province_code: String,
    province_name: String,
}

#[derive(Deserialize)]
struct SeatRow {
    code: String,
    lat: f64,
    lon: f64,
}

#[derive(Deserialize)]
struct CodeChangeRow {
    old_code: String,
    new_code: String,
}

impl Counties {
    /// The built-in registry: 220 units as of 2025-12-31 (see data/SOURCES.md).
    pub fn builtin() -> Result<Self> {
        let mut counties = Vec::new();
        for row in csv::Reader::from_reader(COUNTIES_CSV.as_bytes()).deserialize::<CountyRow>() {
            let row = row.map_err(|e| Error::BuiltinData { file: "counties.csv", reason: e.to_string() })?;
            let kind = match row.kind.as_str() {
                "district" => CountyKind::District,
                "county" => CountyKind::County,
                "city" => CountyKind::City,
                "autonomous_county" => CountyKind::AutonomousCounty,
                other => {
                    return Err(Error::BuiltinData { file: "counties.csv", reason: format!("unknown kind {other:?}") });
                }
            };
            counties.push(County {
                code: row.code,
                name: row.name,
                name_pinyin: row.name_pinyin,
                kind: kind as i32,
                prefecture_code: row.prefecture_code,
                prefecture_name: row.prefecture_name,
                province_code: row.province_code,
                province_name: row.province_name,
            });
        }
        let by_code = counties.iter().enumerate().map(|(i, c)| (c.code.clone(), i)).collect::<HashMap<_, _>>();
        let mut old_codes = HashMap::new();
        for row in csv::Reader::from_reader(CODE_CHANGES_CSV.as_bytes()).deserialize::<CodeChangeRow>() {
            let row = row.map_err(|e| Error::BuiltinData { file: "code_changes.csv", reason: e.to_string() })?;
            if !by_code.contains_key(&row.new_code) {
                return Err(Error::BuiltinData {
                    file: "code_changes.csv",
                    reason: format!("{} points to unknown {}", row.old_code, row.new_code),
                });
            }
            old_codes.insert(row.old_code, row.new_code);
        }
        let mut seats = HashMap::new();
        for row in csv::Reader::from_reader(COUNTY_SEATS_CSV.as_bytes()).deserialize::<SeatRow>() {
            let row = row.map_err(|e| Error::BuiltinData { file: "county_seats.csv", reason: e.to_string() })?;
            if !by_code.contains_key(&row.code) {
                return Err(Error::BuiltinData {
                    file: "county_seats.csv",
                    reason: format!("unknown county {}", row.code),
                });
            }
            seats.insert(row.code, Seat { lat: row.lat, lon: row.lon });
        }
        Ok(Self { counties, by_code, old_codes, seats })
    }

    /// Every unit, in code order.
    pub fn all(&self) -> &[County] {
        &self.counties
    }

    /// The units whose code starts with `within`: a province (2 digits), a prefecture (4), or
    /// everything (empty).
    pub fn within<'a>(&'a self, within: &'a str) -> impl Iterator<Item = &'a County> + 'a {
        self.counties.iter().filter(move |c| c.code.starts_with(within))
    }

    /// The current unit for a code, resolving old codes; a clear error for anything else.
    pub fn resolve(&self, code: &str) -> Result<Resolved<'_>> {
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::MalformedCode { code: code.to_owned() });
        }
        if let Some(&index) = self.by_code.get(code) {
            return Ok(Resolved { county: &self.counties[index], resolved_from: None });
        }
        match self.old_codes.get_key_value(code) {
            Some((old, new)) => Ok(Resolved { county: &self.counties[self.by_code[new]], resolved_from: Some(old) }),
            None => Err(Error::UnknownCode { code: code.to_owned() }),
        }
    }

    /// The seat of government of a county, where one is known (210 of 220).
    pub fn seat(&self, code: &str) -> Option<Seat> {
        self.seats.get(code).copied()
    }

    /// The current unit for a current code only (no old codes), for internal lookups.
    pub fn get(&self, code: &str) -> Option<&County> {
        self.by_code.get(code).map(|&i| &self.counties[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_has_220_units_183_in_sichuan_37_in_chongqing() {
        let counties = Counties::builtin().unwrap();
        assert_eq!(counties.all().len(), 220);
        assert_eq!(counties.within("51").count(), 183);
        assert_eq!(counties.within("50").count(), 37);
    }

    #[test]
    fn old_code_resolves_and_says_so() {
        let counties = Counties::builtin().unwrap();
        let resolved = counties.resolve("511028").unwrap();
        assert_eq!(resolved.county.code, "511083");
        assert_eq!(resolved.county.name, "隆昌市");
        assert_eq!(resolved.resolved_from, Some("511028"));
        let merged = counties.resolve("500112").unwrap();
        assert_eq!(merged.county.code, "500157");
    }

    #[test]
    fn unknown_and_malformed_codes_are_refused() {
        let counties = Counties::builtin().unwrap();
        assert!(matches!(counties.resolve("999999"), Err(Error::UnknownCode { .. })));
        assert!(matches!(counties.resolve("51108"), Err(Error::MalformedCode { .. })));
        assert!(matches!(counties.resolve("51108x"), Err(Error::MalformedCode { .. })));
        assert!(counties.resolve("999999").unwrap_err().to_string().contains("999999"));
    }

    #[test]
    fn seats_are_known_for_210_units() {
        let counties = Counties::builtin().unwrap();
        assert_eq!(counties.all().iter().filter(|c| counties.seat(&c.code).is_some()).count(), 210);
        assert!(counties.seat("500157").is_none(), "两江新区 has no published seat");
    }

    #[test]
    fn mianyang_prefecture_has_its_nine_units() {
        let counties = Counties::builtin().unwrap();
        let codes: Vec<_> = counties.within("5107").map(|c| c.code.as_str()).collect();
        assert!(codes.contains(&"510703") && codes.contains(&"510781"));
        assert!(codes.iter().all(|c| c.starts_with("5107")));
        assert_eq!(codes.len(), 9);
    }
}
