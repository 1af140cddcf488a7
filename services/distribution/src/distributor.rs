//! The distributor: the one writer of every story's distribution record. It delivers approved
//! versions to their audience and to every earlier receiver, never lets a receiver go back to an
//! older version, holds embargoed versions (and any version behind a held one) and releases them
//! on time, also after a restart, and records kills and their takedown confirmations.

use std::{collections::BTreeSet, sync::Arc, time::SystemTime};

use async_nats::jetstream::kv;
use bashu_bus::{Bus, Failure};
use bashu_proto::{
    Timestamp,
    story::v1::{
        HeldStories, HeldVersion, ModerationDecision, PublicationStatus, ReviewApproval, Story, StoryDelivery,
        StoryDistribution, StoryPublished, TakedownConfirmation, Verdict,
    },
    time::{from_system_time, now, to_system_time},
};
use bashu_registry::{Counties, RegistryView};
use prost::Message;
use tokio::sync::Mutex;
use tracing::{info, warn};

use crate::audience;

const HELD_INDEX: &str = "held-index";

pub(crate) struct Distributor {
    bus: Bus,
    counties: Arc<Counties>,
    registry: RegistryView,
    kv: kv::Store,
    /// Serialises every read-modify-write of records and the held index.
    writer: Mutex<()>,
}

fn failure(error: impl std::fmt::Display) -> Failure {
    Failure::Retry(error.to_string())
}

fn at(time: &Option<Timestamp>) -> Option<SystemTime> {
    time.as_ref().and_then(to_system_time)
}

fn expired(story: &Story, now: SystemTime) -> bool {
    at(&story.expires_at).is_some_and(|expiry| expiry <= now)
}

pub(crate) fn record_key(origin: &str, id: &str) -> String {
    format!("story.{origin}.{id}")
}

impl Distributor {
    pub(crate) fn new(bus: Bus, counties: Arc<Counties>, registry: RegistryView, kv: kv::Store) -> Self {
        Self { bus, counties, registry, kv, writer: Mutex::new(()) }
    }

    async fn get<M: Message + Default>(&self, key: &str) -> Result<Option<M>, Failure> {
        match self.kv.get(key).await.map_err(failure)? {
            Some(bytes) => M::decode(bytes).map(Some).map_err(|e| Failure::Permanent(format!("corrupt {key}: {e}"))),
            None => Ok(None),
        }
    }

    async fn put<M: Message>(&self, key: &str, value: &M) -> Result<(), Failure> {
        self.kv.put(key, value.encode_to_vec().into()).await.map(drop).map_err(failure)
    }

    async fn record(&self, origin: &str, id: &str) -> Result<StoryDistribution, Failure> {
        Ok(self.get(&record_key(origin, id)).await?.unwrap_or_else(|| StoryDistribution {
            origin_county: origin.to_owned(),
            story_id: id.to_owned(),
            ..Default::default()
        }))
    }

    /// An approved version: deliver it now, or hold it.
    pub(crate) async fn decided(&self, decision: ModerationDecision) -> Result<(), Failure> {
        if decision.verdict() != Verdict::Approved {
            return Ok(());
        }
        let story =
            decision.story.clone().ok_or_else(|| Failure::Permanent("ModerationDecision without a story".into()))?;
        let _writer = self.writer.lock().await;
        let mut record = self.record(&story.origin_county, &story.id).await?;
        let now = SystemTime::now();
        if record
            .held
            .iter()
            .any(|h| h.decision.as_ref().and_then(|d| d.story.as_ref()).is_some_and(|s| s.version == story.version))
        {
            return Ok(());
        }
        if expired(&story, now) {
            info!(story_id = %story.id, version = story.version, "expired before delivery, not delivered");
            return Ok(());
        }
        let embargo = at(&story.embargo_until).filter(|until| *until > now);
        if embargo.is_some() || !record.held.is_empty() {
            // A version behind a held one waits too, so that no receiver sees it first.
            let release_at = embargo.unwrap_or(now);
            record.held.push(HeldVersion { decision: Some(decision), release_at: Some(from_system_time(release_at)) });
            record.held.sort_by_key(|h| h.decision.as_ref().and_then(|d| d.story.as_ref()).map_or(0, |s| s.version));
            self.put(&record_key(&story.origin_county, &story.id), &record).await?;
            self.index_held(&record).await?;
            info!(story_id = %story.id, version = story.version, "held until its embargo");
            return Ok(());
        }
        self.deliver(&mut record, &story, &decision.approvals, now).await?;
        self.put(&record_key(&story.origin_county, &story.id), &record).await
    }

    /// Delivers one version to its audience and to every county that received an earlier one.
    async fn deliver(
        &self,
        record: &mut StoryDistribution,
        story: &Story,
        approvals: &[ReviewApproval],
        now: SystemTime,
    ) -> Result<(), Failure> {
        let graph = self.registry.current();
        let mut audience: BTreeSet<String> = audience::resolve(story, &self.counties, &graph)
            .into_iter()
            .filter(|county| audience::wants(graph.subscription(county), story, &self.counties))
            .collect();
        // Corrections and withdrawals reach every earlier receiver, whatever the audience is now.
        audience.extend(record.delivered.keys().cloned());
        // Never back to an older version, never the same version twice.
        let receivers: Vec<String> = audience
            .into_iter()
            .filter(|county| record.delivered.get(county).is_none_or(|v| *v < story.version))
            .collect();
        let delivered_at = Some(from_system_time(now));
        let deliveries: Vec<StoryDelivery> = receivers
            .iter()
            .map(|county| StoryDelivery {
                story: Some(story.clone()),
                county: county.clone(),
                delivered_at,
                approvals: approvals.to_vec(),
            })
            .collect();
        self.bus.publish_all(&deliveries).await?;
        for county in &receivers {
            record.delivered.insert(county.clone(), story.version);
        }
        if story.status() == PublicationStatus::Canceled {
            record.killed_version = story.version;
            record.killed_at = delivered_at;
            record.takedown_requested = record.delivered.keys().cloned().collect();
            record.takedown_requested.sort();
        }
        self.bus
            .publish(&StoryPublished {
                story_id: story.id.clone(),
                version: story.version,
                origin_county: story.origin_county.clone(),
                audience: receivers.clone(),
                published_at: delivered_at,
            })
            .await?;
        info!(story_id = %story.id, version = story.version, receivers = receivers.len(), "story distributed");
        Ok(())
    }

    async fn index_held(&self, record: &StoryDistribution) -> Result<(), Failure> {
        let mut index: HeldStories = self.get(HELD_INDEX).await?.unwrap_or_default();
        let key = format!("{}.{}", record.origin_county, record.story_id);
        match record.held.iter().filter_map(|h| h.release_at).min_by_key(|t| (t.seconds, t.nanos)) {
            Some(first) => index.next_release.insert(key, first),
            None => index.next_release.remove(&key),
        };
        self.put(HELD_INDEX, &index).await
    }

    /// Releases every held version whose time has come, in version order.
    pub(crate) async fn release_due(&self) -> Result<(), Failure> {
        let now = SystemTime::now();
        let _writer = self.writer.lock().await;
        let index: HeldStories = self.get(HELD_INDEX).await?.unwrap_or_default();
        for (key, next) in index.next_release {
            if to_system_time(&next).is_none_or(|t| t > now) {
                continue;
            }
            let Some((origin, id)) = key.split_once('.') else { continue };
            let mut record = self.record(origin, id).await?;
            while let Some(first) = record.held.first() {
                if at(&first.release_at).is_none_or(|t| t > now) {
                    break;
                }
                let held = record.held.remove(0);
                let Some(decision) = held.decision else { continue };
                let Some(story) = decision.story.clone() else { continue };
                if expired(&story, now) {
                    info!(story_id = %story.id, version = story.version, "expired while held, not delivered");
                    continue;
                }
                self.deliver(&mut record, &story, &decision.approvals, now).await?;
            }
            self.put(&record_key(origin, id), &record).await?;
            self.index_held(&record).await?;
        }
        Ok(())
    }

    /// A county confirms a takedown.
    pub(crate) async fn takedown_confirmed(&self, confirmation: TakedownConfirmation) -> Result<(), Failure> {
        let _writer = self.writer.lock().await;
        let mut record = self.record(&confirmation.origin_county, &confirmation.story_id).await?;
        if record.killed_version == 0 || !record.takedown_requested.contains(&confirmation.county) {
            warn!(story_id = %confirmation.story_id, county = %confirmation.county, "takedown confirmation for nothing requested, ignored");
            return Ok(());
        }
        record
            .takedown_confirmed
            .entry(confirmation.county)
            .or_insert_with(|| confirmation.confirmed_at.unwrap_or_else(now));
        self.put(&record_key(&confirmation.origin_county, &confirmation.story_id), &record).await
    }
}
