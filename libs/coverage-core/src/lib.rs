//! The joint coverage (协同报道) domain's contract, shared by the coverage service, ingest (which
//! checks a story's plan and phase) and the duty board: what makes a plan valid, the plans
//! bucket's keys and its compare-and-set updates, what a story contributed, the chain phase by
//! phase, and the settlement that divides a pool by the plan's weights.

mod chain;
mod error;
mod index;
mod plan;
mod settlement;
mod store;

pub use chain::{chain_of, earned_flag};
pub use error::Error;
pub use index::PlanIndex;
pub use plan::{
    MAX_OPEN_PLANS_PER_PROPOSER, check_contribution, check_weights, is_participant, new_plan, participant_answer,
    plan_id_problem,
};
pub use settlement::{settle, settlement_csv};
pub use store::{PlanStore, Versioned};
