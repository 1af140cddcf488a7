//! Every change to a plan: checked against who is asking and the plan's state, made by
//! compare-and-set, published as the plan's next event and audited with the caller's name, both
//! through the record's outbox, so a crash between the record and the publish loses neither.

use bashu_coverage_core::{
    Error as Refusal, MAX_OPEN_PLANS_PER_PROPOSER, check_weights, is_participant, new_plan, participant_answer,
};
use bashu_proto::{
    admin::v1::AuditEvent,
    coverage::v1::{
        Answer, ChannelSubscription, InvitationAnswered, PhaseNotice, Plan, PlanEvent, PlanProposed, PlanState,
        PlanStateChanged, PlanView, ProposePlanRequest, Settlement, Weights, WeightsConsented, WeightsProposal,
        WeightsProposed, plan_event::Change,
    },
    time::now,
};
use bashu_registry::Caller as StaffCaller;

use crate::{Coverage, Error};

/// Who is asking.
pub(crate) enum Caller {
    /// A county, by its token: it acts as itself only.
    County(String),
    /// A staff member, by their token: reads and settles, changes nothing.
    Staff(StaffCaller),
    /// The service's own phase timer, flagging a phase to its owner.
    Timer,
}

impl Caller {
    /// The name changes are recorded under: the county code, or `<name> (<role>)`.
    fn actor(&self) -> String {
        match self {
            Caller::County(county) => county.clone(),
            Caller::Staff(staff) => format!("{} ({})", staff.name, staff.role.as_str_name()),
            Caller::Timer => "coverage (phase timer)".into(),
        }
    }

    fn role(&self) -> String {
        match self {
            Caller::County(_) => "county".into(),
            Caller::Staff(staff) => staff.role.as_str_name().to_owned(),
            Caller::Timer => "service".into(),
        }
    }

    /// The county a change is made as; staff change nothing.
    fn county(&self) -> Result<&str, Refusal> {
        match self {
            Caller::County(county) => Ok(county),
            Caller::Staff(staff) => Err(Refusal::Forbidden(format!(
                "{} is staff: plans are changed by the counties that take part, with their county tokens",
                staff.name
            ))),
            Caller::Timer => Err(Refusal::Forbidden("the phase timer only flags phases".into())),
        }
    }

    /// Whether the caller may see `plan`: staff, and every county invited to it.
    fn may_read(&self, plan: &Plan) -> bool {
        match self {
            Caller::County(county) => participant_answer(plan, county).is_some(),
            Caller::Staff(_) | Caller::Timer => true,
        }
    }
}

fn not_found(id: &str) -> Refusal {
    Refusal::NotFound(format!("no coverage plan {id} for you"))
}

fn state_name(state: PlanState) -> String {
    state.as_str_name().trim_start_matches("PLAN_STATE_").to_lowercase()
}

/// A plan still taking changes from its participants: proposed or active.
fn open(plan: &Plan) -> Result<(), Refusal> {
    match plan.state() {
        PlanState::Proposed | PlanState::Active => Ok(()),
        state => Err(Refusal::conflict("wrong_state", format!("plan {} is {}", plan.id, state_name(state)))),
    }
}

fn accepted(plan: &Plan, county: &str) -> Result<(), Refusal> {
    if is_participant(plan, county) {
        Ok(())
    } else {
        Err(Refusal::conflict(
            "not_participant",
            format!("county {county} has not accepted plan {}: accept the invitation first", plan.id),
        ))
    }
}

/// What a caller is shown of a plan: the record without its outbox.
pub(crate) fn shown(mut plan: Plan) -> Plan {
    plan.outbox = None;
    plan.outbox_audit = None;
    plan
}

/// A change's event and its audit entry, as a plan record's outbox holds them until published.
pub(crate) struct Outbox {
    pub(crate) event: PlanEvent,
    pub(crate) audit: Option<AuditEvent>,
}

impl Outbox {
    /// What the record holds, if anything.
    pub(crate) fn of(plan: &Plan) -> Option<Self> {
        plan.outbox.as_deref().map(|event| Self { event: event.clone(), audit: plan.outbox_audit.clone() })
    }

    /// Takes it out of the record.
    fn take(plan: &mut Plan) -> Option<Self> {
        let event = plan.outbox.take()?;
        Some(Self { event: *event, audit: plan.outbox_audit.take() })
    }

    /// Puts it into the record.
    fn put(&self, plan: &mut Plan) {
        plan.outbox = Some(Box::new(self.event.clone()));
        plan.outbox_audit = self.audit.clone();
    }
}

impl Coverage {
    /// Proposes a plan as `caller`'s county. The same proposal again answers the stored plan.
    pub(crate) async fn propose(&self, caller: &Caller, request: ProposePlanRequest) -> Result<PlanView, Error> {
        let county = caller.county()?.to_owned();
        let at = now();
        let mut plan = new_plan(request, &county, &self.inner.counties, &self.inner.registry.current(), at)?;
        self.check_open_plans(&county, &plan.id).await?;
        let event = PlanEvent {
            plan_id: plan.id.clone(),
            sequence: 1,
            actor: county.clone(),
            at: Some(at),
            change: Some(Change::Proposed(Box::new(PlanProposed { plan: Some(Box::new(plan.clone())) }))),
        };
        let audit = audit_entry(caller, "ProposePlan", &Plan::default(), &plan, &event);
        let outbox = Outbox { event, audit: Some(audit) };
        outbox.put(&mut plan);
        match self.inner.store.create_plan(&plan).await {
            Ok(_) => {}
            Err(Refusal::Conflict { code: "plan_exists", .. }) => {
                let stored = self.inner.store.plan(&plan.id).await?.map(|p| p.value);
                return match stored {
                    Some(stored) if same_proposal(&stored, &plan) => self.view_of(stored).await,
                    _ => Err(Refusal::conflict("plan_exists", format!("plan id {} is taken", plan.id)).into()),
                };
            }
            Err(error) => return Err(error.into()),
        }
        self.published(&plan, None, &outbox).await?;
        self.view_of(plan).await
    }

    /// Refuses a new plan from a county that has as many open plans as it may (a resend of one
    /// of them passes, and answers as before). A soft bound: two proposals at the very same
    /// moment may both pass it.
    async fn check_open_plans(&self, county: &str, id: &str) -> Result<(), Error> {
        let open: Vec<String> = self
            .inner
            .store
            .plans()
            .await?
            .into_iter()
            .filter(|p| p.proposer == county && matches!(p.state(), PlanState::Proposed | PlanState::Active))
            .map(|p| p.id)
            .collect();
        if open.len() >= MAX_OPEN_PLANS_PER_PROPOSER && !open.iter().any(|open| open == id) {
            return Err(Refusal::conflict(
                "too_many_open_plans",
                format!(
                    "county {county} has {} plans proposed or under way, the most a county may have: close or \
                     cancel one first",
                    open.len()
                ),
            )
            .into());
        }
        Ok(())
    }

    /// One plan with its chain, if the caller may see it.
    pub(crate) async fn view(&self, caller: &Caller, id: &str) -> Result<PlanView, Error> {
        let plan = self.inner.store.plan(id).await?.map(|p| p.value).filter(|p| caller.may_read(p));
        self.view_of(plan.ok_or_else(|| not_found(id))?).await
    }

    pub(crate) async fn view_of(&self, plan: Plan) -> Result<PlanView, Error> {
        let contributions = self.inner.store.contributions(&plan.id).await?;
        let chain = bashu_coverage_core::chain_of(&plan, &contributions, now(), self.inner.config.warning_seconds());
        Ok(PlanView { plan: Some(shown(plan)), chain })
    }

    /// The plans the caller may see, newest first, in `state` if one is given.
    pub(crate) async fn list(&self, caller: &Caller, state: PlanState) -> Result<Vec<PlanView>, Error> {
        let mut plans: Vec<Plan> = self
            .inner
            .store
            .plans()
            .await?
            .into_iter()
            .filter(|p| caller.may_read(p) && (state == PlanState::Unspecified || p.state() == state))
            .collect();
        plans.sort_by_key(|p| std::cmp::Reverse(p.created_at.map(|t| (t.seconds, t.nanos))));
        let mut views = Vec::with_capacity(plans.len());
        for plan in plans {
            views.push(self.view_of(plan).await?);
        }
        Ok(views)
    }

    /// The caller's county accepts or declines its invitation.
    pub(crate) async fn answer(&self, caller: &Caller, id: &str, answer: Answer) -> Result<PlanView, Error> {
        let county = caller.county()?.to_owned();
        if !matches!(answer, Answer::Accepted | Answer::Declined) {
            return Err(Refusal::invalid("answer", "ANSWER_ACCEPTED or ANSWER_DECLINED").into());
        }
        let (plan, _) = self
            .apply_change(caller, id, "AnswerInvitation", |plan| {
                let Some(participant) = plan.participants.iter_mut().find(|p| p.county == county) else {
                    return Err(not_found(id));
                };
                if participant.answer() == answer {
                    return Ok(None);
                }
                if county == plan.proposer {
                    return Err(Refusal::conflict("wrong_state", "the proposer takes part in its own plan"));
                }
                open(plan)?;
                if answer == Answer::Declined && plan.phases.iter().any(|p| p.owner == county) {
                    return Err(Refusal::conflict(
                        "wrong_state",
                        format!("county {county} leads a phase of plan {id}: its proposer reassigns it first"),
                    ));
                }
                let participant = plan.participants.iter_mut().find(|p| p.county == county).expect("found above");
                participant.answer = answer as i32;
                participant.answered_at = Some(now());
                Ok(Some(Change::Answered(InvitationAnswered { county: county.clone(), answer: answer as i32 })))
            })
            .await?;
        self.view_of(plan).await
    }

    /// The caller's county claims `phase`, or (the proposer) assigns it to `assign_to`.
    pub(crate) async fn take_phase(
        &self,
        caller: &Caller,
        id: &str,
        phase: &str,
        assign_to: &str,
    ) -> Result<PlanView, Error> {
        let county = caller.county()?.to_owned();
        let owner = if assign_to.is_empty() { county.clone() } else { assign_to.to_owned() };
        let (plan, _) = self
            .apply_change(caller, id, "TakePhase", |plan| {
                if participant_answer(plan, &county).is_none() {
                    return Err(not_found(id));
                }
                open(plan)?;
                accepted(plan, &county)?;
                let assigned = owner != county;
                if assigned && county != plan.proposer {
                    return Err(Refusal::Forbidden(format!(
                        "only the proposer of plan {id} assigns phases; county {county} may claim one for itself"
                    )));
                }
                if assigned && !is_participant(plan, &owner) {
                    return Err(Refusal::invalid("assignTo", format!("county {owner} has not accepted plan {id}")));
                }
                let Some(target) = plan.phases.iter_mut().find(|p| p.name == phase) else {
                    return Err(Refusal::invalid("phase", format!("plan {id} has no phase {phase:?}")));
                };
                if target.owner == owner {
                    return Ok(None);
                }
                // A claim takes only a free phase; the proposer's assignment may also reassign one.
                if !target.owner.is_empty() && !assigned {
                    return Err(Refusal::conflict(
                        "phase_taken",
                        format!("phase {phase} of plan {id} is led by county {}", target.owner),
                    ));
                }
                target.owner = owner.clone();
                target.owned_since = Some(now());
                Ok(Some(Change::PhaseTaken(bashu_proto::coverage::v1::PhaseTaken {
                    phase: phase.to_owned(),
                    owner: owner.clone(),
                    assigned,
                })))
            })
            .await?;
        self.view_of(plan).await
    }

    /// The proposer activates, closes or cancels its plan.
    pub(crate) async fn change_state(&self, caller: &Caller, id: &str, to: PlanState) -> Result<PlanView, Error> {
        let county = caller.county()?.to_owned();
        if !matches!(to, PlanState::Active | PlanState::Closed | PlanState::Cancelled) {
            return Err(
                Refusal::invalid("state", "PLAN_STATE_ACTIVE, PLAN_STATE_CLOSED or PLAN_STATE_CANCELLED").into()
            );
        }
        let (plan, _) = self
            .apply_change(caller, id, "ChangeState", |plan| {
                if participant_answer(plan, &county).is_none() {
                    return Err(not_found(id));
                }
                if county != plan.proposer {
                    return Err(Refusal::Forbidden(format!(
                        "only the proposer of plan {id}, {}, changes its state",
                        plan.proposer
                    )));
                }
                let from = plan.state();
                if from == to {
                    return Ok(None);
                }
                let allowed = matches!(
                    (from, to),
                    (PlanState::Proposed, PlanState::Active)
                        | (PlanState::Active, PlanState::Closed)
                        | (PlanState::Proposed | PlanState::Active, PlanState::Cancelled)
                );
                if !allowed {
                    return Err(Refusal::conflict(
                        "wrong_state",
                        format!("plan {id} is {}: it cannot become {}", state_name(from), state_name(to)),
                    ));
                }
                plan.state = to as i32;
                Ok(Some(Change::StateChanged(PlanStateChanged { from: from as i32, to: to as i32 })))
            })
            .await?;
        self.view_of(plan).await
    }

    /// A participant proposes new weights; in force once every participant consented.
    pub(crate) async fn propose_weights(&self, caller: &Caller, id: &str, weights: Weights) -> Result<PlanView, Error> {
        let county = caller.county()?.to_owned();
        let (plan, _) = self
            .apply_change(caller, id, "ProposeWeights", |plan| {
                if participant_answer(plan, &county).is_none() {
                    return Err(not_found(id));
                }
                accepted(plan, &county)?;
                if plan.state() == PlanState::Cancelled {
                    return Err(Refusal::conflict("wrong_state", format!("plan {id} was cancelled")));
                }
                check_weights(plan, &weights)?;
                plan.weights_proposal = Some(WeightsProposal {
                    weights: Some(weights.clone()),
                    proposed_by: county.clone(),
                    proposed_at: Some(now()),
                    consented: vec![county.clone()],
                });
                put_in_force_if_agreed(plan);
                Ok(Some(Change::WeightsProposed(WeightsProposed { weights: Some(weights.clone()) })))
            })
            .await?;
        self.view_of(plan).await
    }

    /// The caller's county consents to the proposed weights.
    pub(crate) async fn consent_weights(&self, caller: &Caller, id: &str) -> Result<PlanView, Error> {
        let county = caller.county()?.to_owned();
        let (plan, _) = self
            .apply_change(caller, id, "ConsentWeights", |plan| {
                if participant_answer(plan, &county).is_none() {
                    return Err(not_found(id));
                }
                accepted(plan, &county)?;
                let Some(proposal) = plan.weights_proposal.as_mut() else {
                    return Err(Refusal::conflict(
                        "no_weights_proposal",
                        format!("plan {id} has no weights waiting for consent"),
                    ));
                };
                if proposal.consented.contains(&county) {
                    return Ok(None);
                }
                proposal.consented.push(county.clone());
                let in_force = put_in_force_if_agreed(plan);
                Ok(Some(Change::WeightsConsented(WeightsConsented { county: county.clone(), in_force })))
            })
            .await?;
        self.view_of(plan).await
    }

    /// The caller's county follows (or stops following) the plan's channel; a new follower gets
    /// everything the channel already holds for it.
    pub(crate) async fn subscribe_channel(
        &self,
        caller: &Caller,
        id: &str,
        subscribe: bool,
    ) -> Result<PlanView, Error> {
        let county = caller.county()?.to_owned();
        let (plan, _) = self
            .apply_change(caller, id, "SubscribeChannel", |plan| {
                if participant_answer(plan, &county).is_none() {
                    return Err(not_found(id));
                }
                if plan.state() == PlanState::Cancelled && subscribe {
                    return Err(Refusal::conflict("wrong_state", format!("plan {id} was cancelled")));
                }
                let following = plan.channel_subscribers.contains(&county);
                if following == subscribe {
                    return Ok(None);
                }
                if subscribe {
                    plan.channel_subscribers.push(county.clone());
                } else {
                    plan.channel_subscribers.retain(|c| c != &county);
                }
                Ok(Some(Change::ChannelSubscription(ChannelSubscription {
                    county: county.clone(),
                    subscribed: subscribe,
                })))
            })
            .await?;
        if subscribe {
            self.catch_up(&plan, &county).await?;
        }
        self.view_of(plan).await
    }

    /// Divides `pool` among a closed plan's participants: for staff and the plan's participants.
    pub(crate) async fn settle(&self, caller: &Caller, id: &str, pool: i64) -> Result<Settlement, Error> {
        let plan = self.inner.store.plan(id).await?.map(|p| p.value);
        let plan = plan.filter(|p| match caller {
            Caller::County(county) => is_participant(p, county),
            Caller::Staff(_) | Caller::Timer => true,
        });
        let plan = plan.ok_or_else(|| not_found(id))?;
        let contributions = self.inner.store.contributions(id).await?;
        Ok(bashu_coverage_core::settle(&plan, &contributions, pool, now())?)
    }

    /// Applies `change` to plan `id` by compare-and-set; when it changed something, publishes
    /// the event and audit entry it recorded (after any earlier ones still in the outbox). The
    /// plan as it now stands, and whether this call changed it.
    pub(crate) async fn apply_change(
        &self,
        caller: &Caller,
        id: &str,
        method: &str,
        mut change: impl FnMut(&mut Plan) -> Result<Option<Change>, Refusal>,
    ) -> Result<(Plan, bool), Error> {
        let actor = caller.actor();
        let mut previous = None;
        let mut changed = false;
        let plan = self
            .inner
            .store
            .change_plan(id, |plan| {
                // Each attempt starts afresh: an attempt that lost to another writer leaves nothing.
                (previous, changed) = (None, false);
                let snapshot = plan.clone();
                let Some(change) = change(plan)? else { return Ok(false) };
                let at = now();
                previous = Outbox::take(plan);
                plan.sequence += 1;
                plan.updated_at = Some(at);
                let event = PlanEvent {
                    plan_id: plan.id.clone(),
                    sequence: plan.sequence,
                    actor: actor.clone(),
                    at: Some(at),
                    change: Some(change),
                };
                let audit = audit_entry(caller, method, &snapshot, plan, &event);
                Outbox { event, audit: Some(audit) }.put(plan);
                changed = true;
                Ok(true)
            })
            .await?;
        if changed && let Some(outbox) = Outbox::of(&plan) {
            self.published(&plan, previous.as_ref(), &outbox).await?;
        }
        Ok((plan, changed))
    }

    /// Publishes what the record's outbox held before this change (if a crash kept it there),
    /// then this change's event and audit entry, then empties the outbox if nothing changed the
    /// plan since.
    async fn published(&self, plan: &Plan, previous: Option<&Outbox>, outbox: &Outbox) -> Result<(), Error> {
        if let Some(previous) = previous {
            self.publish_outbox(plan, previous).await?;
        }
        self.publish_outbox(plan, outbox).await?;
        self.clear_outbox(&plan.id, outbox.event.sequence).await
    }

    /// Publishes an outbox's event and its audit entry. Both are idempotent (message ids from
    /// the plan and the sequence): publishing them again stores nothing.
    pub(crate) async fn publish_outbox(&self, plan: &Plan, outbox: &Outbox) -> Result<(), Error> {
        self.publish_event(plan, &outbox.event).await?;
        if let Some(audit) = &outbox.audit {
            self.inner.bus.publish(audit).await?;
        }
        Ok(())
    }

    /// Publishes a plan's event, and for a flagged phase the notice to its owner (on the owner's
    /// channel consumer, made for it if need be). Both are idempotent: a repeat stores nothing.
    async fn publish_event(&self, plan: &Plan, event: &PlanEvent) -> Result<(), Error> {
        self.inner.bus.publish(event).await?;
        if let Some(Change::PhaseFlagged(flagged)) = &event.change
            && !flagged.owner.is_empty()
        {
            self.inner.bus.coverage().provision_channel_consumer(&flagged.owner).await?;
            let notice = PhaseNotice {
                plan_id: plan.id.clone(),
                county: flagged.owner.clone(),
                topic: plan.topic.clone(),
                flagged: Some(flagged.clone()),
            };
            self.inner.bus.publish(&notice).await?;
        }
        Ok(())
    }

    /// Empties the outbox of plan `id` if it still holds event `sequence`.
    pub(crate) async fn clear_outbox(&self, id: &str, sequence: u64) -> Result<(), Error> {
        self.inner
            .store
            .change_plan(id, |plan| {
                let holds = plan.outbox.as_ref().is_some_and(|e| e.sequence == sequence);
                if holds {
                    Outbox::take(plan);
                }
                Ok(holds)
            })
            .await?;
        Ok(())
    }
}

/// The audit entry of a change by `caller` (the plans as callers are shown them, before and
/// after), identified by the plan and the change's sequence.
fn audit_entry(caller: &Caller, method: &str, before: &Plan, after: &Plan, event: &PlanEvent) -> AuditEvent {
    let json = |plan: &Plan| {
        if plan.id.is_empty() { String::new() } else { serde_json::to_string(&shown(plan.clone())).unwrap_or_default() }
    };
    AuditEvent {
        id: format!("coverage-{}-{}", event.plan_id, event.sequence),
        actor: caller.actor(),
        role: caller.role(),
        method: format!("/bashu.coverage.v1.CoverageService/{method}"),
        target: format!("coverage plan {}", event.plan_id),
        at: event.at,
        before_json: json(before),
        after_json: json(after),
        service: "coverage".into(),
    }
}

/// Puts the proposed weights in force when every participant has consented; says whether it did.
fn put_in_force_if_agreed(plan: &mut Plan) -> bool {
    let Some(proposal) = plan.weights_proposal.as_ref() else { return false };
    let everyone = plan
        .participants
        .iter()
        .filter(|p| p.answer() == Answer::Accepted)
        .all(|p| proposal.consented.contains(&p.county));
    if everyone {
        plan.weights = plan.weights_proposal.take().and_then(|p| p.weights);
    }
    everyone
}

/// Whether `stored` is what `proposed` asks for (a county's retry), whatever has happened since.
fn same_proposal(stored: &Plan, proposed: &Plan) -> bool {
    let phases = |plan: &Plan| -> Vec<(String, String, Option<i64>, Vec<i32>)> {
        plan.phases
            .iter()
            .map(|p| (p.name.clone(), p.title.clone(), p.due_at.map(|t| t.seconds), p.kinds.clone()))
            .collect()
    };
    stored.proposer == proposed.proposer
        && stored.topic == proposed.topic
        && stored.description == proposed.description
        && stored.category == proposed.category
        && stored.window_start == proposed.window_start
        && stored.window_end == proposed.window_end
        && stored.invitees == proposed.invitees
        && phases(stored) == phases(proposed)
}
