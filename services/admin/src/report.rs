//! The collaboration report (考核) for a period: per county, per alliance and for the region,
//! stories contributed and received (and how many crossed the provincial border), reuse,
//! corrections, confirmed takedowns, alert receipt and acknowledgement times, and joint coverage
//! (plan stories contributed and received, plans taken part in). It is computed
//! from the ledgers (`STORIES`, `ALERTS`), so it needs no state of its own and can be produced
//! again for any period they still hold.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    time::SystemTime,
};

use bashu_bus::{AlertTrackingEvent, Stored, StoryLedgerEvent};
use bashu_proto::{
    admin::v1::{
        AlertTimes, CollaborationLine, CollaborationReport, CollaborationReportRequest,
        report_service_server::ReportService,
    },
    alert::v1::MsgType,
    registry::v1::Alliance,
    time::{from_system_time, to_system_time},
};
use bashu_registry::Counties;
use tonic::{Request, Response, Status};

use crate::{Admin, Error};

/// `(origin, story id)`.
type StoryKey = (String, String);

/// The milliseconds from acceptance to a county's receipt and acknowledgement of one alert.
#[derive(Clone, Copy, Debug, Default)]
struct AlertPair {
    receipt_ms: Option<u64>,
    ack_ms: Option<u64>,
}

/// What one county (or a group, merged) did in the period, as sets so that a story counts once.
#[derive(Clone, Debug, Default)]
struct Tally {
    contributed: BTreeSet<StoryKey>,
    contributed_cross: BTreeSet<StoryKey>,
    received: BTreeSet<StoryKey>,
    received_cross: BTreeSet<StoryKey>,
    reused: BTreeSet<StoryKey>,
    corrections_issued: BTreeSet<(StoryKey, u32)>,
    corrections_received: BTreeSet<(StoryKey, u32)>,
    /// `(confirming county, story)`.
    kills_confirmed: BTreeSet<(String, StoryKey)>,
    alerts: Vec<AlertPair>,
    /// Stories contributed to joint coverage plans, and those plans.
    joint_contributed: BTreeSet<StoryKey>,
    joint_plans: BTreeSet<String>,
    joint_received: BTreeSet<StoryKey>,
}

impl Tally {
    fn merge(&mut self, other: &Tally) {
        self.contributed.extend(other.contributed.iter().cloned());
        self.contributed_cross.extend(other.contributed_cross.iter().cloned());
        self.received.extend(other.received.iter().cloned());
        self.received_cross.extend(other.received_cross.iter().cloned());
        self.reused.extend(other.reused.iter().cloned());
        self.corrections_issued.extend(other.corrections_issued.iter().cloned());
        self.corrections_received.extend(other.corrections_received.iter().cloned());
        self.kills_confirmed.extend(other.kills_confirmed.iter().cloned());
        self.alerts.extend_from_slice(&other.alerts);
        self.joint_contributed.extend(other.joint_contributed.iter().cloned());
        self.joint_plans.extend(other.joint_plans.iter().cloned());
        self.joint_received.extend(other.joint_received.iter().cloned());
    }

    fn line(&self, id: &str, name: &str) -> CollaborationLine {
        let count = |n: usize| n as u32;
        CollaborationLine {
            id: id.to_owned(),
            name: name.to_owned(),
            contributed: count(self.contributed.len()),
            contributed_cross_province: count(self.contributed_cross.len()),
            received: count(self.received.len()),
            received_cross_province: count(self.received_cross.len()),
            reused: count(self.reused.len()),
            corrections_issued: count(self.corrections_issued.len()),
            corrections_received: count(self.corrections_received.len()),
            kills_confirmed: count(self.kills_confirmed.len()),
            alerts: Some(alert_times(&self.alerts)),
            joint_contributed: count(self.joint_contributed.len()),
            joint_plans: count(self.joint_plans.len()),
            joint_received: count(self.joint_received.len()),
        }
    }
}

/// Nearest-rank percentile (`q` in 0..=1) of sorted values; 0 when there are none.
fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn alert_times(pairs: &[AlertPair]) -> AlertTimes {
    let mut receipts: Vec<u64> = pairs.iter().filter_map(|p| p.receipt_ms).collect();
    let mut acks: Vec<u64> = pairs.iter().filter_map(|p| p.ack_ms).collect();
    receipts.sort_unstable();
    acks.sort_unstable();
    AlertTimes {
        targeted: pairs.len() as u32,
        received: receipts.len() as u32,
        acknowledged: acks.len() as u32,
        missed: (pairs.len() - acks.len()) as u32,
        receipt_median_ms: percentile(&receipts, 0.5),
        receipt_p95_ms: percentile(&receipts, 0.95),
        ack_median_ms: percentile(&acks, 0.5),
        ack_p95_ms: percentile(&acks, 0.95),
    }
}

fn province(code: &str) -> &str {
    code.get(..2).unwrap_or(code)
}

fn millis_between(start: SystemTime, end: Option<SystemTime>) -> Option<u64> {
    Some(end?.duration_since(start).unwrap_or_default().as_millis() as u64)
}

/// The report from the ledger events. `stories` are the story events stored in the period;
/// `alerts` the alert events stored from the period's start until now (an alert issued in the
/// period may be acknowledged after it ends).
fn compile(
    counties: &Counties,
    alliances: &[Alliance],
    stories: &[Stored<StoryLedgerEvent>],
    alerts: &[Stored<AlertTrackingEvent>],
    period: (SystemTime, SystemTime),
) -> CollaborationReport {
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    for stored in stories {
        match &stored.event {
            StoryLedgerEvent::Published(published) if !published.audience.is_empty() => {
                let origin = published.origin_county.clone();
                let key: StoryKey = (origin.clone(), published.story_id.clone());
                let crosses = published.audience.iter().any(|c| province(c) != province(&origin));
                let tally = tallies.entry(origin.clone()).or_default();
                tally.contributed.insert(key.clone());
                if crosses {
                    tally.contributed_cross.insert(key.clone());
                }
                if published.version > 1 {
                    tally.corrections_issued.insert((key.clone(), published.version));
                }
                let plan = published.coverage.as_ref().map(|c| c.plan_id.clone());
                if let Some(plan) = &plan {
                    tally.joint_contributed.insert(key.clone());
                    tally.joint_plans.insert(plan.clone());
                }
                for receiver in &published.audience {
                    let tally = tallies.entry(receiver.clone()).or_default();
                    tally.received.insert(key.clone());
                    if plan.is_some() {
                        tally.joint_received.insert(key.clone());
                    }
                    if province(receiver) != province(&origin) {
                        tally.received_cross.insert(key.clone());
                    }
                    if published.version > 1 {
                        tally.corrections_received.insert((key.clone(), published.version));
                    }
                }
            }
            StoryLedgerEvent::TakedownConfirmed(confirmed) => {
                let key = (confirmed.origin_county.clone(), confirmed.story_id.clone());
                tallies
                    .entry(confirmed.county.clone())
                    .or_default()
                    .kills_confirmed
                    .insert((confirmed.county.clone(), key));
            }
            StoryLedgerEvent::Used(used) => {
                let key = (used.origin_county.clone(), used.story_id.clone());
                tallies.entry(used.county.clone()).or_default().reused.insert(key);
            }
            StoryLedgerEvent::Published(_) | StoryLedgerEvent::Other => {}
        }
    }

    // Receipts and acknowledgements by (alert, county): the first of each counts.
    // A county's own time when it sent one, else when the ledger stored it.
    let mut receipts: HashMap<(&str, &str), SystemTime> = HashMap::new();
    let mut acks: HashMap<(&str, &str), SystemTime> = HashMap::new();
    for stored in alerts {
        let at = |t: &Option<bashu_proto::Timestamp>| t.as_ref().and_then(to_system_time).unwrap_or(stored.stored_at);
        match &stored.event {
            AlertTrackingEvent::Receipt(r) => {
                receipts.entry((r.alert_key.as_str(), r.county.as_str())).or_insert(at(&r.received_at));
            }
            AlertTrackingEvent::Acknowledged(a) => {
                acks.entry((a.alert_key.as_str(), a.county.as_str())).or_insert(at(&a.acknowledged_at));
            }
            _ => {}
        }
    }
    for stored in alerts {
        let AlertTrackingEvent::Issued(issued) = &stored.event else { continue };
        let Some(accepted) = issued.accepted_at.as_ref().and_then(to_system_time) else { continue };
        let cancel = issued.alert.as_ref().is_some_and(|a| a.msg_type() == MsgType::Cancel);
        if cancel || accepted < period.0 || accepted >= period.1 {
            continue;
        }
        for county in &issued.counties {
            let key = (issued.alert_key.as_str(), county.as_str());
            tallies.entry(county.clone()).or_default().alerts.push(AlertPair {
                receipt_ms: millis_between(accepted, receipts.get(&key).copied()),
                ack_ms: millis_between(accepted, acks.get(&key).copied()),
            });
        }
    }

    let empty = Tally::default();
    let mut region = Tally::default();
    let lines = counties
        .all()
        .iter()
        .map(|county| {
            let tally = tallies.get(&county.code).unwrap_or(&empty);
            region.merge(tally);
            tally.line(&county.code, &county.name)
        })
        .collect();
    let alliance_lines = alliances
        .iter()
        .map(|alliance| {
            let mut together = Tally::default();
            for member in &alliance.members {
                together.merge(tallies.get(member).unwrap_or(&empty));
            }
            together.line(&alliance.id, &alliance.name)
        })
        .collect();
    CollaborationReport {
        from: Some(from_system_time(period.0)),
        to: Some(from_system_time(period.1)),
        counties: lines,
        alliances: alliance_lines,
        region: Some(region.line("region", "川渝 Sichuan–Chongqing")),
    }
}

#[tonic::async_trait]
impl ReportService for Admin {
    async fn get_collaboration_report(
        &self,
        request: Request<CollaborationReportRequest>,
    ) -> Result<Response<CollaborationReport>, Status> {
        let request = request.into_inner();
        let time = |field: &str, t: &Option<bashu_proto::Timestamp>| {
            t.as_ref()
                .and_then(to_system_time)
                .ok_or_else(|| Error::Invalid(format!("{field}: a valid timestamp is needed")))
        };
        let (from, to) = (time("from", &request.from)?, time("to", &request.to)?);
        if from >= to {
            return Err(Error::Invalid("to: must be after from".into()).into());
        }
        let unavailable = |e: bashu_bus::Error| Error::unavailable("the ledger is unavailable", e);
        let subjects = self.bus.subjects();
        let (stories, _) = self
            .bus
            .operations()
            .read_range::<StoryLedgerEvent>(bashu_bus::STORIES, vec![subjects.all_story_ledger()], from, to)
            .await
            .map_err(unavailable)?;
        let (alerts, _) = self
            .bus
            .operations()
            .read_range::<AlertTrackingEvent>(bashu_bus::ALERTS, subjects.all_alert_ledger(), from, SystemTime::now())
            .await
            .map_err(unavailable)?;
        let alliances: Vec<Alliance> = self.registry.current().alliances().cloned().collect();
        Ok(Response::new(compile(&self.counties, &alliances, &stories, &alerts, (from, to))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentile(&[], 0.5), 0);
        assert_eq!(percentile(&[7], 0.95), 7);
        assert_eq!(percentile(&[1, 2, 3, 4], 0.5), 2);
        let hundred: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&hundred, 0.95), 95);
        assert_eq!(percentile(&hundred, 0.5), 50);
    }

    fn published(origin: &str, id: &str, version: u32, audience: &[&str]) -> Stored<StoryLedgerEvent> {
        Stored {
            event: StoryLedgerEvent::Published(bashu_proto::story::v1::StoryPublished {
                story_id: id.into(),
                version,
                origin_county: origin.into(),
                audience: audience.iter().map(|c| c.to_string()).collect(),
                published_at: None,
                coverage: None,
            }),
            subject: String::new(),
            stored_at: SystemTime::now(),
        }
    }

    #[test]
    fn a_story_counts_once_per_county_and_once_per_alliance() {
        let counties = Counties::builtin().unwrap();
        let stories = [
            // 511083 (Sichuan) to two Chongqing counties, then a correction to both.
            published("511083", "a", 1, &["500153", "500101"]),
            published("511083", "a", 2, &["500153", "500101"]),
            // 510703 to a Sichuan neighbour only.
            published("510703", "b", 1, &["510781"]),
        ];
        let alliance = Alliance {
            id: "x".into(),
            name: "X".into(),
            members: vec!["500153".into(), "500101".into()],
            note: String::new(),
        };
        let period = (SystemTime::UNIX_EPOCH, SystemTime::now());
        let report = compile(&counties, &[alliance], &stories, &[], period);
        let line = |code: &str| report.counties.iter().find(|l| l.id == code).unwrap().clone();
        assert_eq!((line("511083").contributed, line("511083").contributed_cross_province), (1, 1));
        assert_eq!(line("511083").corrections_issued, 1);
        assert_eq!((line("500153").received, line("500153").received_cross_province), (1, 1));
        assert_eq!(line("500153").corrections_received, 1);
        assert_eq!((line("510703").contributed, line("510703").contributed_cross_province), (1, 0));
        assert_eq!((line("510781").received, line("510781").received_cross_province), (1, 0));
        let alliance = &report.alliances[0];
        assert_eq!((alliance.received, alliance.received_cross_province, alliance.corrections_received), (1, 1, 1));
        let region = report.region.unwrap();
        assert_eq!((region.contributed, region.received, region.contributed_cross_province), (2, 2, 1));
    }

    #[test]
    fn joint_coverage_counts_plan_stories_and_plans_per_county_and_alliance() {
        let counties = Counties::builtin().unwrap();
        let in_plan = |origin: &str, id: &str, version: u32, plan: &str, audience: &[&str]| {
            let mut stored = published(origin, id, version, audience);
            if let StoryLedgerEvent::Published(p) = &mut stored.event {
                p.coverage = Some(bashu_proto::story::v1::CoverageRef { plan_id: plan.into(), ..Default::default() });
            }
            stored
        };
        let stories = [
            in_plan("500118", "ride", 1, "yukun-rail", &["500116", "510521"]),
            in_plan("500118", "ride", 2, "yukun-rail", &["500116", "510521"]),
            in_plan("500118", "forum", 1, "expo-2026", &["500116"]),
            in_plan("510521", "station", 1, "yukun-rail", &["500118"]),
            published("500118", "own", 1, &["500116"]),
        ];
        let alliance = Alliance {
            id: "line".into(),
            name: "沿线".into(),
            members: vec!["500118".into(), "510521".into()],
            note: String::new(),
        };
        let period = (SystemTime::UNIX_EPOCH, SystemTime::now());
        let report = compile(&counties, &[alliance], &stories, &[], period);
        let line = |code: &str| report.counties.iter().find(|l| l.id == code).unwrap().clone();
        let joint = |l: CollaborationLine| (l.joint_contributed, l.joint_plans, l.joint_received);
        assert_eq!(joint(line("500118")), (2, 2, 1), "a correction is the same story");
        assert_eq!(joint(line("500116")), (0, 0, 2));
        assert_eq!(joint(line("510521")), (1, 1, 1));
        assert_eq!(line("500118").contributed, 3, "a plan story is a story besides");
        assert_eq!(joint(report.alliances[0].clone()), (3, 2, 2));
        assert_eq!(joint(report.region.unwrap()), (3, 2, 3));
    }
}
