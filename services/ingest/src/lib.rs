//! Bashu ingest: accepts a county's stories (canonical JSON and ninjs over HTTP, protobuf over
//! gRPC, mapped platform payloads, polled RSS/Atom feeds, uploaded media), checks who sends them,
//! validates and normalises them, answers a resubmission with its first result, and publishes
//! `StorySubmitted` for moderation.

mod access;
mod defaults;
mod error;
pub mod feeds;
mod grpc;
mod http;
pub mod mapping;
pub mod media;
mod validate;

use std::sync::Arc;

use async_nats::jetstream::kv;
use bashu_bus::Bus;
use bashu_proto::{
    ingest::v1::{AcceptedRecord, SubmitStoryResponse},
    story::v1::{ModerationDecision, Story, StorySubmitted, Verdict},
};
use bashu_registry::{Counties, CountyTokens, RegistryStore, RegistryView};
use prost::Message;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tracing::info;

pub use error::{Error, FieldError, Result};

/// Ingest's settings.
#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Largest accepted request body, in bytes (HTTP 413 above it).
    pub max_body_bytes: usize,
    /// How the consumer of moderation decisions (for the status answers) retries.
    pub status_consumer: bashu_bus::RetryConfig,
    /// Submissions a county may make per minute, sustained (HTTP 429 above it).
    pub rate_per_minute: u32,
    /// Submissions a county may make at once (a batch counts each item).
    pub rate_burst: u32,
    /// Most items in one batch.
    pub max_batch_items: usize,
    /// Feed polling.
    pub feeds: FeedsConfig,
    /// Largest upload per media type prefix, in bytes; other types are refused (HTTP 415).
    pub media_limits: std::collections::BTreeMap<String, usize>,
}

/// Feed polling settings.
#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FeedsConfig {
    /// The shortest interval a county may register.
    pub min_interval_secs: u64,
    /// How often the poller looks for feeds that are due.
    pub tick_ms: u64,
    /// How long one fetch may take.
    pub timeout_secs: u64,
}

impl Default for FeedsConfig {
    fn default() -> Self {
        Self { min_interval_secs: 60, tick_ms: 1_000, timeout_secs: 20 }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            status_consumer: bashu_bus::RetryConfig::default(),
            rate_per_minute: 600,
            rate_burst: 100,
            max_batch_items: 100,
            feeds: FeedsConfig::default(),
            media_limits: media::default_limits(),
        }
    }
}

impl Config {
    /// Checks the settings make sense.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(1024..=64 * 1024 * 1024).contains(&self.max_body_bytes) {
            return Err("ingest.max_body_bytes must be between 1 KiB and 64 MiB".into());
        }
        if self.rate_per_minute == 0 || self.rate_burst == 0 {
            return Err("ingest.rate_per_minute and ingest.rate_burst must be at least 1".into());
        }
        if !(1..=1000).contains(&self.max_batch_items) {
            return Err("ingest.max_batch_items must be between 1 and 1000".into());
        }
        if self.feeds.min_interval_secs == 0 || self.feeds.tick_ms == 0 || self.feeds.timeout_secs == 0 {
            return Err("ingest.feeds: intervals must be at least 1".into());
        }
        if self.media_limits.values().any(|&limit| limit == 0 || limit > 1024 * 1024 * 1024) {
            return Err("ingest.media_limits: each limit between 1 byte and 1 GiB".into());
        }
        self.status_consumer.validate().map_err(|e| format!("ingest.status_consumer: {e}"))
    }
}

/// The key of a story version's record in `INGEST_ACCEPTED` (moderation's decision on it is
/// under `status.<this key>`).
fn accepted_key(origin: &str, id: &str, version: u32) -> String {
    bashu_proto::story::v1::version_key(origin, id, version)
}

/// The ingest service: cheap to clone, shared by its HTTP and gRPC front ends.
#[derive(Clone)]
pub struct Ingest {
    inner: Arc<Inner>,
}

/// Moderation decisions recorded at once for the status answers.
const STATUS_PARALLEL: usize = 64;

struct Inner {
    config: Config,
    egress: bashu_egress::Config,
    bus: Bus,
    counties: Arc<Counties>,
    registry: RegistryView,
    registry_store: RegistryStore,
    accepted: kv::Store,
    feeds: kv::Store,
    access: access::Access,
    media: async_nats::jetstream::object_store::ObjectStore,
    /// Joint coverage plans, read to check a story's plan and phase.
    plans: bashu_coverage_core::PlanStore,
    builtin_mappings: Vec<mapping::Mapping>,
}

impl Ingest {
    /// Builds the service on a provisioned bus; feeds are fetched only from where `egress`
    /// permits.
    pub async fn build(
        config: Config,
        egress: bashu_egress::Config,
        bus: Bus,
        counties: Arc<Counties>,
        registry: RegistryView,
        tokens: CountyTokens,
    ) -> Result<Self> {
        let accepted = bus.stories().ingest_bucket().await?;
        let feeds = bus.stories().ingest_feeds_bucket().await?;
        let media = bus.stories().media_store().await?;
        let registry_store = RegistryStore::open(&bus, counties.clone()).await.map_err(Error::store)?;
        let at_least_one = |n: u32| std::num::NonZeroU32::new(n.max(1)).expect("at least one");
        let access = access::Access::new(tokens, at_least_one(config.rate_per_minute), at_least_one(config.rate_burst));
        let builtin_mappings = mapping::builtin();
        let plans = bashu_coverage_core::PlanStore::open(&bus).await.map_err(Error::store)?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                egress,
                bus,
                counties,
                registry,
                registry_store,
                accepted,
                feeds,
                access,
                media,
                plans,
                builtin_mappings,
            }),
        })
    }

    /// The county a bearer token acts for (401 otherwise).
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<String> {
        self.inner.access.county(authorization).await
    }

    /// Submits stories as `county`: each must name it as origin (or leave origin empty), and
    /// the county's allowance must cover them all. Each item's answer is independent.
    pub async fn submit_as(
        &self,
        county: &str,
        stories: Vec<Story>,
        input_format: &str,
    ) -> Result<Vec<Result<SubmitStoryResponse>>> {
        if stories.len() > self.inner.config.max_batch_items {
            return Err(Error::Invalid(vec![FieldError::new(
                "stories",
                format!("at most {} items in one batch", self.inner.config.max_batch_items),
            )]));
        }
        self.inner.access.admit(county, u32::try_from(stories.len()).unwrap_or(u32::MAX))?;
        let mut answers = Vec::with_capacity(stories.len());
        for mut story in stories {
            if story.origin_county.is_empty() {
                story.origin_county = county.to_owned();
            }
            let origin = self.inner.counties.resolve(&story.origin_county).map(|r| r.county.code.clone());
            answers.push(match origin {
                Ok(origin) if origin != county => Err(Error::Forbidden(format!(
                    "this token belongs to county {county}; it cannot submit as {}",
                    story.origin_county
                ))),
                // Unknown codes are reported by validation, with the field.
                _ => self.submit(story, input_format).await,
            });
        }
        Ok(answers)
    }

    /// Counts an upload against the county's allowance.
    pub(crate) fn admit_upload(&self, county: &str) -> Result<()> {
        self.inner.access.admit(county, 1)
    }

    /// Whether this story version was accepted before.
    pub(crate) async fn already_accepted(&self, story: &Story) -> Result<bool> {
        let key = accepted_key(&story.origin_county, &story.id, story.version);
        Ok(self.inner.accepted.get(key).await.map_err(Error::store)?.is_some())
    }

    /// A mapping by name: one registered by a county, else a shipped example.
    pub async fn mapping(&self, name: &str) -> Result<mapping::Mapping> {
        if let Some(bytes) = self.inner.accepted.get(format!("mapping.{name}")).await.map_err(Error::store)? {
            let record: serde_json::Value = serde_json::from_slice(&bytes).map_err(Error::store)?;
            let file = record["file"].to_string();
            return mapping::Mapping::parse(file.as_bytes()).map_err(Error::Invalid);
        }
        self.inner
            .builtin_mappings
            .iter()
            .find(|m| m.name() == name)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("no mapping named {name:?}")))
    }

    /// Registers a mapping file for `county`; refused with every problem if it is broken. A
    /// name belongs to the county that registered it first.
    pub async fn register_mapping(&self, county: &str, bytes: &[u8]) -> Result<String> {
        let mapping = mapping::Mapping::parse(bytes).map_err(Error::Invalid)?;
        let key = format!("mapping.{}", mapping.name());
        if let Some(existing) = self.inner.accepted.get(&key).await.map_err(Error::store)? {
            let record: serde_json::Value = serde_json::from_slice(&existing).map_err(Error::store)?;
            if record["owner"] != county {
                return Err(Error::Forbidden(format!(
                    "mapping {} belongs to county {}",
                    mapping.name(),
                    record["owner"]
                )));
            }
        }
        if self.inner.builtin_mappings.iter().any(|m| m.name() == mapping.name()) {
            return Err(Error::Forbidden(format!("{} is the name of a shipped mapping", mapping.name())));
        }
        let file: serde_json::Value = serde_json::from_slice(bytes).map_err(Error::store)?;
        let record = serde_json::json!({"owner": county, "file": file});
        self.inner.accepted.put(key, record.to_string().into()).await.map_err(Error::store)?;
        Ok(mapping.name().to_owned())
    }

    /// The object store of uploaded media.
    pub(crate) fn media_objects(&self) -> &async_nats::jetstream::object_store::ObjectStore {
        &self.inner.media
    }

    /// The configured size limit of a media type (None: not accepted).
    pub(crate) fn media_limit(&self, media_type: &str) -> Option<usize> {
        media::limit_for(&self.inner.config.media_limits, media_type)
    }

    /// The largest media upload of any type.
    pub(crate) fn largest_media(&self) -> usize {
        self.inner.config.media_limits.values().copied().max().unwrap_or(0)
    }

    /// The HTTP routes (`POST /v1/stories`).
    pub fn http_router(&self) -> axum::Router {
        http::router(self.clone())
    }

    /// The gRPC `bashu.ingest.v1.IngestService`.
    pub fn grpc_service(&self) -> bashu_proto::ingest::v1::ingest_service_server::IngestServiceServer<grpc::IngestApi> {
        grpc::service(self.clone())
    }

    /// Refuses a story that references Bashu objects nobody uploaded: its receivers could never
    /// fetch them.
    async fn check_uploaded_media(&self, story: &Story) -> Result<()> {
        use async_nats::jetstream::object_store::InfoErrorKind;
        let mut missing = Vec::new();
        for (i, media) in story.media.iter().enumerate() {
            let Some(name) = media.uri.strip_prefix(media::OBJECT_SCHEME) else { continue };
            match self.inner.media.info(name).await {
                Ok(_) => {}
                Err(error) if matches!(error.kind(), InfoErrorKind::NotFound | InfoErrorKind::InvalidName) => missing
                    .push(FieldError::new(
                        format!("media[{i}].uri"),
                        format!("no object {name} was uploaded: upload it first (POST /v1/media)"),
                    )),
                Err(error) => return Err(Error::store(error)),
            }
        }
        if missing.is_empty() { Ok(()) } else { Err(Error::Invalid(missing)) }
    }

    /// Refuses a story naming a coverage plan it may not contribute to (not joined, not active,
    /// no such phase or kind), with the field.
    async fn check_coverage(&self, story: &Story) -> Result<()> {
        let Some(coverage) = &story.coverage else { return Ok(()) };
        let plan = self.inner.plans.plan(&coverage.plan_id).await.map_err(Error::store)?.map(|p| p.value);
        match bashu_coverage_core::check_contribution(story, plan.as_ref()) {
            Some((field, reason)) => Err(Error::Invalid(vec![FieldError::new(field, reason)])),
            None => Ok(()),
        }
    }

    /// Validates, normalises and accepts one story version. A version accepted before is
    /// answered with its first result, marked `duplicate`, and nothing is published again. Each
    /// submission is a trace of its own (a root span).
    #[tracing::instrument(name = "ingest.submit", parent = None, skip_all, fields(story_id = %story.id, version = story.version, origin = %story.origin_county))]
    pub async fn submit(&self, story: Story, input_format: &str) -> Result<SubmitStoryResponse> {
        let inner = &self.inner;
        // What the county sent, before its defaults: a resend is the same submission even if the
        // county changed its defaults in between.
        let submitted_sha256 = Sha256::digest(story.encode_to_vec()).to_vec();
        let story = self.with_defaults(story);
        let normalised =
            validate::normalise(story, &inner.counties, &inner.registry.current(), std::time::SystemTime::now())
                .map_err(Error::Invalid)?;
        let story = normalised.story;
        let key = accepted_key(&story.origin_county, &story.id, story.version);

        if let Some(earlier) = inner.accepted.get(&key).await.map_err(Error::store)? {
            let earlier = AcceptedRecord::decode(earlier).map_err(Error::store)?;
            if earlier.story_sha256 != submitted_sha256 {
                return Err(Error::Conflict { id: story.id, version: story.version });
            }
            let mut response = earlier.response.unwrap_or_default();
            response.duplicate = true;
            return Ok(response);
        }
        self.check_uploaded_media(&story).await?;
        self.check_coverage(&story).await?;
        let mut response = SubmitStoryResponse {
            story_id: story.id.clone(),
            version: story.version,
            duplicate: false,
            resolved_codes: normalised.resolved_codes.clone(),
        };
        let event = StorySubmitted {
            story: Some(story),
            received_at: Some(bashu_proto::time::now()),
            resolved_codes: normalised.resolved_codes,
            input_format: input_format.to_owned(),
        };
        let published = inner.bus.publish(&event).await?;
        // Recorded after the publish: a crash in between leaves the stream's duplicate window
        // (a day) to catch the county's retry.
        let record = AcceptedRecord { response: Some(response.clone()), story_sha256: submitted_sha256 };
        inner.accepted.put(&key, record.encode_to_vec().into()).await.map_err(Error::store)?;
        response.duplicate = published.duplicate;
        info!(duplicate = published.duplicate, "story accepted");
        Ok(response)
    }

    /// Follows moderation's decisions until `shutdown`, so that a county can ask what became of
    /// its story (`status.<origin>.<id>.<version>` in ingest's own bucket; the story left out).
    pub async fn run(
        self,
        retry: bashu_bus::RetryConfig,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Result<(), bashu_bus::Error> {
        let feeds = tokio::spawn(self.clone().poll_feeds(shutdown.clone()));
        let bus = self.inner.bus.clone();
        let accepted = self.inner.accepted.clone();
        let handler = move |delivery: bashu_bus::Delivery<ModerationDecision>| {
            let accepted = accepted.clone();
            async move {
                let decision = delivery.event;
                let Some(story) = &decision.story else { return Ok(()) };
                let key = format!("status.{}", accepted_key(&story.origin_county, &story.id, story.version));
                let summary = ModerationDecision { story: None, ..decision.clone() };
                accepted
                    .put(key, summary.encode_to_vec().into())
                    .await
                    .map(drop)
                    .map_err(|e| bashu_bus::Failure::Retry(e.to_string()))
            }
        };
        // Decisions on different stories side by side; one story's (held, then approved) in order.
        let consumed = bus
            .consume_keyed(
                bus.stories().ingest_status_consumer((&retry).into()).in_parallel(STATUS_PARALLEL),
                |decision: &ModerationDecision| {
                    decision.story.as_ref().map(|s| format!("{}.{}", s.origin_county, s.id)).unwrap_or_default()
                },
                handler,
                shutdown.clone(),
            )
            .await;
        // On shutdown the poller finishes the feed it is on; on a consumer failure it stops now.
        if shutdown.is_cancelled() {
            let _ = feeds.await;
        } else {
            feeds.abort();
        }
        consumed
    }

    /// What became of a story version (None: never accepted). `origin` may be an old code.
    pub async fn status(&self, origin: &str, id: &str, version: u32) -> Result<Option<serde_json::Value>> {
        let origin = self
            .inner
            .counties
            .resolve(origin)
            .map_err(|e| Error::Invalid(vec![FieldError::new("originCounty", e.to_string())]))?
            .county
            .code
            .clone();
        let key = accepted_key(&origin, id, version);
        if self.inner.accepted.get(&key).await.map_err(Error::store)?.is_none() {
            return Ok(None);
        }
        let decision = match self.inner.accepted.get(format!("status.{key}")).await.map_err(Error::store)? {
            Some(bytes) => Some(ModerationDecision::decode(bytes).map_err(Error::store)?),
            None => None,
        };
        let status = match decision.as_ref().map(|d| d.verdict()) {
            None => "accepted",
            Some(Verdict::Approved) => "approved",
            Some(Verdict::Held) => "held",
            Some(_) => "rejected",
        };
        let mut answer =
            serde_json::json!({"storyId": id, "version": version, "originCounty": origin, "status": status});
        if let Some(decision) = decision {
            answer["reason"] = decision.reason.clone().into();
            answer["decidedBy"] = decision.decided_by.clone().into();
            answer["decidedAt"] = serde_json::to_value(decision.decided_at).unwrap_or_default();
            answer["rules"] = serde_json::to_value(&decision.rules).unwrap_or_default();
        }
        Ok(Some(answer))
    }

    fn max_body_bytes(&self) -> usize {
        self.inner.config.max_body_bytes
    }
}
