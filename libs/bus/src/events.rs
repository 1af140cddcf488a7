//! Each event type bound to its subject and idempotency key, so no service formats either.

use bashu_proto::{
    admin::v1::AuditEvent,
    alert::v1::{AlertAcknowledgement, AlertDelivery, AlertEscalation, AlertIssued, AlertReceipt},
    coverage::v1::{ChannelItem, PhaseNotice, PlanEvent},
    moderation::v1::ReviewRecorded,
    story::v1::{
        DecisionNotice, ModerationDecision, Story, StoryDelivery, StoryPublished, StoryReceipt, StorySubmitted,
        StoryUse, TakedownConfirmation,
    },
};
use bytes::Bytes;
use prost::Message as _;

use crate::{Error, Result, Subject, Subjects};

/// Where an event goes and the key that makes re-publishing it harmless.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The subject.
    pub subject: Subject,
    /// The `Nats-Msg-Id`.
    pub msg_id: String,
}

/// A protobuf event that knows its route.
pub trait Event: prost::Message + Default + Send + Sync + 'static {
    /// The protobuf full name, sent in the `Bashu-Type` header.
    const TYPE: &'static str;

    /// The subject and idempotency key of this event.
    fn route(&self, subjects: &Subjects) -> Result<Route>;
}

/// Where a consumed message came from: its subject (read with the bus's names) and its
/// `Bashu-Type` header, when the publisher sent one.
#[derive(Clone, Copy, Debug)]
pub struct Arrival<'a> {
    /// The names of the bus it came on.
    pub subjects: &'a Subjects,
    /// The subject it was published on.
    pub subject: &'a str,
    /// The `Bashu-Type` header.
    pub event_type: Option<&'a str>,
}

/// What a consumer can decode: one event type, or an enum of several told apart by the subject
/// or the `Bashu-Type` header.
pub trait Incoming: Sized + Send + 'static {
    /// What it is called in a dead letter's reason.
    const NAME: &'static str;

    /// Decodes a payload that arrived as `arrival` says.
    fn decode_incoming(arrival: Arrival<'_>, payload: Bytes) -> std::result::Result<Self, String>;
}

impl<E: Event> Incoming for E {
    const NAME: &'static str = E::TYPE;

    fn decode_incoming(_: Arrival<'_>, payload: Bytes) -> std::result::Result<Self, String> {
        E::decode(payload).map_err(|e| e.to_string())
    }
}

/// Everything in the alert ledger, as the alert tracker reads it.
///
/// The subject says what a message is and, for receipts and acknowledgements, which county sent
/// it: nats-server lets a county publish only on its own `receipt.<county>` and `ack.<county>`, so
/// the subject is the county's identity and the body's `county` field is not. A receipt or
/// acknowledgement arrives here with its `county` set from the subject; one whose body names
/// another county is an [`AlertTrackingEvent::Impersonation`], never a receipt.
#[derive(Debug)]
pub enum AlertTrackingEvent {
    /// An accepted alert (boxed: it carries the whole alert and its XML).
    Issued(Box<AlertIssued>),
    /// A county's system has it.
    Receipt(AlertReceipt),
    /// A person at a county confirmed it.
    Acknowledged(AlertAcknowledgement),
    /// An escalation step was taken.
    Escalated(AlertEscalation),
    /// A county sent a receipt or acknowledgement naming another county: refused.
    Impersonation {
        /// `receipt` or `ack`.
        kind: String,
        /// The county whose subject it came on: who really sent it.
        sender: String,
        /// The county its body claims to speak for.
        claimed: String,
        /// The alert it was about.
        alert_key: String,
    },
}

impl Incoming for AlertTrackingEvent {
    const NAME: &'static str = "alert ledger event";

    fn decode_incoming(arrival: Arrival<'_>, payload: Bytes) -> std::result::Result<Self, String> {
        fn decode<E: Event>(payload: Bytes) -> std::result::Result<E, String> {
            E::decode(payload).map_err(|e| e.to_string())
        }
        /// The subject's county in `county`, or the impersonation it is.
        fn from_subject(kind: &str, sender: &str, county: &mut String, alert_key: &str) -> Option<AlertTrackingEvent> {
            if county.is_empty() || county == sender {
                *county = sender.to_owned();
                return None;
            }
            Some(AlertTrackingEvent::Impersonation {
                kind: kind.to_owned(),
                sender: sender.to_owned(),
                claimed: std::mem::take(county),
                alert_key: alert_key.to_owned(),
            })
        }
        let Some((kind, token)) = arrival.subjects.alert_ledger_entry(arrival.subject) else {
            return Err(format!("{} is not an alert ledger subject", arrival.subject));
        };
        // The subject decides; a header, when present, must agree with it.
        let expected = match kind {
            "issued" => AlertIssued::TYPE,
            "receipt" => AlertReceipt::TYPE,
            "ack" | "recorded" => AlertAcknowledgement::TYPE,
            _ => AlertEscalation::TYPE,
        };
        if let Some(named) = arrival.event_type
            && named != expected
        {
            return Err(format!("Bashu-Type {named} on {}, which carries {expected}", arrival.subject));
        }
        match kind {
            "issued" => decode(payload).map(|issued| Self::Issued(Box::new(issued))),
            "receipt" => {
                let mut receipt: AlertReceipt = decode(payload)?;
                Ok(from_subject(kind, token, &mut receipt.county, &receipt.alert_key).unwrap_or(Self::Receipt(receipt)))
            }
            "ack" => {
                let mut ack: AlertAcknowledgement = decode(payload)?;
                // A county's own word; only the alerts service records staff (`recorded`).
                ack.recorded_by.clear();
                Ok(from_subject(kind, token, &mut ack.county, &ack.alert_key).unwrap_or(Self::Acknowledged(ack)))
            }
            "recorded" => {
                let mut ack: AlertAcknowledgement = decode(payload)?;
                ack.county = token.to_owned();
                Ok(Self::Acknowledged(ack))
            }
            _ => decode(payload).map(Self::Escalated),
        }
    }
}

fn story<'a>(event: &'static str, story: Option<&'a Story>) -> Result<&'a Story> {
    story.ok_or(Error::MissingField { event, field: "story" })
}

use bashu_proto::story::v1::version_key as story_key;

impl Event for StorySubmitted {
    const TYPE: &'static str = "bashu.story.v1.StorySubmitted";

    fn route(&self, subjects: &Subjects) -> Result<Route> {
        let story = story(Self::TYPE, self.story.as_ref())?;
        Ok(Route {
            subject: subjects.story_submitted(&story.origin_county)?,
            msg_id: format!("submitted.{}", story_key(&story.origin_county, &story.id, story.version)),
        })
    }
}

impl Event for ModerationDecision {
    const TYPE: &'static str = "bashu.story.v1.ModerationDecision";

    fn route(&self, subjects: &Subjects) -> Result<Route> {
        let story = story(Self::TYPE, self.story.as_ref())?;
        Ok(Route {
            subject: subjects.story_decided(&story.origin_county)?,
            msg_id: format!(
                "decided.{}.{}",
                story_key(&story.origin_county, &story.id, story.version),
                self.verdict().as_str_name()
            ),
        })
    }
}

impl Event for StoryPublished {
    const TYPE: &'static str = "bashu.story.v1.StoryPublished";

    fn route(&self, subjects: &Subjects) -> Result<Route> {
        Ok(Route {
            subject: subjects.story_published(&self.origin_county)?,
            msg_id: format!("published.{}", story_key(&self.origin_county, &self.story_id, self.version)),
        })
    }
}

impl Event for PlanEvent {
    const TYPE: &'static str = "bashu.coverage.v1.PlanEvent";

    fn route(&self, subjects: &Subjects) -> Result<Route> {
        Ok(Route {
            subject: subjects.coverage_plan(&self.plan_id)?,
            msg_id: format!("coverage.{}.{}", self.plan_id, self.sequence),
        })
    }
}

impl Event for ChannelItem {
    const TYPE: &'static str = "bashu.coverage.v1.ChannelItem";

    fn route(&self, subjects: &Subjects) -> Result<Route> {
        let story = story(Self::TYPE, self.story.as_ref())?;
        Ok(Route {
            subject: subjects.channel_item(&self.county, &self.plan_id)?,
            msg_id: format!("channel.{}.{}", self.county, story_key(&story.origin_county, &story.id, story.version)),
        })
    }
}

impl Event for PhaseNotice {
    const TYPE: &'static str = "bashu.coverage.v1.PhaseNotice";

    fn route(&self, subjects: &Subjects) -> Result<Route> {
        let flagged = self.flagged.as_ref().ok_or(Error::MissingField { event: Self::TYPE, field: "flagged" })?;
        Ok(Route {
            subject: subjects.channel_flag(&self.county, &self.plan_id)?,
            msg_id: format!("flag.{}.{}.{}.{}", self.county, self.plan_id, flagged.phase, flagged.flag),
        })
    }
}

/// Everything a county's channel consumer (`channel-<county>`) carries, told apart by the
/// subject: the stories of the plans it follows, and notices about the phases it leads.
#[derive(Debug)]
pub enum ChannelEvent {
    /// A story version of a plan's channel.
    Item(Box<ChannelItem>),
    /// A phase the county leads is due soon, or late.
    Notice(PhaseNotice),
}

impl Incoming for ChannelEvent {
    const NAME: &'static str = "channel message";

    fn decode_incoming(arrival: Arrival<'_>, payload: Bytes) -> std::result::Result<Self, String> {
        match arrival.subjects.channel_entry(arrival.subject) {
            Some(("item", _)) => {
                ChannelItem::decode(payload).map(|i| Self::Item(Box::new(i))).map_err(|e| e.to_string())
            }
            Some(("flag", _)) => PhaseNotice::decode(payload).map(Self::Notice).map_err(|e| e.to_string()),
            _ => Err(format!("{} carries nothing a channel reader knows", arrival.subject)),
        }
    }
}

impl Event for StoryDelivery {
    const TYPE: &'static str = "bashu.story.v1.StoryDelivery";

    fn route(&self, subjects: &Subjects) -> Result<Route> {
        let story = story(Self::TYPE, self.story.as_ref())?;
        Ok(Route {
            subject: subjects.feed_story(&self.county)?,
            msg_id: format!("feed.{}.{}", self.county, story_key(&story.origin_county, &story.id, story.version)),
        })
    }
}

impl Event for StoryReceipt {
    const TYPE: &'static str = "bashu.story.v1.StoryReceipt";

    fn route(&self, subjects: &Subjects) -> Result<Route> {
        Ok(Route {
            subject: subjects.story_receipt(&self.county)?,
            msg_id: format!("receipt.{}.{}", self.county, story_key(&self.origin_county, &self.story_id, self.version)),
        })
    }
}

impl Event for AlertIssued {
    const TYPE: &'static str = "bashu.alert.v1.AlertIssued";

    fn route(&self, subjects: &Subjects) -> Result<Route> {
        Ok(Route { subject: subjects.alert_issued(&self.desk_id)?, msg_id: format!("alert.issued.{}", self.alert_key) })
    }
}

impl Event for AlertDelivery {
    const TYPE: &'static str = "bashu.alert.v1.AlertDelivery";

    fn route(&self, subjects: &Subjects) -> Result<Route> {
        Ok(Route {
            subject: subjects.alert_feed(&self.county)?,
            msg_id: format!("alert.feed.{}.{}.{}", self.county, self.alert_key, self.resend),
        })
    }
}

impl Event for AlertReceipt {
    const TYPE: &'static str = "bashu.alert.v1.AlertReceipt";

    fn route(&self, subjects: &Subjects) -> Result<Route> {
        Ok(Route {
            subject: subjects.alert_receipt(&self.county)?,
            msg_id: format!("alert.receipt.{}.{}", self.county, self.alert_key),
        })
    }
}

impl Event for AlertAcknowledgement {
    const TYPE: &'static str = "bashu.alert.v1.AlertAcknowledgement";

    fn route(&self, subjects: &Subjects) -> Result<Route> {
        // Staff's records of a county's confirmation go where counties cannot publish.
        if self.recorded_by.is_empty() {
            Ok(Route {
                subject: subjects.alert_ack(&self.county)?,
                msg_id: format!("alert.ack.{}.{}", self.county, self.alert_key),
            })
        } else {
            Ok(Route {
                subject: subjects.alert_recorded(&self.county)?,
                msg_id: format!("alert.recorded.{}.{}", self.county, self.alert_key),
            })
        }
    }
}

impl Event for AlertEscalation {
    const TYPE: &'static str = "bashu.alert.v1.AlertEscalation";

    fn route(&self, subjects: &Subjects) -> Result<Route> {
        Ok(Route {
            subject: subjects.alert_escalated(&self.county)?,
            msg_id: format!("alert.escalated.{}.{}.{}", self.chain_key, self.county, self.step),
        })
    }
}

impl Event for TakedownConfirmation {
    const TYPE: &'static str = "bashu.story.v1.TakedownConfirmation";

    fn route(&self, subjects: &Subjects) -> Result<Route> {
        Ok(Route {
            subject: subjects.story_takedown(&self.county)?,
            msg_id: format!(
                "takedown.{}.{}",
                self.county,
                story_key(&self.origin_county, &self.story_id, self.version)
            ),
        })
    }
}

impl Event for DecisionNotice {
    const TYPE: &'static str = "bashu.story.v1.DecisionNotice";

    fn route(&self, subjects: &Subjects) -> Result<Route> {
        let decision = self.decision.as_ref().ok_or(Error::MissingField { event: Self::TYPE, field: "decision" })?;
        let story = story(Self::TYPE, decision.story.as_ref())?;
        Ok(Route {
            subject: subjects.feed_decision(&self.county)?,
            msg_id: format!(
                "decision.{}.{}",
                story_key(&story.origin_county, &story.id, story.version),
                decision.verdict().as_str_name()
            ),
        })
    }
}

impl Event for ReviewRecorded {
    const TYPE: &'static str = "bashu.moderation.v1.ReviewRecorded";

    fn route(&self, subjects: &Subjects) -> Result<Route> {
        Ok(Route {
            subject: subjects.story_reviewed(&self.origin_county)?,
            msg_id: format!("reviewed.{}.{}.{}.{}", self.key, self.action, self.reviewer, self.level),
        })
    }
}

impl Event for StoryUse {
    const TYPE: &'static str = "bashu.story.v1.StoryUse";

    fn route(&self, subjects: &Subjects) -> Result<Route> {
        Ok(Route {
            subject: subjects.story_used(&self.county)?,
            msg_id: format!("used.{}.{}", self.county, story_key(&self.origin_county, &self.story_id, self.version)),
        })
    }
}

impl Event for AuditEvent {
    const TYPE: &'static str = "bashu.admin.v1.AuditEvent";

    fn route(&self, subjects: &Subjects) -> Result<Route> {
        let service = if self.service.is_empty() { "admin" } else { self.service.as_str() };
        Ok(Route { subject: subjects.audit(service)?, msg_id: format!("audit.{}", self.id) })
    }
}

/// A story message a county published on its own subject (`story.receipt.<county>`,
/// `story.used.<county>`, `story.takedown.<county>`). nats-server lets a county publish only on
/// its own, so the subject is the county: an empty `county` in the body is filled from it, and a
/// body naming another county does not decode (the consumer dead-letters it with the reason).
#[derive(Debug)]
pub struct FromCounty<E>(pub E);

/// A message a county sends about a story, naming itself.
pub trait CountyMessage: Event {
    /// What it is called in a refusal.
    const KIND: &'static str;
    /// The county it names.
    fn county_mut(&mut self) -> &mut String;
}

impl CountyMessage for StoryReceipt {
    const KIND: &'static str = "story receipt";
    fn county_mut(&mut self) -> &mut String {
        &mut self.county
    }
}

impl CountyMessage for StoryUse {
    const KIND: &'static str = "reuse note";
    fn county_mut(&mut self) -> &mut String {
        &mut self.county
    }
}

impl CountyMessage for TakedownConfirmation {
    const KIND: &'static str = "takedown confirmation";
    fn county_mut(&mut self) -> &mut String {
        &mut self.county
    }
}

/// Decodes a county's story message and binds it to the county of its subject.
fn from_county<E: CountyMessage>(arrival: Arrival<'_>, payload: Bytes) -> std::result::Result<E, String> {
    let Some((_, sender)) = arrival.subjects.county_story_entry(arrival.subject) else {
        return Err(format!("{} is not a county's story subject", arrival.subject));
    };
    let mut event = E::decode(payload).map_err(|e| format!("not a {}: {e}", E::KIND))?;
    let claimed = event.county_mut();
    if claimed.is_empty() {
        *claimed = sender.to_owned();
    } else if claimed != sender {
        return Err(format!(
            "county {sender} sent a {} for county {claimed}: a county speaks only for itself",
            E::KIND
        ));
    }
    Ok(event)
}

impl<E: CountyMessage> Incoming for FromCounty<E> {
    const NAME: &'static str = E::KIND;

    fn decode_incoming(arrival: Arrival<'_>, payload: Bytes) -> std::result::Result<Self, String> {
        from_county(arrival, payload).map(FromCounty)
    }
}

/// Everything a county's feed carries, told apart by the subject's last token: what a county's
/// reader and its webhook sender read.
#[derive(Debug)]
pub enum FeedEvent {
    /// A story version for the county (`feed.<county>.story`).
    Story(StoryDelivery),
    /// Moderation's word on the county's own story: held or rejected (`feed.<county>.decision`).
    Decision(DecisionNotice),
}

impl Incoming for FeedEvent {
    const NAME: &'static str = "feed message";

    fn decode_incoming(arrival: Arrival<'_>, payload: Bytes) -> std::result::Result<Self, String> {
        match arrival.subjects.feed_entry(arrival.subject) {
            Some((_, "story")) => StoryDelivery::decode(payload).map(Self::Story).map_err(|e| e.to_string()),
            Some((_, "decision")) => DecisionNotice::decode(payload).map(Self::Decision).map_err(|e| e.to_string()),
            _ => Err(format!("{} carries nothing a feed reader knows", arrival.subject)),
        }
    }
}

/// Everything in the story ledger (`STORIES`) that the collaboration report counts.
#[derive(Debug)]
pub enum StoryLedgerEvent {
    /// A version reached its audience.
    Published(StoryPublished),
    /// A receiver took a withdrawn story down.
    TakedownConfirmed(TakedownConfirmation),
    /// A receiver used a story.
    Used(StoryUse),
    /// Anything else in the ledger (submissions, decisions, reviews, receipts).
    Other,
}

impl Incoming for StoryLedgerEvent {
    const NAME: &'static str = "story ledger event";

    fn decode_incoming(arrival: Arrival<'_>, payload: Bytes) -> std::result::Result<Self, String> {
        // What a county sent counts for the county whose subject it came on, and only for it.
        match arrival.subjects.county_story_entry(arrival.subject) {
            Some(("takedown", _)) => {
                return Ok(from_county(arrival, payload).map(Self::TakedownConfirmed).unwrap_or(Self::Other));
            }
            Some(("used", _)) => return Ok(from_county(arrival, payload).map(Self::Used).unwrap_or(Self::Other)),
            _ => {}
        }
        let decoded = match arrival.event_type {
            Some(StoryPublished::TYPE) => StoryPublished::decode(payload).map(Self::Published),
            _ => return Ok(Self::Other),
        };
        decoded.map_err(|e| e.to_string())
    }
}

/// What a joint coverage plan's contributions are recorded from: the story ledger's
/// submissions, decisions and reuse notes, told apart by the subject.
#[derive(Debug)]
pub enum ContributionSource {
    /// Ingest accepted a story version (boxed: it carries the story).
    Submitted(Box<StorySubmitted>),
    /// Moderation decided on one (boxed: it carries the story).
    Decided(Box<ModerationDecision>),
    /// Distribution placed a version in its audience's feeds.
    Published(StoryPublished),
    /// A county used a story it received; the county is the subject's.
    Used(StoryUse),
    /// A reuse note that is not its county's own (it names another county, or does not decode):
    /// passed over here, since the `county-uses` consumer already dead-letters it with the
    /// reason, once.
    RefusedNote(String),
}

impl Incoming for ContributionSource {
    const NAME: &'static str = "contribution source";

    fn decode_incoming(arrival: Arrival<'_>, payload: Bytes) -> std::result::Result<Self, String> {
        match arrival.subjects.story_entry(arrival.subject) {
            Some(("submitted", _)) => {
                StorySubmitted::decode(payload).map(|e| Self::Submitted(Box::new(e))).map_err(|e| e.to_string())
            }
            Some(("decided", _)) => {
                ModerationDecision::decode(payload).map(|e| Self::Decided(Box::new(e))).map_err(|e| e.to_string())
            }
            Some(("published", _)) => StoryPublished::decode(payload).map(Self::Published).map_err(|e| e.to_string()),
            Some(("used", _)) => Ok(from_county(arrival, payload).map_or_else(Self::RefusedNote, Self::Used)),
            _ => Err(format!("{} is not a submission, decision, publication or reuse note", arrival.subject)),
        }
    }
}

#[cfg(test)]
mod tests {
    use bashu_proto::story::v1::{DecisionNotice, ModerationDecision, Story, StoryDelivery, Verdict};
    use prost::Message as _;

    use super::{Arrival, FeedEvent, Incoming};
    use crate::Subjects;

    #[test]
    fn a_feed_reader_tells_every_message_a_feed_carries_apart_by_its_subject() {
        let subjects = Subjects::new("t1").unwrap();
        let arrive = |subject: &str, payload: Vec<u8>| {
            FeedEvent::decode_incoming(Arrival { subjects: &subjects, subject, event_type: None }, payload.into())
        };
        let story = Story { id: "s-1".into(), origin_county: "511083".into(), version: 2, ..Default::default() };
        let delivery = StoryDelivery { story: Some(story.clone()), county: "500153".into(), ..Default::default() };
        let notice = DecisionNotice {
            county: "511083".into(),
            decision: Some(ModerationDecision {
                verdict: Verdict::Rejected as i32,
                story: Some(story),
                ..Default::default()
            }),
        };
        let feed_story = subjects.feed_story("500153").unwrap();
        let feed_decision = subjects.feed_decision("511083").unwrap();
        assert!(matches!(arrive(&feed_story, delivery.encode_to_vec()), Ok(FeedEvent::Story(d)) if d == delivery));
        assert!(matches!(arrive(&feed_decision, notice.encode_to_vec()), Ok(FeedEvent::Decision(n)) if n == notice));
        assert!(arrive("t1.bashu.feed.500153.gossip", Vec::new()).is_err(), "an unknown kind is refused, named");
    }

    #[test]
    fn a_channel_reader_tells_stories_from_phase_notices_by_the_subject() {
        use bashu_proto::coverage::v1::{ChannelItem, PhaseNotice};

        use super::ChannelEvent;
        let subjects = Subjects::new("t1").unwrap();
        let arrive = |subject: &str, payload: Vec<u8>| {
            ChannelEvent::decode_incoming(Arrival { subjects: &subjects, subject, event_type: None }, payload.into())
        };
        let item = ChannelItem { plan_id: "rail".into(), county: "511504".into(), ..Default::default() };
        let notice = PhaseNotice { plan_id: "rail".into(), county: "511504".into(), ..Default::default() };
        let item_subject = subjects.channel_item("511504", "rail").unwrap();
        let flag_subject = subjects.channel_flag("511504", "rail").unwrap();
        assert!(matches!(arrive(&item_subject, item.encode_to_vec()), Ok(ChannelEvent::Item(i)) if *i == item));
        assert!(matches!(arrive(&flag_subject, notice.encode_to_vec()), Ok(ChannelEvent::Notice(n)) if n == notice));
        assert!(arrive("t1.bashu.channel.511504.rail.gossip", Vec::new()).is_err(), "an unknown kind is refused");
    }

    #[test]
    fn the_coverage_ledger_tells_every_source_apart_by_its_subject_and_binds_a_reuse_note_to_its_county() {
        use bashu_proto::story::v1::{StoryPublished, StorySubmitted, StoryUse};

        use super::ContributionSource;
        let subjects = Subjects::new("t1").unwrap();
        let arrive = |subject: &str, payload: Vec<u8>| {
            ContributionSource::decode_incoming(
                Arrival { subjects: &subjects, subject, event_type: None },
                payload.into(),
            )
        };
        let story = Story { id: "s-1".into(), origin_county: "500118".into(), version: 1, ..Default::default() };
        let submitted = StorySubmitted { story: Some(story.clone()), ..Default::default() };
        let decided =
            ModerationDecision { story: Some(story), verdict: Verdict::Approved as i32, ..Default::default() };
        let published = StoryPublished { story_id: "s-1".into(), version: 1, ..Default::default() };
        let used = StoryUse { story_id: "s-1".into(), origin_county: "500118".into(), ..Default::default() };
        let at = |kind: &str, token: &str| format!("t1.bashu.story.{kind}.{token}");
        assert!(
            matches!(arrive(&at("submitted", "500118"), submitted.encode_to_vec()), Ok(ContributionSource::Submitted(s)) if *s == submitted)
        );
        assert!(
            matches!(arrive(&at("decided", "500118"), decided.encode_to_vec()), Ok(ContributionSource::Decided(d)) if *d == decided)
        );
        assert!(
            matches!(arrive(&at("published", "500118"), published.encode_to_vec()), Ok(ContributionSource::Published(p)) if p == published)
        );
        let Ok(ContributionSource::Used(note)) = arrive(&at("used", "500116"), used.encode_to_vec()) else {
            panic!("a reuse note decodes");
        };
        assert_eq!(note.county, "500116", "the county is the subject's");
        let mut forged = used.clone();
        forged.county = "510521".into();
        assert!(
            matches!(arrive(&at("used", "500116"), forged.encode_to_vec()), Ok(ContributionSource::RefusedNote(reason)) if reason.contains("speaks only for itself")),
            "a note for another county is passed over (county-uses dead-letters it)"
        );
        assert!(
            arrive(&at("receipt", "500116"), Vec::new()).is_err(),
            "what the ledger does not read is refused, named"
        );
    }
}
