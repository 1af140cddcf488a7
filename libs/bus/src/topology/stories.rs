//! The story path's streams, buckets and consumers: ingest, moderation, distribution and the
//! counties' feeds.

use std::time::{Duration, SystemTime};

use async_nats::jetstream::{kv, object_store, stream};

use super::{ConsumerSpec, DAY, Retry, Start, stream_base};
use bashu_proto::story::v1::StoryUse;

use crate::{Bus, Error, FeedEvent, FromCounty, Operation, Result, Sequenced};

/// The story life-cycle events: submitted, decided, published, receipts. Also the ledger.
pub const STORIES: &str = "STORIES";
/// Every county's feed; one durable consumer per county.
pub const FEEDS: &str = "FEEDS";
/// Moderation's fingerprints of approved stories and its review queue (key-value bucket).
pub const MODERATION_BUCKET: &str = "MODERATION";
/// Distribution's record of every story: receivers per version, held versions, takedowns.
pub const DISTRIBUTION_BUCKET: &str = "DISTRIBUTION";
/// Ingest's durable record of every accepted story version (key-value bucket).
pub const INGEST_BUCKET: &str = "INGEST_ACCEPTED";
/// The feeds counties registered and their polling state (key-value bucket; small, so the
/// poller can list it every tick).
pub const INGEST_FEEDS_BUCKET: &str = "INGEST_FEEDS";
/// Media uploaded by counties, by sha256 digest (object store).
pub const MEDIA_STORE: &str = "MEDIA";

/// The story path's part of the bus ([`Bus::stories`]).
#[derive(Clone, Copy)]
pub struct StoryTopology<'a> {
    bus: &'a Bus,
}

impl Bus {
    /// The story path's streams, buckets and consumers.
    pub fn stories(&self) -> StoryTopology<'_> {
        StoryTopology { bus: self }
    }
}

impl StoryTopology<'_> {
    pub(crate) fn stream_configs(&self) -> Vec<stream::Config> {
        let s = &self.bus.subjects;
        let base = stream_base(&self.bus.topology);
        vec![
            stream::Config {
                name: s.name(STORIES),
                description: Some("story life-cycle events (the ledger)".into()),
                subjects: vec![s.all_story_events().into()],
                max_age: 400 * DAY,
                // Resubmissions from a county's CMS come back within a day.
                duplicate_window: DAY,
                ..base.clone()
            },
            stream::Config {
                name: s.name(FEEDS),
                description: Some("every county's feed".into()),
                subjects: vec![s.all_feeds().into()],
                max_age: 90 * DAY,
                // Longer than any redelivery of distribution's input (ack_wait x max_deliver).
                duplicate_window: Duration::from_secs(3600),
                ..base
            },
        ]
    }

    pub(crate) async fn provision(&self) -> Result<()> {
        self.ingest_bucket().await?;
        self.ingest_feeds_bucket().await?;
        self.media_store().await?;
        self.moderation_bucket().await?;
        self.distribution_bucket().await?;
        Ok(())
    }

    /// Ingest's idempotency records.
    pub async fn ingest_bucket(&self) -> Result<kv::Store> {
        self.bus.bucket(INGEST_BUCKET, 1).await
    }

    /// Ingest's registered feeds and their polling state.
    pub async fn ingest_feeds_bucket(&self) -> Result<kv::Store> {
        self.bus.bucket(INGEST_FEEDS_BUCKET, 1).await
    }

    /// Uploaded media, each object named by its sha256 digest.
    pub async fn media_store(&self) -> Result<object_store::ObjectStore> {
        let bucket = self.bus.subjects.name(MEDIA_STORE);
        self.bus
            .js
            .create_object_store(object_store::Config {
                bucket: bucket.clone(),
                num_replicas: self.bus.topology.replicas,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::nats(Operation::Provision, &bucket, e))
    }

    /// Moderation's fingerprints of approved stories and its review queue.
    pub async fn moderation_bucket(&self) -> Result<kv::Store> {
        self.bus.bucket(MODERATION_BUCKET, 1).await
    }

    /// Distribution's per-story records.
    pub async fn distribution_bucket(&self) -> Result<kv::Store> {
        self.bus.bucket(DISTRIBUTION_BUCKET, 1).await
    }

    /// Moderation reads every submitted story.
    pub fn moderation_consumer(&self, retry: Retry) -> ConsumerSpec {
        ConsumerSpec::new(self.bus, STORIES, "moderation", Some(self.bus.subjects.all_story_submitted()), retry)
    }

    /// Ingest follows every moderation decision, to answer a county's status requests.
    pub fn ingest_status_consumer(&self, retry: Retry) -> ConsumerSpec {
        ConsumerSpec::new(self.bus, STORIES, "ingest-status", Some(self.bus.subjects.all_story_decided()), retry)
    }

    /// Distribution reads every moderation decision.
    pub fn distribution_consumer(&self, retry: Retry) -> ConsumerSpec {
        ConsumerSpec::new(self.bus, STORIES, "distribution", Some(self.bus.subjects.all_story_decided()), retry)
    }

    /// Distribution's takedown tracker reads every takedown confirmation.
    pub fn takedown_consumer(&self, retry: Retry) -> ConsumerSpec {
        ConsumerSpec::new(self.bus, STORIES, "takedown-tracker", Some(self.bus.subjects.all_story_takedown()), retry)
    }

    /// Checks what counties publish about stories they received (`story.receipt.*`): a malformed
    /// receipt, or one naming another county, goes to the dead letters with the reason.
    pub fn county_receipts_consumer(&self, retry: Retry) -> ConsumerSpec {
        ConsumerSpec::new(self.bus, STORIES, "county-receipts", Some(self.bus.subjects.all_story_receipts()), retry)
    }

    /// Checks the reuse notes counties publish (`story.used.*`), as
    /// [`StoryTopology::county_receipts_consumer`].
    pub fn county_uses_consumer(&self, retry: Retry) -> ConsumerSpec {
        ConsumerSpec::new(self.bus, STORIES, "county-uses", Some(self.bus.subjects.all_story_uses()), retry)
    }

    /// A county's own feed consumer, `feed-<code>`, which the county reads and acks.
    pub fn county_feed_consumer(&self, county: &str) -> Result<ConsumerSpec> {
        Ok(ConsumerSpec::county(self.bus, FEEDS, format!("feed-{county}"), self.bus.subjects.feed_of(county)?))
    }

    /// Creates or updates the story feed consumer of every given county, a few at a time.
    pub async fn provision_county_feeds<'a>(&self, counties: impl IntoIterator<Item = &'a str>) -> Result<()> {
        let specs = counties.into_iter().map(|c| self.county_feed_consumer(c)).collect::<Result<Vec<_>>>()?;
        self.bus.provision_county_consumers(FEEDS, specs).await
    }

    /// A county's webhook sender: everything in the county's feed from the moment its webhook
    /// was registered (`since`), in order (one message in hand at a time), however late the
    /// sender starts.
    pub fn webhook_consumer(&self, county: &str, since: SystemTime, retry: Retry) -> Result<ConsumerSpec> {
        let spec = ConsumerSpec::new(
            self.bus,
            FEEDS,
            format!("webhook-{county}"),
            Some(self.bus.subjects.feed_of(county)?),
            retry,
        );
        Ok(ConsumerSpec { start: Start::At(since), max_ack_pending: 1, ..spec })
    }

    /// Every message of every county's feed after stream sequence `after`, then each new one:
    /// what the content pool indexes (every replica its own copy).
    pub async fn follow_feeds(
        &self,
        after: u64,
    ) -> Result<impl futures::Stream<Item = Result<Sequenced<FeedEvent>>> + Send + use<>> {
        self.bus.follow_after(FEEDS, self.bus.subjects.all_feeds(), after).await
    }

    /// Every reuse note counties published after stream sequence `after`, then each new one. A
    /// note naming another county than the one it came from does not decode.
    pub async fn follow_uses(
        &self,
        after: u64,
    ) -> Result<impl futures::Stream<Item = Result<Sequenced<FromCounty<StoryUse>>>> + Send + use<>> {
        self.bus.follow_after(STORIES, self.bus.subjects.all_story_uses(), after).await
    }

    /// Asks every distribution replica to build its content pool index again.
    pub async fn request_pool_rebuild(&self) -> Result<()> {
        let subject = self.bus.subjects.pool_rebuild();
        self.bus
            .client
            .publish(&subject, bytes::Bytes::new())
            .await
            .map_err(|e| Error::nats(Operation::Publish, &subject, e))?;
        self.bus.client.flush().await.map_err(|e| Error::nats(Operation::Publish, &subject, e))
    }

    /// Requests to rebuild the content pool index, as a distribution replica hears them (every
    /// replica hears each one: no queue group).
    pub async fn pool_rebuild_requests(&self) -> Result<async_nats::Subscriber> {
        let subject = self.bus.subjects.pool_rebuild();
        self.bus.client.subscribe(&subject).await.map_err(|e| Error::nats(Operation::Subscribe, &subject, e))
    }

    /// A replica's progress while it rebuilds its content pool index.
    pub async fn report_pool_progress(&self, progress: &bashu_proto::admin::v1::PoolReplicaProgress) -> Result<()> {
        use prost::Message as _;
        let subject = self.bus.subjects.pool_progress(&progress.replica)?;
        self.bus
            .client
            .publish(&subject, progress.encode_to_vec().into())
            .await
            .map_err(|e| Error::nats(Operation::Publish, &subject, e))
    }

    /// Every replica's rebuild progress, as an operator's rebuild follows it.
    pub async fn pool_progress_reports(&self) -> Result<async_nats::Subscriber> {
        let subject = self.bus.subjects.all_pool_progress();
        self.bus.client.subscribe(&subject).await.map_err(|e| Error::nats(Operation::Subscribe, &subject, e))
    }

    /// Removes a county's webhook sender (its webhook was unregistered).
    pub async fn delete_webhook_consumer(&self, county: &str) -> Result<()> {
        let durable = format!("webhook-{county}");
        let stream = self.bus.stream(FEEDS).await?;
        stream.delete_consumer(&durable).await.map(drop).map_err(|e| Error::nats(Operation::Delete, &durable, e))
    }
}
