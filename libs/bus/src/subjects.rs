//! Every subject, stream, consumer and bucket name, with the optional isolation prefix.

use crate::{Error, Result};

/// One subject a message is published on (`bashu.feed.500153.story`): never a wildcard, its
/// tokens checked when [`Subjects`] built it, so holding one means it is a valid subject.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subject(String);

/// A subject filter (`bashu.feed.500153.>`, `bashu.alert.live.*`): what a consumer, a
/// subscription or a read names. Every [`Subject`] is also a filter matching only itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubjectFilter(String);

macro_rules! subject_text {
    ($name:ident) => {
        impl $name {
            /// The subject as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl async_nats::subject::ToSubject for $name {
            fn to_subject(&self) -> async_nats::Subject {
                self.0.as_str().into()
            }
        }

        impl async_nats::subject::ToSubject for &$name {
            fn to_subject(&self) -> async_nats::Subject {
                self.0.as_str().into()
            }
        }

        impl From<$name> for String {
            fn from(subject: $name) -> String {
                subject.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
    };
}

subject_text!(Subject);
subject_text!(SubjectFilter);

impl From<Subject> for SubjectFilter {
    fn from(subject: Subject) -> Self {
        Self(subject.0)
    }
}

/// What the alert ledger holds, by the subject's kind: `bashu.alert.<kind>.<token>`.
const ALERT_LEDGER_KINDS: [&str; 5] = ["issued", "receipt", "ack", "recorded", "escalated"];

/// Names on the bus. With a prefix `t1`, subject `bashu.story.submitted.511083` becomes
/// `t1.bashu.story.submitted.511083` and stream `STORIES` becomes `T1_STORIES`, so parallel tests
/// (or two deployments sharing one NATS account) never see each other's traffic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subjects {
    subject_prefix: String,
    name_prefix: String,
}

impl Subjects {
    /// Names with the given prefix; an empty prefix gives the production names.
    pub fn new(prefix: &str) -> Result<Self> {
        if prefix.is_empty() {
            return Ok(Self::default());
        }
        if !prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') || prefix.len() > 32 {
            return Err(Error::InvalidToken { what: "prefix", value: prefix.to_owned() });
        }
        Ok(Self { subject_prefix: format!("{prefix}."), name_prefix: format!("{}_", prefix.to_ascii_uppercase()) })
    }

    fn concrete(&self, rest: &str) -> Subject {
        Subject(format!("{}bashu.{rest}", self.subject_prefix))
    }

    /// A nats-server permission pattern under this deployment's subjects (`story.decided.*`).
    pub(crate) fn pattern(&self, rest: &str) -> String {
        format!("{}bashu.{rest}", self.subject_prefix)
    }

    fn filter(&self, rest: &str) -> SubjectFilter {
        SubjectFilter(format!("{}bashu.{rest}", self.subject_prefix))
    }

    /// The name of a stream, key-value bucket or object store, prefixed.
    pub(crate) fn name(&self, base: &str) -> String {
        format!("{}{base}", self.name_prefix)
    }

    /// The name of a stream (`FEEDS`, or `KV_<bucket>` for a bucket's), prefixed: what a county's
    /// client names when it reads its consumer.
    pub fn stream_name(&self, base: &str) -> String {
        self.name(base)
    }

    /// `bashu.story.submitted.<origin>`: ingest accepted a story version.
    pub fn story_submitted(&self, origin: &str) -> Result<Subject> {
        Ok(self.concrete(&format!("story.submitted.{}", token(origin)?)))
    }

    /// `bashu.story.decided.<origin>`: moderation decided on a story version.
    pub fn story_decided(&self, origin: &str) -> Result<Subject> {
        Ok(self.concrete(&format!("story.decided.{}", token(origin)?)))
    }

    /// `bashu.story.published.<origin>`: distribution placed a version in its audience's feeds.
    pub fn story_published(&self, origin: &str) -> Result<Subject> {
        Ok(self.concrete(&format!("story.published.{}", token(origin)?)))
    }

    /// `bashu.story.receipt.<county>`: a county confirms it has a story version.
    pub fn story_receipt(&self, county: &str) -> Result<Subject> {
        Ok(self.concrete(&format!("story.receipt.{}", token(county)?)))
    }

    /// `bashu.story.reviewed.<origin>`: a reviewer's action on a held story.
    pub fn story_reviewed(&self, origin: &str) -> Result<Subject> {
        Ok(self.concrete(&format!("story.reviewed.{}", token(origin)?)))
    }

    /// `bashu.story.takedown.<county>`: a county confirms it took a withdrawn story down.
    pub fn story_takedown(&self, county: &str) -> Result<Subject> {
        Ok(self.concrete(&format!("story.takedown.{}", token(county)?)))
    }

    /// `bashu.story.takedown.>`: every takedown confirmation.
    pub fn all_story_takedown(&self) -> SubjectFilter {
        self.filter("story.takedown.>")
    }

    /// `bashu.story.receipt.>`: every county's story receipts.
    pub fn all_story_receipts(&self) -> SubjectFilter {
        self.filter("story.receipt.>")
    }

    /// `bashu.story.used.>`: every county's reuse notes.
    pub fn all_story_uses(&self) -> SubjectFilter {
        self.filter("story.used.>")
    }

    /// The kind (`receipt`, `used`, `takedown`) and county of a subject a county publishes its
    /// story messages on (`bashu.story.<kind>.<county>`), if it is one.
    pub fn county_story_entry<'a>(&self, subject: &'a str) -> Option<(&'a str, &'a str)> {
        let (kind, county) =
            subject.strip_prefix(self.subject_prefix.as_str())?.strip_prefix("bashu.story.")?.split_once('.')?;
        (["receipt", "used", "takedown"].contains(&kind) && !county.contains('.')).then_some((kind, county))
    }

    /// The kind (`submitted`, `decided`, `used`, ...) and last token of a story ledger subject
    /// (`bashu.story.<kind>.<token>`), if it is one.
    pub fn story_entry<'a>(&self, subject: &'a str) -> Option<(&'a str, &'a str)> {
        let (kind, token) =
            subject.strip_prefix(self.subject_prefix.as_str())?.strip_prefix("bashu.story.")?.split_once('.')?;
        (!token.contains('.')).then_some((kind, token))
    }

    /// `bashu.feed.<county>.story`: a story version in a county's feed.
    pub fn feed_story(&self, county: &str) -> Result<Subject> {
        Ok(self.concrete(&format!("feed.{}.story", token(county)?)))
    }

    /// `bashu.feed.<county>.decision`: moderation's word to a story's origin county.
    pub fn feed_decision(&self, county: &str) -> Result<Subject> {
        Ok(self.concrete(&format!("feed.{}.decision", token(county)?)))
    }

    /// `bashu.feed.<county>.>`: everything in one county's feed.
    pub fn feed_of(&self, county: &str) -> Result<SubjectFilter> {
        Ok(self.filter(&format!("feed.{}.>", token(county)?)))
    }

    /// `bashu.alert.issued.<desk>`: an accepted alert, stored once.
    pub fn alert_issued(&self, desk: &str) -> Result<Subject> {
        Ok(self.concrete(&format!("alert.issued.{}", token(desk)?)))
    }

    /// `bashu.alert.submit.<desk>`: a desk submits a signed CAP alert over NATS (request/reply).
    pub fn alert_submit(&self, desk: &str) -> Result<Subject> {
        Ok(self.concrete(&format!("alert.submit.{}", token(desk)?)))
    }

    /// Every desk's alert submissions, `bashu.alert.submit.*`.
    pub fn all_alert_submit(&self) -> SubjectFilter {
        self.filter("alert.submit.*")
    }

    /// The desk of an alert submission subject.
    pub fn alert_submit_desk<'a>(&self, subject: &'a str) -> Option<&'a str> {
        subject.strip_prefix(self.subject_prefix.as_str())?.strip_prefix("bashu.alert.submit.")
    }

    /// `bashu.alert.live.<county>`: the live (core NATS) alert delivery to a county.
    pub fn alert_live(&self, county: &str) -> Result<Subject> {
        Ok(self.concrete(&format!("alert.live.{}", token(county)?)))
    }

    /// `bashu.alert.feed.<county>`: the durable alert delivery to a county.
    pub fn alert_feed(&self, county: &str) -> Result<Subject> {
        Ok(self.concrete(&format!("alert.feed.{}", token(county)?)))
    }

    /// `bashu.alert.receipt.<county>`: a county's system has an alert.
    pub fn alert_receipt(&self, county: &str) -> Result<Subject> {
        Ok(self.concrete(&format!("alert.receipt.{}", token(county)?)))
    }

    /// `bashu.alert.recorded.<county>`: staff recorded a county's confirmation on its behalf
    /// (only the alerts service may publish here).
    pub fn alert_recorded(&self, county: &str) -> Result<Subject> {
        Ok(self.concrete(&format!("alert.recorded.{}", token(county)?)))
    }

    /// `bashu.alert.ack.<county>`: a person at a county confirmed an alert.
    pub fn alert_ack(&self, county: &str) -> Result<Subject> {
        Ok(self.concrete(&format!("alert.ack.{}", token(county)?)))
    }

    /// `bashu.alert.escalated.<county>`: an escalation step for a county.
    pub fn alert_escalated(&self, county: &str) -> Result<Subject> {
        Ok(self.concrete(&format!("alert.escalated.{}", token(county)?)))
    }

    /// `bashu.alert.escalated.>`: every escalation step.
    pub fn all_alert_escalated(&self) -> SubjectFilter {
        self.filter("alert.escalated.>")
    }

    /// `bashu.alert.issued.>`: every accepted alert.
    pub fn all_alert_issued(&self) -> SubjectFilter {
        self.filter("alert.issued.>")
    }

    /// `bashu.alert.live.*`: every county's live alerts (for monitors and tests).
    pub fn all_alert_live(&self) -> SubjectFilter {
        self.filter("alert.live.*")
    }

    /// The county of a live alert subject (`bashu.alert.live.<county>`), if it is one.
    pub fn alert_live_county<'a>(&self, subject: &'a str) -> Option<&'a str> {
        subject.strip_prefix(self.subject_prefix.as_str())?.strip_prefix("bashu.alert.live.")
    }

    /// `bashu.alert.feed.>`: every county's durable alert feed.
    pub fn all_alert_feeds(&self) -> SubjectFilter {
        self.filter("alert.feed.>")
    }

    /// The county of an alert feed subject (`bashu.alert.feed.<county>`), if it is one.
    pub fn alert_feed_county<'a>(&self, subject: &'a str) -> Option<&'a str> {
        subject.strip_prefix(self.subject_prefix.as_str())?.strip_prefix("bashu.alert.feed.")
    }

    /// What an alert ledger subject says: its kind (`issued`, `receipt`, `ack`, `escalated`) and
    /// its last token (the desk for `issued`, the county for the others), if it is one.
    pub fn alert_ledger_entry<'a>(&self, subject: &'a str) -> Option<(&'a str, &'a str)> {
        let rest = subject.strip_prefix(self.subject_prefix.as_str())?.strip_prefix("bashu.alert.")?;
        let (kind, token) = rest.split_once('.')?;
        (ALERT_LEDGER_KINDS.contains(&kind) && !token.contains('.')).then_some((kind, token))
    }

    pub(crate) fn alert_tracking_subjects(&self) -> Vec<SubjectFilter> {
        ALERT_LEDGER_KINDS.iter().map(|kind| self.filter(&format!("alert.{kind}.>"))).collect()
    }

    /// `bashu.dlq.<consumer>`: messages a consumer gave up on.
    pub fn dead_letter(&self, consumer: &str) -> Result<Subject> {
        Ok(self.concrete(&format!("dlq.{}", token(consumer)?)))
    }

    /// `bashu.story.decided.>`: every moderation decision.
    pub fn all_story_decided(&self) -> SubjectFilter {
        self.filter("story.decided.>")
    }

    /// `bashu.story.published.>`: every publication record.
    pub fn all_story_published(&self) -> SubjectFilter {
        self.filter("story.published.>")
    }

    /// The county and kind (`story`, `decision`) of a feed subject (`bashu.feed.<county>.<kind>`),
    /// if it is one.
    pub fn feed_entry<'a>(&self, subject: &'a str) -> Option<(&'a str, &'a str)> {
        subject.strip_prefix(self.subject_prefix.as_str())?.strip_prefix("bashu.feed.")?.split_once('.')
    }

    /// The county of a feed subject (`bashu.feed.<county>.<kind>`), if it is one.
    pub fn feed_county<'a>(&self, subject: &'a str) -> Option<&'a str> {
        let rest = subject.strip_prefix(self.subject_prefix.as_str())?.strip_prefix("bashu.feed.")?;
        rest.split('.').next()
    }

    pub(crate) fn all_story_events(&self) -> SubjectFilter {
        self.filter("story.>")
    }

    /// `bashu.story.submitted.>`: every submission.
    pub fn all_story_submitted(&self) -> SubjectFilter {
        self.filter("story.submitted.>")
    }

    /// `bashu.feed.>`: every county's feed.
    pub fn all_feeds(&self) -> SubjectFilter {
        self.filter("feed.>")
    }

    pub(crate) fn all_dead_letters(&self) -> SubjectFilter {
        self.filter("dlq.>")
    }

    /// `bashu.story.used.<county>`: a receiving county used a story.
    pub fn story_used(&self, county: &str) -> Result<Subject> {
        Ok(self.concrete(&format!("story.used.{}", token(county)?)))
    }

    /// `bashu.pool.rebuild`: every distribution replica empties its content pool index and reads
    /// the streams again (core NATS, not stored).
    pub fn pool_rebuild(&self) -> Subject {
        self.concrete("pool.rebuild")
    }

    /// `bashu.pool.progress.<replica>`: a replica's progress while it rebuilds (core NATS).
    pub fn pool_progress(&self, replica: &str) -> Result<Subject> {
        Ok(self.concrete(&format!("pool.progress.{}", token(replica)?)))
    }

    /// `bashu.pool.progress.*`: every replica's progress.
    pub fn all_pool_progress(&self) -> SubjectFilter {
        self.filter("pool.progress.*")
    }

    /// `bashu.coverage.plan.<plan>`: a joint coverage plan's changes, in order.
    pub fn coverage_plan(&self, plan: &str) -> Result<Subject> {
        Ok(self.concrete(&format!("coverage.plan.{}", token(plan)?)))
    }

    /// `bashu.coverage.>`: every plan's changes.
    pub fn all_coverage(&self) -> SubjectFilter {
        self.filter("coverage.>")
    }

    /// The story ledger's subjects a plan's contributions are recorded from: submissions,
    /// decisions, publications (who received each version) and reuse notes.
    pub fn coverage_contribution_sources(&self) -> Vec<SubjectFilter> {
        vec![self.all_story_submitted(), self.all_story_decided(), self.all_story_published(), self.all_story_uses()]
    }

    /// `bashu.channel.<county>.<plan>`: a county's copy of a plan's channel (专题).
    pub fn channel_item(&self, county: &str, plan: &str) -> Result<Subject> {
        Ok(self.concrete(&format!("channel.{}.{}", token(county)?, token(plan)?)))
    }

    /// `bashu.channel.<county>.<plan>.flag`: a phase the county leads was flagged.
    pub fn channel_flag(&self, county: &str, plan: &str) -> Result<Subject> {
        Ok(self.concrete(&format!("channel.{}.{}.flag", token(county)?, token(plan)?)))
    }

    /// What a channel subject carries (`item` or `flag`) and its plan, if it is one.
    pub fn channel_entry<'a>(&self, subject: &'a str) -> Option<(&'static str, &'a str)> {
        let rest = subject.strip_prefix(self.subject_prefix.as_str())?.strip_prefix("bashu.channel.")?;
        match rest.split('.').collect::<Vec<_>>().as_slice() {
            [_, plan] => Some(("item", plan)),
            [_, plan, "flag"] => Some(("flag", plan)),
            _ => None,
        }
    }

    /// `bashu.channel.<county>.>`: every channel a county follows.
    pub fn channels_of(&self, county: &str) -> Result<SubjectFilter> {
        Ok(self.filter(&format!("channel.{}.>", token(county)?)))
    }

    /// `bashu.channel.>`: every county's channels.
    pub fn all_channels(&self) -> SubjectFilter {
        self.filter("channel.>")
    }

    /// `bashu.audit.<service>`: changes made through a service's API.
    pub fn audit(&self, service: &str) -> Result<Subject> {
        Ok(self.concrete(&format!("audit.{}", token(service)?)))
    }

    /// `bashu.audit.>`: every audit event.
    pub fn all_audit(&self) -> SubjectFilter {
        self.filter("audit.>")
    }

    /// `bashu.story.>`: the whole story ledger.
    pub fn all_story_ledger(&self) -> SubjectFilter {
        self.all_story_events()
    }

    /// `bashu.alert.>` minus the live and feed copies: the alert ledger's subjects.
    pub fn all_alert_ledger(&self) -> Vec<SubjectFilter> {
        self.alert_tracking_subjects()
    }

    /// The stream and subject prefix-free name of a stream (`T1_FEEDS` → `FEEDS`).
    pub fn base_name<'a>(&self, name: &'a str) -> &'a str {
        name.strip_prefix(self.name_prefix.as_str()).unwrap_or(name)
    }
}

/// A subject token: non-empty, no `.`, `*`, `>` or white space, at most 64 bytes.
fn token(value: &str) -> Result<&str> {
    let valid = !value.is_empty()
        && value.len() <= 64
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid { Ok(value) } else { Err(Error::InvalidToken { what: "subject token", value: value.to_owned() }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_names_have_no_prefix() {
        let s = Subjects::new("").unwrap();
        assert_eq!(s.story_submitted("511083").unwrap(), "bashu.story.submitted.511083");
        assert_eq!(s.feed_of("500153").unwrap(), "bashu.feed.500153.>");
        assert_eq!(s.name("STORIES"), "STORIES");
    }

    #[test]
    fn prefix_isolates_subjects_and_names() {
        let s = Subjects::new("t42").unwrap();
        assert_eq!(s.feed_story("500153").unwrap(), "t42.bashu.feed.500153.story");
        assert_eq!(s.name("FEEDS"), "T42_FEEDS");
    }

    #[test]
    fn wildcards_and_dots_are_refused_in_tokens() {
        let s = Subjects::default();
        for bad in ["", "5001.53", "*", ">", "a b", "500153>"] {
            assert!(s.feed_story(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Subjects::new("a.b").is_err());
    }
}
