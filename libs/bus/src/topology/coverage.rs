//! Joint coverage's stream, bucket and consumer: plans' changes, the plans and their
//! contributions, and the reader that records contributions from the story ledger.

use async_nats::jetstream::{kv, stream};

use super::{ConsumerSpec, DAY, Retry, STORIES, stream_base};
use crate::{Bus, Result};

/// Every plan's changes (`bashu.coverage.plan.<plan>`), in order.
pub const COVERAGE: &str = "COVERAGE";
/// Every county's copy of the channels it follows (`bashu.channel.<county>.<plan>`); one
/// durable consumer per county.
pub const CHANNELS: &str = "CHANNELS";
/// The plans (`plan.<id>`), what each story contributed (`contribution.<plan>.<origin>.<id>`),
/// which plan a story belongs to (`story.<origin>.<id>`) and every reuse note
/// (`use.<origin>.<id>.<county>`) (key-value bucket).
pub const COVERAGE_BUCKET: &str = "COVERAGE";

/// Joint coverage's part of the bus ([`Bus::coverage`]).
#[derive(Clone, Copy)]
pub struct CoverageTopology<'a> {
    bus: &'a Bus,
}

impl Bus {
    /// Joint coverage's stream, bucket and consumer.
    pub fn coverage(&self) -> CoverageTopology<'_> {
        CoverageTopology { bus: self }
    }
}

impl CoverageTopology<'_> {
    pub(crate) fn stream_configs(&self) -> Vec<stream::Config> {
        let s = &self.bus.subjects;
        let base = stream_base(&self.bus.topology);
        vec![
            stream::Config {
                name: s.name(COVERAGE),
                description: Some("joint coverage plans' changes".into()),
                subjects: vec![s.all_coverage().into()],
                // As long as the story ledger the contributions come from.
                max_age: 400 * DAY,
                duplicate_window: DAY,
                ..base.clone()
            },
            stream::Config {
                name: s.name(CHANNELS),
                description: Some("every county's copy of the channels it follows".into()),
                subjects: vec![s.all_channels().into()],
                // As long as the feeds.
                max_age: 90 * DAY,
                // Longer than any redelivery of the ledger's input.
                duplicate_window: std::time::Duration::from_secs(3600),
                ..base
            },
        ]
    }

    /// A county's own channel consumer, `channel-<code>`, which the county reads and acks.
    pub fn county_channel_consumer(&self, county: &str) -> Result<ConsumerSpec> {
        Ok(ConsumerSpec::county(
            self.bus,
            CHANNELS,
            format!("channel-{county}"),
            self.bus.subjects.channels_of(county)?,
        ))
    }

    /// Creates (or updates) a county's channel consumer: done when it first follows a channel.
    pub async fn provision_channel_consumer(&self, county: &str) -> Result<()> {
        self.bus.provision_county_consumers(CHANNELS, vec![self.county_channel_consumer(county)?]).await
    }

    /// The plans and their contributions.
    pub async fn bucket(&self) -> Result<kv::Store> {
        self.bus.bucket(COVERAGE_BUCKET, 1).await
    }

    /// The bucket's keys matching `filter` (`contribution.<plan>.>`), in order.
    pub async fn keys(&self, filter: &str) -> Result<Vec<String>> {
        self.bus.bucket_keys(COVERAGE_BUCKET, filter).await
    }

    /// Records contributions from the story ledger's submissions, decisions and reuse notes.
    pub fn contributions_consumer(&self, retry: Retry) -> ConsumerSpec {
        let sources = self.bus.subjects.coverage_contribution_sources();
        ConsumerSpec::of_subjects(self.bus, STORIES, "coverage-ledger", sources, retry)
    }
}
