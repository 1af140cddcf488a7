//! Streams, key-value buckets and durable consumers: their configuration and their creation.
//! Each domain owns its part (`stories`, `alerts`, `coverage`, `registry`), reached from the bus
//! as [`Bus::stories`], [`Bus::alerts`], [`Bus::coverage`] and [`Bus::registry`]; this module holds what they share
//! (retries, consumer specs, the streams every service writes to) and provisions them all.

mod alerts;
mod coverage;
mod registry;
mod stories;

pub use alerts::{ALERT_FEEDS, ALERT_STATE_BUCKET, ALERTS, AlertTopology};
pub use coverage::{CHANNELS, COVERAGE, COVERAGE_BUCKET, CoverageTopology};
pub use registry::{CREDENTIALS_BUCKET, REGISTRY_BUCKET, RegistryTopology};
pub use stories::{
    DISTRIBUTION_BUCKET, FEEDS, INGEST_BUCKET, INGEST_FEEDS_BUCKET, MEDIA_STORE, MODERATION_BUCKET, STORIES,
    StoryTopology,
};

use std::time::{Duration, SystemTime};

use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, pull},
    kv,
    stream::{self, DiscardPolicy, RetentionPolicy, StorageType},
};
use futures::{StreamExt, TryStreamExt};

use crate::{Bus, Error, Operation, Result, SubjectFilter};

/// Messages a consumer gave up on, with the reason in a header.
pub const DEAD_LETTERS: &str = "DEAD_LETTERS";
/// Changes made through the admin API: who, what, when, before and after.
pub const AUDIT: &str = "AUDIT";

/// Every stream, for operators' views.
pub(crate) const STREAMS: [&str; 8] = [STORIES, FEEDS, ALERTS, ALERT_FEEDS, COVERAGE, CHANNELS, DEAD_LETTERS, AUDIT];

pub(crate) const DAY: Duration = Duration::from_secs(24 * 3600);

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
    /// The subjects it reads (none: the whole stream).
    pub(crate) filters: Vec<String>,
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
            // One filter is sent as `filter_subject`, which servers before 2.10 understand too.
            filter_subject: if self.filters.len() == 1 { self.filters[0].clone() } else { String::new() },
            filter_subjects: if self.filters.len() > 1 { self.filters.clone() } else { Vec::new() },
            // One more than the handler's attempts: if the process dies during the last attempt,
            // the server still hands the message back once, and it is dead-lettered then.
            max_deliver: i64::from(self.retry.max_deliver) + 1,
            max_ack_pending: self.max_ack_pending,
            ..Default::default()
        }
    }
}

impl ConsumerSpec {
    /// A durable consumer of stream `base` named `durable` reading `filter` (everything: none),
    /// from the start, one message at a time per process.
    pub(crate) fn new(
        bus: &Bus,
        base: &str,
        durable: impl Into<String>,
        filter: Option<SubjectFilter>,
        retry: Retry,
    ) -> Self {
        Self {
            stream: bus.subjects.name(base),
            durable: durable.into(),
            filters: filter.map(String::from).into_iter().collect(),
            retry,
            start: Start::All,
            max_ack_pending: 1_000,
            parallel: 1,
        }
    }

    /// A durable consumer of stream `base` reading every subject of `filters`.
    pub(crate) fn of_subjects(bus: &Bus, base: &str, durable: &str, filters: Vec<SubjectFilter>, retry: Retry) -> Self {
        Self { filters: filters.into_iter().map(String::from).collect(), ..Self::new(bus, base, durable, None, retry) }
    }

    /// A county's own consumer, which the county reads and acks: it never gives up, since the
    /// county must get everything, late or not.
    pub(crate) fn county(bus: &Bus, base: &str, durable: String, filter: SubjectFilter) -> Self {
        let retry = Retry { ack_wait: Duration::from_secs(30), max_deliver: u32::MAX - 1, backoff: vec![] };
        Self::new(bus, base, durable, Some(filter), retry)
    }
}

/// What every stream of a deployment has in common.
pub(crate) fn stream_base(topology: &Topology) -> stream::Config {
    stream::Config {
        retention: RetentionPolicy::Limits,
        storage: StorageType::File,
        discard: DiscardPolicy::Old,
        num_replicas: topology.replicas,
        ..Default::default()
    }
}

impl Bus {
    /// The streams that belong to no one domain: the audit trail and the dead letters.
    fn shared_stream_configs(&self) -> Vec<stream::Config> {
        let s = &self.subjects;
        let base = stream_base(&self.topology);
        vec![
            stream::Config {
                name: s.name(AUDIT),
                description: Some("changes made through the admin API".into()),
                subjects: vec![s.all_audit().into()],
                // As long as the ledgers the changes acted on.
                max_age: 400 * DAY,
                duplicate_window: DAY,
                ..base.clone()
            },
            stream::Config {
                name: s.name(DEAD_LETTERS),
                description: Some("messages consumers gave up on, with the reason".into()),
                subjects: vec![s.all_dead_letters().into()],
                max_age: 30 * DAY,
                duplicate_window: Duration::from_secs(3600),
                ..base
            },
        ]
    }

    /// Creates or updates every stream and bucket. Every service calls this at start-up; it is
    /// idempotent, and it is the only place streams are defined.
    pub async fn provision(&self) -> Result<()> {
        let configs = [
            self.stories().stream_configs(),
            self.alerts().stream_configs(),
            self.coverage().stream_configs(),
            self.shared_stream_configs(),
        ];
        for config in configs.into_iter().flatten() {
            let name = config.name.clone();
            self.js.create_or_update_stream(config).await.map_err(|e| Error::nats(Operation::Provision, &name, e))?;
        }
        self.stories().provision().await?;
        self.alerts().state_bucket().await?;
        self.coverage().bucket().await?;
        self.registry().provision().await
    }

    /// A key-value bucket, created or updated with this deployment's replicas.
    pub(crate) async fn bucket(&self, base: &str, history: i64) -> Result<kv::Store> {
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
            .map_err(|e| Error::nats(Operation::Provision, &bucket, e))
    }

    /// The keys of bucket `base` matching `filter` (`contribution.rail-2026.>`), in order, read
    /// from the bucket's stream index rather than by walking every key; deleted keys included
    /// (reading one finds nothing).
    pub(crate) async fn bucket_keys(&self, base: &str, filter: &str) -> Result<Vec<String>> {
        let bucket = self.subjects.name(base);
        let stream_name = format!("KV_{bucket}");
        let prefix = format!("$KV.{bucket}.");
        let stream =
            self.js.get_stream(&stream_name).await.map_err(|e| Error::nats(Operation::Read, &stream_name, e))?;
        let subjects: Vec<String> = stream
            .info_with_subjects(format!("{prefix}{filter}"))
            .await
            .map_err(|e| Error::nats(Operation::Read, &stream_name, e))?
            .map_ok(|(subject, _)| subject)
            .try_collect()
            .await
            .map_err(|e| Error::nats(Operation::Read, &stream_name, e))?;
        let mut keys: Vec<String> =
            subjects.into_iter().filter_map(|s| s.strip_prefix(prefix.as_str()).map(str::to_owned)).collect();
        keys.sort();
        Ok(keys)
    }

    /// Creates or updates counties' own consumers on stream `base`, a few at a time. They never
    /// give up on a message (`max_deliver` unlimited).
    pub(crate) async fn provision_county_consumers(&self, base: &str, specs: Vec<ConsumerSpec>) -> Result<()> {
        let feeds = self.stream(base).await?;
        futures::stream::iter(specs)
            .map(|spec| {
                let feeds = &feeds;
                async move {
                    let mut config = spec.config();
                    config.max_deliver = -1;
                    feeds.create_consumer(config).await.map_err(|e| Error::nats(Operation::Provision, &spec.durable, e))
                }
            })
            .buffer_unordered(16)
            .try_for_each(|_| async { Ok(()) })
            .await
    }

    /// The JetStream stream handle of a stream named by its base name (`STORIES`, `FEEDS`, ...).
    pub(crate) async fn stream(&self, base: &str) -> Result<jetstream::stream::Stream> {
        let name = self.subjects.name(base);
        self.js.get_stream(&name).await.map_err(|e| Error::nats(Operation::Read, &name, e))
    }
}
