//! Moderation's automatic rules on the running system: decisions with every rule's outcome, and
//! the origin county told when its story is held or rejected.

use bashu::Target;
use bashu_bus::{FEEDS, STORIES};
use bashu_proto::story::v1::{DecisionNotice, ModerationDecision, Verdict};
use bashu_tests::{TestSystem, eventually, story_json};
use serde_json::json;

const BODY: &str = "隆昌市与荣昌区的记者沿着省界同行采访，记录川南渝西石板河畔的跨省夜市。两地融媒体中心首次联合采制，同一条新闻两地同步发布。夜市从傍晚六点开到凌晨，摊主来自两省十几个乡镇，卖的是石盘鱼、羊肉汤和夏布小物件。";

#[tokio::test]
async fn rules_reject_hidden_terms_hold_near_duplicates_and_tell_the_origin() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.json");
    std::fs::write(
        &rules,
        json!({"lexicon": [{"term": "法轮", "action": "reject", "category": "banned"}, {"term": "代开发票", "action": "hold", "category": "fraud"}]})
            .to_string(),
    )
    .unwrap();
    let t =
        TestSystem::start_configured(&Target::ALL, |config| config.moderation.rules_file = Some(rules.clone())).await;

    let mut clean = story_json("clean", "511083", json!({"partners": true}));
    clean["body"] = json!(BODY);
    t.post_story(&clean).await;
    let mut banned = story_json("banned", "511083", json!({"partners": true}));
    banned["body"] = json!("正文里藏着 法 · 輪 二字");
    t.post_story(&banned).await;
    // 荣昌区 resubmits 隆昌市's story under its own name, with a new headline.
    let mut copy = story_json("copy", "500153", json!({"partners": true}));
    copy["body"] = json!(BODY);
    t.post_story(&copy).await;

    let decided = || async {
        t.bus.operations().read_all::<ModerationDecision>(STORIES, &t.bus.subjects().all_story_decided()).await.unwrap()
    };
    eventually("three decisions", || async { decided().await.len() == 3 }).await;
    let decisions = decided().await;
    let verdict = |id: &str| decisions.iter().find(|d| d.story.as_ref().unwrap().id == id).unwrap();
    assert_eq!(verdict("clean").verdict(), Verdict::Approved);
    assert_eq!(verdict("banned").verdict(), Verdict::Rejected);
    assert_eq!(verdict("copy").verdict(), Verdict::Held);
    assert!(
        decisions.iter().all(|d| d.rules.len() == 6 && d.decided_by == "rules"),
        "every rule's outcome is recorded"
    );
    let lexicon = &verdict("banned").rules[0];
    assert_eq!(
        (lexicon.rule.as_str(), lexicon.fired, lexicon.evidence.as_str()),
        ("lexicon", true, "\"法轮\" (banned) in body at 6")
    );
    assert!(verdict("copy").reason.contains("near-duplicate of 511083/clean"), "{}", verdict("copy").reason);

    eventually("the clean story is published", || async { t.published_count().await == 1 }).await;
    assert_eq!(t.feed_counts().await.get("500153"), Some(&2), "the clean story, and 荣昌区's own notice");
    let notices = |county: &'static str| {
        let bus = t.bus.clone();
        async move {
            bus.operations()
                .read_all::<DecisionNotice>(FEEDS, &bus.subjects().feed_decision(county).unwrap())
                .await
                .unwrap()
        }
    };
    let longchang = notices("511083").await;
    assert_eq!(longchang.len(), 1);
    assert_eq!(longchang[0].decision.as_ref().unwrap().verdict(), Verdict::Rejected);
    let rongchang = notices("500153").await;
    assert_eq!(rongchang[0].decision.as_ref().unwrap().verdict(), Verdict::Held);

    // And the same answers through ingest's status, for a county's CMS.
    eventually("ingest knows every decision", || async {
        t.get("/v1/stories/500153/copy/1").await.1["status"] == "held"
    })
    .await;
    let (status, banned) = t.get("/v1/stories/511028/banned/1").await;
    assert_eq!((status, banned["status"].as_str()), (200, Some("rejected")), "{banned}");
    assert!(banned["reason"].as_str().unwrap().contains("法轮"));
    assert_eq!(t.get("/v1/stories/511083/clean/1").await.1["status"], "approved");
    assert_eq!(t.get("/v1/stories/511083/never-sent/1").await.0, 404);

    // Another county asking, with a plain HTTP client: an existing story of 511083 and one never
    // submitted get the same answer, so the status tells it nothing.
    let as_rongchang = |path: &'static str| {
        let (base, token) = (t.http_base(), t.token_for("500153"));
        async move {
            let response = reqwest::Client::new()
                .get(format!("{base}{path}"))
                .header("authorization", format!("Bearer {}", token.await))
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let existing = as_rongchang("/v1/stories/511083/clean/1").await;
    assert_eq!(existing.0, 404, "{}", existing.1);
    assert_eq!(existing, as_rongchang("/v1/stories/511083/never-sent/1").await);
}

#[tokio::test]
async fn operators_change_the_rules_without_a_restart() {
    use bashu_proto::admin::v1::{
        GetModerationRulesRequest, ModerationRules, moderation_rules_service_client::ModerationRulesServiceClient,
    };
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.json");
    std::fs::write(&rules, json!({"lexicon": [{"term": "法轮", "action": "reject"}]}).to_string()).unwrap();
    let t =
        TestSystem::start_configured(&Target::ALL, |config| config.moderation.rules_file = Some(rules.clone())).await;
    let mut admin = ModerationRulesServiceClient::connect(t.grpc_endpoint()).await.unwrap();
    fn operator<T>(message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {}", bashu_tests::OPERATOR_TOKEN).parse().unwrap());
        request
    }
    let current = admin.get_moderation_rules(operator(GetModerationRulesRequest {})).await.unwrap().into_inner();
    assert!(current.json.contains("法轮"), "the file seeded the rules in force");
    // What is in force shows the defaults the stored rules leave out: near-duplicates are held.
    let effective: serde_json::Value = serde_json::from_str(&current.effective_json).unwrap();
    assert_eq!(effective["near_duplicate"], json!({"max_distance": 8, "window_hours": 72, "action": "hold"}));
    assert_eq!(effective["lexicon"][0]["term"], "法轮");

    let new_rules = json!({"lexicon": [{"term": "法轮", "action": "reject"}, {"term": "赌场", "action": "reject", "category": "gambling"}]}).to_string();
    assert_eq!(
        admin
            .set_moderation_rules(ModerationRules { json: new_rules.clone(), ..Default::default() })
            .await
            .unwrap_err()
            .code(),
        tonic::Code::Unauthenticated
    );
    let invalid = admin
        .set_moderation_rules(operator(ModerationRules {
            json: r#"{"lexicon": [{"term": "x", "action": "ban"}]}"#.into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), tonic::Code::InvalidArgument, "{}", invalid.message());
    admin.set_moderation_rules(operator(ModerationRules { json: new_rules, ..Default::default() })).await.unwrap();

    // Moderation follows the stored rules without a restart: once its watch brings them (a moment,
    // however long a loaded machine takes), a story meets them. Each try is a new story, decided
    // before the next is sent.
    let decided = |id: String| {
        let t = &t;
        async move {
            for _ in 0..600 {
                let decisions = t
                    .bus
                    .operations()
                    .read_all::<ModerationDecision>(STORIES, &t.bus.subjects().all_story_decided())
                    .await
                    .unwrap();
                if let Some(decision) = decisions.into_iter().find(|d| d.story.as_ref().is_some_and(|s| s.id == id)) {
                    return decision;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            panic!("story {id} was never decided");
        }
    };
    let mut attempt = 0;
    let decision = loop {
        let id = format!("casino-{attempt}");
        let mut story = story_json(&id, "511083", json!({"partners": true}));
        story["body"] = json!(format!("新开的 赌 场 广告 {id}"));
        assert_eq!(t.post_story(&story).await.0, 202);
        let decision = decided(id).await;
        if decision.verdict() == Verdict::Rejected {
            break decision;
        }
        attempt += 1;
        assert!(attempt < 100, "moderation never took up the new rules");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(decision.verdict(), Verdict::Rejected);
    assert!(decision.rules.iter().any(|r| r.evidence.contains("赌场")), "{:?}", decision.rules);
}
