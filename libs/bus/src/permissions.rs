//! What each identity on the bus may publish and subscribe to, derived from the same names the
//! services use, so that nats-server itself enforces who may do what.
//!
//! A county reads its feeds only through its own durable consumers (a fetch is a publish to
//! `$JS.API.CONSUMER.MSG.NEXT.<stream>.<its consumer>`, the messages come back to its own inbox
//! prefix) and may not create consumers, read streams directly or use any other JetStream API:
//! a consumer of its own making could read any subject of a stream, whatever its subscribe
//! permissions say.

use crate::{
    ALERT_FEEDS, CHANNELS, FEEDS, Result, Subjects,
    topology::{
        ALERT_STATE_BUCKET, COVERAGE_BUCKET, DISTRIBUTION_BUCKET, INGEST_BUCKET, INGEST_FEEDS_BUCKET, MEDIA_STORE,
        MODERATION_BUCKET,
    },
};

/// Subjects an identity may publish to and subscribe to (NATS wildcards allowed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Permissions {
    /// Allowed publish subjects; everything else is refused.
    pub publish: Vec<String>,
    /// Allowed subscribe subjects; everything else is refused.
    pub subscribe: Vec<String>,
    /// May answer the requests it receives (on whatever reply subject they carry), and nothing
    /// more: how the alert service answers desks on their own inboxes.
    pub allow_responses: bool,
}

/// The services that connect to the bus, each with an identity of its own.
pub const SERVICES: [&str; 7] = ["ingest", "moderation", "distribution", "alerts", "coverage", "admin", "nats-auth"];

/// The inbox prefix a county's client must use (`custom_inbox_prefix`), so that the replies to
/// its fetches reach only it.
pub fn county_inbox(county: &str) -> String {
    format!("_INBOX_{county}")
}

/// The inbox prefix a desk's client must use.
pub fn desk_inbox(desk: &str) -> String {
    format!("_INBOX_desk_{desk}")
}

impl Permissions {
    /// A county: its own receipts, acknowledgements, takedown confirmations and reuse notes; its
    /// own three durable consumers (story feed, alert feed, channels: fetch, info, ack); its live alerts; its own inbox.
    pub fn county(subjects: &Subjects, county: &str) -> Result<Self> {
        let feeds = subjects.name(FEEDS);
        let alert_feeds = subjects.name(ALERT_FEEDS);
        let channels = subjects.name(CHANNELS);
        let consumers = [
            (feeds, format!("feed-{county}")),
            (alert_feeds, format!("alerts-{county}")),
            (channels, format!("channel-{county}")),
        ];
        let mut publish = vec![
            subjects.story_receipt(county)?.into(),
            subjects.story_takedown(county)?.into(),
            subjects.story_used(county)?.into(),
            subjects.alert_receipt(county)?.into(),
            subjects.alert_ack(county)?.into(),
        ];
        for (stream, consumer) in &consumers {
            publish.push(format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"));
            publish.push(format!("$JS.API.CONSUMER.INFO.{stream}.{consumer}"));
            // Acknowledgement subjects: `$JS.ACK.<stream>.<consumer>.…`, and the form with a
            // domain and account hash in front.
            publish.push(format!("$JS.ACK.{stream}.{consumer}.>"));
            publish.push(format!("$JS.ACK.*.*.{stream}.{consumer}.>"));
        }
        let subscribe = vec![format!("{}.>", county_inbox(county)), subjects.alert_live(county)?.into()];
        Ok(Self { publish, subscribe, allow_responses: false })
    }

    /// An emergency desk: submits its alerts (signed CAP, checked by the alert service like the
    /// HTTP intake) on its own subject, and hears the answers on its own inbox.
    pub fn desk(subjects: &Subjects, desk: &str) -> Result<Self> {
        Ok(Self {
            publish: vec![subjects.alert_submit(desk)?.into()],
            subscribe: vec![format!("{}.>", desk_inbox(desk))],
            allow_responses: false,
        })
    }

    /// A service: the events it produces, the buckets it writes, and what every service needs
    /// (the JetStream API to provision streams and consumers and to read, dead letters, its inbox).
    /// None is given another service's events.
    pub fn service(subjects: &Subjects, service: &str) -> Option<Self> {
        let kv = |bucket: &str| format!("$KV.{}.>", subjects.name(bucket));
        let mut publish = match service {
            "ingest" => vec![
                subjects.pattern("story.submitted.*"),
                kv(INGEST_BUCKET),
                kv(INGEST_FEEDS_BUCKET),
                format!("$O.{}.>", subjects.name(MEDIA_STORE)),
            ],
            "moderation" => vec![
                subjects.pattern("story.decided.*"),
                subjects.pattern("story.reviewed.*"),
                subjects.pattern("feed.*.decision"),
                // Reviewers' claims, approvals and rejections, in the operators' audit log.
                subjects.pattern("audit.moderation"),
                kv(MODERATION_BUCKET),
            ],
            "distribution" => vec![
                subjects.pattern("feed.*.story"),
                subjects.pattern("story.published.*"),
                // The content pool's "mark as used", for the county of the caller's token.
                subjects.pattern("story.used.*"),
                // How far a replica's content pool rebuild has got, for the operator who asked.
                subjects.pattern("pool.progress.*"),
                kv(DISTRIBUTION_BUCKET),
            ],
            "alerts" => vec![
                subjects.pattern("alert.issued.*"),
                subjects.pattern("alert.live.*"),
                subjects.pattern("alert.feed.*"),
                subjects.pattern("alert.ack.*"),
                subjects.pattern("alert.recorded.*"),
                subjects.pattern("alert.receipt.*"),
                subjects.pattern("alert.escalated.*"),
                // What it refused from a county (an acknowledgement for another county), and the
                // acknowledgements staff made on a county's behalf.
                subjects.pattern("audit.alerts"),
                kv(ALERT_STATE_BUCKET),
            ],
            "coverage" => vec![
                subjects.pattern("coverage.plan.*"),
                // Each following county's copy of a plan's channel, and a phase owner's notices.
                subjects.pattern("channel.>"),
                // Every change to a plan, with the county or staff member who made it.
                subjects.pattern("audit.coverage"),
                kv(COVERAGE_BUCKET),
            ],
            // Operators change the registry and credentials, replay into feeds and requeue dead
            // letters to wherever they came from: the one service with every Bashu subject.
            "admin" => vec![subjects.pattern(">"), "$KV.>".into()],
            // Reads the credentials to write nats-server's authorization: nothing to publish.
            "nats-auth" => vec![],
            _ => return None,
        };
        publish.extend([
            subjects.pattern("dlq.*"),
            "$JS.API.>".into(),
            "$JS.ACK.>".into(),
            // Flow control replies of the ordered consumers that watch buckets.
            "$JS.FC.>".into(),
        ]);
        let mut subscribe = vec!["_INBOX.>".to_owned()];
        match service {
            "alerts" => subscribe.push(subjects.all_alert_submit().into()),
            "distribution" => subscribe.push(subjects.pool_rebuild().into()),
            "admin" => subscribe.push(subjects.all_pool_progress().into()),
            _ => {}
        }
        Some(Self { publish, subscribe, allow_responses: service == "alerts" })
    }
}
