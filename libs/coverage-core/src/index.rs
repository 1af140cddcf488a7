//! Every plan, followed into memory: what the phase timer and the duty board read on every round
//! instead of listing the bucket and reading each plan. It is a moment behind the bucket at most,
//! which neither minds: the timer changes a plan only by compare-and-set on the bucket, and the
//! board asks again in a few seconds.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use async_nats::jetstream::kv::Operation;
use bashu_bus::Followed;
use bashu_proto::coverage::v1::Plan;
use dashmap::DashMap;
use prost::Message;
use tokio_util::sync::CancellationToken;

use crate::{Error, PlanStore};

/// The plans as this replica last heard of them. Cheap to clone.
#[derive(Clone, Default)]
pub struct PlanIndex {
    plans: Arc<DashMap<String, Plan>>,
    current: Arc<AtomicBool>,
}

impl PlanIndex {
    /// Every plan, in id order, once the index has caught up with the bucket (None before, and
    /// while its watch is being opened again).
    pub fn plans(&self) -> Option<Vec<Plan>> {
        if !self.current.load(Ordering::Acquire) {
            return None;
        }
        let mut plans: Vec<Plan> = self.plans.iter().map(|entry| entry.value().clone()).collect();
        plans.sort_by(|a, b| a.id.cmp(&b.id));
        Some(plans)
    }
}

impl PlanStore {
    /// Keeps `index` following every plan until `shutdown` (run it as a task).
    pub async fn follow_plans(&self, index: PlanIndex, shutdown: CancellationToken) {
        bashu_bus::follow_keys(&self.kv, "plan.*", true, &shutdown, |followed| match followed {
            Followed::Opened => index.current.store(false, Ordering::Release),
            Followed::Entry(entry) => {
                let Some(id) = entry.key.strip_prefix("plan.") else { return };
                match entry.operation {
                    Operation::Put => match Plan::decode(entry.value) {
                        Ok(plan) => {
                            index.plans.insert(id.to_owned(), plan);
                        }
                        Err(error) => tracing::warn!(key = %entry.key, error = %error, "a stored plan does not decode"),
                    },
                    Operation::Delete | Operation::Purge => {
                        index.plans.remove(id);
                    }
                }
            }
            Followed::CaughtUp => index.current.store(true, Ordering::Release),
        })
        .await;
    }

    /// Every plan, in id order: from `index` when it has caught up, else read from the bucket.
    pub async fn plans_in(&self, index: &PlanIndex) -> Result<Vec<Plan>, Error> {
        match index.plans() {
            Some(plans) => Ok(plans),
            None => self.plans().await,
        }
    }
}
