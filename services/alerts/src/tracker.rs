//! The tracker: the one writer of every chain's per-county state. It reads the alert ledger in
//! order (issued, receipts, acknowledgements, escalations), keeps the chains in memory and in the
//! state bucket, and runs the escalation timers, which live in the stored chains and therefore
//! survive a restart.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, SystemTime},
};

use bashu_bus::{AlertTrackingEvent, Bus, Delivery, Failure, Retry};
use bashu_proto::{
    Timestamp,
    admin::v1::AuditEvent,
    alert::v1::{
        AlertChain, AlertEscalation, AlertIssued, CountyAlertState, CountyAlertStatus, MsgType, Severity, Status,
    },
    time::{from_system_time, to_system_time},
};
use bashu_registry::RegistryView;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{EscalationConfig, Result, fanout, state::StateStore};

/// Who is told at the last escalation step besides the desks.
pub const OPERATORS: &str = "operators";

pub(crate) struct Tracker {
    bus: Bus,
    store: StateStore,
    registry: RegistryView,
    config: EscalationConfig,
    board: Mutex<Board>,
}

#[derive(Default)]
struct Board {
    chains: HashMap<String, AlertChain>,
    chain_of: HashMap<String, String>,
}

impl Board {
    fn insert(&mut self, chain: AlertChain) {
        for key in &chain.alert_keys {
            self.chain_of.insert(key.clone(), chain.chain_key.clone());
        }
        self.chains.insert(chain.chain_key.clone(), chain);
    }

    fn county_of_alert(&mut self, alert_key: &str, county: &str) -> Option<(&mut AlertChain, usize)> {
        let chain = self.chains.get_mut(self.chain_of.get(alert_key)?)?;
        let index = chain.counties.iter().position(|c| c.county == county)?;
        Some((chain, index))
    }
}

fn is_open(state: CountyAlertState) -> bool {
    matches!(state, CountyAlertState::Sent | CountyAlertState::Received | CountyAlertState::Escalated)
}

fn at(time: SystemTime) -> Option<Timestamp> {
    Some(from_system_time(time))
}

fn due(deadline: &Option<Timestamp>, now: SystemTime) -> bool {
    deadline.as_ref().and_then(to_system_time).is_some_and(|d| d <= now)
}

impl Tracker {
    pub(crate) async fn load(
        bus: Bus,
        store: StateStore,
        registry: RegistryView,
        config: EscalationConfig,
    ) -> Result<Self> {
        let mut board = Board::default();
        for chain in store.all_chains().await? {
            board.insert(chain);
        }
        info!(chains = board.chains.len(), "alert chains loaded");
        Ok(Self { bus, store, registry, config, board: Mutex::new(board) })
    }

    /// How long a county has to acknowledge before the next escalation step; none for anything
    /// but an Actual alert (Test, Exercise and System messages are never escalated as real).
    fn deadline(&self, issued: &AlertIssued) -> Option<Duration> {
        let alert = issued.alert.as_ref()?;
        if alert.status() != Status::Actual || alert.msg_type() == MsgType::Cancel {
            return None;
        }
        let severity = alert
            .infos
            .iter()
            .map(|info| info.severity())
            .filter(|s| *s != Severity::Unspecified)
            .min_by_key(|s| *s as i32)
            .unwrap_or(Severity::Unknown);
        Some(self.config.deadline(severity))
    }

    /// Runs the escalation timer and the ledger consumer together, in this one future: if it is
    /// dropped (a crash, an abort) both stop, and nothing escalates from a dead instance.
    pub(crate) async fn run(
        self: Arc<Self>,
        retry: Retry,
        shutdown: CancellationToken,
    ) -> Result<(), bashu_bus::Error> {
        let timer = async {
            let tick = Duration::from_millis(self.config.tick_ms);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(tick) => {}
                }
                if let Err(error) = self.escalate_due().await {
                    warn!(error = %error, "escalation round failed; retried next tick");
                }
            }
        };
        let spec = self.bus.alert_tracker_consumer(retry);
        let tracker = self.clone();
        let handler = move |delivery: Delivery<AlertTrackingEvent>| {
            let tracker = tracker.clone();
            async move {
                if let AlertTrackingEvent::Impersonation { kind, sender, claimed, alert_key } = &delivery.event {
                    return Err(tracker
                        .refuse_impersonation(kind, sender, claimed, alert_key, delivery.stream_sequence)
                        .await);
                }
                tracker.handle(delivery.event).await.map_err(|e| Failure::Retry(e.to_string()))
            }
        };
        let consumed = self.bus.consume(spec, handler, shutdown.clone());
        let ((), consumed) = tokio::join!(timer, consumed);
        consumed
    }

    /// A county spoke for another: nothing changes in the chain, the operators' audit log says
    /// who tried, and the message goes to the dead letters with the reason.
    async fn refuse_impersonation(
        &self,
        kind: &str,
        sender: &str,
        claimed: &str,
        alert_key: &str,
        sequence: u64,
    ) -> Failure {
        let reason =
            format!("county {sender} sent an alert {kind} for county {claimed}: a county speaks only for itself");
        warn!(%sender, %claimed, %alert_key, kind, "alert {kind} for another county refused");
        let event = AuditEvent {
            // One record however often the message is redelivered.
            id: format!("alerts-refused-{sequence}"),
            actor: sender.to_owned(),
            role: "COUNTY".into(),
            method: format!("bashu.alert.{kind}"),
            target: format!("alert {alert_key} county {claimed}"),
            at: at(SystemTime::now()),
            before_json: String::new(),
            after_json: serde_json::json!({ "refused": reason }).to_string(),
            service: "alerts".into(),
        };
        match self.bus.publish(&event).await {
            Ok(_) => Failure::Permanent(reason),
            // Not dead-lettered before it is audited: tried again.
            Err(error) => Failure::Retry(format!("{reason}; its audit event was not recorded: {error}")),
        }
    }

    async fn handle(&self, event: AlertTrackingEvent) -> Result<()> {
        let mut board = self.board.lock().await;
        let changed = match event {
            // Refused before it gets here.
            AlertTrackingEvent::Impersonation { .. } => None,
            AlertTrackingEvent::Issued(issued) => self.issued(&mut board, *issued),
            AlertTrackingEvent::Receipt(receipt) => {
                let Some((chain, i)) = board.county_of_alert(&receipt.alert_key, &receipt.county) else {
                    return Ok(());
                };
                let status = &mut chain.counties[i];
                if status.latest_alert_key != receipt.alert_key || status.received_at.is_some() {
                    return Ok(());
                }
                status.received_at = receipt.received_at.or_else(|| at(SystemTime::now()));
                if status.state() == CountyAlertState::Sent {
                    status.set_state(CountyAlertState::Received);
                }
                Some(chain.chain_key.clone())
            }
            AlertTrackingEvent::Acknowledged(ack) => {
                let Some((chain, i)) = board.county_of_alert(&ack.alert_key, &ack.county) else {
                    return Ok(());
                };
                let status = &mut chain.counties[i];
                if status.latest_alert_key != ack.alert_key || !is_open(status.state()) {
                    return Ok(());
                }
                status.set_state(CountyAlertState::Acknowledged);
                status.acknowledged_at = ack.acknowledged_at.or_else(|| at(SystemTime::now()));
                status.acknowledged_by = ack.acknowledged_by;
                status.note = ack.note;
                status.next_deadline = None;
                Some(chain.chain_key.clone())
            }
            AlertTrackingEvent::Escalated(escalation) => {
                let deadline = self.config.deadline_for_chain(&board.chains, &escalation.chain_key);
                let Some(chain) = board.chains.get_mut(&escalation.chain_key) else { return Ok(()) };
                let Some(status) = chain.counties.iter_mut().find(|c| c.county == escalation.county) else {
                    return Ok(());
                };
                if escalation.step <= status.escalation_step || !is_open(status.state()) {
                    return Ok(());
                }
                apply_step(status, escalation.step, deadline, SystemTime::now());
                Some(chain.chain_key.clone())
            }
        };
        if let Some(chain_key) = changed {
            self.store.put_chain(&board.chains[&chain_key]).await?;
        }
        Ok(())
    }

    fn issued(&self, board: &mut Board, issued: AlertIssued) -> Option<String> {
        if board.chain_of.contains_key(&issued.alert_key) {
            return None;
        }
        let accepted_at = issued.accepted_at.as_ref().and_then(to_system_time).unwrap_or_else(SystemTime::now);
        let deadline = self.deadline(&issued);
        let cancel = issued.alert.as_ref().is_some_and(|a| a.msg_type() == MsgType::Cancel);
        let chain = board.chains.entry(issued.chain_key.clone()).or_insert_with(|| AlertChain {
            chain_key: issued.chain_key.clone(),
            desk_id: issued.desk_id.clone(),
            issued_at: at(accepted_at),
            ..Default::default()
        });
        chain.alert_keys.push(issued.alert_key.clone());
        chain.latest_alert_key = issued.alert_key.clone();
        chain.latest = issued.alert;
        chain.cancelled |= cancel;
        for county in &issued.counties {
            let index = match chain.counties.iter().position(|c| &c.county == county) {
                Some(index) => index,
                None => {
                    chain.counties.push(CountyAlertStatus { county: county.clone(), ..Default::default() });
                    chain.counties.len() - 1
                }
            };
            let status = &mut chain.counties[index];
            // A newer message of the chain needs a new acknowledgement: the county starts over.
            *status = CountyAlertStatus {
                county: county.clone(),
                sent_at: at(accepted_at),
                latest_alert_key: issued.alert_key.clone(),
                ..Default::default()
            };
            if cancel {
                status.set_state(CountyAlertState::Cancelled);
            } else {
                status.set_state(CountyAlertState::Sent);
                status.next_deadline = deadline.map(|d| from_system_time(accepted_at + d));
            }
        }
        board.chain_of.insert(issued.alert_key, issued.chain_key.clone());
        Some(issued.chain_key)
    }

    /// One round of the escalation timers: expire what has expired, and take the next step for
    /// every open county whose deadline has passed.
    async fn escalate_due(&self) -> Result<()> {
        let now = SystemTime::now();
        let mut board = self.board.lock().await;
        let mut changed = Vec::new();
        let mut steps = Vec::new();
        for chain in board.chains.values_mut() {
            if chain.cancelled {
                continue;
            }
            let expires = chain
                .latest
                .as_ref()
                .and_then(|a| a.infos.iter().filter_map(|i| i.expires.as_ref().and_then(to_system_time)).max());
            let mut chain_changed = false;
            for status in chain.counties.iter_mut().filter(|s| is_open(s.state())) {
                if expires.is_some_and(|e| e <= now) {
                    status.set_state(CountyAlertState::Expired);
                    status.next_deadline = None;
                    chain_changed = true;
                } else if due(&status.next_deadline, now) && status.escalation_step < 2 {
                    steps.push((chain.chain_key.clone(), status.county.clone(), status.escalation_step + 1));
                }
            }
            if chain_changed {
                changed.push(chain.chain_key.clone());
            }
        }
        for (chain_key, county, step) in steps {
            let chain = &board.chains[&chain_key];
            let escalation = AlertEscalation {
                chain_key: chain_key.clone(),
                alert_key: chain.latest_alert_key.clone(),
                county: county.clone(),
                step,
                notified: if step >= 2 { self.notified(&county) } else { Vec::new() },
                at: at(now),
            };
            if step == 1 {
                // The re-send: the newest message of the chain again, live and durable.
                let issued = AlertIssued {
                    alert: chain.latest.clone(),
                    alert_key: chain.latest_alert_key.clone(),
                    chain_key: chain_key.clone(),
                    ..Default::default()
                };
                let resend = fanout::delivery(issued, 1);
                self.bus.publish_alert_live(&resend, std::slice::from_ref(&county)).await?;
                self.bus.publish_alert_durable(&resend, std::slice::from_ref(&county)).await?;
            }
            self.bus.publish(&escalation).await?;
            warn!(chain_key = %chain_key, county = %county, step, notified = ?escalation.notified, "alert escalated");
            let deadline = self.config.deadline_for_chain(&board.chains, &chain_key);
            let chain = board.chains.get_mut(&chain_key).expect("chain in board");
            if let Some(status) = chain.counties.iter_mut().find(|c| c.county == county) {
                apply_step(status, step, deadline, now);
            }
            changed.push(chain_key);
        }
        changed.sort();
        changed.dedup();
        for chain_key in changed {
            self.store.put_chain(&board.chains[&chain_key]).await?;
        }
        Ok(())
    }

    /// The desks of a county's prefecture and province, and the operators.
    fn notified(&self, county: &str) -> Vec<String> {
        let registry = self.registry.current();
        let mut notified: Vec<String> = registry
            .desks()
            .filter(|desk| desk.areas.iter().any(|area| area == &county[..4] || area == &county[..2]))
            .map(|desk| desk.id.clone())
            .collect();
        notified.push(OPERATORS.into());
        notified
    }
}

fn apply_step(status: &mut CountyAlertStatus, step: u32, deadline: Duration, now: SystemTime) {
    status.escalation_step = step;
    if step >= 2 {
        status.set_state(CountyAlertState::Escalated);
        status.next_deadline = None;
    } else {
        status.next_deadline = Some(from_system_time(now + deadline));
    }
}

impl EscalationConfig {
    fn deadline(&self, severity: Severity) -> Duration {
        Duration::from_millis(match severity {
            Severity::Extreme => self.extreme_ms,
            Severity::Severe => self.severe_ms,
            Severity::Moderate => self.moderate_ms,
            Severity::Minor => self.minor_ms,
            Severity::Unknown | Severity::Unspecified => self.unknown_ms,
        })
    }

    fn deadline_for_chain(&self, chains: &HashMap<String, AlertChain>, chain_key: &str) -> Duration {
        let severity = chains
            .get(chain_key)
            .and_then(|c| c.latest.as_ref())
            .and_then(|a| {
                a.infos.iter().map(|i| i.severity()).filter(|s| *s != Severity::Unspecified).min_by_key(|s| *s as i32)
            })
            .unwrap_or(Severity::Unknown);
        self.deadline(severity)
    }
}
