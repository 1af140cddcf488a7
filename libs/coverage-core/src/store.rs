//! The plans bucket: its keys, and every change made by compare-and-set on the record's
//! revision, so any replica may make any change and none is lost to another's.

use async_nats::jetstream::kv;
use bashu_bus::Bus;
use bashu_proto::coverage::v1::{Contribution, Plan};
use prost::Message;

use crate::Error;

/// A plan's key: `plan.<id>`.
fn plan_key(id: &str) -> String {
    format!("plan.{id}")
}

/// What `story` contributed to `plan`: `contribution.<plan>.<origin>.<id>`.
fn contribution_key(plan: &str, origin: &str, story: &str) -> String {
    format!("contribution.{plan}.{origin}.{story}")
}

/// Which plan a story belongs to: `story.<origin>.<id>` → the plan id.
fn story_key(origin: &str, story: &str) -> String {
    format!("story.{origin}.{story}")
}

/// One reuse note: `use.<origin>.<id>.<county>` → when.
fn use_key(origin: &str, story: &str, county: &str) -> String {
    format!("use.{origin}.{story}.{county}")
}

/// A record with the revision it was read at.
#[derive(Clone, Debug)]
pub struct Versioned<T> {
    /// The record.
    pub value: T,
    /// Its revision in the bucket.
    pub revision: u64,
}

/// The plans bucket. Cheap to clone.
#[derive(Clone)]
pub struct PlanStore {
    bus: Bus,
    pub(crate) kv: kv::Store,
    /// Story → plan bindings this replica has seen (`story.<origin>.<id>` → plan id).
    bindings: std::sync::Arc<dashmap::DashMap<String, String>>,
}

/// Bindings a replica remembers before it forgets them all and asks the bucket again.
const MAX_REMEMBERED_BINDINGS: usize = 100_000;

/// How many times a change is tried again after another writer got there first.
const CAS_ATTEMPTS: usize = 64;

impl PlanStore {
    /// The bucket on a provisioned bus.
    pub async fn open(bus: &Bus) -> Result<Self, bashu_bus::Error> {
        Ok(Self { bus: bus.clone(), kv: bus.coverage().bucket().await?, bindings: Default::default() })
    }

    async fn read<T: Message + Default>(&self, key: &str) -> Result<Option<Versioned<T>>, Error> {
        let Some(entry) = self.kv.entry(key).await.map_err(Error::store)? else { return Ok(None) };
        if matches!(entry.operation, kv::Operation::Delete | kv::Operation::Purge) {
            return Ok(None);
        }
        let value =
            T::decode(entry.value).map_err(|e| Error::Corrupt { key: key.to_owned(), reason: e.to_string() })?;
        Ok(Some(Versioned { value, revision: entry.revision }))
    }

    /// A plan as stored now.
    pub async fn plan(&self, id: &str) -> Result<Option<Versioned<Plan>>, Error> {
        if crate::plan_id_problem(id).is_some() {
            return Ok(None);
        }
        self.read(&plan_key(id)).await
    }

    /// Stores a new plan; `plan_exists` if the id is taken.
    pub async fn create_plan(&self, plan: &Plan) -> Result<u64, Error> {
        match self.kv.create(plan_key(&plan.id), plan.encode_to_vec().into()).await {
            Ok(revision) => Ok(revision),
            Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {
                Err(Error::conflict("plan_exists", format!("plan id {} is taken", plan.id)))
            }
            Err(error) => Err(Error::store(error)),
        }
    }

    /// Applies `change` to the record at `key` under compare-and-set, reading again and trying
    /// again when another writer got there first. `change` sees the record (None: none yet) and
    /// returns what to store (None: nothing to change).
    async fn change<T: Message + Default>(
        &self,
        key: &str,
        mut change: impl FnMut(Option<T>) -> Result<Option<T>, Error>,
    ) -> Result<Option<T>, Error> {
        for _ in 0..CAS_ATTEMPTS {
            let current = self.read::<T>(key).await?;
            let revision = current.as_ref().map(|c| c.revision);
            let Some(next) = change(current.map(|c| c.value))? else { return Ok(None) };
            let bytes = next.encode_to_vec().into();
            let written = match revision {
                Some(revision) => self.kv.update(key, bytes, revision).await.map(drop).map_err(|e| {
                    (e.kind() == kv::UpdateErrorKind::WrongLastRevision).then_some(()).ok_or_else(|| Error::store(e))
                }),
                None => self.kv.create(key, bytes).await.map(drop).map_err(|e| {
                    (e.kind() == kv::CreateErrorKind::AlreadyExists).then_some(()).ok_or_else(|| Error::store(e))
                }),
            };
            match written {
                Ok(()) => return Ok(Some(next)),
                // Someone else wrote it first: read theirs and apply the change to it.
                Err(Ok(())) => continue,
                Err(Err(error)) => return Err(error),
            }
        }
        Err(Error::conflict("busy", format!("{key} kept changing under this change; try again")))
    }

    /// Changes a plan by compare-and-set; `change` returns false for nothing to do.
    pub async fn change_plan(
        &self,
        id: &str,
        mut change: impl FnMut(&mut Plan) -> Result<bool, Error>,
    ) -> Result<Plan, Error> {
        let mut unchanged = None;
        let changed = self
            .change::<Plan>(&plan_key(id), |plan| {
                let Some(mut plan) = plan else { return Err(Error::NotFound(format!("no coverage plan {id}"))) };
                if change(&mut plan)? {
                    Ok(Some(plan))
                } else {
                    unchanged = Some(plan);
                    Ok(None)
                }
            })
            .await?;
        Ok(changed.or(unchanged).unwrap_or_default())
    }

    /// Merges into a story's contribution record by compare-and-set, creating it if need be;
    /// the record as it now stands.
    pub async fn merge_contribution(
        &self,
        plan: &str,
        origin: &str,
        story: &str,
        mut merge: impl FnMut(&mut Contribution) -> bool,
    ) -> Result<Contribution, Error> {
        let key = contribution_key(plan, origin, story);
        let mut unchanged = None;
        let changed = self
            .change::<Contribution>(&key, |existing| {
                let fresh = existing.is_none();
                let mut contribution = existing.unwrap_or_else(|| Contribution {
                    plan_id: plan.to_owned(),
                    origin_county: origin.to_owned(),
                    story_id: story.to_owned(),
                    ..Default::default()
                });
                if merge(&mut contribution) || fresh {
                    Ok(Some(contribution))
                } else {
                    unchanged = Some(contribution);
                    Ok(None)
                }
            })
            .await?;
        Ok(changed.or(unchanged).unwrap_or_default())
    }

    /// Every contribution recorded for `plan`, by origin and story id.
    pub async fn contributions(&self, plan: &str) -> Result<Vec<Contribution>, Error> {
        let mut found = Vec::new();
        for key in self.bus.coverage().keys(&format!("contribution.{plan}.>")).await? {
            if let Some(record) = self.read::<Contribution>(&key).await? {
                found.push(record.value);
            }
        }
        Ok(found)
    }

    /// Every plan, in id order.
    pub async fn plans(&self) -> Result<Vec<Plan>, Error> {
        let mut plans = Vec::new();
        for key in self.bus.coverage().keys("plan.*").await? {
            if let Some(plan) = self.read::<Plan>(&key).await? {
                plans.push(plan.value);
            }
        }
        Ok(plans)
    }

    /// Notes that a story belongs to `plan` (first writer wins; a story stays in its plan).
    /// Returns the plan it belongs to, and whether this call made the binding. A binding never
    /// changes, so each replica remembers the ones it has seen and asks the bucket once.
    pub async fn bind_story(&self, origin: &str, story: &str, plan: &str) -> Result<(String, bool), Error> {
        let key = story_key(origin, story);
        if let Some(bound) = self.bindings.get(&key) {
            return Ok((bound.clone(), false));
        }
        let (bound, created) = match self.kv.create(&key, bytes::Bytes::copy_from_slice(plan.as_bytes())).await {
            Ok(_) => (plan.to_owned(), true),
            Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {
                (self.story_plan(origin, story).await?.unwrap_or_else(|| plan.to_owned()), false)
            }
            Err(error) => return Err(Error::store(error)),
        };
        if self.bindings.len() >= MAX_REMEMBERED_BINDINGS {
            self.bindings.clear();
        }
        self.bindings.insert(key, bound.clone());
        Ok((bound, created))
    }

    /// The plan a story belongs to, if any.
    pub async fn story_plan(&self, origin: &str, story: &str) -> Result<Option<String>, Error> {
        let value = self.kv.get(story_key(origin, story)).await.map_err(Error::store)?;
        Ok(value.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Records a reuse note (whatever story it is about: the story's plan may not be known yet).
    pub async fn record_use(&self, origin: &str, story: &str, county: &str, at: i64) -> Result<(), Error> {
        let key = use_key(origin, story, county);
        match self.kv.create(&key, at.to_string().into()).await {
            Ok(_) => Ok(()),
            Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => Ok(()),
            Err(error) => Err(Error::store(error)),
        }
    }

    /// Every reuse note of a story: (county, unix seconds).
    pub async fn uses(&self, origin: &str, story: &str) -> Result<Vec<(String, i64)>, Error> {
        let prefix = format!("use.{origin}.{story}.");
        let mut uses = Vec::new();
        for key in self.bus.coverage().keys(&format!("{prefix}*")).await? {
            if let Some(at) = self.kv.get(&key).await.map_err(Error::store)? {
                let county = key.strip_prefix(&prefix).unwrap_or_default().to_owned();
                uses.push((county, String::from_utf8_lossy(&at).parse().unwrap_or_default()));
            }
        }
        Ok(uses)
    }
}
