//! Bashu ingest: accepts a county's story (canonical JSON over HTTP, protobuf over gRPC),
//! validates and normalises it (old county codes resolved, defaults filled), answers a
//! resubmission with its first result, and publishes `StorySubmitted` for moderation.

mod error;
mod grpc;
mod http;
mod validate;

use std::sync::Arc;

use async_nats::jetstream::kv;
use bashu_bus::Bus;
use bashu_proto::{
    ingest::v1::{AcceptedRecord, SubmitStoryResponse},
    story::v1::{ModerationDecision, Story, StorySubmitted, Verdict},
};
use bashu_registry::{Counties, RegistryView};
use prost::Message;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tracing::info;

pub use error::{Error, FieldError, Result};

/// Ingest's settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Largest accepted request body, in bytes (HTTP 413 above it).
    pub max_body_bytes: usize,
    /// How the consumer of moderation decisions (for the status answers) retries.
    pub status_consumer: bashu_bus::RetryConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self { max_body_bytes: 1024 * 1024, status_consumer: bashu_bus::RetryConfig::default() }
    }
}

impl Config {
    /// Checks the settings make sense.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(1024..=64 * 1024 * 1024).contains(&self.max_body_bytes) {
            return Err("ingest.max_body_bytes must be between 1 KiB and 64 MiB".into());
        }
        self.status_consumer.validate().map_err(|e| format!("ingest.status_consumer: {e}"))
    }
}

/// The ingest service: cheap to clone, shared by its HTTP and gRPC front ends.
#[derive(Clone)]
pub struct Ingest {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    bus: Bus,
    counties: Arc<Counties>,
    registry: RegistryView,
    accepted: kv::Store,
}

impl Ingest {
    /// Builds the service on a provisioned bus.
    pub async fn build(config: Config, bus: Bus, counties: Arc<Counties>, registry: RegistryView) -> Result<Self> {
        let accepted = bus.ingest_bucket().await?;
        Ok(Self { inner: Arc::new(Inner { config, bus, counties, registry, accepted }) })
    }

    /// The HTTP routes (`POST /v1/stories`).
    pub fn http_router(&self) -> axum::Router {
        http::router(self.clone())
    }

    /// The gRPC `bashu.ingest.v1.IngestService`.
    pub fn grpc_service(&self) -> bashu_proto::ingest::v1::ingest_service_server::IngestServiceServer<grpc::IngestApi> {
        grpc::service(self.clone())
    }

    /// Validates, normalises and accepts one story version. A version accepted before is
    /// answered with its first result, marked `duplicate`, and nothing is published again.
    #[tracing::instrument(name = "ingest.submit", skip_all, fields(story_id = %story.id, version = story.version, origin = %story.origin_county))]
    pub async fn submit(&self, story: Story, input_format: &str) -> Result<SubmitStoryResponse> {
        let inner = &self.inner;
        let submitted_sha256 = Sha256::digest(story.encode_to_vec()).to_vec();
        let normalised =
            validate::normalise(story, &inner.counties, &inner.registry.current(), std::time::SystemTime::now())
                .map_err(Error::Invalid)?;
        let story = normalised.story;
        let key = format!("{}.{}.{}", story.origin_county, story.id, story.version);

        if let Some(earlier) = inner.accepted.get(&key).await.map_err(Error::store)? {
            let earlier = AcceptedRecord::decode(earlier).map_err(Error::store)?;
            if earlier.story_sha256 != submitted_sha256 {
                return Err(Error::Conflict { id: story.id, version: story.version });
            }
            let mut response = earlier.response.unwrap_or_default();
            response.duplicate = true;
            return Ok(response);
        }
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
        let bus = self.inner.bus.clone();
        let accepted = self.inner.accepted.clone();
        let handler = move |delivery: bashu_bus::Delivery<ModerationDecision>| {
            let accepted = accepted.clone();
            async move {
                let decision = delivery.event;
                let Some(story) = &decision.story else { return Ok(()) };
                let key = format!("status.{}.{}.{}", story.origin_county, story.id, story.version);
                let summary = ModerationDecision { story: None, ..decision.clone() };
                accepted
                    .put(key, summary.encode_to_vec().into())
                    .await
                    .map(drop)
                    .map_err(|e| bashu_bus::Failure::Retry(e.to_string()))
            }
        };
        bus.consume(bus.ingest_status_consumer((&retry).into()), handler, shutdown).await
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
        let key = format!("{origin}.{id}.{version}");
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
