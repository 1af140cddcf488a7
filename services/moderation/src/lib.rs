//! Bashu moderation: reads every submitted story, evaluates the deployment's rules (the
//! sensitive-term lexicon over normalised text, required fields, lengths, embargo and expiry,
//! source rules, near-duplicates of what other counties shared), records every rule's outcome in
//! the decision, and tells the origin county when its story is held or rejected. Human review by
//! several reviewers (三审) of held stories is the next step of the moderation issue.

mod review;
mod review_error;

pub use bashu_moderation_core::{Error, RULES_KEY, next_level, rules, store_rules, stored_rules};
pub use review::{ReviewDesk, ReviewerConfig};

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, SystemTime},
};

use async_nats::jetstream::kv;
use bashu_bus::{Bus, Delivery, Failure, Followed, RetryConfig};
use bashu_proto::{
    moderation::v1::{ReviewItem, ReviewState},
    story::v1::{DecisionNotice, ModerationDecision, StorySubmitted, Verdict},
};
use futures::StreamExt;
use rules::{Earlier, Rules, RulesConfig, Window};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tracing::info;

/// Moderation's settings.
#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// How the consumer of submitted stories retries.
    pub consumer: RetryConfig,
    /// The rules file (JSON, docs/moderation.md). Unset: the defaults, which hold near-duplicates
    /// and check nothing else.
    pub rules_file: Option<PathBuf>,
    /// How long a reviewer's claim on a held story lasts, in seconds.
    pub claim_secs: u64,
    /// Reviewers from configuration (in the TOML file): name, token and levels, checked by the
    /// admin guard beside the reviewer tokens issued through the admin API.
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

/// The moderation service.
pub struct Moderation {
    config: Config,
    state: Arc<State>,
}

struct State {
    bus: Bus,
    rules: std::sync::RwLock<Arc<Rules>>,
    desk: ReviewDesk,
    fingerprints: kv::Store,
    /// Read by every decision at once, written when a story is approved (here or by a replica).
    earlier: std::sync::RwLock<Window>,
}

impl Moderation {
    /// Builds the service: compiles the rules and loads the fingerprints of recent stories.
    pub async fn build(config: Config, bus: Bus) -> Result<Self, Error> {
        let fingerprints = bus.stories().moderation_bucket().await?;
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
        let earlier = load_fingerprints(&fingerprints, &rules).await?;
        let desk = ReviewDesk::open(bus.clone(), Duration::from_secs(config.claim_secs)).await?;
        info!(terms = rules.lexicon().len(), recent = earlier.len(), "moderation rules loaded");
        let rules = std::sync::RwLock::new(Arc::new(rules));
        Ok(Self {
            config,
            state: Arc::new(State { bus, rules, desk, fingerprints, earlier: std::sync::RwLock::new(earlier) }),
        })
    }

    /// The review desk (its gRPC service is the reviewers' API).
    pub fn review_desk(&self) -> ReviewDesk {
        self.state.desk.clone()
    }

    /// Decides on submitted stories, following rule changes, until `shutdown`. Both run inside
    /// this future.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), bashu_bus::Error> {
        let spec = self
            .state
            .bus
            .stories()
            .moderation_consumer((&self.config.consumer).into())
            .in_parallel(self.config.parallel);
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
    fn remember(&self, earlier: Earlier, window: Duration) {
        self.earlier.write().unwrap_or_else(|p| p.into_inner()).remember(earlier, window);
    }

    fn current_rules(&self) -> Arc<Rules> {
        self.rules.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// `recent.<origin>.<id>` → 8 bytes of fingerprint and 8 of Unix seconds, both big-endian.
async fn load_fingerprints(kv: &kv::Store, rules: &Rules) -> Result<Window, Error> {
    let mut keys = kv.keys().await.map_err(|e| Error::Store(e.into()))?;
    let mut earlier = Window::new(rules.near_duplicate_distance());
    while let Some(key) = keys.next().await {
        let key = key.map_err(|e| Error::Store(e.into()))?;
        let Some(rest) = key.strip_prefix("recent.") else { continue };
        let Some((origin, id)) = rest.split_once('.') else { continue };
        let Some(value) = kv.get(&key).await.map_err(|e| Error::Store(e.into()))? else { continue };
        if let Some(stored) = Earlier::decode(origin, id, &value) {
            earlier.remember(stored, rules.near_duplicate_window());
        }
    }
    Ok(earlier)
}

/// Takes every fingerprint any moderation process stores into this process's window, so that a
/// near-duplicate is found whichever replica approved the original.
async fn follow_fingerprints(state: Arc<State>, shutdown: CancellationToken) {
    bashu_bus::follow_keys(&state.fingerprints, "recent.>", false, &shutdown, |followed| {
        let Followed::Entry(entry) = followed else { return };
        let Some((origin, id)) = entry.key.strip_prefix("recent.").and_then(|rest| rest.split_once('.')) else {
            return;
        };
        if let Some(earlier) = Earlier::decode(origin, id, &entry.value) {
            state.remember(earlier, state.current_rules().near_duplicate_window());
        }
    })
    .await;
}

/// Recompiles the rules whenever the stored ones change; invalid rules are logged and ignored.
async fn follow_rules(state: Arc<State>, shutdown: CancellationToken) {
    bashu_bus::follow_keys(&state.fingerprints, RULES_KEY, true, &shutdown, |followed| {
        let Followed::Entry(entry) = followed else { return };
        if entry.operation != kv::Operation::Put {
            return;
        }
        match RulesConfig::from_json(&entry.value).and_then(Rules::new) {
            Ok(rules) => {
                info!(terms = rules.lexicon().len(), "moderation rules in force");
                let distance = rules.near_duplicate_distance();
                *state.rules.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(rules);
                // The window's index is built for one distance: rebuilt when it changes.
                let mut earlier = state.earlier.write().unwrap_or_else(|p| p.into_inner());
                let window = std::mem::replace(&mut *earlier, Window::new(distance));
                *earlier = window.reindexed(distance);
            }
            Err(error) => tracing::warn!(error = %error, "stored rules are invalid; the previous rules stay"),
        }
    })
    .await;
}

async fn decide(state: Arc<State>, delivery: Delivery<StorySubmitted>) -> Result<(), Failure> {
    let story = delivery.event.story.ok_or_else(|| Failure::Permanent("StorySubmitted without a story".into()))?;
    let now = SystemTime::now();
    let evaluation = {
        // Compared in place: a copy of the window per story made moderation slower the more
        // stories the window held (bashu-bench pipeline, docs/performance.md). The story's own
        // earlier versions are never compared: evaluate skips its origin county's stories.
        let earlier = state.earlier.read().unwrap_or_else(|p| p.into_inner());
        state.current_rules().evaluate(&story, &earlier, now)
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
            key: story.version_key(),
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
            state.remember(earlier, window);
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
