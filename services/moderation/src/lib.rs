//! Bashu moderation: reads every submitted story, evaluates the deployment's rules (the
//! sensitive-term lexicon over normalised text, required fields, lengths, embargo and expiry,
//! source rules, near-duplicates of what other counties shared), records every rule's outcome in
//! the decision, and tells the origin county when its story is held or rejected. Human review by
//! several reviewers (三审) of held stories is the next step of the moderation issue.

mod review;
pub mod rules;

pub use review::{ReviewDesk, ReviewerConfig, next_level};

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use async_nats::jetstream::kv;
use bashu_bus::{Bus, Delivery, Failure, RetryConfig};
use bashu_proto::{
    moderation::v1::{ReviewItem, ReviewState},
    story::v1::{DecisionNotice, ModerationDecision, StorySubmitted, Verdict},
};
use futures::StreamExt;
use rules::{Earlier, Rules, RulesConfig};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::info;

/// Moderation's settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// How the consumer of submitted stories retries.
    pub consumer: RetryConfig,
    /// The rules file (JSON, docs/moderation.md). None: every well-formed story is approved.
    pub rules_file: Option<PathBuf>,
    /// How long a reviewer's claim on a held story lasts, in seconds.
    pub claim_secs: u64,
    /// Reviewers from configuration, their tokens and levels (checked by the admin guard beside
    /// the reviewer tokens issued through the admin API).
    pub reviewers: Vec<ReviewerConfig>,
    /// Submitted stories one process decides at once: different stories side by side, one
    /// story's versions in order.
    pub parallel: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            consumer: RetryConfig::default(),
            rules_file: None,
            claim_secs: 600,
            reviewers: Vec::new(),
            parallel: 64,
        }
    }
}

impl Config {
    /// Checks the settings make sense, reading and checking the rules file.
    pub fn validate(&self) -> Result<(), String> {
        self.consumer.validate().map_err(|e| format!("moderation.consumer: {e}"))?;
        if !(1..=1_000).contains(&self.parallel) {
            return Err("moderation.parallel must be between 1 and 1000".into());
        }
        if !(1..=86_400).contains(&self.claim_secs) {
            return Err("moderation.claim_secs must be between 1 and 86400".into());
        }
        if let Some(bad) =
            self.reviewers.iter().find(|r| r.token.len() < 16 || r.levels.iter().any(|l| !(1..=3).contains(l)))
        {
            return Err(format!(
                "moderation.reviewers: {} needs a token of at least 16 characters and levels 1 to 3",
                bad.name
            ));
        }
        self.rules().map(drop)
    }

    /// The rules, from the file when one is configured.
    pub fn rules(&self) -> Result<RulesConfig, String> {
        match &self.rules_file {
            None => Ok(RulesConfig::default()),
            Some(path) => {
                let json = std::fs::read(path).map_err(|e| format!("moderation.rules_file {}: {e}", path.display()))?;
                RulesConfig::from_json(&json).map_err(|e| format!("moderation.rules_file {}: {e}", path.display()))
            }
        }
    }
}

/// Why moderation could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The rules are not valid.
    #[error("{0}")]
    Rules(String),
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] bashu_bus::Error),
    /// The fingerprint store could not be read.
    #[error("moderation store failed")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The moderation service.
pub struct Moderation {
    config: Config,
    state: Arc<State>,
}

/// The key of the rules in force in the moderation bucket (JSON).
pub const RULES_KEY: &str = "rules";

/// Reads the rules in force, checks a new set, and stores it (the admin API's side).
pub async fn stored_rules(bus: &Bus) -> Result<Option<String>, Error> {
    let kv = bus.moderation_bucket().await?;
    let value = kv.get(RULES_KEY).await.map_err(|e| Error::Store(e.into()))?;
    Ok(value.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
}

/// Checks and stores new rules; moderation picks them up for the next story.
pub async fn store_rules(bus: &Bus, json: &str) -> Result<(), Error> {
    Rules::new(RulesConfig::from_json(json.as_bytes()).map_err(Error::Rules)?).map_err(Error::Rules)?;
    let kv = bus.moderation_bucket().await?;
    kv.put(RULES_KEY, json.to_owned().into_bytes().into()).await.map(drop).map_err(|e| Error::Store(e.into()))
}

struct State {
    bus: Bus,
    rules: std::sync::RwLock<Arc<Rules>>,
    desk: ReviewDesk,
    fingerprints: kv::Store,
    earlier: Mutex<Window>,
}

impl Moderation {
    /// Builds the service: compiles the rules and loads the fingerprints of recent stories.
    pub async fn build(config: Config, bus: Bus) -> Result<Self, Error> {
        let fingerprints = bus.moderation_bucket().await?;
        // The bucket holds the rules in force; the file only seeds an empty bucket, so rules an
        // operator changed through the admin API survive a restart.
        if let Some(path) = &config.rules_file {
            let json = std::fs::read(path).map_err(|e| Error::Rules(format!("{}: {e}", path.display())))?;
            config.rules().map_err(Error::Rules)?;
            match fingerprints.create(RULES_KEY, json.into()).await {
                Ok(_) => {}
                Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {}
                Err(error) => return Err(Error::Store(error.into())),
            }
        }
        let rules = match fingerprints.get(RULES_KEY).await.map_err(|e| Error::Store(e.into()))? {
            Some(json) => Rules::new(RulesConfig::from_json(&json).map_err(Error::Rules)?).map_err(Error::Rules)?,
            None => Rules::new(RulesConfig::default()).map_err(Error::Rules)?,
        };
        let earlier = load_fingerprints(&fingerprints).await?;
        let desk = ReviewDesk::open(bus.clone(), Duration::from_secs(config.claim_secs)).await?;
        info!(terms = rules.lexicon().len(), recent = earlier.len(), "moderation rules loaded");
        let rules = std::sync::RwLock::new(Arc::new(rules));
        Ok(Self {
            config,
            state: Arc::new(State { bus, rules, desk, fingerprints, earlier: Mutex::new(Window(earlier)) }),
        })
    }

    /// The review desk (its gRPC service is the reviewers' API).
    pub fn review_desk(&self) -> ReviewDesk {
        self.state.desk.clone()
    }

    /// Decides on submitted stories, following rule changes, until `shutdown`. Both run inside
    /// this future.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), bashu_bus::Error> {
        let spec = self.state.bus.moderation_consumer((&self.config.consumer).into()).in_parallel(self.config.parallel);
        let state = self.state.clone();
        let decisions = self.state.bus.consume_keyed(
            spec,
            |submitted: &StorySubmitted| {
                submitted.story.as_ref().map(|s| format!("{}.{}", s.origin_county, s.id)).unwrap_or_default()
            },
            move |delivery: Delivery<StorySubmitted>| decide(state.clone(), delivery),
            shutdown.clone(),
        );
        let (decided, (), ()) = tokio::join!(
            decisions,
            follow_rules(self.state.clone(), shutdown.clone()),
            follow_fingerprints(self.state.clone(), shutdown)
        );
        decided
    }
}

impl State {
    fn current_rules(&self) -> Arc<Rules> {
        self.rules.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// `recent.<origin>.<id>` → 8 bytes of fingerprint and 8 of Unix seconds, both big-endian.
async fn load_fingerprints(kv: &kv::Store) -> Result<Vec<Earlier>, Error> {
    let mut keys = kv.keys().await.map_err(|e| Error::Store(e.into()))?;
    let mut earlier = Vec::new();
    while let Some(key) = keys.next().await {
        let key = key.map_err(|e| Error::Store(e.into()))?;
        let Some(rest) = key.strip_prefix("recent.") else { continue };
        let Some((origin, id)) = rest.split_once('.') else { continue };
        let Some(value) = kv.get(&key).await.map_err(|e| Error::Store(e.into()))? else { continue };
        earlier.extend(Earlier::decode(origin, id, &value));
    }
    Ok(earlier)
}

/// The fingerprints of the stories approved within the near-duplicate window, by any replica.
struct Window(Vec<Earlier>);

impl Window {
    /// Keeps `earlier` (in place of the same story's older one) and forgets what left the window.
    fn remember(&mut self, earlier: Earlier, window: Duration) {
        let now = SystemTime::now();
        self.0.retain(|e| {
            !(e.origin == earlier.origin && e.id == earlier.id)
                && now.duration_since(e.at).map_or(true, |age| age <= window)
        });
        self.0.push(earlier);
    }
}

impl Earlier {
    /// A stored fingerprint: 8 bytes of SimHash, 8 bytes of Unix seconds.
    fn decode(origin: &str, id: &str, value: &[u8]) -> Option<Self> {
        let (fingerprint, seconds) = (value.get(..8)?, value.get(8..16)?);
        Some(Earlier {
            origin: origin.into(),
            id: id.into(),
            fingerprint: u64::from_be_bytes(fingerprint.try_into().ok()?),
            at: UNIX_EPOCH + Duration::from_secs(u64::from_be_bytes(seconds.try_into().ok()?)),
        })
    }

    fn encode(&self) -> Vec<u8> {
        let seconds = self.at.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        [self.fingerprint.to_be_bytes(), seconds.to_be_bytes()].concat()
    }
}

/// Takes every fingerprint any moderation process stores into this process's window, so that a
/// near-duplicate is found whichever replica approved the original.
async fn follow_fingerprints(state: Arc<State>, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        let mut changes = match state.fingerprints.watch("recent.>").await {
            Ok(changes) => changes,
            Err(error) => {
                tracing::warn!(error = %error, "cannot follow other replicas' fingerprints yet; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        loop {
            let change = tokio::select! {
                _ = shutdown.cancelled() => return,
                change = changes.next() => change,
            };
            let Some(Ok(entry)) = change else { break };
            let Some((origin, id)) = entry.key.strip_prefix("recent.").and_then(|rest| rest.split_once('.')) else {
                continue;
            };
            if let Some(earlier) = Earlier::decode(origin, id, &entry.value) {
                let window = state.current_rules().near_duplicate_window();
                state.earlier.lock().await.remember(earlier, window);
            }
        }
    }
}

/// Recompiles the rules whenever the stored ones change; invalid rules are logged and ignored.
async fn follow_rules(state: Arc<State>, shutdown: CancellationToken) {
    // A watch ends when its connection does; it is opened again, and the stored rules read anew.
    while !shutdown.is_cancelled() {
        let mut changes = match state.fingerprints.watch_with_history(RULES_KEY).await {
            Ok(changes) => changes,
            Err(error) => {
                tracing::warn!(error = %error, "cannot follow rule changes yet; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        loop {
            let change = tokio::select! {
                _ = shutdown.cancelled() => return,
                change = changes.next() => change,
            };
            match change {
                Some(Ok(entry)) if entry.operation == kv::Operation::Put => {
                    match RulesConfig::from_json(&entry.value).and_then(Rules::new) {
                        Ok(rules) => {
                            info!(terms = rules.lexicon().len(), "moderation rules in force");
                            *state.rules.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(rules);
                        }
                        Err(error) => {
                            tracing::warn!(error = %error, "stored rules are invalid; the previous rules stay")
                        }
                    }
                }
                Some(_) => {}
                None => break,
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

async fn decide(state: Arc<State>, delivery: Delivery<StorySubmitted>) -> Result<(), Failure> {
    let story = delivery.event.story.ok_or_else(|| Failure::Permanent("StorySubmitted without a story".into()))?;
    let now = SystemTime::now();
    let evaluation = {
        // Compared in place: a copy of the window per story made moderation slower the more
        // stories the window held (bashu-bench pipeline, docs/performance.md). The story's own
        // earlier versions are never compared: evaluate skips its origin county's stories.
        let earlier = state.earlier.lock().await;
        state.current_rules().evaluate(&story, &earlier.0, now)
    };
    let mut verdict = evaluation.verdict;
    let mut reason = evaluation.reason.clone();
    let mut levels = state.current_rules().review_levels(story.category().as_str_name());
    if verdict == Verdict::Held {
        levels = levels.max(1);
    }
    if verdict != Verdict::Rejected && levels > 0 {
        verdict = Verdict::Held;
        if reason.is_empty() {
            reason = format!("{} needs {levels} review(s)", story.category().as_str_name());
        }
    }
    let decision = ModerationDecision {
        verdict: verdict as i32,
        rules: evaluation.outcomes.clone(),
        decided_by: "rules".into(),
        decided_at: Some(bashu_proto::time::from_system_time(now)),
        reason: reason.clone(),
        story: Some(story.clone()),
        approvals: Vec::new(),
    };
    if verdict == Verdict::Held {
        // In the queue before anyone hears of it: a held story is never lost.
        let item = ReviewItem {
            key: format!("{}.{}.{}", story.origin_county, story.id, story.version),
            story: Some(story.clone()),
            rules: evaluation.outcomes,
            levels_required: levels,
            state: ReviewState::Pending as i32,
            reason,
            held_at: Some(bashu_proto::time::from_system_time(now)),
            ..Default::default()
        };
        state.desk.hold(item).await.map_err(Failure::Retry)?;
    }
    // The decision and what goes with it are written together, each idempotent.
    match verdict {
        Verdict::Approved => {
            let earlier = Earlier {
                origin: story.origin_county.clone(),
                id: story.id.clone(),
                fingerprint: evaluation.fingerprint,
                at: now,
            };
            let key = format!("recent.{}.{}", story.origin_county, story.id);
            let remembered = async {
                state.fingerprints.put(key, earlier.encode().into()).await.map_err(|e| Failure::Retry(e.to_string()))
            };
            let (published, remembered) = tokio::join!(state.bus.publish(&decision), remembered);
            published?;
            remembered?;
            let window = state.current_rules().near_duplicate_window();
            state.earlier.lock().await.remember(earlier, window);
        }
        _ => {
            let notice = DecisionNotice { county: story.origin_county.clone(), decision: Some(decision.clone()) };
            let (published, told) = tokio::join!(state.bus.publish(&decision), state.bus.publish(&notice));
            published?;
            told?;
        }
    }
    info!(story_id = %story.id, verdict = decision.verdict().as_str_name(), "story decided");
    Ok(())
}
