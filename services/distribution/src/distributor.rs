//! The distributor: delivers approved versions to their audience and to every earlier receiver,
//! never lets a receiver go back to an older version, holds embargoed versions (and any version
//! behind a held one) and releases them on time, and records kills and their takedown
//! confirmations.
//!
//! Any number of distributors may run at once. A story's record changes only by compare-and-set
//! on its revision; the version being handed out is written into the record (its outbox) before
//! it is published, and whoever changes the record next publishes that outbox again first. Every
//! copy carries its idempotency key, so the repeat stores nothing new, and a later version can
//! never reach a county before an earlier one, whichever process handles which version.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use async_nats::jetstream::kv;
use bashu_bus::{Bus, Followed};
use bashu_proto::{
    Timestamp,
    story::v1::{
        HeldStories, HeldVersion, ModerationDecision, Outbox, PublicationStatus, Story, StoryDelivery,
        StoryDistribution, StoryPublished, TakedownConfirmation, Verdict,
    },
    time::{from_system_time, now, to_system_time},
};
use bashu_registry::{Counties, RegistryView};
use prost::Message;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use bashu_stories_core::{HELD_PREFIX, held_key, parse_held_key, record_key};

use crate::{audience, error::Error};

/// Where the holds of the previous design were indexed, read once to carry them over.
const OLD_HELD_INDEX: &str = "held-index";

/// How long an outbox is published again by the next writer. Well inside the `FEEDS` duplicate
/// window (1 h), so that a repeat is always recognised as one; far beyond the longest a writer can
/// take between recording and publishing (its message is redelivered within ack_wait).
const OUTBOX_REPEAT: Duration = Duration::from_secs(30 * 60);

pub(crate) struct Distributor {
    bus: Bus,
    counties: Arc<Counties>,
    registry: RegistryView,
    kv: kv::Store,
    /// Held versions this process knows of (`held.*` keys, kept current by a watch): story key
    /// (`<origin>.<id>`) → version → when it is due.
    held: Mutex<BTreeMap<String, BTreeMap<u32, SystemTime>>>,
}

fn at(time: &Option<Timestamp>) -> Option<SystemTime> {
    time.as_ref().and_then(to_system_time)
}

fn expired(story: &Story, now: SystemTime) -> bool {
    at(&story.expires_at).is_some_and(|expiry| expiry <= now)
}

fn version_of(held: &HeldVersion) -> u32 {
    held.decision.as_ref().and_then(|d| d.story.as_ref()).map_or(0, |s| s.version)
}

/// A story's record and the revision it was read at (0: not stored yet).
struct Loaded {
    record: StoryDistribution,
    revision: u64,
}

impl Distributor {
    pub(crate) fn new(bus: Bus, counties: Arc<Counties>, registry: RegistryView, kv: kv::Store) -> Self {
        Self { bus, counties, registry, kv, held: Mutex::new(BTreeMap::new()) }
    }

    async fn load(&self, origin: &str, id: &str) -> Result<Loaded, Error> {
        let key = record_key(origin, id);
        match self.kv.entry(key.as_str()).await.map_err(Error::store)? {
            Some(entry) if entry.operation == kv::Operation::Put => {
                let record = StoryDistribution::decode(entry.value)
                    .map_err(|e| Error::Corrupt { key: key.clone(), reason: e.to_string() })?;
                Ok(Loaded { record, revision: entry.revision })
            }
            _ => Ok(Loaded {
                record: StoryDistribution {
                    origin_county: origin.to_owned(),
                    story_id: id.to_owned(),
                    ..Default::default()
                },
                revision: 0,
            }),
        }
    }

    /// Writes the record if nobody changed it since it was loaded; false: somebody did.
    async fn store(&self, loaded: &Loaded) -> Result<bool, Error> {
        let key = record_key(&loaded.record.origin_county, &loaded.record.story_id);
        let value = loaded.record.encode_to_vec().into();
        let written = if loaded.revision == 0 {
            self.kv.create(&key, value).await.map(drop).map_err(|e| match e.kind() {
                kv::CreateErrorKind::AlreadyExists => None,
                _ => Some(Error::store(e)),
            })
        } else {
            self.kv.update(&key, value, loaded.revision).await.map(drop).map_err(|e| match e.kind() {
                kv::UpdateErrorKind::WrongLastRevision => None,
                _ => Some(Error::store(e)),
            })
        };
        match written {
            Ok(()) => Ok(true),
            Err(None) => Ok(false),
            Err(Some(error)) => Err(error),
        }
    }

    /// Publishes a recorded version to its receivers, and its ledger entry.
    async fn publish(&self, outbox: &Outbox) -> Result<(), Error> {
        let Some(story) = outbox.decision.as_ref().and_then(|d| d.story.as_ref()) else { return Ok(()) };
        let approvals = outbox.decision.as_ref().map(|d| d.approvals.clone()).unwrap_or_default();
        let deliveries: Vec<StoryDelivery> = outbox
            .receivers
            .iter()
            .map(|county| StoryDelivery {
                story: Some(story.clone()),
                county: county.clone(),
                delivered_at: outbox.recorded_at,
                approvals: approvals.clone(),
            })
            .collect();
        let published = StoryPublished {
            story_id: story.id.clone(),
            version: story.version,
            origin_county: story.origin_county.clone(),
            audience: outbox.receivers.clone(),
            published_at: outbox.recorded_at,
            coverage: story.coverage.clone(),
        };
        let (delivered, recorded) = tokio::join!(self.bus.publish_all(&deliveries), self.bus.publish(&published));
        delivered?;
        recorded?;
        Ok(())
    }

    /// Publishes the record's outbox again if its writer may not have finished it.
    async fn finish_outbox(&self, record: &StoryDistribution, now: SystemTime) -> Result<(), Error> {
        match &record.outbox {
            Some(outbox)
                if at(&outbox.recorded_at)
                    .is_some_and(|t| now.duration_since(t).unwrap_or_default() < OUTBOX_REPEAT) =>
            {
                self.publish(outbox).await
            }
            _ => Ok(()),
        }
    }

    /// An approved version: deliver it now, or hold it.
    pub(crate) async fn decided(&self, decision: ModerationDecision) -> Result<(), Error> {
        if decision.verdict() != Verdict::Approved {
            return Ok(());
        }
        let story = decision.story.clone().ok_or_else(|| Error::Incomplete("ModerationDecision without a story"))?;
        loop {
            let mut loaded = self.load(&story.origin_county, &story.id).await?;
            let now = SystemTime::now();
            self.finish_outbox(&loaded.record, now).await?;
            let record = &mut loaded.record;
            if story.version < record.settled_version {
                // Superseded before it arrived: the ledger says it reached nobody.
                info!(story_id = %story.id, version = story.version, "older than a delivered version, not delivered");
                let superseded = StoryPublished {
                    story_id: story.id.clone(),
                    version: story.version,
                    origin_county: story.origin_county.clone(),
                    audience: Vec::new(),
                    published_at: Some(from_system_time(now)),
                    coverage: story.coverage.clone(),
                };
                return self.bus.publish(&superseded).await.map(drop).map_err(Error::from);
            }
            if story.version == record.settled_version || record.held.iter().any(|h| version_of(h) == story.version) {
                // A redelivery (its outbox was published again above), or held already.
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
                let due = record.held.first().and_then(|h| at(&h.release_at)).map_or(release_at, |f| f.max(release_at));
                // The marker first: a crash after it and before the record leaves a marker that
                // finds nothing held, never a held version nobody looks at.
                self.mark_held(&story.origin_county, &story.id, story.version, due).await?;
                record.held.push(HeldVersion {
                    decision: Some(decision.clone()),
                    release_at: Some(from_system_time(release_at)),
                });
                record.held.sort_by_key(version_of);
                if !self.store(&loaded).await? {
                    continue;
                }
                info!(story_id = %story.id, version = story.version, "held until its embargo");
                return Ok(());
            }
            let outbox = self.hand_out(record, &decision, now);
            if !self.store(&loaded).await? {
                continue;
            }
            return self.publish(&outbox).await;
        }
    }

    /// Records one version as handed to its audience and to every county that received an
    /// earlier one; returns the outbox to publish once the record is stored.
    fn hand_out(&self, record: &mut StoryDistribution, decision: &ModerationDecision, now: SystemTime) -> Outbox {
        let story = decision.story.as_ref().expect("an approved decision carries its story");
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
        for county in &receivers {
            record.delivered.insert(county.clone(), story.version);
        }
        let recorded_at = Some(from_system_time(now));
        if story.status() == PublicationStatus::Canceled {
            record.killed_version = story.version;
            record.killed_at = recorded_at;
            record.takedown_requested = record.delivered.keys().cloned().collect();
            record.takedown_requested.sort();
        }
        record.settled_version = record.settled_version.max(story.version);
        info!(story_id = %story.id, version = story.version, receivers = receivers.len(), "story distributed");
        let outbox = Outbox { decision: Some(decision.clone()), receivers, recorded_at };
        record.outbox = Some(outbox.clone());
        outbox
    }

    async fn mark_held(&self, origin: &str, id: &str, version: u32, due: SystemTime) -> Result<(), Error> {
        let marker = from_system_time(due).encode_to_vec();
        self.kv.put(held_key(origin, id, version), marker.into()).await.map(drop).map_err(Error::store)
    }

    /// Follows the `held.*` markers of every distributor into this process's schedule, until
    /// `shutdown`; carries over the holds of the earlier single-key index first.
    pub(crate) async fn follow_held(&self, shutdown: CancellationToken) {
        if let Err(error) = self.carry_over_old_index().await {
            warn!(error = ?error, "the earlier held index could not be carried over; retried at the next start");
        }
        bashu_bus::follow_keys(&self.kv, &format!("{HELD_PREFIX}>"), true, &shutdown, |followed| {
            let Followed::Entry(entry) = followed else { return };
            let Some((story, version)) = parse_held_key(&entry.key) else { return };
            let mut held = self.held.lock().expect("held schedule");
            if entry.operation == kv::Operation::Put {
                let due = Timestamp::decode(entry.value)
                    .ok()
                    .and_then(|t| to_system_time(&t))
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                held.entry(story).or_default().insert(version, due);
            } else if let Some(versions) = held.get_mut(&story) {
                versions.remove(&version);
                if versions.is_empty() {
                    held.remove(&story);
                }
            }
        })
        .await;
    }

    async fn carry_over_old_index(&self) -> Result<(), Error> {
        let Some(bytes) = self.kv.get(OLD_HELD_INDEX).await.map_err(Error::store)? else { return Ok(()) };
        let index = HeldStories::decode(bytes)
            .map_err(|e| Error::Corrupt { key: OLD_HELD_INDEX.into(), reason: e.to_string() })?;
        for (story, next) in index.next_release {
            let Some((origin, id)) = story.split_once('.') else { continue };
            let record = self.load(origin, id).await?.record;
            let due = to_system_time(&next).unwrap_or(SystemTime::UNIX_EPOCH);
            for held in &record.held {
                self.mark_held(origin, id, version_of(held), due).await?;
            }
        }
        self.kv.purge(OLD_HELD_INDEX).await.map_err(Error::store)
    }

    /// Releases, in version order, every held version whose time has come, of every story whose
    /// first marker is due. Any number of processes may do this at once: each release is a
    /// compare-and-set, and a marker is removed only once its version is settled for good.
    pub(crate) async fn release_due(&self) -> Result<(), Error> {
        let now = SystemTime::now();
        let due: Vec<String> = {
            let held = self.held.lock().expect("held schedule");
            held.iter().filter(|(_, versions)| versions.values().any(|t| *t <= now)).map(|(s, _)| s.clone()).collect()
        };
        for story in due {
            let Some((origin, id)) = story.split_once('.') else { continue };
            let settled = self.release(origin, id).await?;
            let versions: Vec<u32> = self
                .held
                .lock()
                .expect("held schedule")
                .get(&story)
                .map(|v| v.keys().copied().collect())
                .unwrap_or_default();
            for version in versions.into_iter().filter(|v| *v <= settled) {
                self.kv.delete(held_key(origin, id, version)).await.map_err(Error::store)?;
            }
        }
        Ok(())
    }

    /// Releases one story's due held versions; returns its settled version.
    async fn release(&self, origin: &str, id: &str) -> Result<u32, Error> {
        loop {
            let mut loaded = self.load(origin, id).await?;
            let now = SystemTime::now();
            self.finish_outbox(&loaded.record, now).await?;
            let record = &mut loaded.record;
            let Some(first) = record.held.first() else { return Ok(record.settled_version) };
            if at(&first.release_at).is_none_or(|t| t > now) {
                return Ok(record.settled_version);
            }
            let held = record.held.remove(0);
            let version = version_of(&held);
            let decision = held.decision.filter(|d| d.story.as_ref().is_some_and(|s| !expired(s, now)));
            let outbox = match &decision {
                Some(decision) => Some(self.hand_out(record, decision, now)),
                None => {
                    info!(story_id = %id, version, "expired while held, not delivered");
                    record.settled_version = record.settled_version.max(version);
                    None
                }
            };
            if !self.store(&loaded).await? {
                continue;
            }
            if let Some(outbox) = outbox {
                self.publish(&outbox).await?;
            }
        }
    }

    /// A county confirms a takedown.
    pub(crate) async fn takedown_confirmed(&self, confirmation: TakedownConfirmation) -> Result<(), Error> {
        loop {
            let mut loaded = self.load(&confirmation.origin_county, &confirmation.story_id).await?;
            let record = &mut loaded.record;
            if record.killed_version == 0 || !record.takedown_requested.contains(&confirmation.county) {
                warn!(story_id = %confirmation.story_id, county = %confirmation.county, "takedown confirmation for nothing requested, ignored");
                return Ok(());
            }
            if record.takedown_confirmed.contains_key(&confirmation.county) {
                return Ok(());
            }
            record
                .takedown_confirmed
                .insert(confirmation.county.clone(), confirmation.confirmed_at.unwrap_or_else(now));
            if self.store(&loaded).await? {
                return Ok(());
            }
        }
    }
}
