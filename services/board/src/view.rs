//! What the page is sent, as JSON: the counties (once), every alert chain with each targeted
//! county's state, and the stories view. Times are Unix milliseconds; the page formats them.

use std::collections::BTreeMap;

use bashu_proto::{
    Timestamp,
    alert::v1::{AlertChain, CountyAlertState, CountyAlertStatus, MsgType, Severity, Status, Urgency},
    registry::v1::County,
};
use serde::Serialize;

fn millis(time: &Option<Timestamp>) -> Option<i64> {
    time.as_ref().map(|t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
}

/// One unit of the registry, as a tile is labelled and grouped.
#[derive(Serialize)]
pub(crate) struct CountyEntry {
    code: String,
    name: String,
    pinyin: String,
    prefecture_code: String,
    prefecture_name: String,
    province_code: String,
    province_name: String,
}

impl From<&County> for CountyEntry {
    fn from(county: &County) -> Self {
        Self {
            code: county.code.clone(),
            name: county.name.clone(),
            pinyin: county.name_pinyin.clone(),
            prefecture_code: county.prefecture_code.clone(),
            prefecture_name: county.prefecture_name.clone(),
            province_code: county.province_code.clone(),
            province_name: county.province_name.clone(),
        }
    }
}

/// An alert chain as the board shows it: the newest message's headline facts and every county.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub(crate) struct ChainView {
    /// The chain's key (the first alert's key): what the page selects by.
    pub(crate) key: String,
    alert_key: String,
    identifier: String,
    sender: String,
    sender_name: String,
    desk: String,
    event: String,
    headline: String,
    area: String,
    severity: &'static str,
    urgency: &'static str,
    status: &'static str,
    msg_type: &'static str,
    sent_ms: Option<i64>,
    issued_ms: Option<i64>,
    expires_ms: Option<i64>,
    cancelled: bool,
    counties: Vec<CountyStateView>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
struct CountyStateView {
    code: String,
    state: &'static str,
    sent_ms: Option<i64>,
    received_ms: Option<i64>,
    acknowledged_ms: Option<i64>,
    acknowledged_by: String,
    /// Whose staff token recorded the confirmation (empty: the county's own).
    recorded_by: String,
    note: String,
    escalation_step: u32,
    next_deadline_ms: Option<i64>,
}

/// The lowercase names the page colours by (the proto names without their prefix).
pub(crate) fn state_name(state: CountyAlertState) -> &'static str {
    match state {
        CountyAlertState::Sent => "sent",
        CountyAlertState::Received => "received",
        CountyAlertState::Acknowledged => "acknowledged",
        CountyAlertState::Escalated => "escalated",
        CountyAlertState::Cancelled => "cancelled",
        CountyAlertState::Expired => "expired",
        CountyAlertState::Unspecified => "unknown",
    }
}

fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Extreme => "extreme",
        Severity::Severe => "severe",
        Severity::Moderate => "moderate",
        Severity::Minor => "minor",
        Severity::Unknown | Severity::Unspecified => "unknown",
    }
}

fn urgency_name(urgency: Urgency) -> &'static str {
    match urgency {
        Urgency::Immediate => "immediate",
        Urgency::Expected => "expected",
        Urgency::Future => "future",
        Urgency::Past => "past",
        Urgency::Unknown | Urgency::Unspecified => "unknown",
    }
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Actual => "actual",
        Status::Exercise => "exercise",
        Status::System => "system",
        Status::Test => "test",
        Status::Draft => "draft",
        Status::Unspecified => "unknown",
    }
}

fn msg_type_name(msg_type: MsgType) -> &'static str {
    match msg_type {
        MsgType::Alert => "alert",
        MsgType::Update => "update",
        MsgType::Cancel => "cancel",
        MsgType::Ack => "ack",
        MsgType::Error => "error",
        MsgType::Unspecified => "unknown",
    }
}

impl From<&AlertChain> for ChainView {
    fn from(chain: &AlertChain) -> Self {
        let latest = chain.latest.clone().unwrap_or_default();
        let first = latest.infos.first().cloned().unwrap_or_default();
        // Several infos are renderings of one alert in several languages: the most severe one
        // and the latest expiry are the alert's.
        let severity =
            latest.infos.iter().map(|i| i.severity()).filter(|s| *s != Severity::Unspecified).min_by_key(|s| *s as i32);
        let expires = latest.infos.iter().filter_map(|i| i.expires).max_by_key(|t| (t.seconds, t.nanos));
        let area = first.areas.iter().map(|a| a.area_desc.as_str()).filter(|d| !d.is_empty()).collect::<Vec<_>>();
        Self {
            key: chain.chain_key.clone(),
            alert_key: chain.latest_alert_key.clone(),
            identifier: latest.identifier.clone(),
            sender: latest.sender.clone(),
            sender_name: first.sender_name.clone(),
            desk: chain.desk_id.clone(),
            event: first.event.clone(),
            headline: first.headline.clone(),
            area: area.join("; "),
            severity: severity_name(severity.unwrap_or(Severity::Unknown)),
            urgency: urgency_name(first.urgency()),
            status: status_name(latest.status()),
            msg_type: msg_type_name(latest.msg_type()),
            sent_ms: millis(&latest.sent),
            issued_ms: millis(&chain.issued_at),
            expires_ms: millis(&expires),
            cancelled: chain.cancelled,
            counties: chain.counties.iter().map(CountyStateView::from).collect(),
        }
    }
}

impl ChainView {
    /// Still active at `now_ms`, or issued or expired after `ended_after_ms` (a cancelled chain
    /// counts as ended when it was issued).
    pub(crate) fn worth_showing(&self, now_ms: i64, ended_after_ms: i64) -> bool {
        let active = !self.cancelled && self.expires_ms.is_none_or(|e| e > now_ms);
        active
            || self.issued_ms.is_some_and(|i| i > ended_after_ms)
            || (!self.cancelled && self.expires_ms.is_some_and(|e| e > ended_after_ms))
    }
}

impl From<&CountyAlertStatus> for CountyStateView {
    fn from(status: &CountyAlertStatus) -> Self {
        Self {
            code: status.county.clone(),
            state: state_name(status.state()),
            sent_ms: millis(&status.sent_at),
            received_ms: millis(&status.received_at),
            acknowledged_ms: millis(&status.acknowledged_at),
            acknowledged_by: status.acknowledged_by.clone(),
            recorded_by: status.recorded_by.clone(),
            note: status.note.clone(),
            escalation_step: status.escalation_step,
            next_deadline_ms: millis(&status.next_deadline),
        }
    }
}

/// One published story version and who received it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub(crate) struct CrossingView {
    pub(crate) story_id: String,
    pub(crate) version: u32,
    pub(crate) origin: String,
    pub(crate) receivers: Vec<String>,
    pub(crate) published_ms: Option<i64>,
}

/// The stories view: the newest stories across the provincial border, the review queue per
/// level, and how many dead letters wait.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub(crate) struct StoriesView {
    pub(crate) crossings: Vec<CrossingView>,
    /// Level (1 初审, 2 复审, 3 终审) → stories waiting at it.
    pub(crate) held_per_level: BTreeMap<u32, u32>,
    pub(crate) dead_letters: u64,
    /// What could not be read, shown instead of a figure that would be wrong.
    pub(crate) unavailable: Vec<String>,
}

/// Whether a publication crossed the provincial border: some receiver is in another province
/// than the origin (the first two digits of a GB/T 2260 code are the province).
pub(crate) fn crosses_border(origin: &str, receivers: &[String]) -> bool {
    let province = |code: &str| code.get(..2).map(str::to_owned);
    receivers.iter().any(|r| province(r) != province(origin))
}

impl CrossingView {
    pub(crate) fn of(published: &bashu_proto::story::v1::StoryPublished) -> Self {
        Self {
            story_id: published.story_id.clone(),
            version: published.version,
            origin: published.origin_county.clone(),
            receivers: published.audience.clone(),
            published_ms: millis(&published.published_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_story_crosses_the_border_when_a_receiver_is_in_the_other_province() {
        let receivers = |codes: &[&str]| codes.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        assert!(crosses_border("511083", &receivers(&["510703", "500153"])));
        assert!(!crosses_border("510703", &receivers(&["510781", "510704"])));
        assert!(!crosses_border("500153", &receivers(&[])));
    }

    #[test]
    fn a_chain_is_shown_while_active_and_for_a_day_after_it_ended() {
        let chain = |cancelled: bool, issued_ms: i64, expires_ms: Option<i64>| ChainView {
            cancelled,
            issued_ms: Some(issued_ms),
            expires_ms,
            ..ChainView::from(&AlertChain::default())
        };
        let (now, day_ago) = (100_000_000, 100_000_000 - 86_400_000);
        assert!(chain(false, 0, None).worth_showing(now, day_ago), "no expiry: active");
        assert!(chain(false, 0, Some(now + 1)).worth_showing(now, day_ago), "not yet expired");
        assert!(chain(false, 0, Some(now - 1)).worth_showing(now, day_ago), "expired within the day");
        assert!(!chain(false, 0, Some(day_ago - 1)).worth_showing(now, day_ago), "expired before the day");
        assert!(chain(true, now - 5, None).worth_showing(now, day_ago), "cancelled, issued within the day");
        assert!(!chain(true, day_ago - 5, None).worth_showing(now, day_ago), "cancelled long ago");
    }

    #[test]
    fn a_chain_shows_its_most_severe_info_and_latest_expiry_and_each_county() {
        use bashu_proto::alert::v1::{Alert, Info};
        let info = |severity: Severity, expires: i64| Info {
            severity: severity as i32,
            event: "暴雨".into(),
            expires: Some(Timestamp { seconds: expires, nanos: 0 }),
            ..Default::default()
        };
        let chain = AlertChain {
            chain_key: "c".into(),
            latest: Some(Alert {
                status: Status::Exercise as i32,
                infos: vec![info(Severity::Moderate, 100), info(Severity::Severe, 50)],
                ..Default::default()
            }),
            counties: vec![CountyAlertStatus {
                county: "510781".into(),
                state: CountyAlertState::Acknowledged as i32,
                acknowledged_by: "值班员".into(),
                acknowledged_at: Some(Timestamp { seconds: 7, nanos: 5_000_000 }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let view = ChainView::from(&chain);
        assert_eq!((view.severity, view.status, view.expires_ms), ("severe", "exercise", Some(100_000)));
        assert_eq!(view.counties[0].state, "acknowledged");
        assert_eq!(view.counties[0].acknowledged_ms, Some(7_005));
        assert_eq!(view.counties[0].acknowledged_by, "值班员");
    }
}

/// A joint coverage plan as the board shows it: its phases in order, how each stands against its
/// due time, and whether it was flagged.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub(crate) struct PlanView {
    id: String,
    topic: String,
    proposer: String,
    state: String,
    accepted: usize,
    invited: usize,
    window_end_ms: Option<i64>,
    phases: Vec<PhaseView>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
struct PhaseView {
    name: String,
    title: String,
    owner: String,
    due_ms: Option<i64>,
    /// `open`, `due_soon`, `late` or `delivered`.
    status: String,
    /// Flagged late at some point (a late delivery does not undo it).
    flagged_late: bool,
    contributions: usize,
    late_contributions: usize,
}

impl PlanView {
    pub(crate) fn new(chain: &bashu_proto::coverage::v1::PlanView) -> Option<Self> {
        use bashu_proto::coverage::v1::Answer;
        let plan = chain.plan.as_ref()?;
        let short = |name: &str, prefix: &str| name.trim_start_matches(prefix).to_lowercase();
        Some(Self {
            id: plan.id.clone(),
            topic: plan.topic.clone(),
            proposer: plan.proposer.clone(),
            state: short(plan.state().as_str_name(), "PLAN_STATE_"),
            accepted: plan.participants.iter().filter(|p| p.answer() == Answer::Accepted).count(),
            invited: plan.participants.len(),
            window_end_ms: millis(&plan.window_end),
            phases: chain
                .chain
                .iter()
                .filter_map(|phase_chain| {
                    let phase = phase_chain.phase.as_ref()?;
                    Some(PhaseView {
                        name: phase.name.clone(),
                        title: phase.title.clone(),
                        owner: phase.owner.clone(),
                        due_ms: millis(&phase.due_at),
                        status: short(phase_chain.status().as_str_name(), "PHASE_STATUS_"),
                        flagged_late: phase.late_flagged_at.is_some(),
                        contributions: phase_chain.items.len(),
                        late_contributions: phase_chain.items.iter().filter(|i| !i.on_time).count(),
                    })
                })
                .collect(),
        })
    }
}
