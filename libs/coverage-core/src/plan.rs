//! What makes a plan valid when it is proposed, whose answer and which weights count, and
//! whether a story may name a plan and phase.

use std::collections::{BTreeMap, BTreeSet};

use bashu_proto::{
    Timestamp,
    coverage::v1::{Answer, Invitees, Participant, Phase, Plan, PlanState, ProposePlanRequest, Weights},
    story::v1::{Category, ContributionKind, Story},
};
use bashu_registry::{Counties, RegistrySnapshot};

use crate::Error;

/// Phases a plan may have.
const MAX_PHASES: usize = 12;
const MAX_TOPIC: usize = 200;
const MAX_DESCRIPTION: usize = 5_000;
const MAX_TITLE: usize = 100;
const MAX_POINTS: u32 = 10_000;
/// The longest time window a plan may span: a year's coverage (a season of events).
const MAX_WINDOW_SECONDS: i64 = 366 * 24 * 3600;
/// Times a plan may name: 2000-01-01 up to 2100-01-01 (UTC). Anything else is a client's bug,
/// and would not even print as a date.
const EARLIEST: i64 = 946_684_800;
const LATEST: i64 = 4_102_444_800;
/// How many plans a county may have proposed and not yet closed or cancelled.
pub const MAX_OPEN_PLANS_PER_PROPOSER: usize = 50;

/// Why `id` is not a plan id (3-48 of `[a-z0-9-]`), if it is not one.
pub fn plan_id_problem(id: &str) -> Option<String> {
    let valid =
        (3..=48).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    (!valid).then(|| "3-48 of a-z, 0-9 and '-'".to_owned())
}

/// The seconds of a time a request names, if it names one that is a real time of this century.
fn checked_seconds(field: &str, t: &Option<Timestamp>) -> Result<Option<i64>, Error> {
    let Some(t) = t else { return Ok(None) };
    if !(EARLIEST..LATEST).contains(&t.seconds) || !(0..1_000_000_000).contains(&t.nanos) {
        return Err(Error::invalid(field, "a time from 2000-01-01 to 2099-12-31 (UTC)"));
    }
    Ok(Some(t.seconds))
}

/// The plan `proposer` asked for, every field checked and the invitees resolved to counties.
pub fn new_plan(
    request: ProposePlanRequest,
    proposer: &str,
    counties: &Counties,
    registry: &RegistrySnapshot,
    now: Timestamp,
) -> Result<Plan, Error> {
    if let Some(reason) = plan_id_problem(&request.plan_id) {
        return Err(Error::invalid("planId", reason));
    }
    let topic = request.topic.trim();
    if topic.is_empty() || topic.chars().count() > MAX_TOPIC {
        return Err(Error::invalid("topic", format!("1-{MAX_TOPIC} characters")));
    }
    if request.description.chars().count() > MAX_DESCRIPTION {
        return Err(Error::invalid("description", format!("at most {MAX_DESCRIPTION} characters")));
    }
    match Category::try_from(request.category) {
        Ok(Category::Unspecified) | Err(_) => return Err(Error::invalid("category", "a story category is required")),
        Ok(_) => {}
    }
    let (Some(start), Some(end)) =
        (checked_seconds("windowStart", &request.window_start)?, checked_seconds("windowEnd", &request.window_end)?)
    else {
        return Err(Error::invalid("windowStart", "the time window needs a start and an end"));
    };
    if end <= start {
        return Err(Error::invalid("windowEnd", "must be after windowStart"));
    }
    if end - start > MAX_WINDOW_SECONDS {
        return Err(Error::invalid("windowEnd", "a plan spans at most 366 days"));
    }
    if request.phases.is_empty() || request.phases.len() > MAX_PHASES {
        return Err(Error::invalid("phases", format!("1-{MAX_PHASES} phases")));
    }
    let mut phases = Vec::with_capacity(request.phases.len());
    let mut names = BTreeSet::new();
    let mut previous_due = i64::MIN;
    for (i, spec) in request.phases.into_iter().enumerate() {
        let field = |name: &str| format!("phases[{i}].{name}");
        let name_ok = (1..=32).contains(&spec.name.len())
            && spec.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !name_ok {
            return Err(Error::invalid(field("name"), "1-32 of a-z, 0-9 and '-'"));
        }
        if !names.insert(spec.name.clone()) {
            return Err(Error::invalid(field("name"), format!("{:?} is used by an earlier phase", spec.name)));
        }
        if spec.title.trim().is_empty() || spec.title.chars().count() > MAX_TITLE {
            return Err(Error::invalid(field("title"), format!("1-{MAX_TITLE} characters")));
        }
        let Some(due) = checked_seconds(&field("dueAt"), &spec.due_at)? else {
            return Err(Error::invalid(field("dueAt"), "required"));
        };
        if due < start || due > end {
            return Err(Error::invalid(field("dueAt"), "must be within the plan's time window"));
        }
        if due < previous_due {
            return Err(Error::invalid(field("dueAt"), "phases are in order: not before the previous phase's"));
        }
        previous_due = due;
        if spec.kinds.is_empty() {
            return Err(Error::invalid(field("kinds"), "name at least one kind of contribution"));
        }
        let mut kinds = BTreeSet::new();
        for (k, kind) in spec.kinds.iter().enumerate() {
            match ContributionKind::try_from(*kind) {
                Ok(ContributionKind::Unspecified) | Err(_) => {
                    return Err(Error::invalid(format!("phases[{i}].kinds[{k}]"), "not a contribution kind"));
                }
                Ok(_) => kinds.insert(*kind),
            };
        }
        phases.push(Phase {
            name: spec.name,
            title: spec.title.trim().to_owned(),
            due_at: spec.due_at,
            kinds: kinds.into_iter().collect(),
            ..Default::default()
        });
    }
    let invited = resolve_invitees(request.invitees.as_ref(), proposer, counties, registry)?;
    let mut plan = Plan {
        id: request.plan_id,
        proposer: proposer.to_owned(),
        topic: topic.to_owned(),
        description: request.description,
        category: request.category,
        window_start: request.window_start,
        window_end: request.window_end,
        phases,
        invitees: request.invitees,
        participants: invited
            .into_iter()
            .map(|county| {
                let proposer_itself = county == proposer;
                Participant {
                    answer: if proposer_itself { Answer::Accepted } else { Answer::Invited } as i32,
                    answered_at: proposer_itself.then_some(now),
                    county,
                }
            })
            .collect(),
        state: PlanState::Proposed as i32,
        weights: None,
        weights_proposal: None,
        created_at: Some(now),
        updated_at: Some(now),
        sequence: 1,
        outbox: None,
        outbox_audit: None,
        channel_subscribers: Vec::new(),
    };
    let weights = request.weights.ok_or_else(|| Error::invalid("weights", "required: how a settlement divides"))?;
    check_weights(&plan, &weights)?;
    plan.weights = Some(weights);
    Ok(plan)
}

/// Every county the invitees name, with the proposer, in code order.
fn resolve_invitees(
    invitees: Option<&Invitees>,
    proposer: &str,
    counties: &Counties,
    registry: &RegistrySnapshot,
) -> Result<BTreeSet<String>, Error> {
    let invitees = invitees.cloned().unwrap_or_default();
    let mut invited = BTreeSet::from([proposer.to_owned()]);
    for (i, code) in invitees.counties.iter().enumerate() {
        let resolved =
            counties.resolve(code).map_err(|e| Error::invalid(format!("invitees.counties[{i}]"), e.to_string()))?;
        invited.insert(resolved.county.code.clone());
    }
    for (i, id) in invitees.alliances.iter().enumerate() {
        let alliance = registry
            .alliance(id)
            .ok_or_else(|| Error::invalid(format!("invitees.alliances[{i}]"), format!("no alliance {id:?}")))?;
        invited.extend(alliance.members.iter().cloned());
    }
    for (i, province) in invitees.provinces.iter().enumerate() {
        if !["50", "51"].contains(&province.as_str()) {
            return Err(Error::invalid(format!("invitees.provinces[{i}]"), "51 (Sichuan) or 50 (Chongqing)"));
        }
        invited.extend(counties.within(province).map(|c| c.code.clone()));
    }
    if invitees.region {
        invited.extend(counties.all().iter().map(|c| c.code.clone()));
    }
    if invited.len() < 2 {
        return Err(Error::invalid("invitees", "invite at least one other county: a joint plan needs partners"));
    }
    Ok(invited)
}

/// Checks `weights` against `plan`'s phases: the shares add up to 100 and every phase and every
/// expected kind has its weight.
pub fn check_weights(plan: &Plan, weights: &Weights) -> Result<(), Error> {
    let names: BTreeSet<&str> = plan.phases.iter().map(|p| p.name.as_str()).collect();
    for name in weights.phase_share_percent.keys() {
        if !names.contains(name.as_str()) {
            return Err(Error::invalid(format!("weights.phaseSharePercent.{name}"), "no such phase in the plan"));
        }
    }
    for name in &names {
        if !weights.phase_share_percent.contains_key(*name) {
            return Err(Error::invalid(
                format!("weights.phaseSharePercent.{name}"),
                "every phase needs a share (0 is allowed)",
            ));
        }
    }
    let phases: u64 = weights.phase_share_percent.values().map(|v| u64::from(*v)).sum();
    let total = phases + u64::from(weights.proposer_share_percent);
    if total != 100 {
        return Err(Error::invalid(
            "weights.phaseSharePercent",
            format!(
                "the proposer's share ({}) and the phases' shares ({phases}) add up to {total}, not 100",
                weights.proposer_share_percent
            ),
        ));
    }
    let mut expected = BTreeMap::new();
    for phase in &plan.phases {
        for kind in phase.kinds() {
            expected.insert(kind.short_name(), phase.name.clone());
        }
    }
    for (kind, points) in &weights.kind_points {
        if ContributionKind::from_short_name(kind).is_none() {
            return Err(Error::invalid(format!("weights.kindPoints.{kind}"), "not a contribution kind"));
        }
        if *points > MAX_POINTS {
            return Err(Error::invalid(format!("weights.kindPoints.{kind}"), format!("at most {MAX_POINTS}")));
        }
    }
    for (kind, phase) in expected {
        if !weights.kind_points.contains_key(&kind) {
            return Err(Error::invalid(
                format!("weights.kindPoints.{kind}"),
                format!("phase {phase} expects {kind}: give it points"),
            ));
        }
    }
    if weights.on_time_bonus_percent > 100 {
        return Err(Error::invalid("weights.onTimeBonusPercent", "0-100"));
    }
    if weights.reuse_points > MAX_POINTS {
        return Err(Error::invalid("weights.reusePoints", format!("at most {MAX_POINTS}")));
    }
    Ok(())
}

/// A county's answer to `plan` (None: not invited).
pub fn participant_answer(plan: &Plan, county: &str) -> Option<Answer> {
    plan.participants.iter().find(|p| p.county == county).map(|p| p.answer())
}

/// Whether `county` accepted `plan` (the proposer always has).
pub fn is_participant(plan: &Plan, county: &str) -> bool {
    participant_answer(plan, county) == Some(Answer::Accepted)
}

/// Why `story` may not name the plan it names, as (field, reason), if it may not. `plan` is the
/// stored plan (None: no such plan). A first version needs an active plan; a correction or a
/// withdrawal goes through whatever the plan's state, so that every copy can follow it.
pub fn check_contribution(story: &Story, plan: Option<&Plan>) -> Option<(&'static str, String)> {
    let coverage = story.coverage.as_ref()?;
    let Some(plan) = plan else {
        return Some(("coverage.planId", format!("no coverage plan {:?}", coverage.plan_id)));
    };
    if !is_participant(plan, &story.origin_county) {
        return Some((
            "coverage.planId",
            format!("county {} has not joined plan {}: accept its invitation first", story.origin_county, plan.id),
        ));
    }
    if story.version == 1 && plan.state() != PlanState::Active {
        let state = plan.state().as_str_name().trim_start_matches("PLAN_STATE_").to_lowercase();
        return Some((
            "coverage.planId",
            format!("plan {} is {state}: it takes new stories only while active", plan.id),
        ));
    }
    let Some(phase) = plan.phases.iter().find(|p| p.name == coverage.phase) else {
        let names: Vec<&str> = plan.phases.iter().map(|p| p.name.as_str()).collect();
        return Some((
            "coverage.phase",
            format!("plan {} has no phase {:?} (it has {names:?})", plan.id, coverage.phase),
        ));
    };
    let kind = coverage.kind();
    if !phase.kinds().any(|k| k == kind) {
        let expected: Vec<String> = phase.kinds().map(|k| k.short_name()).collect();
        return Some(("coverage.kind", format!("phase {} expects {expected:?}", phase.name)));
    }
    None
}
