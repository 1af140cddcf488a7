//! The settlement: a pool divided among a closed plan's participants by its weights, every
//! hundredth traced to the contributions (and their events) that earned it. docs/coverage.md
//! works an example through; the test below checks its numbers.
//!
//! 1. The proposer gets `proposer_share_percent` of the pool.
//! 2. Each phase gets `phase_share_percent` of it, divided among the counties that contributed
//!    to it by their points; a phase nobody contributed to is left unallocated, with the reason.
//! 3. A contribution's points: its kind's points, `on_time_bonus_percent` more when its first
//!    approved version was received by the phase's due time, and `reuse_points` for each other
//!    county that used it. A withdrawn story, or one never approved, earns nothing; corrections
//!    neither earn nor cost.
//! 4. Everything is in hundredths of the pool's unit and exact: a phase's amount is split by the
//!    largest remainder, so the shares add up to the pool to the hundredth.

use std::collections::BTreeMap;

use bashu_proto::{
    Timestamp,
    coverage::v1::{Contribution, Plan, PlanState, Settlement, SettlementEntry, SettlementShare, Weights},
};

use crate::{
    Error,
    chain::{on_time, reusers},
};

/// The largest pool, in whole units.
const MAX_POOL: i64 = 1_000_000_000_000;

/// What `contribution` earns in `plan` under `weights`, in hundredths of a point, with its
/// evidence.
fn contribution_points(plan: &Plan, weights: &Weights, contribution: &Contribution) -> SettlementEntry {
    let phase = plan.phases.iter().find(|p| p.name == contribution.phase);
    let kind = contribution.kind().short_name();
    let approved = !contribution.approved_versions.is_empty();
    let timely = phase.is_some_and(|phase| on_time(contribution, phase));
    let used_by = reusers(contribution);
    let points = if contribution.withdrawn || !approved || phase.is_none() {
        0
    } else {
        let kind_points = u64::from(weights.kind_points.get(&kind).copied().unwrap_or_default());
        let bonus = if timely { kind_points * u64::from(weights.on_time_bonus_percent) } else { 0 };
        kind_points * 100 + bonus + u64::from(weights.reuse_points) * 100 * used_by.len() as u64
    };
    let story = format!("{}.{}", contribution.origin_county, contribution.story_id);
    let mut versions: Vec<&u32> = contribution.submitted_at.keys().collect();
    versions.sort();
    let mut evidence: Vec<String> = versions.iter().map(|v| format!("submitted:{story}.{v}")).collect();
    evidence.extend(contribution.approved_versions.iter().map(|v| format!("decided:{story}.{v}")));
    evidence.extend(used_by.iter().map(|county| format!("used:{county}:{story}")));
    SettlementEntry {
        origin_county: contribution.origin_county.clone(),
        story_id: contribution.story_id.clone(),
        phase: contribution.phase.clone(),
        kind,
        on_time: timely,
        corrections: contribution.approved_versions.len().saturating_sub(1) as u32,
        used_by,
        points_hundredths: points,
        evidence,
        withdrawn: contribution.withdrawn,
    }
}

/// Splits `amount` by `points` (largest remainder, ties to the lower county code); None if no
/// one has points.
fn split(amount: u64, points: &BTreeMap<String, u64>) -> Option<BTreeMap<String, u64>> {
    let total: u128 = points.values().map(|p| u128::from(*p)).sum();
    if total == 0 {
        return None;
    }
    let mut shares = BTreeMap::new();
    let mut remainders = Vec::new();
    let mut given = 0u64;
    for (county, p) in points {
        let exact = u128::from(amount) * u128::from(*p);
        let floor = (exact / total) as u64;
        given += floor;
        shares.insert(county.clone(), floor);
        remainders.push((exact % total, county.clone()));
    }
    // Largest remainder first; among equals, the lower county code.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    for (_, county) in remainders.into_iter().take((amount - given) as usize) {
        *shares.entry(county).or_default() += 1;
    }
    Some(shares)
}

/// Divides `pool` whole units among `plan`'s participants by its weights. Only a closed plan is
/// settled: an open one may still change.
pub fn settle(plan: &Plan, contributions: &[Contribution], pool: i64, now: Timestamp) -> Result<Settlement, Error> {
    if !(1..=MAX_POOL).contains(&pool) {
        return Err(Error::invalid("pool", format!("a whole number from 1 to {MAX_POOL}")));
    }
    match plan.state() {
        PlanState::Closed => {}
        PlanState::Cancelled => {
            return Err(Error::conflict("wrong_state", format!("plan {} was cancelled: nothing to settle", plan.id)));
        }
        _ => {
            return Err(Error::conflict(
                "plan_open",
                format!("plan {} is still open: its proposer closes it before it is settled", plan.id),
            ));
        }
    }
    let weights = plan.weights.clone().unwrap_or_default();
    let total = pool as u64 * 100;
    let mut shares: BTreeMap<String, SettlementShare> = BTreeMap::new();
    fn share_of<'a>(shares: &'a mut BTreeMap<String, SettlementShare>, county: &str) -> &'a mut SettlementShare {
        shares
            .entry(county.to_owned())
            .or_insert_with(|| SettlementShare { county: county.to_owned(), ..Default::default() })
    }
    let proposer_amount = pool as u64 * u64::from(weights.proposer_share_percent);
    if proposer_amount > 0 {
        let share = share_of(&mut shares, &plan.proposer);
        share.amount_hundredths += proposer_amount;
        share.proposer_hundredths = proposer_amount;
    }
    let entries: Vec<SettlementEntry> =
        contributions.iter().filter(|c| c.plan_id == plan.id).map(|c| contribution_points(plan, &weights, c)).collect();
    let mut unallocated = 0;
    let mut reasons = Vec::new();
    for phase in &plan.phases {
        let amount = pool as u64 * u64::from(weights.phase_share_percent.get(&phase.name).copied().unwrap_or_default());
        let mut points = BTreeMap::new();
        for entry in entries.iter().filter(|e| e.phase == phase.name && e.points_hundredths > 0) {
            *points.entry(entry.origin_county.clone()).or_insert(0) += entry.points_hundredths;
        }
        match split(amount, &points) {
            Some(split) => {
                for (county, amount) in split {
                    let share = share_of(&mut shares, &county);
                    share.amount_hundredths += amount;
                    share.phase_points_hundredths.insert(phase.name.clone(), points[&county]);
                }
            }
            None if amount > 0 => {
                unallocated += amount;
                reasons.push(format!("phase {}: no contribution earned points", phase.name));
            }
            None => {}
        }
    }
    for entry in entries {
        share_of(&mut shares, &entry.origin_county).entries.push(entry);
    }
    let mut shares: Vec<SettlementShare> = shares.into_values().collect();
    shares.sort_by(|a, b| b.amount_hundredths.cmp(&a.amount_hundredths).then_with(|| a.county.cmp(&b.county)));
    debug_assert_eq!(shares.iter().map(|s| s.amount_hundredths).sum::<u64>() + unallocated, total);
    Ok(Settlement {
        plan_id: plan.id.clone(),
        pool: pool as u64,
        weights: Some(weights),
        shares,
        unallocated_hundredths: unallocated,
        unallocated_reasons: reasons,
        computed_at: Some(now),
    })
}

/// One row per contribution and one per share, every amount traced: what an accountant opens.
pub fn settlement_csv(settlement: &Settlement) -> String {
    let mut out = String::from(
        "county,amount,proposer_share,phase,story,kind,on_time,corrections,used_by,points,withdrawn,evidence\n",
    );
    let money = |hundredths: u64| format!("{}.{:02}", hundredths / 100, hundredths % 100);
    for share in &settlement.shares {
        out.push_str(&format!(
            "{},{},{},,,,,,,,,\n",
            share.county,
            money(share.amount_hundredths),
            money(share.proposer_hundredths)
        ));
        for entry in &share.entries {
            out.push_str(&format!(
                "{},,,{},{},{},{},{},{},{},{},{}\n",
                share.county,
                entry.phase,
                entry.story_id,
                entry.kind,
                entry.on_time,
                entry.corrections,
                entry.used_by.join(" "),
                money(entry.points_hundredths),
                entry.withdrawn,
                entry.evidence.join(" ")
            ));
        }
    }
    if settlement.unallocated_hundredths > 0 {
        out.push_str(&format!(
            ",{},,,,,,,,,,{}\n",
            money(settlement.unallocated_hundredths),
            settlement.unallocated_reasons.join("; ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use bashu_proto::{
        coverage::v1::Phase,
        story::v1::ContributionKind::{self, Live, Text, Video},
    };

    use super::*;

    const YONGCHUAN: &str = "500118";
    const JIANGJIN: &str = "500116";
    const LUXIAN: &str = "510521";
    const XUZHOU: &str = "511504";

    fn at(seconds: i64) -> Timestamp {
        Timestamp { seconds, nanos: 0 }
    }

    /// The plan of docs/coverage.md's worked example.
    pub(crate) fn railway_plan() -> Plan {
        let phase = |name: &str, due: i64| Phase { name: name.into(), due_at: Some(at(due)), ..Default::default() };
        Plan {
            id: "yukun-rail".into(),
            proposer: YONGCHUAN.into(),
            state: PlanState::Closed as i32,
            phases: vec![phase("experience", 1_000), phase("expert", 2_000), phase("impact", 3_000)],
            weights: Some(Weights {
                proposer_share_percent: 10,
                phase_share_percent: [("experience", 40), ("expert", 30), ("impact", 20)]
                    .map(|(k, v)| (k.to_owned(), v))
                    .into(),
                kind_points: [("text", 10), ("video", 20), ("live", 30)].map(|(k, v)| (k.to_owned(), v)).into(),
                on_time_bonus_percent: 20,
                reuse_points: 2,
            }),
            ..Default::default()
        }
    }

    fn contribution(origin: &str, id: &str, phase: &str, kind: ContributionKind, submitted: i64) -> Contribution {
        Contribution {
            plan_id: "yukun-rail".into(),
            phase: phase.into(),
            kind: kind as i32,
            origin_county: origin.into(),
            story_id: id.into(),
            submitted_at: [(1, at(submitted))].into(),
            approved_versions: vec![1],
            ..Default::default()
        }
    }

    /// Reached `counties` and was used by them.
    fn used_by(mut c: Contribution, counties: &[&str]) -> Contribution {
        c.used_by = counties.iter().map(|county| (county.to_string(), at(5_000))).collect();
        c.delivered_versions = counties.iter().map(|county| (county.to_string(), 1)).collect();
        c
    }

    /// docs/coverage.md, "A worked example": the same contributions, the same numbers.
    pub(crate) fn railway_contributions() -> Vec<Contribution> {
        let mut withdrawn = contribution(JIANGJIN, "jj-expert", "expert", Text, 1_500);
        withdrawn.withdrawn = true;
        withdrawn.approved_versions = vec![1, 2];
        vec![
            used_by(contribution(YONGCHUAN, "yc-ride", "experience", Video, 900), &[JIANGJIN]),
            contribution(LUXIAN, "lx-station", "experience", Text, 950),
            contribution(JIANGJIN, "jj-live", "experience", Live, 1_100),
            used_by(contribution(LUXIAN, "lx-expert", "expert", Text, 1_900), &[YONGCHUAN, XUZHOU]),
            withdrawn,
            contribution(XUZHOU, "xz-impact", "impact", Text, 3_600),
        ]
    }

    #[test]
    fn a_used_note_from_a_county_the_story_never_reached_earns_nothing() {
        let mut contributions = railway_contributions();
        // Rongchang was never given yc-ride, yet says it used it.
        contributions[0].used_by.insert("500153".into(), at(5_000));
        let settlement = settle(&railway_plan(), &contributions, 100_000, at(9_000)).unwrap();
        let honest = settle(&railway_plan(), &railway_contributions(), 100_000, at(9_000)).unwrap();
        assert_eq!(settlement.shares, honest.shares, "the note changed nothing");
    }

    #[test]
    fn the_worked_example_divides_the_pool_as_the_docs_say() {
        let settlement = settle(&railway_plan(), &railway_contributions(), 100_000, at(9_000)).unwrap();
        let amounts: Vec<(&str, u64)> =
            settlement.shares.iter().map(|s| (s.county.as_str(), s.amount_hundredths)).collect();
        assert_eq!(amounts, [(LUXIAN, 3_705_882), (YONGCHUAN, 2_529_412), (XUZHOU, 2_000_000), (JIANGJIN, 1_764_706)]);
        assert_eq!(settlement.unallocated_hundredths, 0);
        let points = |county: &str, story: &str| {
            let share = settlement.shares.iter().find(|s| s.county == county).unwrap();
            share.entries.iter().find(|e| e.story_id == story).unwrap().clone()
        };
        assert_eq!(points(YONGCHUAN, "yc-ride").points_hundredths, 2_600, "video 20, +20% on time, one reuse");
        assert_eq!(points(LUXIAN, "lx-station").points_hundredths, 1_200);
        assert_eq!(points(JIANGJIN, "jj-live").points_hundredths, 3_000, "late: no bonus");
        assert_eq!(points(LUXIAN, "lx-expert").points_hundredths, 1_600);
        let withdrawn = points(JIANGJIN, "jj-expert");
        assert_eq!((withdrawn.points_hundredths, withdrawn.corrections), (0, 1));
        assert_eq!(points(XUZHOU, "xz-impact").points_hundredths, 1_000);
        let yongchuan = settlement.shares.iter().find(|s| s.county == YONGCHUAN).unwrap();
        assert_eq!(yongchuan.proposer_hundredths, 1_000_000);
        assert_eq!(
            points(YONGCHUAN, "yc-ride").evidence,
            ["submitted:500118.yc-ride.1", "decided:500118.yc-ride.1", "used:500116:500118.yc-ride"]
        );
    }

    #[test]
    fn a_phase_nobody_delivered_is_left_unallocated_with_its_reason() {
        let contributions: Vec<Contribution> =
            railway_contributions().into_iter().filter(|c| c.phase != "impact").collect();
        let settlement = settle(&railway_plan(), &contributions, 100_000, at(9_000)).unwrap();
        assert_eq!(settlement.unallocated_hundredths, 2_000_000);
        assert_eq!(settlement.unallocated_reasons, ["phase impact: no contribution earned points"]);
        let given: u64 = settlement.shares.iter().map(|s| s.amount_hundredths).sum();
        assert_eq!(given + settlement.unallocated_hundredths, 10_000_000);
    }

    #[test]
    fn an_open_plan_and_a_pool_below_one_are_refused() {
        let mut plan = railway_plan();
        assert_eq!(settle(&plan, &[], 0, at(0)).unwrap_err().code(), "invalid_request");
        assert_eq!(settle(&plan, &[], -5, at(0)).unwrap_err().code(), "invalid_request");
        plan.state = PlanState::Active as i32;
        assert_eq!(settle(&plan, &[], 100, at(0)).unwrap_err().code(), "plan_open");
        plan.state = PlanState::Cancelled as i32;
        assert_eq!(settle(&plan, &[], 100, at(0)).unwrap_err().code(), "wrong_state");
    }

    #[test]
    fn a_split_adds_up_to_the_hundredth_whatever_the_points() {
        for amount in [1u64, 7, 100, 999_999, 3_333_333] {
            let points: BTreeMap<String, u64> =
                [("a", 3), ("b", 3), ("c", 3), ("d", 1)].map(|(k, v)| (k.to_owned(), v)).into();
            let split = split(amount, &points).unwrap();
            assert_eq!(split.values().sum::<u64>(), amount, "{amount}");
        }
        assert!(split(100, &BTreeMap::new()).is_none());
    }
}
