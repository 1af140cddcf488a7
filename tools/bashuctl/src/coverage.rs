//! `bashuctl coverage …`: joint coverage plans as an operator sees them (a viewer's or an
//! operator's token): the plans, one plan's chain, and the settlement of a closed plan.

use bashu_proto::coverage::v1::{
    GetPlanRequest, ListPlansRequest, PlanState, PlanView, SettleRequest, Settlement,
    coverage_service_client::CoverageServiceClient,
};
use clap::Subcommand;

use crate::{
    client::{Failure, StaffChannel},
    output::{Out, say, when},
};

/// `bashuctl coverage …`.
#[derive(Subcommand)]
pub(crate) enum CoverageCommand {
    /// Every plan, newest first.
    List {
        /// Only plans in this state: proposed, active, closed or cancelled.
        #[arg(long)]
        state: Option<String>,
    },
    /// One plan's chain: its phases, who delivered what, what is due soon or late.
    Show {
        /// The plan's id.
        #[arg(long)]
        plan: String,
    },
    /// Divides a pool among a closed plan's participants by its weights.
    Settle {
        /// The plan's id.
        #[arg(long)]
        plan: String,
        /// The pool, in whole units (yuan or points).
        #[arg(long)]
        pool: i64,
        /// One row per share and per contribution, with the evidence, as CSV.
        #[arg(long)]
        csv: bool,
    },
}

fn short(name: &str, prefix: &str) -> String {
    name.trim_start_matches(prefix).to_lowercase()
}

fn money(hundredths: u64) -> String {
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

/// Runs `bashuctl coverage …`.
pub(crate) async fn coverage(channel: StaffChannel, out: Out, command: CoverageCommand) -> Result<(), Failure> {
    let mut client = CoverageServiceClient::new(channel);
    match command {
        CoverageCommand::List { state } => {
            let state = match state.as_deref() {
                None => PlanState::Unspecified,
                Some(name) => PlanState::from_str_name(&format!("PLAN_STATE_{}", name.to_ascii_uppercase()))
                    .filter(|s| *s != PlanState::Unspecified)
                    .ok_or_else(|| Failure::usage(format!("--state {name}: proposed, active, closed or cancelled")))?,
            };
            let answer = client.list_plans(ListPlansRequest { state: state as i32 }).await?.into_inner();
            let rows = answer
                .plans
                .iter()
                .filter_map(|view| view.plan.as_ref().map(|plan| (plan, view)))
                .map(|(plan, view)| {
                    let accepted = plan.participants.iter().filter(|p| p.answer == 2).count();
                    let late = view.chain.iter().filter(|c| c.status == 3).count();
                    vec![
                        plan.id.clone(),
                        plan.topic.clone(),
                        short(plan.state().as_str_name(), "PLAN_STATE_"),
                        plan.proposer.clone(),
                        format!("{accepted}/{}", plan.participants.len()),
                        format!("{} ({late} late)", plan.phases.len()),
                    ]
                })
                .collect();
            out.show(&answer, &["plan", "topic", "state", "proposer", "accepted", "phases"], rows)
        }
        CoverageCommand::Show { plan } => {
            let view = client.get_plan(GetPlanRequest { plan_id: plan }).await?.into_inner();
            show_chain(out, &view)
        }
        CoverageCommand::Settle { plan, pool, csv } => {
            let settlement = client.settle(SettleRequest { plan_id: plan, pool }).await?.into_inner();
            if csv {
                say!("{}", bashu_coverage_core::settlement_csv(&settlement).trim_end());
                return Ok(());
            }
            show_settlement(out, &settlement)
        }
    }
}

fn show_chain(out: Out, view: &PlanView) -> Result<(), Failure> {
    let mut rows = Vec::new();
    for chain in &view.chain {
        let Some(phase) = chain.phase.as_ref() else { continue };
        let status = short(chain.status().as_str_name(), "PHASE_STATUS_");
        let due = when(&phase.due_at);
        if chain.items.is_empty() {
            rows.push(vec![
                phase.name.clone(),
                status.clone(),
                phase.owner.clone(),
                due.clone(),
                "-".into(),
                String::new(),
            ]);
        }
        for item in &chain.items {
            let mut notes = vec![item.kind.clone(), if item.on_time { "on time".into() } else { "late".into() }];
            if item.withdrawn {
                notes.push("withdrawn".into());
            }
            if !item.used_by.is_empty() {
                notes.push(format!("used by {}", item.used_by.join(" ")));
            }
            rows.push(vec![
                phase.name.clone(),
                status.clone(),
                phase.owner.clone(),
                due.clone(),
                format!("{}/{} {}", item.origin_county, item.story_id, item.headline),
                notes.join(", "),
            ]);
        }
    }
    out.show(view, &["phase", "status", "owner", "due", "contribution", "notes"], rows)
}

fn show_settlement(out: Out, settlement: &Settlement) -> Result<(), Failure> {
    let mut rows: Vec<Vec<String>> = settlement
        .shares
        .iter()
        .map(|share| {
            let points = share
                .phase_points_hundredths
                .iter()
                .map(|(phase, points)| format!("{phase} {}", money(*points)))
                .collect::<Vec<_>>()
                .join(", ");
            vec![share.county.clone(), money(share.amount_hundredths), money(share.proposer_hundredths), points]
        })
        .collect();
    if settlement.unallocated_hundredths > 0 {
        rows.push(vec![
            "(unallocated)".into(),
            money(settlement.unallocated_hundredths),
            String::new(),
            settlement.unallocated_reasons.join("; "),
        ]);
    }
    out.show(settlement, &["county", "amount", "proposer share", "points per phase"], rows)
}
