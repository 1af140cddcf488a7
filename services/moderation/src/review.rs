//! Human review of held stories (三审): a story held by the rules, or of a category whose policy
//! demands it, waits in the moderation bucket until as many distinct reviewers as its policy
//! requires have approved it, one per level in order (初审, 复审, 终审), each holding that level.
//! A reviewer claims a story before acting; a claim lapses, so nothing waits forever on an absent
//! reviewer. Items change only by compare-and-set on their revision, so two reviewers racing on
//! one story cannot both win. Every action is an event in the ledger.

use std::time::{Duration, SystemTime};

use async_nats::jetstream::kv;
use bashu_bus::Bus;
use bashu_moderation_core::{ReviewQueue, next_level};
use bashu_proto::{
    admin::v1::AuditEvent,
    moderation::v1::{
        Approval, Claim, ListQueueRequest, ListQueueResponse, ReviewItem, ReviewRecorded, ReviewRequest, ReviewState,
        review_service_server::{ReviewService, ReviewServiceServer},
    },
    registry::v1::StaffRole,
    story::v1::{DecisionNotice, ModerationDecision, ReviewApproval, RuleOutcome, Verdict},
    time::{from_system_time, to_system_time},
};

use prost::Message;
use serde::Deserialize;
use tonic::{Request, Response, Status};

use crate::review_error::ReviewError;

/// The names of the levels, for messages.
const LEVEL_NAMES: [&str; 3] = ["初审", "复审", "终审"];

/// A reviewer: who, with which token, at which levels.
#[derive(Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewerConfig {
    /// The reviewer's name, as the audit trail records it.
    pub name: String,
    /// Their bearer token (never logged).
    #[serde(skip_serializing)]
    pub token: String,
    /// The levels they may approve at (1 初审, 2 复审, 3 终审).
    pub levels: Vec<u32>,
}

impl std::fmt::Debug for ReviewerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReviewerConfig")
            .field("name", &self.name)
            .field("token", &"<redacted>")
            .field("levels", &self.levels)
            .finish()
    }
}

impl ReviewerConfig {
    /// The reviewer as the admin guard knows staff: checked like an issued reviewer token.
    pub fn as_staff(&self) -> bashu_registry::StaticStaff {
        bashu_registry::StaticStaff {
            caller: bashu_registry::Caller {
                name: self.name.clone(),
                role: bashu_proto::registry::v1::StaffRole::Reviewer,
                review_levels: self.levels.clone(),
                desk_id: String::new(),
            },
            digest: bashu_registry::token_digest(&self.token),
        }
    }
}

/// A reviewer acting: their name and levels, from the caller the admin guard let through.
struct Reviewer {
    name: String,
    levels: Vec<u32>,
}

/// The review desk: holds stories for review and serves `bashu.moderation.v1.ReviewService`.
#[derive(Clone)]
pub struct ReviewDesk {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    bus: Bus,
    kv: kv::Store,
    queue: ReviewQueue,
    claim_ttl: Duration,
}

fn key_of(item: &ReviewItem) -> String {
    ReviewQueue::key_of(&item.key)
}

/// When a held story stops being news (its `expiresAt`), if it has one.
fn expiry_of(item: &ReviewItem) -> Option<SystemTime> {
    item.story.as_ref().and_then(|s| s.expires_at.as_ref()).and_then(to_system_time)
}

fn level_name(level: u32) -> &'static str {
    LEVEL_NAMES.get(level.saturating_sub(1) as usize).copied().unwrap_or("review")
}

impl ReviewDesk {
    /// Opens the desk over the moderation bucket.
    pub async fn open(bus: Bus, claim_ttl: Duration) -> Result<Self, bashu_bus::Error> {
        let kv = bus.stories().moderation_bucket().await?;
        let queue = ReviewQueue::new(kv.clone());
        Ok(Self { inner: std::sync::Arc::new(Inner { bus, kv, queue, claim_ttl }) })
    }

    /// The gRPC service. Serve it behind the admin guard (`bashu_admin::Guard`), which checks
    /// the caller's token and role and hands the caller over; without it every call is refused.
    pub fn grpc_service(&self) -> ReviewServiceServer<Self> {
        ReviewServiceServer::new(self.clone())
    }

    /// Every story still waiting for review, oldest first, with lapsed claims cleared.
    pub async fn held(&self) -> Result<Vec<ReviewItem>, bashu_moderation_core::Error> {
        self.inner.queue.held().await
    }

    /// Puts a story in the queue (idempotent: an item already there is kept as it is).
    pub(crate) async fn hold(&self, item: ReviewItem) -> Result<(), String> {
        match self.inner.kv.create(key_of(&item), item.encode_to_vec().into()).await {
            Ok(_) => Ok(()),
            Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => Ok(()),
            Err(error) => Err(error.to_string()),
        }
    }

    fn caller<T>(request: &Request<T>) -> Result<&bashu_registry::Caller, ReviewError> {
        request.extensions().get::<bashu_registry::Caller>().ok_or(ReviewError::Unauthenticated)
    }

    fn reviewer<T>(request: &Request<T>) -> Result<Reviewer, ReviewError> {
        let caller = Self::caller(request)?;
        if caller.role != bashu_proto::registry::v1::StaffRole::Reviewer {
            return Err(ReviewError::Forbidden("only reviewers review stories".into()));
        }
        Ok(Reviewer { name: caller.name.clone(), levels: caller.review_levels.clone() })
    }

    async fn read(&self, key: &str) -> Result<(ReviewItem, u64), ReviewError> {
        self.inner
            .queue
            .read(key)
            .await
            .map_err(ReviewError::unavailable)?
            .ok_or_else(|| ReviewError::NotFound(key.to_owned()))
    }

    /// Applies `change` to the item under compare-and-set, retrying when another reviewer won.
    async fn change(
        &self,
        key: &str,
        change: impl Fn(&mut ReviewItem) -> Result<(), ReviewError>,
    ) -> Result<ReviewItem, ReviewError> {
        loop {
            let (mut item, revision) = self.read(key).await?;
            change(&mut item)?;
            match self.inner.kv.update(key_of(&item), item.encode_to_vec().into(), revision).await {
                Ok(_) => return Ok(item),
                Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => continue,
                Err(error) => return Err(ReviewError::unavailable(error)),
            }
        }
    }

    async fn record(
        &self,
        item: &ReviewItem,
        reviewer: &str,
        level: u32,
        action: &str,
        reason: &str,
    ) -> Result<(), ReviewError> {
        let story = item.story.clone().unwrap_or_default();
        let now = Some(bashu_proto::time::now());
        let recorded = ReviewRecorded {
            key: item.key.clone(),
            origin_county: story.origin_county.clone(),
            story_id: story.id.clone(),
            version: story.version,
            reviewer: reviewer.into(),
            level,
            action: action.into(),
            reason: reason.into(),
            at: now,
        };
        // The operators' audit log says who reviewed what, as it does for every admin change.
        let method = match action {
            "claim" => "ClaimStory",
            "approve" => "ApproveStory",
            _ => "RejectStory",
        };
        let audited = AuditEvent {
            // The same as the ledger entry's key: one record however often the call is retried.
            id: format!("review.{}.{action}.{reviewer}.{level}", item.key),
            actor: reviewer.into(),
            role: StaffRole::Reviewer.as_str_name().into(),
            method: format!("/bashu.moderation.v1.ReviewService/{method}"),
            target: format!(
                "story {}/{} v{} level {level} ({})",
                story.origin_county,
                story.id,
                story.version,
                level_name(level)
            ),
            at: now,
            before_json: String::new(),
            after_json: serde_json::json!({ "action": action, "reason": reason }).to_string(),
            service: "moderation".into(),
        };
        let (in_ledger, in_audit) = tokio::join!(self.inner.bus.publish(&recorded), self.inner.bus.publish(&audited));
        in_ledger.and(in_audit).map(drop).map_err(ReviewError::unavailable)
    }

    /// The final word: a decision for distribution, and for a rejection a notice to the origin.
    async fn decide(&self, item: &ReviewItem, verdict: Verdict, reason: &str) -> Result<(), ReviewError> {
        let mut rules = item.rules.clone();
        let approvals = item
            .approvals
            .iter()
            .map(|a| format!("{} {}", level_name(a.level), a.reviewer))
            .collect::<Vec<_>>()
            .join(", ");
        rules.push(RuleOutcome {
            rule: "human-review".into(),
            fired: verdict == Verdict::Rejected,
            evidence: approvals.clone(),
        });
        let decision = ModerationDecision {
            story: item.story.clone(),
            verdict: verdict as i32,
            rules,
            decided_by: item
                .approvals
                .iter()
                .map(|a| a.reviewer.clone())
                .chain(item.claim.iter().map(|c| c.reviewer.clone()))
                .collect::<Vec<_>>()
                .join(", "),
            decided_at: Some(bashu_proto::time::now()),
            reason: reason.into(),
            approvals: item
                .approvals
                .iter()
                .map(|a| ReviewApproval { reviewer: a.reviewer.clone(), level: a.level, at: a.at })
                .collect(),
        };
        let unavailable = ReviewError::unavailable;
        self.inner.bus.publish(&decision).await.map_err(unavailable)?;
        if verdict == Verdict::Rejected {
            let county = item.story.as_ref().map(|s| s.origin_county.clone()).unwrap_or_default();
            self.inner.bus.publish(&DecisionNotice { county, decision: Some(decision) }).await.map_err(unavailable)?;
        }
        Ok(())
    }

    /// The level the caller may act at now: the story still waits, the caller holds the level it
    /// waits for, and the caller's claim on it is live.
    fn callers_turn(item: &ReviewItem, reviewer: &Reviewer, now: SystemTime, doing: &str) -> Result<u32, ReviewError> {
        if item.state() != ReviewState::Pending {
            return Err(ReviewError::NotWaiting);
        }
        let level = next_level(item);
        if !reviewer.levels.contains(&level) {
            return Err(ReviewError::Forbidden(format!("{doing} at {} needs that role", level_name(level))));
        }
        if Self::claim_is_live(&item.claim, now).is_none_or(|c| c.reviewer != reviewer.name) {
            return Err(ReviewError::NotClaimed);
        }
        Ok(level)
    }

    fn claim_is_live(claim: &Option<Claim>, now: SystemTime) -> Option<&Claim> {
        ReviewQueue::live_claim(claim, now)
    }
}

#[tonic::async_trait]
impl ReviewService for ReviewDesk {
    async fn list_queue(&self, request: Request<ListQueueRequest>) -> Result<Response<ListQueueResponse>, Status> {
        Self::caller(&request)?;
        let filter = request.into_inner();
        let now = SystemTime::now();
        let items = self.held().await.map_err(ReviewError::unavailable)?;
        let items = items
            .into_iter()
            .filter(|item| {
                let story = item.story.clone().unwrap_or_default();
                let age = item
                    .held_at
                    .as_ref()
                    .and_then(to_system_time)
                    .and_then(|t| now.duration_since(t).ok())
                    .unwrap_or_default();
                (filter.county.is_empty() || story.origin_county == filter.county)
                    && (filter.category.is_empty() || story.category().as_str_name() == filter.category)
                    && (filter.level == 0 || filter.level == next_level(item))
                    && age.as_secs() >= filter.min_age_seconds
            })
            .collect();
        Ok(Response::new(ListQueueResponse { items }))
    }

    async fn claim_story(&self, request: Request<ReviewRequest>) -> Result<Response<ReviewItem>, Status> {
        let reviewer = Self::reviewer(&request)?;
        let key = request.into_inner().key;
        let ttl = self.inner.claim_ttl;
        let item = self
            .change(&key, |item| {
                let now = SystemTime::now();
                if item.state() != ReviewState::Pending {
                    return Err(ReviewError::NotWaiting);
                }
                let level = next_level(item);
                if !reviewer.levels.contains(&level) {
                    return Err(ReviewError::Forbidden(format!("{} needs a {} reviewer", key, level_name(level))));
                }
                if let Some(claim) = Self::claim_is_live(&item.claim, now).filter(|c| c.reviewer != reviewer.name) {
                    return Err(ReviewError::ClaimedByAnother(claim.reviewer.clone()));
                }
                item.claim =
                    Some(Claim { reviewer: reviewer.name.clone(), expires_at: Some(from_system_time(now + ttl)) });
                Ok(())
            })
            .await?;
        self.record(&item, &reviewer.name, next_level(&item), "claim", "").await?;
        Ok(Response::new(item))
    }

    async fn approve_story(&self, request: Request<ReviewRequest>) -> Result<Response<ReviewItem>, Status> {
        let reviewer = Self::reviewer(&request)?;
        let key = request.into_inner().key;
        let item = self
            .change(&key, |item| {
                let now = SystemTime::now();
                let level = Self::callers_turn(item, &reviewer, now, "approving")?;
                if expiry_of(item).is_some_and(|expiry| expiry <= now) {
                    // Nothing to approve any more: it leaves the queue, and the origin is told.
                    item.set_state(ReviewState::Rejected);
                    item.claim = None;
                    return Ok(());
                }
                if item.approvals.iter().any(|a| a.reviewer == reviewer.name) {
                    return Err(ReviewError::SameReviewer);
                }
                item.approvals.push(Approval {
                    reviewer: reviewer.name.clone(),
                    level,
                    at: Some(from_system_time(now)),
                });
                item.claim = None;
                if item.approvals.len() as u32 >= item.levels_required {
                    item.set_state(ReviewState::Approved);
                }
                Ok(())
            })
            .await?;
        if item.state() == ReviewState::Rejected {
            let expired_at = item.story.as_ref().and_then(|s| s.expires_at).and_then(|t| serde_json::to_value(t).ok());
            let reason = format!(
                "expired at {} while waiting for review: not delivered",
                expired_at.as_ref().and_then(|v| v.as_str()).unwrap_or("its expiry")
            );
            self.record(&item, &reviewer.name, next_level(&item), "reject", &reason).await?;
            self.decide(&item, Verdict::Rejected, &reason).await?;
            return Err(ReviewError::Expired(format!("{key}: the story {reason}")).into());
        }
        self.record(&item, &reviewer.name, item.approvals.len() as u32, "approve", "").await?;
        if item.state() == ReviewState::Approved {
            self.decide(&item, Verdict::Approved, "").await?;
        }
        Ok(Response::new(item))
    }

    async fn reject_story(&self, request: Request<ReviewRequest>) -> Result<Response<ReviewItem>, Status> {
        let reviewer = Self::reviewer(&request)?;
        let ReviewRequest { key, reason } = request.into_inner();
        if reason.trim().is_empty() {
            return Err(ReviewError::Invalid("reason: the origin county is told why; give one".into()).into());
        }
        let item = self
            .change(&key, |item| {
                Self::callers_turn(item, &reviewer, SystemTime::now(), "rejecting")?;
                item.set_state(ReviewState::Rejected);
                item.reason = reason.clone();
                Ok(())
            })
            .await?;
        self.record(&item, &reviewer.name, next_level(&item), "reject", &reason).await?;
        self.decide(&item, Verdict::Rejected, &reason).await?;
        Ok(Response::new(item))
    }
}
