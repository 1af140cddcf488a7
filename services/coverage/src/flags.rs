//! The phase timer: every replica looks over the active plans now and then (in its followed
//! index of plans, so a round reads nothing from the bucket unless it flags) and flags a phase
//! with nothing delivered to its owner, once when it is due soon and once when it is late. The
//! flag is a change to the plan made by compare-and-set, so however many replicas look, each
//! flag is raised once; and a plan whose outbox still holds an event and its audit entry (its
//! writer died before publishing them) has them published here.

use bashu_coverage_core::earned_flag;
use bashu_proto::{
    coverage::v1::{PhaseFlag, PhaseFlagged, Plan, PlanState, plan_event::Change},
    time::now,
};
use tokio_util::sync::CancellationToken;

use crate::{
    Coverage,
    plans::{Caller, Outbox},
};

impl Coverage {
    /// Flags phases until `shutdown`.
    pub(crate) async fn flag_phases(self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.flag_interval()) => {}
            }
            if let Err(error) = self.flag_once().await {
                tracing::warn!(error = %bashu_bus::error_chain(&error), "coverage phase flags not checked; next round");
            }
        }
    }

    async fn flag_once(&self) -> Result<(), crate::Error> {
        let at = now();
        let warning = self.inner.config.warning_seconds();
        let stale_outbox = at.seconds - (2 * self.flag_interval().as_secs() as i64).max(2);
        for plan in self.inner.store.plans_in(&self.inner.plans).await? {
            if let Some(outbox) =
                Outbox::of(&plan).filter(|_| plan.updated_at.is_some_and(|u| u.seconds < stale_outbox))
            {
                self.publish_outbox(&plan, &outbox).await?;
                self.clear_outbox(&plan.id, outbox.event.sequence).await?;
            }
            if plan.state() != PlanState::Active {
                continue;
            }
            for (name, flag) in due_flags(&plan, at, warning) {
                self.raise(&plan.id, &name, flag).await?;
            }
        }
        Ok(())
    }

    /// Raises `flag` on a phase unless it was raised already (by this replica or another).
    async fn raise(&self, plan: &str, phase: &str, flag: PhaseFlag) -> Result<(), crate::Error> {
        let warning = self.inner.config.warning_seconds();
        let (_, raised_here) = self
            .apply_change(&Caller::Timer, plan, "FlagPhase", |p| {
                let Some(target) = p.phases.iter_mut().find(|f| f.name == phase) else { return Ok(None) };
                let raised = match flag {
                    PhaseFlag::Late => target.late_flagged_at.is_some(),
                    _ => target.due_soon_flagged_at.is_some(),
                };
                if raised || earned_flag(target, now(), warning) != Some(flag) {
                    return Ok(None);
                }
                let at = Some(now());
                match flag {
                    PhaseFlag::Late => target.late_flagged_at = at,
                    _ => target.due_soon_flagged_at = at,
                }
                Ok(Some(Change::PhaseFlagged(PhaseFlagged {
                    phase: phase.to_owned(),
                    flag: flag as i32,
                    owner: target.owner.clone(),
                    due_at: target.due_at,
                })))
            })
            .await?;
        if raised_here {
            tracing::info!(plan, phase, flag = flag.as_str_name(), "coverage phase flagged");
        }
        Ok(())
    }
}

/// The flags `plan`'s phases are due at `now`: due soon, or late, with nothing delivered and
/// that flag not raised yet.
fn due_flags(plan: &Plan, now: bashu_proto::Timestamp, warning: i64) -> Vec<(String, PhaseFlag)> {
    plan.phases
        .iter()
        .filter_map(|phase| match earned_flag(phase, now, warning)? {
            PhaseFlag::DueSoon if phase.due_soon_flagged_at.is_none() => Some((phase.name.clone(), PhaseFlag::DueSoon)),
            PhaseFlag::Late if phase.late_flagged_at.is_none() => Some((phase.name.clone(), PhaseFlag::Late)),
            _ => None,
        })
        .collect()
}
