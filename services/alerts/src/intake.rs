//! Intake: a desk's signed CAP document becomes an `AlertIssued` stored once in the alert ledger,
//! or is refused with nothing delivered.

use bashu_proto::alert::v1::{
    AlertAccepted, AlertAcknowledgement, AlertChain, AlertIssued, AlertRecord, CapProblem, MsgType, Status,
    ValidateAlertResponse,
};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::{
    Alerts, Error, Result, alert_key,
    cap::{self, Problem},
    signature, targeting, xml_signature,
};

/// Who records an acknowledgement.
#[derive(Clone, Copy, Debug)]
pub enum Recorder<'a> {
    /// The county itself, by its own token.
    County,
    /// Staff on the county's behalf, through `door` (the gRPC method or HTTP route).
    Staff {
        /// Their token's holder.
        caller: &'a bashu_registry::Caller,
        /// The door they used, as the audit log names it.
        door: &'a str,
    },
}

/// A desk's submission as it arrived.
#[derive(Clone, Copy, Debug)]
pub struct Submission<'a> {
    /// The desk that claims to have signed it.
    pub desk_id: &'a str,
    /// Unix seconds when it was signed.
    pub timestamp: i64,
    /// The ed25519 signature (64 bytes).
    pub signature: &'a [u8],
    /// The exact CAP XML bytes.
    pub cap_xml: &'a [u8],
}

impl Alerts {
    /// Verifies, validates, authorises and accepts a desk's CAP document. `expected` is the
    /// msgType the caller asked for (gRPC's Issue, Update, Cancel), if any.
    /// Each submission is a trace of its own (a root span).
    #[tracing::instrument(name = "alerts.submit", parent = None, skip_all, fields(desk = %submission.desk_id))]
    pub async fn submit(&self, submission: Submission<'_>, expected: Option<MsgType>) -> Result<AlertAccepted> {
        let result = self.accept(submission, expected).await;
        if let Err(error) = &result {
            match error {
                Error::Bus(_) | Error::Store(_) => {}
                refused => warn!(desk = %submission.desk_id, code = refused.code(), reason = %refused, "alert refused"),
            }
        }
        result
    }

    async fn accept(&self, submission: Submission<'_>, expected: Option<MsgType>) -> Result<AlertAccepted> {
        let inner = &self.inner;
        if submission.cap_xml.len() > inner.config.max_document_bytes {
            return Err(Error::TooLarge { limit: inner.config.max_document_bytes });
        }
        // Authentication first: nothing of an unsigned document is looked at.
        let registry = inner.registry.current();
        let desk = registry
            .desk(submission.desk_id)
            .ok_or_else(|| Error::Unauthenticated(format!("no desk {:?} is registered", submission.desk_id)))?;
        let now = bashu_proto::time::now().seconds;
        if (now - submission.timestamp).unsigned_abs() > inner.config.max_clock_skew_secs {
            return Err(Error::Unauthenticated(format!(
                "the signature's timestamp is more than {} seconds from the server's clock (stale or replayed)",
                inner.config.max_clock_skew_secs
            )));
        }
        signature::verify(&desk.public_key, &desk.id, submission.timestamp, submission.signature, submission.cap_xml)
            .map_err(|reason| Error::Unauthenticated(reason.into()))?;

        let (alert, text) = cap::parse_with_text(submission.cap_xml).map_err(Error::Invalid)?;
        match xml_signature::check(&text, &desk.xml_signature_certificates) {
            xml_signature::Verdict::Broken(reason) => {
                return Err(Error::Invalid(vec![Problem {
                    path: "/alert/Signature".into(),
                    reason: format!("the XML signature does not verify: {reason}"),
                }]));
            }
            xml_signature::Verdict::Unsigned if desk.require_xml_signature => {
                return Err(Error::Unauthenticated(format!(
                    "desk {} requires an XML signature (CAP 1.2 §3.3.2.1) on every document",
                    desk.id
                )));
            }
            _ => {}
        }
        // A desk sends only as its own senders: neither as another desk nor taking identifiers
        // another desk's sender will use.
        if !desk.senders.contains(&alert.sender) {
            return Err(Error::Forbidden(format!(
                "desk {} sends as {}, not as {:?}",
                desk.id,
                if desk.senders.is_empty() {
                    "no sender yet (an operator registers them)".into()
                } else {
                    desk.senders.join(", ")
                },
                alert.sender
            )));
        }
        let msg_type = alert.msg_type();
        let invalid = |reason: String| Error::Invalid(vec![Problem { path: "/alert/msgType".into(), reason }]);
        if !matches!(msg_type, MsgType::Alert | MsgType::Update | MsgType::Cancel) {
            return Err(invalid("Bashu issues Alert, Update and Cancel messages".into()));
        }
        if let Some(expected) = expected.filter(|e| *e != msg_type) {
            return Err(invalid(format!("this call takes msgType {}", expected.as_str_name())));
        }
        if alert.status() == Status::Draft {
            return Err(Error::Invalid(vec![Problem {
                path: "/alert/status".into(),
                reason: "a Draft is not issued".into(),
            }]));
        }

        let alert_key = alert_key(&alert.sender, &alert.identifier);
        let content_sha256 = Sha256::digest(submission.cap_xml).to_vec();
        if let Some(earlier) = inner.store.record(&alert_key).await? {
            return self.repeated(earlier, &content_sha256);
        }

        let targets = targeting::resolve(&alert, &inner.counties, &registry);
        if !targets.unknown.is_empty() {
            return Err(Error::Invalid(targets.unknown));
        }
        let outside = targeting::outside_authority(&desk.areas, &targets.counties);
        if !outside.is_empty() {
            return Err(Error::Forbidden(format!("desk {} may not alert {}", desk.id, outside.join(", "))));
        }

        // An Update or Cancel continues the one chain it references and reaches every county
        // that received any message of that chain.
        let mut counties = targets.counties;
        let chain_key = if msg_type == MsgType::Alert {
            alert_key.clone()
        } else {
            let chain_key = self.referenced_chain(&alert, &desk.id, &mut counties).await?;
            if let Some((chain, _)) = inner.store.chain_at(&chain_key).await? {
                if chain.cancelled && msg_type == MsgType::Update {
                    return Err(Error::ChainCancelled(format!(
                        "the chain of {chain_key} was cancelled: an Update cannot reopen it, issue a new Alert"
                    )));
                }
                counties.extend(chain.counties.into_iter().map(|c| c.county));
            }
            chain_key
        };
        if counties.is_empty() {
            return Err(Error::Invalid(vec![Problem {
                path: "/alert/info".into(),
                reason: "targets no county of Sichuan or Chongqing: give an area with a GB/T 2260 geocode, a polygon or a circle".into(),
            }]));
        }

        let issued = AlertIssued {
            alert_key: alert_key.clone(),
            chain_key: chain_key.clone(),
            desk_id: desk.id.clone(),
            counties: counties.iter().cloned().collect(),
            cap_xml: submission.cap_xml.to_vec(),
            accepted_at: Some(bashu_proto::time::now()),
            alert: Some(alert.clone()),
        };
        inner.bus.publish(&issued).await?;
        // Stored: now the fast path, straight from here (the fan-out consumer adds the durable
        // copies, and repeats these if this process dies before it is done).
        let live = crate::fanout::delivery(AlertIssued { counties: Vec::new(), ..issued.clone() }, 0);
        match inner.bus.alerts().publish_live(&live, &issued.counties).await {
            Ok(()) => {
                let since = issued.accepted_at.as_ref().and_then(bashu_proto::time::to_system_time);
                if let Some(elapsed) = since.and_then(|t| t.elapsed().ok()) {
                    bashu_telemetry::metrics().alert_fanout_seconds.observe(elapsed.as_secs_f64());
                }
            }
            Err(error) => warn!(error = %error, "live delivery failed; the durable copies follow"),
        }
        let record = AlertRecord {
            alert_key: alert_key.clone(),
            chain_key: chain_key.clone(),
            desk_id: desk.id.clone(),
            content_sha256: content_sha256.clone(),
            counties: issued.counties.clone(),
            identifier: alert.identifier.clone(),
            sender: alert.sender.clone(),
            sent: alert.sent,
        };
        // Recorded after the publish; a retry after a crash in between is caught by the ALERTS
        // stream's duplicate window. Two racing submissions: the first record wins.
        if let Some(earlier) = inner.store.create_record(&record).await? {
            return self.repeated(earlier, &content_sha256);
        }
        info!(alert_key = %alert_key, counties = counties.len(), msg_type = msg_type.as_str_name(), "alert accepted");
        Ok(AlertAccepted {
            alert_key,
            chain_key,
            identifier: alert.identifier,
            counties: record.counties,
            duplicate: false,
        })
    }

    /// The chain an Update or Cancel continues: every message it references that Bashu accepted
    /// must be the desk's own, sent when the reference says, and of one chain. Their counties are
    /// added to `counties`.
    async fn referenced_chain(
        &self,
        alert: &bashu_proto::alert::v1::Alert,
        desk_id: &str,
        counties: &mut std::collections::BTreeSet<String>,
    ) -> Result<String> {
        let mut chain_key: Option<String> = None;
        for (i, reference) in alert.references.iter().enumerate() {
            let path = || format!("/alert/references[{}]", i + 1);
            let key = alert_key(&reference.sender, &reference.identifier);
            let Some(record) = self.inner.store.record(&key).await? else { continue };
            if record.desk_id != desk_id {
                return Err(Error::Forbidden(format!(
                    "the referenced alert {} belongs to desk {}",
                    record.identifier, record.desk_id
                )));
            }
            let seconds = |t: &Option<bashu_proto::Timestamp>| t.as_ref().map(|t| t.seconds);
            if record.sent.is_some() && seconds(&record.sent) != seconds(&reference.sent) {
                return Err(Error::Invalid(vec![Problem {
                    path: path(),
                    reason: format!(
                        "{} of {} was sent at {}, not at the time this reference names",
                        record.identifier,
                        record.sender,
                        crate::cap::format_time(record.sent.as_ref())
                    ),
                }]));
            }
            match &chain_key {
                Some(first) if *first != record.chain_key => {
                    return Err(Error::Invalid(vec![Problem {
                        path: path(),
                        reason: format!(
                            "names a message of chain {}, another than {first}: an Update or Cancel continues one chain",
                            record.chain_key
                        ),
                    }]));
                }
                _ => chain_key = Some(record.chain_key),
            }
            counties.extend(record.counties);
        }
        chain_key.ok_or_else(|| {
            Error::Invalid(vec![Problem {
                path: "/alert/references".into(),
                reason: "references no alert Bashu has accepted".into(),
            }])
        })
    }

    /// The same identifier again: the same bytes are answered as before; other bytes are refused.
    fn repeated(&self, earlier: AlertRecord, content_sha256: &[u8]) -> Result<AlertAccepted> {
        if earlier.content_sha256 != content_sha256 {
            return Err(Error::Conflict(format!(
                "identifier {:?} of sender {:?} was already used for a different document",
                earlier.identifier, earlier.sender
            )));
        }
        Ok(AlertAccepted {
            alert_key: earlier.alert_key,
            chain_key: earlier.chain_key,
            identifier: earlier.identifier,
            counties: earlier.counties,
            duplicate: true,
        })
    }

    /// Judges any CAP 1.2 document without a signature and without delivering anything.
    pub fn validate(&self, cap_xml: &[u8]) -> ValidateAlertResponse {
        let to_problems = |problems: Vec<Problem>| -> Vec<CapProblem> {
            problems.into_iter().map(|p| CapProblem { path: p.path, reason: p.reason }).collect()
        };
        if cap_xml.len() > self.inner.config.max_document_bytes {
            let reason = format!("larger than {} bytes", self.inner.config.max_document_bytes);
            return ValidateAlertResponse {
                valid: false,
                problems: vec![CapProblem { path: "/".into(), reason }],
                counties: vec![],
            };
        }
        let parsed = cap::parse_with_text(cap_xml).map(|(alert, text)| (alert, xml_signature::check(&text, &[])));
        match parsed {
            Ok((_, xml_signature::Verdict::Broken(reason))) => ValidateAlertResponse {
                valid: false,
                problems: vec![CapProblem {
                    path: "/alert/Signature".into(),
                    reason: format!("the XML signature does not verify: {reason}"),
                }],
                counties: vec![],
            },
            Ok((alert, _)) => {
                let targets = targeting::resolve(&alert, &self.inner.counties, &self.inner.registry.current());
                ValidateAlertResponse {
                    valid: true,
                    problems: vec![],
                    counties: targets.counties.into_iter().collect(),
                }
            }
            Err(problems) => ValidateAlertResponse { valid: false, problems: to_problems(problems), counties: vec![] },
        }
    }

    /// A person at a county confirms an alert (the county's NATS clients may publish the same
    /// event themselves on `bashu.alert.ack.<county>`).
    pub async fn acknowledge(
        &self,
        alert_key: &str,
        county: &str,
        by: &str,
        note: &str,
        recorder: Recorder<'_>,
    ) -> Result<()> {
        let record = self.accepted(alert_key).await?;
        let county = self
            .inner
            .counties
            .resolve(county)
            .map_err(|e| Error::Invalid(vec![Problem { path: "county".into(), reason: e.to_string() }]))?
            .county
            .code
            .clone();
        if !record.counties.contains(&county) {
            return Err(Error::NotFound(format!("alert {alert_key} was not sent to {county}")));
        }
        if by.trim().is_empty() || by.chars().count() > 100 || note.chars().count() > 1000 {
            return Err(Error::Invalid(vec![Problem {
                path: "acknowledgedBy".into(),
                reason: "the name of the person who confirms (1-100 characters); a note of at most 1000".into(),
            }]));
        }
        let recorded_by = match recorder {
            Recorder::County => String::new(),
            Recorder::Staff { caller, .. } => format!("{} ({})", caller.name, caller.role.short_name()),
        };
        let acknowledgement = AlertAcknowledgement {
            identifier: record.identifier,
            county: county.clone(),
            acknowledged_by: by.trim().to_owned(),
            note: note.to_owned(),
            acknowledged_at: Some(bashu_proto::time::now()),
            alert_key: alert_key.to_owned(),
            recorded_by,
        };
        self.inner.bus.publish(&acknowledgement).await?;
        if let Recorder::Staff { caller, door } = recorder {
            self.audit_staff_acknowledgement(caller, door, &acknowledgement).await?;
        }
        Ok(())
    }

    /// Puts a staff member's acknowledgement for a county in the operators' audit log, under the
    /// name and role of their token. The acknowledgement is recorded already; if the log cannot
    /// be written the caller is told so.
    async fn audit_staff_acknowledgement(
        &self,
        caller: &bashu_registry::Caller,
        door: &str,
        acknowledgement: &AlertAcknowledgement,
    ) -> Result<()> {
        let at = acknowledgement.acknowledged_at.unwrap_or_default();
        let digest = Sha256::digest(format!(
            "{}\n{}\n{}\n{}.{}",
            caller.name, acknowledgement.alert_key, acknowledgement.county, at.seconds, at.nanos
        ));
        let event = bashu_proto::admin::v1::AuditEvent {
            id: format!("alerts-ack-{}", &hex::encode(digest)[..24]),
            actor: caller.name.clone(),
            role: caller.role.as_str_name().to_owned(),
            method: door.to_owned(),
            target: format!("alert {} county {}", acknowledgement.alert_key, acknowledgement.county),
            at: Some(at),
            before_json: String::new(),
            after_json: serde_json::json!({
                "acknowledgedBy": acknowledgement.acknowledged_by,
                "note": acknowledgement.note,
            })
            .to_string(),
            service: "alerts".into(),
        };
        self.inner.bus.publish(&event).await?;
        Ok(())
    }

    /// Intake's record of an accepted alert, or not found.
    async fn accepted(&self, alert_key: &str) -> Result<AlertRecord> {
        self.inner.store.record(alert_key).await?.ok_or_else(|| Error::NotFound(format!("no alert {alert_key}")))
    }

    /// Every county's state in the chain of an alert.
    pub async fn status(&self, alert_key: &str) -> Result<AlertChain> {
        self.inner.store.chain_of_alert(alert_key).await
    }
}
