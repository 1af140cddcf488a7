//! The alert status board, read from the state bucket by any process (admin serves it, the CLI
//! and the duty board show it).

use std::collections::HashMap;

use bashu_bus::Bus;
use bashu_proto::{
    admin::v1::AlertChainSummary,
    alert::v1::{AlertChain, Severity},
    time::to_system_time,
};

use crate::{AlertState, Result};

/// Reads alert chains and their per-county state.
#[derive(Clone)]
pub struct AlertBoard {
    store: AlertState,
}

impl AlertBoard {
    /// Opens the board over the alert state bucket.
    pub async fn open(bus: &Bus) -> Result<Self> {
        Ok(Self { store: AlertState::open(bus).await? })
    }

    /// Every chain, newest first; `active_only` leaves out cancelled and expired ones.
    pub async fn chains(&self, active_only: bool) -> Result<Vec<AlertChainSummary>> {
        let now = std::time::SystemTime::now();
        let mut summaries: Vec<AlertChainSummary> = self
            .store
            .all_chains()
            .await?
            .into_iter()
            .map(summarize)
            .filter(|s| {
                !active_only || !(s.cancelled || s.expires.as_ref().and_then(to_system_time).is_some_and(|e| e <= now))
            })
            .collect();
        summaries.sort_by_key(|s| std::cmp::Reverse(s.issued_at.map(|t| (t.seconds, t.nanos))));
        Ok(summaries)
    }

    /// The chain of an alert, found by the key of any of its messages.
    pub async fn status(&self, alert_key: &str) -> Result<AlertChain> {
        self.store.chain_of_alert(alert_key).await
    }
}

fn summarize(chain: AlertChain) -> AlertChainSummary {
    let mut counts: HashMap<String, u32> = HashMap::new();
    for county in &chain.counties {
        *counts.entry(county.state().as_str_name().to_owned()).or_default() += 1;
    }
    let latest = chain.latest.clone().unwrap_or_default();
    let first_info = latest.infos.first().cloned().unwrap_or_default();
    let severity =
        latest.infos.iter().map(|i| i.severity()).filter(|s| *s != Severity::Unspecified).min_by_key(|s| *s as i32);
    let expires = latest.infos.iter().filter_map(|i| i.expires).max_by_key(|t| (t.seconds, t.nanos));
    AlertChainSummary {
        chain_key: chain.chain_key,
        latest_alert_key: chain.latest_alert_key,
        desk_id: chain.desk_id,
        identifier: latest.identifier.clone(),
        event: first_info.event,
        severity: severity.unwrap_or(Severity::Unknown) as i32,
        status: latest.status,
        msg_type: latest.msg_type,
        issued_at: chain.issued_at,
        expires,
        cancelled: chain.cancelled,
        counts,
    }
}
