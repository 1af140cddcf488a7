//! The chain every participant reads: each phase, how it stands against its due time, and who
//! delivered what in it.

use bashu_proto::{
    Timestamp,
    coverage::v1::{ChainItem, Contribution, Phase, PhaseChain, PhaseFlag, PhaseStatus, Plan},
};

/// How `phase` stands at `now`: delivered once anything in it was approved; otherwise open, due
/// within `warning_seconds`, or late.
pub(crate) fn phase_status(phase: &Phase, now: Timestamp, warning_seconds: i64) -> PhaseStatus {
    if phase.first_delivered_at.is_some() {
        return PhaseStatus::Delivered;
    }
    let (now, due) = (nanos(&now), phase.due_at.as_ref().map_or(i128::MAX, nanos));
    if now > due {
        PhaseStatus::Late
    } else if now + i128::from(warning_seconds) * NANOS >= due {
        PhaseStatus::DueSoon
    } else {
        PhaseStatus::Open
    }
}

const NANOS: i128 = 1_000_000_000;

/// A time in nanoseconds since the epoch: due times and receipts are compared to the instant,
/// not the second.
fn nanos(t: &Timestamp) -> i128 {
    i128::from(t.seconds) * NANOS + i128::from(t.nanos)
}

/// The flag `phase` has earned at `now`, if any: due soon (within `warning_seconds`, nothing
/// delivered yet), or late (past due, and nothing was delivered by then: a delivery after the
/// due time does not undo it).
pub fn earned_flag(phase: &Phase, now: Timestamp, warning_seconds: i64) -> Option<PhaseFlag> {
    let (now, due) = (nanos(&now), nanos(phase.due_at.as_ref()?));
    let delivered_at = phase.first_delivered_at.as_ref().map(nanos);
    if now > due {
        return delivered_at.is_none_or(|at| at > due).then_some(PhaseFlag::Late);
    }
    (delivered_at.is_none() && now + i128::from(warning_seconds) * NANOS >= due).then_some(PhaseFlag::DueSoon)
}

/// Whether `contribution` was on time for `phase`: its first approved version was received by
/// the phase's due time.
pub(crate) fn on_time(contribution: &Contribution, phase: &Phase) -> bool {
    let Some(first) = contribution.approved_versions.first() else { return false };
    match (contribution.submitted_at.get(first), phase.due_at.as_ref()) {
        (Some(submitted), Some(due)) => nanos(submitted) <= nanos(due),
        _ => false,
    }
}

/// Counties other than the origin that used it, in code order: only those it reached. A county
/// may send a "used" note for any story id on its own subject; one it was never given earns the
/// origin nothing (else two counties could inflate each other's share of a settlement).
pub(crate) fn reusers(contribution: &Contribution) -> Vec<String> {
    let mut counties: Vec<String> = contribution
        .used_by
        .keys()
        .filter(|c| **c != contribution.origin_county && contribution.delivered_versions.contains_key(*c))
        .cloned()
        .collect();
    counties.sort();
    counties
}

/// The chain of `plan` at `now`: its phases in order, each with its contributions (earliest
/// submission first).
pub fn chain_of(plan: &Plan, contributions: &[Contribution], now: Timestamp, warning_seconds: i64) -> Vec<PhaseChain> {
    plan.phases
        .iter()
        .map(|phase| {
            let mut items: Vec<ChainItem> = contributions
                .iter()
                .filter(|c| c.phase == phase.name)
                .map(|c| {
                    let first_submitted = c.submitted_at.iter().min_by_key(|(version, _)| **version).map(|(_, t)| *t);
                    ChainItem {
                        origin_county: c.origin_county.clone(),
                        story_id: c.story_id.clone(),
                        headline: c.headline.clone(),
                        kind: c.kind().short_name(),
                        submitted_at: first_submitted,
                        approved_version: c.approved_versions.last().copied().unwrap_or_default(),
                        on_time: on_time(c, phase),
                        withdrawn: c.withdrawn,
                        used_by: reusers(c),
                    }
                })
                .collect();
            items.sort_by_key(|item| (item.submitted_at.map(|t| (t.seconds, t.nanos)), item.story_id.clone()));
            PhaseChain { phase: Some(phase.clone()), status: phase_status(phase, now, warning_seconds) as i32, items }
        })
        .collect()
}
