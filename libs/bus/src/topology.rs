//! Streams, key-value buckets and durable consumers: their configuration and their creation.

use std::time::{Duration, SystemTime};

use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, pull},
    kv,
    stream::{self, DiscardPolicy, RetentionPolicy, StorageType},
};
use futures::{StreamExt, TryStreamExt};

use crate::{Bus, Error, Result};

/// The story life-cycle events: submitted, decided, published, receipts. Also the ledger.
pub const STORIES: &str = "STORIES";
/// Every county's feed; one durable consumer per county.
pub const FEEDS: &str = "FEEDS";
/// Messages a consumer gave up on, with the reason in a header.
pub const DEAD_LETTERS: &str = "DEAD_LETTERS";
/// Accepted alerts, receipts, acknowledgements and escalations: the alert ledger.
pub const ALERTS: &str = "ALERTS";
/// Every county's durable alert feed; one durable consumer per county.
pub const ALERT_FEEDS: &str = "ALERT_FEEDS";
/// Alert chains with every county's state, and intake's records (key-value bucket).
pub const ALERT_STATE_BUCKET: &str = "ALERT_STATE";
/// Moderation's fingerprints of approved stories, for near-duplicates (key-value bucket).
pub const MODERATION_BUCKET: &str = "MODERATION";
/// Distribution's record of every story: receivers per version, held versions, takedowns.
pub const DISTRIBUTION_BUCKET: &str = "DISTRIBUTION";
/// Alliances and partnerships (key-value bucket).
pub const REGISTRY_BUCKET: &str = "REGISTRY";
/// Ingest's durable record of every accepted story version (key-value bucket).
pub const INGEST_BUCKET: &str = "INGEST_ACCEPTED";
/// Digests of county tokens (key-value bucket).
pub const CREDENTIALS_BUCKET: &str = "CREDENTIALS";
/// The feeds counties registered and their polling state (key-value bucket; small, so the
/// poller can list it every tick).
pub const INGEST_FEEDS_BUCKET: &str = "INGEST_FEEDS";
/// Changes made through the admin API: who, what, when, before and after.
pub const AUDIT: &str = "AUDIT";

/// Every stream, for operators' views.
pub(crate) const STREAMS: [&str; 6] = [STORIES, FEEDS, ALERTS, ALERT_FEEDS, DEAD_LETTERS, AUDIT];

/// Media uploaded by counties, by sha256 digest (object store).
pub const MEDIA_STORE: &str = "MEDIA";

const DAY: Duration = Duration::from_secs(24 * 3600);

/// Settings that differ between a laptop and a production cluster.
#[derive(Clone, Debug)]
pub struct Topology {
    /// Stream replicas: 1 on a single server, 3 on a production cluster.
    pub replicas: usize,
}

impl Default for Topology {
    fn default() -> Self {
        Self { replicas: 1 }
    }
}

/// Where a durable consumer starts when it is first created.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Start {
    /// From the first message the stream holds.
    All,
    /// From the first message stored at or after this time.
    At(SystemTime),
}

/// How a durable consumer retries.
#[derive(Clone, Debug)]
pub struct Retry {
    /// How long the server waits for an ack before it redelivers (a crashed handler's message
    /// comes back after this).
    pub ack_wait: Duration,
    /// Handler attempts before the message goes to the dead-letter stream.
    pub max_deliver: u32,
    /// Delay before attempt n+1 after attempt n failed (the last entry repeats).
    pub backoff: Vec<Duration>,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            ack_wait: Duration::from_secs(30),
            max_deliver: 5,
            backoff: vec![Duration::from_secs(1), Duration::from_secs(5), Duration::from_secs(30)],
        }
    }
}

/// [`Retry`] as it appears in a configuration file (milliseconds).
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// How long the server waits for an ack before it redelivers, in milliseconds (a crashed
    /// handler's message comes back after this).
    pub ack_wait_ms: u64,
    /// Handler attempts before the message goes to the dead-letter stream.
    pub max_deliver: u32,
    /// Milliseconds before attempt n+1 after attempt n failed (the last entry repeats).
    pub backoff_ms: Vec<u64>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        let retry = Retry::default();
        Self {
            ack_wait_ms: retry.ack_wait.as_millis() as u64,
            max_deliver: retry.max_deliver,
            backoff_ms: retry.backoff.iter().map(|d| d.as_millis() as u64).collect(),
        }
    }
}

impl RetryConfig {
    /// Checks the values make sense.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.ack_wait_ms < 100 {
            return Err("ack_wait_ms must be at least 100".into());
        }
        if !(1..=1000).contains(&self.max_deliver) {
            return Err("max_deliver must be between 1 and 1000".into());
        }
        Ok(())
    }
}

impl From<&RetryConfig> for Retry {
    fn from(config: &RetryConfig) -> Self {
        Self {
            ack_wait: Duration::from_millis(config.ack_wait_ms),
            max_deliver: config.max_deliver,
            backoff: config.backoff_ms.iter().map(|ms| Duration::from_millis(*ms)).collect(),
        }
    }
}

impl Retry {
    pub(crate) fn delay_after(&self, attempt: u32) -> Duration {
        let index = (attempt.max(1) as usize - 1).min(self.backoff.len().saturating_sub(1));
        self.backoff.get(index).copied().unwrap_or(Duration::from_secs(1))
    }
}

/// A durable pull consumer: which stream, which name, which subjects.
#[derive(Clone, Debug)]
pub struct ConsumerSpec {
    pub(crate) stream: String,
    pub(crate) durable: String,
    pub(crate) filter: String,
    pub(crate) retry: Retry,
    /// Where it starts when first created.
    pub(crate) start: Start,
    /// Messages handed out and not yet acknowledged, at most: 1 keeps a consumer strictly in
    /// order while it retries (a webhook destination).
    pub(crate) max_ack_pending: i64,
    /// Messages one process handles at once (in order per key, [`Bus::consume_keyed`]).
    pub(crate) parallel: usize,
}

impl ConsumerSpec {
    /// The durable name.
    pub fn durable(&self) -> &str {
        &self.durable
    }

    /// The stream it reads.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// Lets one process handle up to `messages` of it at once (at least 1; bounded by what the
    /// server hands out unacknowledged).
    pub fn in_parallel(mut self, messages: usize) -> Self {
        self.parallel = messages.clamp(1, self.max_ack_pending.max(1) as usize);
        self
    }

    pub(crate) fn config(&self) -> pull::Config {
        pull::Config {
            durable_name: Some(self.durable.clone()),
            ack_policy: AckPolicy::Explicit,
            deliver_policy: match self.start {
                Start::All => DeliverPolicy::All,
                Start::At(at) => DeliverPolicy::ByStartTime { start_time: at.into() },
            },
            ack_wait: self.retry.ack_wait,
            filter_subject: self.filter.clone(),
            // One more than the handler's attempts: if the process dies during the last attempt,
            // the server still hands the message back once, and it is dead-lettered then.
            max_deliver: i64::from(self.retry.max_deliver) + 1,
            max_ack_pending: self.max_ack_pending,
            ..Default::default()
        }
    }
}

impl Bus {
    fn stream_configs(&self) -> Vec<stream::Config> {
        let s = &self.subjects;
        let base = stream::Config {
            retention: RetentionPolicy::Limits,
            storage: StorageType::File,
            discard: DiscardPolicy::Old,
            num_replicas: self.topology.replicas,
            ..Default::default()
        };
        vec![
            stream::Config {
                name: s.name(STORIES),
                description: Some("story life-cycle events (the ledger)".into()),
                subjects: vec![s.all_story_events()],
                max_age: 400 * DAY,
                // Resubmissions from a county's CMS come back within a day.
                duplicate_window: DAY,
                ..base.clone()
            },
            stream::Config {
                name: s.name(FEEDS),
                description: Some("every county's feed".into()),
                subjects: vec![s.all_feeds()],
                max_age: 90 * DAY,
                // Longer than any redelivery of distribution's input (ack_wait x max_deliver).
                duplicate_window: Duration::from_secs(3600),
                ..base.clone()
            },
            stream::Config {
                name: s.name(ALERTS),
                description: Some("accepted alerts, receipts, acknowledgements, escalations".into()),
                subjects: s.alert_tracking_subjects(),
                max_age: 400 * DAY,
                duplicate_window: DAY,
                ..base.clone()
            },
            stream::Config {
                name: s.name(ALERT_FEEDS),
                description: Some("every county's durable alert feed".into()),
                subjects: vec![s.all_alert_feeds()],
                max_age: 30 * DAY,
                // Longer than any redelivery of the fan-out's input.
                duplicate_window: Duration::from_secs(3600),
                ..base.clone()
            },
            stream::Config {
                name: s.name(AUDIT),
                description: Some("changes made through the admin API".into()),
                subjects: vec![s.all_audit()],
                // As long as the ledgers the changes acted on.
                max_age: 400 * DAY,
                duplicate_window: DAY,
                ..base.clone()
            },
            stream::Config {
                name: s.name(DEAD_LETTERS),
                description: Some("messages consumers gave up on, with the reason".into()),
                subjects: vec![s.all_dead_letters()],
                max_age: 30 * DAY,
                duplicate_window: Duration::from_secs(3600),
                ..base
            },
        ]
    }

    /// Creates or updates every stream and bucket. Every service calls this at start-up; it is
    /// idempotent, and it is the only place streams are defined.
    pub async fn provision(&self) -> Result<()> {
        for config in self.stream_configs() {
            let name = config.name.clone();
            self.js
                .create_or_update_stream(config)
                .await
                .map_err(|e| Error::nats(format!("create stream {name}"), e))?;
        }
        self.registry_bucket().await?;
        self.ingest_bucket().await?;
        self.alert_state_bucket().await?;
        self.distribution_bucket().await?;
        self.moderation_bucket().await?;
        self.credentials_bucket().await?;
        self.ingest_feeds_bucket().await?;
        self.media_store().await?;
        Ok(())
    }

    async fn bucket(&self, base: &str, history: i64) -> Result<kv::Store> {
        let bucket = self.subjects.name(base);
        self.js
            .create_or_update_key_value(kv::Config {
                bucket: bucket.clone(),
                history,
                storage: StorageType::File,
                num_replicas: self.topology.replicas,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::nats(format!("create bucket {bucket}"), e))
    }

    /// Alliances and partnerships.
    pub async fn registry_bucket(&self) -> Result<kv::Store> {
        self.bucket(REGISTRY_BUCKET, 10).await
    }

    /// Ingest's idempotency records.
    pub async fn ingest_bucket(&self) -> Result<kv::Store> {
        self.bucket(INGEST_BUCKET, 1).await
    }

    /// County tokens (digests only).
    pub async fn credentials_bucket(&self) -> Result<kv::Store> {
        self.bucket(CREDENTIALS_BUCKET, 1).await
    }

    /// Ingest's registered feeds and their polling state.
    pub async fn ingest_feeds_bucket(&self) -> Result<kv::Store> {
        self.bucket(INGEST_FEEDS_BUCKET, 1).await
    }

    /// Uploaded media, each object named by its sha256 digest.
    pub async fn media_store(&self) -> Result<async_nats::jetstream::object_store::ObjectStore> {
        let bucket = self.subjects.name(MEDIA_STORE);
        self.js
            .create_object_store(async_nats::jetstream::object_store::Config {
                bucket: bucket.clone(),
                num_replicas: self.topology.replicas,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::nats(format!("create object store {bucket}"), e))
    }

    /// Alert chains and intake records.
    pub async fn alert_state_bucket(&self) -> Result<kv::Store> {
        self.bucket(ALERT_STATE_BUCKET, 1).await
    }

    /// Moderation's fingerprints of approved stories.
    pub async fn moderation_bucket(&self) -> Result<kv::Store> {
        self.bucket(MODERATION_BUCKET, 1).await
    }

    /// Distribution's per-story records.
    pub async fn distribution_bucket(&self) -> Result<kv::Store> {
        self.bucket(DISTRIBUTION_BUCKET, 1).await
    }

    /// Distribution's takedown tracker reads every takedown confirmation.
    pub fn takedown_consumer(&self, retry: Retry) -> ConsumerSpec {
        ConsumerSpec {
            stream: self.subjects.name(STORIES),
            durable: "takedown-tracker".into(),
            filter: self.subjects.all_story_takedown(),
            retry,
            start: Start::All,
            max_ack_pending: 1_000,
            parallel: 1,
        }
    }

    /// Checks what counties publish about stories they received (`story.receipt.*`): a malformed
    /// receipt, or one naming another county, goes to the dead letters with the reason.
    pub fn county_receipts_consumer(&self, retry: Retry) -> ConsumerSpec {
        ConsumerSpec {
            stream: self.subjects.name(STORIES),
            durable: "county-receipts".into(),
            filter: self.subjects.all_story_receipts(),
            retry,
            start: Start::All,
            max_ack_pending: 1_000,
            parallel: 1,
        }
    }

    /// Checks the reuse notes counties publish (`story.used.*`), as [`Bus::county_receipts_consumer`].
    pub fn county_uses_consumer(&self, retry: Retry) -> ConsumerSpec {
        ConsumerSpec {
            stream: self.subjects.name(STORIES),
            durable: "county-uses".into(),
            filter: self.subjects.all_story_uses(),
            retry,
            start: Start::All,
            max_ack_pending: 1_000,
            parallel: 1,
        }
    }

    /// A county's webhook sender: everything in the county's feed from the moment its webhook
    /// was registered (`since`), in order, however late the sender starts.
    pub fn webhook_consumer(&self, county: &str, since: SystemTime, retry: Retry) -> Result<ConsumerSpec> {
        Ok(ConsumerSpec {
            stream: self.subjects.name(FEEDS),
            durable: format!("webhook-{county}"),
            filter: self.subjects.feed_of(county)?,
            retry,
            start: Start::At(since),
            max_ack_pending: 1,
            parallel: 1,
        })
    }

    /// Removes a durable consumer (a webhook that was unregistered).
    pub async fn delete_consumer(&self, spec: &ConsumerSpec) -> Result<()> {
        let stream = self.stream_by_name(&spec.stream).await?;
        stream
            .delete_consumer(&spec.durable)
            .await
            .map(drop)
            .map_err(|e| Error::nats(format!("delete consumer {}", spec.durable), e))
    }

    async fn stream_by_name(&self, name: &str) -> Result<jetstream::stream::Stream> {
        self.js.get_stream(name).await.map_err(|e| Error::nats(format!("get stream {name}"), e))
    }

    /// The alert fan-out reads every accepted alert.
    pub fn alert_fanout_consumer(&self, retry: Retry) -> ConsumerSpec {
        ConsumerSpec {
            stream: self.subjects.name(ALERTS),
            durable: "alert-fanout".into(),
            filter: self.subjects.all_alert_issued(),
            retry,
            start: Start::All,
            max_ack_pending: 1_000,
            parallel: 1,
        }
    }

    /// The alert tracker reads everything in the alert ledger, in order.
    pub fn alert_tracker_consumer(&self, retry: Retry) -> ConsumerSpec {
        ConsumerSpec {
            stream: self.subjects.name(ALERTS),
            durable: "alert-tracker".into(),
            filter: String::new(),
            retry,
            start: Start::All,
            max_ack_pending: 1_000,
            parallel: 1,
        }
    }

    /// A county's own durable alert consumer, `alerts-<code>`.
    pub fn county_alert_consumer(&self, county: &str) -> Result<ConsumerSpec> {
        Ok(ConsumerSpec {
            stream: self.subjects.name(ALERT_FEEDS),
            durable: format!("alerts-{county}"),
            filter: self.subjects.alert_feed(county)?,
            retry: Retry { ack_wait: Duration::from_secs(30), max_deliver: u32::MAX - 1, backoff: vec![] },
            start: Start::All,
            max_ack_pending: 1_000,
            parallel: 1,
        })
    }

    /// Moderation reads every submitted story.
    pub fn moderation_consumer(&self, retry: Retry) -> ConsumerSpec {
        ConsumerSpec {
            stream: self.subjects.name(STORIES),
            durable: "moderation".into(),
            filter: self.subjects.all_story_submitted(),
            retry,
            start: Start::All,
            max_ack_pending: 1_000,
            parallel: 1,
        }
    }

    /// Ingest follows every moderation decision, to answer a county's status requests.
    pub fn ingest_status_consumer(&self, retry: Retry) -> ConsumerSpec {
        ConsumerSpec {
            stream: self.subjects.name(STORIES),
            durable: "ingest-status".into(),
            filter: self.subjects.all_story_decided(),
            retry,
            start: Start::All,
            max_ack_pending: 1_000,
            parallel: 1,
        }
    }

    /// Distribution reads every moderation decision.
    pub fn distribution_consumer(&self, retry: Retry) -> ConsumerSpec {
        ConsumerSpec {
            stream: self.subjects.name(STORIES),
            durable: "distribution".into(),
            filter: self.subjects.all_story_decided(),
            retry,
            start: Start::All,
            max_ack_pending: 1_000,
            parallel: 1,
        }
    }

    /// A county's own feed consumer, `feed-<code>`, which the county reads and acks.
    pub fn county_feed_consumer(&self, county: &str) -> Result<ConsumerSpec> {
        Ok(ConsumerSpec {
            stream: self.subjects.name(FEEDS),
            durable: format!("feed-{county}"),
            filter: self.subjects.feed_of(county)?,
            // A county's consumer never gives up: the county must get everything, late or not.
            retry: Retry { ack_wait: Duration::from_secs(30), max_deliver: u32::MAX - 1, backoff: vec![] },
            start: Start::All,
            max_ack_pending: 1_000,
            parallel: 1,
        })
    }

    /// Creates or updates the story feed consumer of every given county, a few at a time.
    pub async fn provision_county_feeds<'a>(&self, counties: impl IntoIterator<Item = &'a str>) -> Result<()> {
        let specs = counties.into_iter().map(|c| self.county_feed_consumer(c)).collect::<Result<Vec<_>>>()?;
        self.provision_county_consumers(FEEDS, specs).await
    }

    /// Creates or updates the alert consumer of every given county, a few at a time.
    pub async fn provision_county_alert_feeds<'a>(&self, counties: impl IntoIterator<Item = &'a str>) -> Result<()> {
        let specs = counties.into_iter().map(|c| self.county_alert_consumer(c)).collect::<Result<Vec<_>>>()?;
        self.provision_county_consumers(ALERT_FEEDS, specs).await
    }

    async fn provision_county_consumers(&self, base: &str, specs: Vec<ConsumerSpec>) -> Result<()> {
        let feeds = self.stream(base).await?;
        futures::stream::iter(specs)
            .map(|spec| {
                let feeds = &feeds;
                async move {
                    let mut config = spec.config();
                    config.max_deliver = -1;
                    feeds
                        .create_consumer(config)
                        .await
                        .map_err(|e| Error::nats(format!("create consumer {}", spec.durable), e))
                }
            })
            .buffer_unordered(16)
            .try_for_each(|_| async { Ok(()) })
            .await
    }

    /// The JetStream stream handle of a stream named by its base name (`STORIES`, `FEEDS`, ...).
    pub async fn stream(&self, base: &str) -> Result<jetstream::stream::Stream> {
        let name = self.subjects.name(base);
        self.js.get_stream(&name).await.map_err(|e| Error::nats(format!("get stream {name}"), e))
    }
}
