//! Human review (三审): distinct reviewers per level, roles, claims that lapse, rejections that
//! reach the origin, an audit event for every action, and a queue that survives a restart.

use std::time::Duration;

use bashu::{System, Target};
use bashu_bus::STORIES;
use bashu_moderation::ReviewerConfig;
use bashu_proto::{
    moderation::v1::{
        ListQueueRequest, ReviewRecorded, ReviewRequest, ReviewState, review_service_client::ReviewServiceClient,
    },
    story::v1::{DecisionNotice, ModerationDecision, Verdict},
};
use bashu_tests::{TestSystem, eventually, story_json};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Request, transport::Channel};

const REVIEWERS: [(&str, &[u32]); 4] = [("alice", &[1]), ("bob", &[2]), ("carol", &[3]), ("dave", &[1, 2, 3])];

fn token(name: &str) -> String {
    format!("{name}-token-0123456789")
}

async fn system(claim_secs: u64) -> (TestSystem, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.json");
    std::fs::write(&rules, json!({"review_levels": {"CATEGORY_POLICY": 3}}).to_string()).unwrap();
    let t = TestSystem::start_configured(&Target::ALL, |config| {
        config.moderation.rules_file = Some(rules.clone());
        config.moderation.claim_secs = claim_secs;
        config.moderation.reviewers = REVIEWERS
            .iter()
            .map(|(name, levels)| ReviewerConfig {
                name: name.to_string(),
                token: token(name),
                levels: levels.to_vec(),
            })
            .collect();
    })
    .await;
    (t, dir)
}

fn as_reviewer<T>(name: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {}", token(name)).parse().unwrap());
    request
}

fn key(id: &str) -> ReviewRequest {
    ReviewRequest { key: format!("511083.{id}.1"), reason: String::new() }
}

async fn queue(client: &mut ReviewServiceClient<Channel>) -> Vec<bashu_proto::moderation::v1::ReviewItem> {
    client.list_queue(as_reviewer("alice", ListQueueRequest::default())).await.unwrap().into_inner().items
}

async fn held(t: &TestSystem, client: &mut ReviewServiceClient<Channel>, id: &str) {
    t.post_story(&story_json(id, "511083", json!({"partners": true}))).await;
    eventually("the story is in the review queue", || {
        let mut client = client.clone();
        async move { queue(&mut client).await.iter().any(|i| i.key == format!("511083.{id}.1")) }
    })
    .await;
}

/// A refusal's gRPC code and the stable code in its `bashu-error-code` metadata.
fn refused(status: tonic::Status) -> (Code, String) {
    let code = status.metadata().get(bashu_proto::ERROR_CODE_METADATA).and_then(|v| v.to_str().ok());
    (status.code(), code.unwrap_or("(none)").to_owned())
}

#[tokio::test]
async fn three_levels_need_three_distinct_reviewers_each_with_the_role() {
    let (t, _dir) = system(600).await;
    let mut client = ReviewServiceClient::connect(t.grpc_endpoint()).await.unwrap();
    held(&t, &mut client, "policy-1").await;

    assert_eq!(
        refused(client.list_queue(ListQueueRequest::default()).await.unwrap_err()),
        (Code::Unauthenticated, "unauthenticated".into())
    );
    assert_eq!(
        refused(client.approve_story(as_reviewer("alice", key("policy-1"))).await.unwrap_err()),
        (Code::FailedPrecondition, "not_claimed".into()),
        "claim first"
    );
    assert_eq!(
        refused(client.claim_story(as_reviewer("bob", key("policy-1"))).await.unwrap_err()),
        (Code::PermissionDenied, "permission_denied".into()),
        "bob is no 初审 reviewer"
    );
    client.claim_story(as_reviewer("alice", key("policy-1"))).await.unwrap();
    let item = client.approve_story(as_reviewer("alice", key("policy-1"))).await.unwrap().into_inner();
    assert_eq!((item.approvals.len(), item.state()), (1, ReviewState::Pending));

    assert_eq!(
        client.claim_story(as_reviewer("alice", key("policy-1"))).await.unwrap_err().code(),
        Code::PermissionDenied,
        "alice has no 复审 role"
    );
    client.claim_story(as_reviewer("dave", key("policy-1"))).await.unwrap();
    client.approve_story(as_reviewer("dave", key("policy-1"))).await.unwrap();
    client.claim_story(as_reviewer("dave", key("policy-1"))).await.unwrap();
    let twice = client.approve_story(as_reviewer("dave", key("policy-1"))).await.unwrap_err();
    assert_eq!(
        refused(twice),
        (Code::FailedPrecondition, "same_reviewer".into()),
        "the same reviewer cannot approve twice"
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(t.published_count().await, 0, "not distributed after two approvals");
    assert!(!t.feed_counts().await.contains_key("500153"), "the partner has nothing yet");

    // dave's claim on level 3 is still live: carol waits for it or it is released by expiry; here
    // dave holds it, so carol is refused.
    assert_eq!(
        refused(client.claim_story(as_reviewer("carol", key("policy-1"))).await.unwrap_err()),
        (Code::FailedPrecondition, "claimed_by_another".into())
    );
}

#[tokio::test]
async fn a_lapsed_claim_returns_the_story_to_the_queue_and_the_third_approval_releases_it() {
    let (t, _dir) = system(1).await;
    let mut client = ReviewServiceClient::connect(t.grpc_endpoint()).await.unwrap();
    held(&t, &mut client, "policy-2").await;
    client.claim_story(as_reviewer("alice", key("policy-2"))).await.unwrap();
    assert_eq!(
        client.claim_story(as_reviewer("dave", key("policy-2"))).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    assert!(queue(&mut client).await[0].claim.is_none(), "the lapsed claim is gone");
    for reviewer in ["dave", "bob", "carol"] {
        client.claim_story(as_reviewer(reviewer, key("policy-2"))).await.unwrap();
        client.approve_story(as_reviewer(reviewer, key("policy-2"))).await.unwrap();
    }
    eventually("released after the third approval", || async { t.published_count().await == 1 }).await;
    assert_eq!(t.feed_counts().await.get("500153"), Some(&1));
    assert!(queue(&mut client).await.is_empty());
    let delivered = t.feed_of("500153").await;
    let record: Vec<(&str, u32)> = delivered[0].approvals.iter().map(|a| (a.reviewer.as_str(), a.level)).collect();
    assert_eq!(record, [("dave", 1), ("bob", 2), ("carol", 3)], "the review record travels with the story");

    let actions: Vec<(String, String, u32)> = t
        .bus
        .operations()
        .read_all::<ReviewRecorded>(STORIES, &t.bus.subjects().story_reviewed("511083").unwrap())
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.action, r.reviewer, r.level))
        .collect();
    let expected: Vec<(String, String, u32)> = [
        ("claim", "alice", 1),
        ("claim", "dave", 1),
        ("approve", "dave", 1),
        ("claim", "bob", 2),
        ("approve", "bob", 2),
        ("claim", "carol", 3),
        ("approve", "carol", 3),
    ]
    .iter()
    .map(|(a, r, l)| (a.to_string(), r.to_string(), *l))
    .collect();
    assert_eq!(actions, expected, "an audit event for every action, and nothing else");
    let decisions: Vec<ModerationDecision> =
        t.bus.operations().read_all(STORIES, &t.bus.subjects().all_story_decided()).await.unwrap();
    assert_eq!(decisions.iter().map(|d| d.verdict()).collect::<Vec<_>>(), [Verdict::Held, Verdict::Approved]);
    assert_eq!(decisions[1].decided_by, "dave, bob, carol");
    assert_eq!(decisions[1].rules.last().unwrap().evidence, "初审 dave, 复审 bob, 终审 carol");
}

#[tokio::test]
async fn a_rejection_reaches_the_origin_and_the_queue_survives_a_restart() {
    let (t, _dir) = system(600).await;
    let mut client = ReviewServiceClient::connect(t.grpc_endpoint()).await.unwrap();
    held(&t, &mut client, "policy-3").await;
    held(&t, &mut client, "policy-4").await;
    client.claim_story(as_reviewer("alice", key("policy-4"))).await.unwrap();

    // Everything stops, and starts again on the same bus.
    t.shutdown.cancel();
    assert!(t.system.stopped(Duration::from_secs(10)).await);
    let again = System::start(&t.config, &Target::ALL, CancellationToken::new()).await.unwrap();
    let mut client = ReviewServiceClient::connect(format!("http://{}", again.grpc_addr)).await.unwrap();
    let items = queue(&mut client).await;
    assert_eq!(items.len(), 2, "both held stories are still waiting");
    assert_eq!(items[1].claim.as_ref().map(|c| c.reviewer.as_str()), Some("alice"), "the claim is kept");

    let mut rejection = key("policy-4");
    rejection.reason = "来源不明，请补充原作者".into();
    let rejected = client.reject_story(as_reviewer("alice", rejection)).await.unwrap().into_inner();
    assert_eq!(rejected.state(), ReviewState::Rejected);
    let notices: Vec<DecisionNotice> = t
        .bus
        .operations()
        .read_all(bashu_bus::FEEDS, &t.bus.subjects().feed_decision("511083").unwrap())
        .await
        .unwrap();
    let last = notices.last().unwrap().decision.as_ref().unwrap();
    assert_eq!((last.verdict(), last.reason.as_str()), (Verdict::Rejected, "来源不明，请补充原作者"));
    assert_eq!(t.published_count().await, 0);

    // The operators' audit log names the reviewer of each action, with its level.
    use bashu_proto::admin::v1::{ListAuditEventsRequest, audit_service_client::AuditServiceClient};
    let channel =
        bashu_tests::bearer_channel(&format!("http://{}", again.grpc_addr), bashu_tests::OPERATOR_TOKEN).await.unwrap();
    let events = AuditServiceClient::new(channel)
        .list_audit_events(ListAuditEventsRequest { limit: 10 })
        .await
        .unwrap()
        .into_inner()
        .events;
    let reviews: Vec<(&str, &str, &str)> = events
        .iter()
        .filter(|e| e.method.starts_with("/bashu.moderation.v1.ReviewService/"))
        .map(|e| (e.actor.as_str(), e.method.rsplit('/').next().unwrap(), e.role.as_str()))
        .collect();
    // Newest first.
    assert_eq!(
        reviews,
        [("alice", "RejectStory", "STAFF_ROLE_REVIEWER"), ("alice", "ClaimStory", "STAFF_ROLE_REVIEWER")],
        "{events:?}"
    );
    let rejection = events.iter().find(|e| e.method.ends_with("/RejectStory")).unwrap();
    assert!(rejection.target.contains("policy-4") && rejection.target.contains("初审"), "{}", rejection.target);
    assert!(rejection.after_json.contains("来源不明"), "{}", rejection.after_json);
}

#[tokio::test]
async fn approving_a_story_that_expired_while_held_says_so_and_tells_the_origin() {
    let (t, _dir) = system(600).await;
    let mut client = ReviewServiceClient::connect(t.grpc_endpoint()).await.unwrap();
    let mut story = story_json("stale", "511083", json!({"partners": true}));
    let soon = std::time::SystemTime::now() + Duration::from_secs(2);
    story["expiresAt"] = serde_json::to_value(bashu_proto::time::from_system_time(soon)).unwrap();
    let (status, answer) = t.post_story(&story).await;
    assert_eq!(status, 202, "{answer}");
    eventually("the story is in the review queue", || {
        let mut client = client.clone();
        async move { queue(&mut client).await.iter().any(|i| i.key == "511083.stale.1") }
    })
    .await;
    client.claim_story(as_reviewer("alice", key("stale"))).await.unwrap();
    tokio::time::sleep_until(tokio::time::Instant::now() + Duration::from_secs(3)).await;

    let refused = client.approve_story(as_reviewer("alice", key("stale"))).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("expired at") && refused.message().contains("not delivered"),
        "{}",
        refused.message()
    );
    assert!(queue(&mut client).await.iter().all(|i| i.key != "511083.stale.1"), "it left the queue");
    eventually("the origin is told", || async {
        let notices: Vec<DecisionNotice> = t
            .bus
            .operations()
            .read_all(bashu_bus::FEEDS, &t.bus.subjects().feed_decision("511083").unwrap())
            .await
            .unwrap_or_default();
        notices.iter().any(|n| {
            n.decision.as_ref().is_some_and(|d| d.verdict() == Verdict::Rejected && d.reason.contains("expired at"))
        })
    })
    .await;
    assert_eq!(t.published_count().await, 0, "nothing was delivered");
}
