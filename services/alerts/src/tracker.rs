//! The tracker: every chain's per-county state, from the alert ledger (issued, receipts,
//! acknowledgements, escalations), and the escalation timers.
//!
//! Any number of trackers may run at once. A chain changes only by compare-and-set on its
//! revision in the state bucket, so two trackers never overwrite each other. Every tracker follows
//! the stored chains (a watch) to know which deadlines are due; a due step is claimed in the bucket
//! first, so one tracker takes it, and a claim whose tracker died runs out and is taken by
//! another. The step's event carries its idempotency key besides, so the ledger holds it once
//! even if two trackers took it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use bashu_alerts_core::AlertState;
use bashu_bus::{AlertTrackingEvent, Bus, Delivery, Failure, Followed, Retry};
use bashu_proto::{
    Timestamp,
    admin::v1::AuditEvent,
    alert::v1::{
        AlertChain, AlertEscalation, AlertIssued, CountyAlertState, CountyAlertStatus, MsgType, Severity, Status,
    },
    time::{from_system_time, to_system_time},
};
use bashu_registry::RegistryView;
use prost::Message as _;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::{Error, EscalationConfig, Result, fanout, state::StateStore};

/// Who is told at the last escalation step besides the desks.
pub const OPERATORS: &str = "operators";

/// How long a tracker has to finish a step it claimed before another may take it over.
const STEP_CLAIM: Duration = Duration::from_secs(10);

/// Messages of the alert ledger one tracker handles at once.
const PARALLEL: usize = 64;

pub(crate) struct Tracker {
    bus: Bus,
    store: StateStore,
    registry: RegistryView,
    config: EscalationConfig,
    /// The stored chains as the watch last saw them: what the timers look at (never written
    /// back; every change goes to the bucket by compare-and-set).
    seen: Mutex<HashMap<String, AlertChain>>,
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

/// What one ledger event does to a chain: changed it, nothing to do, or not yet (the chain does
/// not show the alert it refers to: its issue is still being tracked).
enum Applied {
    Changed,
    Unchanged,
    NotYet,
}

/// A receipt or acknowledgement a county sent for another county, as it arrived.
struct Refused<'a> {
    kind: &'a str,
    sender: &'a str,
    claimed: &'a str,
    alert_key: &'a str,
    subject: &'a str,
}

/// A step of the escalation that is due: re-send (1) or escalate (2).
struct DueStep {
    chain_key: String,
    county: String,
    step: u32,
}

impl Tracker {
    pub(crate) fn new(bus: Bus, store: StateStore, registry: RegistryView, config: EscalationConfig) -> Self {
        Self { bus, store, registry, config, seen: Mutex::new(HashMap::new()) }
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

    /// Runs the ledger consumer, the watch of stored chains and the escalation timer together, in
    /// this one future: if it is dropped (a crash, an abort) all stop.
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
        let spec = self.bus.alerts().tracker_consumer(retry).in_parallel(PARALLEL);
        let tracker = self.clone();
        let handler = move |delivery: Delivery<AlertTrackingEvent>| {
            let tracker = tracker.clone();
            async move {
                if let AlertTrackingEvent::Impersonation { kind, sender, claimed, alert_key } = &delivery.event {
                    let refused = Refused { kind, sender, claimed, alert_key, subject: &delivery.subject };
                    return Err(tracker.refuse_impersonation(refused, delivery.stream_sequence).await);
                }
                tracker.handle(delivery.event).await
            }
        };
        // One chain's issue and its escalations in order; one alert's receipts and
        // acknowledgements in order (a chain's other changes meet by compare-and-set).
        let order = |event: &AlertTrackingEvent| match event {
            AlertTrackingEvent::Issued(issued) => issued.chain_key.clone(),
            AlertTrackingEvent::Escalated(escalation) => escalation.chain_key.clone(),
            AlertTrackingEvent::Receipt(receipt) => receipt.alert_key.clone(),
            AlertTrackingEvent::Acknowledged(ack) => ack.alert_key.clone(),
            AlertTrackingEvent::Impersonation { alert_key, .. } => alert_key.clone(),
        };
        let consumed = self.bus.consume_keyed(spec, order, handler, shutdown.clone());
        let ((), (), consumed) = tokio::join!(self.follow_chains(&shutdown), timer, consumed);
        consumed
    }

    /// Keeps `seen` current with the stored chains, until `shutdown`.
    async fn follow_chains(&self, shutdown: &CancellationToken) {
        bashu_bus::follow_keys(self.store.bucket(), "chain.>", true, shutdown, |followed| {
            let Followed::Entry(entry) = followed else { return };
            let Some(chain_key) = AlertState::chain_of_key(&entry.key) else { return };
            let mut seen = self.seen.lock().expect("seen chains");
            match AlertChain::decode(entry.value) {
                Ok(chain) if entry.operation == async_nats::jetstream::kv::Operation::Put => {
                    seen.insert(chain_key.to_owned(), chain);
                }
                _ => {
                    seen.remove(chain_key);
                }
            }
        })
        .await;
    }

    /// A county spoke for another: nothing changes in the chain, the operators' audit log says
    /// who tried, and the message goes to the dead letters with the reason.
    async fn refuse_impersonation(&self, refused: Refused<'_>, sequence: u64) -> Failure {
        let Refused { kind, sender, claimed, alert_key, subject } = refused;
        let reason =
            format!("county {sender} sent an alert {kind} for county {claimed}: a county speaks only for itself");
        warn!(%sender, %claimed, %alert_key, kind, "alert {kind} for another county refused");
        let event = AuditEvent {
            // One record however often the message is redelivered.
            id: format!("alerts-refused-{sequence}"),
            actor: sender.to_owned(),
            role: "COUNTY".into(),
            // The subject it came on: the door it used.
            method: subject.to_owned(),
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

    /// Applies one ledger event to its chain by compare-and-set.
    async fn handle(&self, event: AlertTrackingEvent) -> Result<(), Failure> {
        let chain_key = match &event {
            AlertTrackingEvent::Issued(issued) => issued.chain_key.clone(),
            AlertTrackingEvent::Escalated(escalation) => escalation.chain_key.clone(),
            AlertTrackingEvent::Receipt(receipt) => self.chain_key_of(&receipt.alert_key).await?,
            AlertTrackingEvent::Acknowledged(ack) => self.chain_key_of(&ack.alert_key).await?,
            // Refused before it gets here.
            AlertTrackingEvent::Impersonation { .. } => return Ok(()),
        };
        loop {
            let loaded = self.store.chain_at(&chain_key).await.map_err(retry)?;
            let (mut chain, revision) = match loaded {
                Some(loaded) => loaded,
                None => match &event {
                    AlertTrackingEvent::Issued(issued) => (
                        AlertChain {
                            chain_key: chain_key.clone(),
                            desk_id: issued.desk_id.clone(),
                            issued_at: issued.accepted_at.or_else(|| at(SystemTime::now())),
                            ..Default::default()
                        },
                        0,
                    ),
                    _ => return Err(Failure::Retry(format!("chain {chain_key} is not tracked yet"))),
                },
            };
            let applied = match &event {
                AlertTrackingEvent::Issued(issued) => self.issued(&mut chain, issued),
                AlertTrackingEvent::Receipt(receipt) => {
                    apply_to_county(&mut chain, &receipt.alert_key, &receipt.county, |status| {
                        if status.received_at.is_some() {
                            return false;
                        }
                        status.received_at = receipt.received_at.or_else(|| at(SystemTime::now()));
                        if status.state() == CountyAlertState::Sent {
                            status.set_state(CountyAlertState::Received);
                        }
                        true
                    })
                }
                AlertTrackingEvent::Acknowledged(ack) => {
                    apply_to_county(&mut chain, &ack.alert_key, &ack.county, |status| {
                        if !is_open(status.state()) {
                            return false;
                        }
                        status.set_state(CountyAlertState::Acknowledged);
                        status.acknowledged_at = ack.acknowledged_at.or_else(|| at(SystemTime::now()));
                        status.acknowledged_by = ack.acknowledged_by.clone();
                        status.recorded_by = ack.recorded_by.clone();
                        status.note = ack.note.clone();
                        status.next_deadline = None;
                        true
                    })
                }
                AlertTrackingEvent::Escalated(escalation) => {
                    let deadline = self.config.deadline_of(&chain);
                    match chain.counties.iter_mut().find(|c| c.county == escalation.county) {
                        Some(status) if escalation.step > status.escalation_step && is_open(status.state()) => {
                            apply_step(status, escalation.step, deadline, SystemTime::now());
                            Applied::Changed
                        }
                        _ => Applied::Unchanged,
                    }
                }
                AlertTrackingEvent::Impersonation { .. } => Applied::Unchanged,
            };
            match applied {
                Applied::Unchanged => return Ok(()),
                Applied::NotYet => {
                    return Err(Failure::Retry(format!("chain {chain_key} does not show this alert yet")));
                }
                Applied::Changed => {
                    if self.store.store_chain(&chain, revision).await.map_err(retry)? {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// The chain an alert belongs to, from intake's record of it.
    async fn chain_key_of(&self, alert_key: &str) -> Result<String, Failure> {
        match self.store.record(alert_key).await.map_err(retry)? {
            Some(record) => Ok(record.chain_key),
            None => Err(Failure::Permanent(format!("no alert {alert_key} was accepted"))),
        }
    }

    fn issued(&self, chain: &mut AlertChain, issued: &AlertIssued) -> Applied {
        if chain.alert_keys.contains(&issued.alert_key) {
            return Applied::Unchanged;
        }
        let accepted_at = issued.accepted_at.as_ref().and_then(to_system_time).unwrap_or_else(SystemTime::now);
        let deadline = self.deadline(issued);
        let cancel = issued.alert.as_ref().is_some_and(|a| a.msg_type() == MsgType::Cancel);
        chain.alert_keys.push(issued.alert_key.clone());
        chain.latest_alert_key = issued.alert_key.clone();
        chain.latest = issued.alert.clone();
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
        Applied::Changed
    }

    /// One round of the escalation timers: expire what has expired, and take the next step for
    /// every open county whose deadline has passed and whose step nobody else holds.
    async fn escalate_due(&self) -> Result<()> {
        let now = SystemTime::now();
        let (expired, steps) = {
            let seen = self.seen.lock().expect("seen chains");
            let mut expired = Vec::new();
            let mut steps = Vec::new();
            for chain in seen.values().filter(|c| !c.cancelled) {
                let open: Vec<&CountyAlertStatus> = chain.counties.iter().filter(|s| is_open(s.state())).collect();
                if open.is_empty() {
                    continue;
                }
                if expires_of(chain).is_some_and(|e| e <= now) {
                    expired.push(chain.chain_key.clone());
                    continue;
                }
                for status in open {
                    if due(&status.next_deadline, now) && status.escalation_step < 2 {
                        steps.push(DueStep {
                            chain_key: chain.chain_key.clone(),
                            county: status.county.clone(),
                            step: status.escalation_step + 1,
                        });
                    }
                }
            }
            (expired, steps)
        };
        for chain_key in expired {
            self.expire(&chain_key, now).await?;
        }
        for step in steps {
            if self.store.claim_step(&step.chain_key, &step.county, step.step, STEP_CLAIM).await? {
                self.take_step(&step, now).await?;
            }
        }
        Ok(())
    }

    /// Every open county of an expired chain becomes expired.
    async fn expire(&self, chain_key: &str, now: SystemTime) -> Result<()> {
        loop {
            let Some((mut chain, revision)) = self.store.chain_at(chain_key).await? else { return Ok(()) };
            if chain.cancelled || expires_of(&chain).is_none_or(|e| e > now) {
                return Ok(());
            }
            let mut changed = false;
            for status in chain.counties.iter_mut().filter(|s| is_open(s.state())) {
                status.set_state(CountyAlertState::Expired);
                status.next_deadline = None;
                changed = true;
            }
            if !changed || self.store.store_chain(&chain, revision).await? {
                return Ok(());
            }
        }
    }

    /// Takes one claimed step: the re-send or the escalation, its ledger event, and the chain.
    async fn take_step(&self, step: &DueStep, now: SystemTime) -> Result<()> {
        loop {
            let Some((mut chain, revision)) = self.store.chain_at(&step.chain_key).await? else { return Ok(()) };
            let deadline = self.config.deadline_of(&chain);
            let latest_alert_key = chain.latest_alert_key.clone();
            let latest = chain.latest.clone();
            let Some(status) = chain.counties.iter_mut().find(|c| c.county == step.county) else { return Ok(()) };
            // Taken already, acknowledged meanwhile, or no longer due: nothing to do.
            if status.escalation_step >= step.step || !is_open(status.state()) || !due(&status.next_deadline, now) {
                return Ok(());
            }
            if step.step == 1 {
                // The re-send: the newest message of the chain again, live and durable.
                let issued = AlertIssued {
                    alert: latest,
                    alert_key: latest_alert_key.clone(),
                    chain_key: step.chain_key.clone(),
                    ..Default::default()
                };
                let resend = fanout::delivery(issued, 1);
                let county = std::slice::from_ref(&step.county);
                self.bus.alerts().publish_live(&resend, county).await?;
                self.bus.alerts().publish_durable(&resend, county).await?;
            }
            let escalation = AlertEscalation {
                chain_key: step.chain_key.clone(),
                alert_key: latest_alert_key,
                county: step.county.clone(),
                step: step.step,
                notified: if step.step >= 2 { self.notified(&step.county) } else { Vec::new() },
                at: at(now),
            };
            self.bus.publish(&escalation).await?;
            apply_step(status, step.step, deadline, now);
            if self.store.store_chain(&chain, revision).await? {
                warn!(chain_key = %step.chain_key, county = %step.county, step = step.step, notified = ?escalation.notified, "alert escalated");
                return Ok(());
            }
        }
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

/// Applies `change` to `county` of the chain if the chain's newest message to it is `alert_key`.
fn apply_to_county(
    chain: &mut AlertChain,
    alert_key: &str,
    county: &str,
    change: impl FnOnce(&mut CountyAlertStatus) -> bool,
) -> Applied {
    if !chain.alert_keys.iter().any(|key| key == alert_key) {
        return Applied::NotYet;
    }
    match chain.counties.iter_mut().find(|c| c.county == county) {
        // An acknowledgement of an older message of the chain does not count.
        Some(status) if status.latest_alert_key == alert_key => {
            if change(status) {
                Applied::Changed
            } else {
                Applied::Unchanged
            }
        }
        _ => Applied::Unchanged,
    }
}

fn expires_of(chain: &AlertChain) -> Option<SystemTime> {
    chain.latest.as_ref().and_then(|a| a.infos.iter().filter_map(|i| i.expires.as_ref().and_then(to_system_time)).max())
}

fn retry(error: Error) -> Failure {
    Failure::Retry(error.to_string())
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

    fn deadline_of(&self, chain: &AlertChain) -> Duration {
        let severity = chain
            .latest
            .as_ref()
            .and_then(|a| {
                a.infos.iter().map(|i| i.severity()).filter(|s| *s != Severity::Unspecified).min_by_key(|s| *s as i32)
            })
            .unwrap_or(Severity::Unknown);
        self.deadline(severity)
    }
}
