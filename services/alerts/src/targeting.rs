//! Which counties an alert reaches: GB/T 2260 geocodes (county, prefecture, province; old codes
//! resolved), the county seats inside its polygons and circles, an alliance, or the whole region.
//! Seats are points (data/county_seats.csv), not boundaries: a polygon that covers part of a
//! county but not its seat does not select it, and the ten units without a published seat are
//! reached only by code.

use std::collections::BTreeSet;

use bashu_proto::alert::v1::{Alert, Circle, Point, Polygon};
use bashu_registry::{Counties, RegistrySnapshot, Seat, WHOLE_REGION};

use crate::cap::Problem;

/// The geocode `valueName` for GB/T 2260 codes: 6 digits a county, 4 a prefecture, 2 a province.
pub const GEOCODE_GBT2260: &str = "GB/T 2260";
/// The geocode `valueName` for a Bashu alliance id (`value` is the id, e.g. `fujiang`).
pub const GEOCODE_ALLIANCE: &str = "bashu:alliance";
/// The geocode `valueName` for the whole region (`value` is `all`).
pub const GEOCODE_REGION: &str = "bashu:region";

/// The counties an alert reaches, and what in its areas names nothing of this region.
#[derive(Debug, Default)]
pub struct Targets {
    /// GB/T 2260 codes, in order.
    pub counties: BTreeSet<String>,
    /// Geocodes that name no county, prefecture, province or alliance of the region.
    pub unknown: Vec<Problem>,
}

/// Resolves every area of every info block.
pub fn resolve(alert: &Alert, counties: &Counties, registry: &RegistrySnapshot) -> Targets {
    let mut targets = Targets::default();
    for (i, info) in alert.infos.iter().enumerate() {
        for (j, area) in info.areas.iter().enumerate() {
            let area_path = format!("/alert/info[{}]/area[{}]", i + 1, j + 1);
            for (k, geocode) in area.geocodes.iter().enumerate() {
                let path = format!("{area_path}/geocode[{}]", k + 1);
                let value = geocode.value.trim();
                let before = targets.counties.len();
                match geocode.value_name.trim() {
                    GEOCODE_GBT2260 => match value.len() {
                        6 => {
                            if let Ok(resolved) = counties.resolve(value) {
                                targets.counties.insert(resolved.county.code.clone());
                            }
                        }
                        2 | 4 if value.bytes().all(|b| b.is_ascii_digit()) => {
                            targets.counties.extend(counties.within(value).map(|c| c.code.clone()));
                        }
                        _ => {}
                    },
                    GEOCODE_ALLIANCE => {
                        if let Some(alliance) = registry.alliance(value) {
                            targets.counties.extend(alliance.members.iter().cloned());
                        }
                    }
                    GEOCODE_REGION if value == "all" => {
                        targets.counties.extend(counties.all().iter().map(|c| c.code.clone()))
                    }
                    // Another scheme's code (a FIPS or SAME code, say): not ours to resolve.
                    _ => continue,
                }
                if targets.counties.len() == before && !is_repeat(&targets.counties, value, counties) {
                    targets.unknown.push(Problem {
                        path,
                        reason: format!(
                            "{value:?} names no county, prefecture, province or alliance of Sichuan and Chongqing"
                        ),
                    });
                }
            }
            for polygon in &area.polygons {
                targets.counties.extend(seats_where(counties, |seat| inside_polygon(seat, polygon)));
            }
            for circle in &area.circles {
                targets.counties.extend(seats_where(counties, |seat| inside_circle(seat, circle)));
            }
        }
    }
    targets
}

/// A code that resolved to counties already targeted by an earlier geocode is not unknown.
fn is_repeat(already: &BTreeSet<String>, value: &str, counties: &Counties) -> bool {
    match value.len() {
        6 => counties.resolve(value).is_ok_and(|r| already.contains(&r.county.code)),
        2 | 4 => counties.within(value).next().is_some(),
        _ => false,
    }
}

fn seats_where(counties: &Counties, inside: impl Fn(Seat) -> bool) -> Vec<String> {
    counties.all().iter().filter(|c| counties.seat(&c.code).is_some_and(&inside)).map(|c| c.code.clone()).collect()
}

/// Ray casting on (lon, lat) as plane coordinates: fine at county scale, away from the poles
/// and the antimeridian.
fn inside_polygon(seat: Seat, polygon: &Polygon) -> bool {
    let points = &polygon.points;
    let mut inside = false;
    let mut j = points.len().wrapping_sub(1);
    for i in 0..points.len() {
        let (a, b) = (&points[i], &points[j]);
        if (a.lat > seat.lat) != (b.lat > seat.lat) {
            let lon_at = a.lon + (seat.lat - a.lat) / (b.lat - a.lat) * (b.lon - a.lon);
            if seat.lon < lon_at {
                inside = !inside;
            }
        }
        j = i;
    }
    inside
}

fn inside_circle(seat: Seat, circle: &Circle) -> bool {
    let Some(Point { lat, lon }) = circle.center else { return false };
    distance_km(lat, lon, seat.lat, seat.lon) <= circle.radius_km
}

/// Great-circle distance (haversine, mean Earth radius).
fn distance_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (phi1, phi2) = (lat1.to_radians(), lat2.to_radians());
    let d_phi = (lat2 - lat1).to_radians();
    let d_lambda = (lon2 - lon1).to_radians();
    let h = (d_phi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (d_lambda / 2.0).sin().powi(2);
    2.0 * 6371.0088 * h.sqrt().asin()
}

/// The targets a desk may not alert: those outside every one of its areas.
pub fn outside_authority<'a>(areas: &[String], targets: &'a BTreeSet<String>) -> Vec<&'a str> {
    if areas.iter().any(|a| a == WHOLE_REGION) {
        return Vec::new();
    }
    targets
        .iter()
        .filter(|county| !areas.iter().any(|area| county.starts_with(area.as_str())))
        .map(String::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use bashu_proto::alert::v1::{Area, Info, NamedValue};

    use super::*;

    fn alert_with(area: Area) -> Alert {
        Alert { infos: vec![Info { areas: vec![area], ..Default::default() }], ..Default::default() }
    }

    fn gbt(value: &str) -> NamedValue {
        NamedValue { value_name: GEOCODE_GBT2260.into(), value: value.into() }
    }

    #[test]
    fn codes_select_counties_prefectures_and_provinces() {
        let counties = Counties::builtin().unwrap();
        let registry = RegistrySnapshot::default();
        let mianyang =
            resolve(&alert_with(Area { geocodes: vec![gbt("5107")], ..Default::default() }), &counties, &registry);
        assert_eq!(mianyang.counties.len(), 9);
        let old =
            resolve(&alert_with(Area { geocodes: vec![gbt("511028")], ..Default::default() }), &counties, &registry);
        assert_eq!(old.counties.into_iter().collect::<Vec<_>>(), ["511083"]);
        let chongqing =
            resolve(&alert_with(Area { geocodes: vec![gbt("50")], ..Default::default() }), &counties, &registry);
        assert_eq!(chongqing.counties.len(), 37);
        let elsewhere =
            resolve(&alert_with(Area { geocodes: vec![gbt("110101")], ..Default::default() }), &counties, &registry);
        assert!(elsewhere.counties.is_empty());
        assert_eq!(elsewhere.unknown[0].path, "/alert/info[1]/area[1]/geocode[1]");
    }

    #[test]
    fn a_circle_selects_the_seats_within_its_radius() {
        let counties = Counties::builtin().unwrap();
        let seat = counties.seat("510727").unwrap();
        let circle = Circle { center: Some(Point { lat: seat.lat, lon: seat.lon }), radius_km: 1.0 };
        let targets = resolve(
            &alert_with(Area { circles: vec![circle], ..Default::default() }),
            &counties,
            &RegistrySnapshot::default(),
        );
        assert_eq!(targets.counties.into_iter().collect::<Vec<_>>(), ["510727"]);
    }

    #[test]
    fn a_polygon_selects_the_seats_inside_it() {
        let counties = Counties::builtin().unwrap();
        let rongchang = counties.seat("500153").unwrap();
        let d = 0.01;
        let ring = [(-d, -d), (-d, d), (d, d), (d, -d), (-d, -d)]
            .map(|(dlat, dlon)| Point { lat: rongchang.lat + dlat, lon: rongchang.lon + dlon })
            .to_vec();
        let targets = resolve(
            &alert_with(Area { polygons: vec![Polygon { points: ring }], ..Default::default() }),
            &counties,
            &RegistrySnapshot::default(),
        );
        assert_eq!(targets.counties.into_iter().collect::<Vec<_>>(), ["500153"]);
    }

    #[test]
    fn authority_is_checked_by_area_prefix() {
        let targets: BTreeSet<String> = ["510703", "500153"].map(String::from).into();
        assert_eq!(outside_authority(&["5107".into()], &targets), ["500153"]);
        assert!(outside_authority(&["51".into(), "500153".into()], &targets).is_empty());
        assert!(outside_authority(&[WHOLE_REGION.into()], &targets).is_empty());
    }

    #[test]
    fn distances_are_plausible() {
        // 成都 to 重庆, about 270 km as the crow flies.
        let km = distance_km(30.66, 104.06, 29.56, 106.55);
        assert!((250.0..290.0).contains(&km), "{km}");
    }
}
