//! Joint coverage (协同报道) as counties use it, over plain HTTP exactly as docs/coverage.md says
//! (a bearer token, JSON in the proto3 mapping), the docs' worked example end to end; and as an
//! adversary: another county, a staff member, a malformed plan, a race for the same phase.

use std::time::Duration;

use bashu::{Config, Target};
use bashu_proto::{
    coverage::v1::{
        GetPlanRequest, PlanEvent, ProposePlanRequest, SettleRequest, coverage_service_client::CoverageServiceClient,
        plan_event::Change,
    },
    registry::v1::StaffRole,
    story::v1::StoryUse,
};
use bashu_tests::{TestSystem, eventually};
use prost::Message as _;
use serde_json::{Value, json};

const YONGCHUAN: &str = "500118";
const JIANGJIN: &str = "500116";
const LUXIAN: &str = "510521";
const XUZHOU: &str = "511504";
const RONGCHANG: &str = "500153";

pub(crate) fn fast_coverage(config: &mut Config) {
    config.coverage.consumer = config.moderation.consumer.clone();
    config.coverage.flag_interval_ms = 200;
    config.coverage.due_soon_warning_ms = 3_000;
}

async fn start() -> TestSystem {
    TestSystem::start_configured(
        &[Target::Ingest, Target::Moderation, Target::Distribution, Target::Coverage, Target::Admin],
        fast_coverage,
    )
    .await
}

/// `method` on a coverage path as `county` (or with a raw `authorization`); status and JSON.
async fn call(
    t: &TestSystem,
    method: reqwest::Method,
    path: &str,
    authorization: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, format!("{}{path}", t.http_base()));
    if !authorization.is_empty() {
        request = request.header("authorization", authorization);
    }
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body.to_string());
    }
    let response = request.send().await.expect("bashu answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn post_as(t: &TestSystem, county: &str, path: &str, body: Value) -> (u16, Value) {
    let bearer = format!("Bearer {}", t.token_for(county).await);
    call(t, reqwest::Method::POST, path, &bearer, Some(body)).await
}

pub(crate) async fn get_as(t: &TestSystem, county: &str, path: &str) -> (u16, Value) {
    let bearer = format!("Bearer {}", t.token_for(county).await);
    call(t, reqwest::Method::GET, path, &bearer, None).await
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339).unwrap()
}

/// The railway plan of docs/coverage.md, its phases due at `due`.
pub(crate) fn railway_plan(id: &str, due: time::OffsetDateTime) -> Value {
    let now = time::OffsetDateTime::now_utc();
    let phase = |name: &str, title: &str, kinds: &[&str]| json!({"name": name, "title": title, "dueAt": rfc3339(due), "kinds": kinds});
    json!({
        "planId": id,
        "topic": "渝昆高铁川渝段开通",
        "description": "沿线区县联合报道：前方体验、专家解读、影响评估。",
        "category": "CATEGORY_MAJOR_PROJECT",
        "windowStart": rfc3339(now - time::Duration::hours(1)),
        "windowEnd": rfc3339(now + time::Duration::days(3)),
        "phases": [
            phase("experience", "前方体验采访", &["CONTRIBUTION_KIND_TEXT", "CONTRIBUTION_KIND_VIDEO", "CONTRIBUTION_KIND_LIVE"]),
            phase("expert", "中期专家解读", &["CONTRIBUTION_KIND_TEXT"]),
            phase("impact", "后期影响评估", &["CONTRIBUTION_KIND_TEXT"]),
        ],
        "invitees": {"counties": [JIANGJIN, LUXIAN, XUZHOU]},
        "weights": {
            "proposerSharePercent": 10,
            "phaseSharePercent": {"experience": 40, "expert": 30, "impact": 20},
            "kindPoints": {"text": 10, "video": 20, "live": 30},
            "onTimeBonusPercent": 20,
            "reusePoints": 2
        }
    })
}

/// A body no other test story is near: moderation holds near-duplicates of other counties'
/// stories, and these are all about one railway.
fn distinct_body(headline: &str, id: &str) -> String {
    const WORDS: [&str; 16] = [
        "站台",
        "客流",
        "票价",
        "隧道",
        "桥梁",
        "沿线",
        "乡镇",
        "物流",
        "旅游",
        "通勤",
        "学生",
        "农产品",
        "工地",
        "夜班",
        "列车长",
        "调度",
    ];
    let mut seed = id.bytes().fold(1469598103934665603u64, |h, b| (h ^ u64::from(b)).wrapping_mul(1099511628211));
    let mut body = format!("{headline}。");
    for _ in 0..40 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        body.push_str(WORDS[(seed >> 60) as usize]);
    }
    body
}

/// A story of `origin` for `plan`'s `phase`, as a county's CMS sends it to `POST /v1/stories`.
pub(crate) fn contribution(origin: &str, id: &str, plan: &str, phase: &str, kind: &str, headline: &str) -> Value {
    json!({
        "id": id,
        "version": 1,
        "originCounty": origin,
        "headline": headline,
        "body": distinct_body(headline, id),
        "category": "CATEGORY_MAJOR_PROJECT",
        "sharing": {"counties": [YONGCHUAN, JIANGJIN, LUXIAN, XUZHOU]},
        "coverage": {"planId": plan, "phase": phase, "kind": kind}
    })
}

pub(crate) async fn submit(t: &TestSystem, story: &Value) {
    let origin = story["originCounty"].as_str().unwrap();
    let (status, answer) = post_as(t, origin, "/v1/stories", story.clone()).await;
    assert_eq!(status, 202, "{answer}");
}

/// A reuse note as a county publishes it: raw protobuf on its own `bashu.story.used.<county>`.
async fn used(t: &TestSystem, county: &str, origin: &str, story: &str) {
    let note = StoryUse {
        story_id: story.into(),
        version: 1,
        county: county.into(),
        origin_county: origin.into(),
        ..Default::default()
    };
    let js = async_nats::jetstream::new(async_nats::connect(t.nats.url()).await.unwrap());
    let subject = format!("{}.bashu.story.used.{county}", t.config.nats.prefix);
    js.publish(subject, note.encode_to_vec().into()).await.unwrap().await.expect("stored");
}

/// The chain's items of a plan as `county` reads it: (phase, story, approved version, used by).
async fn chain(t: &TestSystem, county: &str, plan: &str) -> Vec<(String, String, u64, usize)> {
    chain_at(t, &t.http_base(), county, plan).await
}

/// [`chain`] from the coverage service at `base`.
async fn chain_at(t: &TestSystem, base: &str, county: &str, plan: &str) -> Vec<(String, String, u64, usize)> {
    let response = reqwest::Client::new()
        .get(format!("{base}/v1/coverage/plans/{plan}"))
        .bearer_auth(t.token_for(county).await)
        .send()
        .await
        .expect("coverage answers");
    let status = response.status().as_u16();
    let view: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 200, "{view}");
    let mut items = Vec::new();
    for phase in view["chain"].as_array().unwrap() {
        for item in phase["items"].as_array().unwrap() {
            items.push((
                phase["phase"]["name"].as_str().unwrap().to_owned(),
                item["storyId"].as_str().unwrap().to_owned(),
                item["approvedVersion"].as_u64().unwrap(),
                item["usedBy"].as_array().unwrap().len(),
            ));
        }
    }
    items.sort();
    items
}

#[tokio::test]
async fn the_railway_plan_from_proposal_to_settlement_gives_the_worked_examples_numbers() {
    // On the heap: the whole walk is one large future, more than a test thread's stack holds.
    Box::pin(the_railway_plan()).await;
}

async fn the_railway_plan() {
    let t = start().await;
    let plan = "yukun-rail";
    let due = time::OffsetDateTime::now_utc() + time::Duration::seconds(8);
    let proposal = railway_plan(plan, due);
    let (status, view) = post_as(&t, YONGCHUAN, "/v1/coverage/plans", proposal.clone()).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["plan"]["state"], "PLAN_STATE_PROPOSED");
    assert_eq!(view["plan"]["participants"].as_array().unwrap().len(), 4);
    // The same proposal again (a retry) answers the stored plan.
    assert_eq!(post_as(&t, YONGCHUAN, "/v1/coverage/plans", proposal).await.0, 200);

    for county in [JIANGJIN, LUXIAN, XUZHOU] {
        let (status, view) =
            post_as(&t, county, &format!("/v1/coverage/plans/{plan}/answer"), json!({"answer": "accepted"})).await;
        assert_eq!(status, 200, "{view}");
    }
    for (county, phase) in [(YONGCHUAN, "experience"), (LUXIAN, "expert"), (XUZHOU, "impact")] {
        let (status, view) =
            post_as(&t, county, &format!("/v1/coverage/plans/{plan}/phases/{phase}/claim"), json!({})).await;
        assert_eq!(status, 200, "{view}");
    }
    let (status, view) =
        post_as(&t, YONGCHUAN, &format!("/v1/coverage/plans/{plan}/state"), json!({"state": "active"})).await;
    assert_eq!((status, view["plan"]["state"].as_str()), (200, Some("PLAN_STATE_ACTIVE")), "{view}");

    // On time: before the phases are due.
    submit(
        &t,
        &contribution(YONGCHUAN, "yc-ride", plan, "experience", "CONTRIBUTION_KIND_VIDEO", "记者乘首班车体验渝昆高铁"),
    )
    .await;
    submit(&t, &contribution(LUXIAN, "lx-station", plan, "experience", "CONTRIBUTION_KIND_TEXT", "泸县站开通首日客流"))
        .await;
    submit(
        &t,
        &contribution(LUXIAN, "lx-expert", plan, "expert", "CONTRIBUTION_KIND_TEXT", "专家解读高铁对川南的意义"),
    )
    .await;
    submit(&t, &contribution(JIANGJIN, "jj-expert", plan, "expert", "CONTRIBUTION_KIND_TEXT", "江津专家谈沿线产业"))
        .await;
    eventually("the on-time stories are approved into the chain", || async {
        chain(&t, XUZHOU, plan).await.iter().filter(|(_, _, approved, _)| *approved == 1).count() == 4
    })
    .await;
    // Jiangjin withdraws its expert story: a correction that cancels it.
    let mut kill =
        contribution(JIANGJIN, "jj-expert", plan, "expert", "CONTRIBUTION_KIND_TEXT", "江津专家谈沿线产业（撤稿）");
    kill["version"] = json!(2);
    kill["status"] = "PUBLICATION_STATUS_CANCELED".into();
    submit(&t, &kill).await;

    // The impact phase has nothing: its owner is warned before it is late, then it is late.
    let wait = (due - time::OffsetDateTime::now_utc()).unsigned_abs() + Duration::from_millis(300);
    tokio::time::sleep(wait).await;
    submit(
        &t,
        &contribution(JIANGJIN, "jj-live", plan, "experience", "CONTRIBUTION_KIND_LIVE", "江津站直播：首班车进站"),
    )
    .await;
    submit(
        &t,
        &contribution(XUZHOU, "xz-impact", plan, "impact", "CONTRIBUTION_KIND_TEXT", "渝昆高铁对叙州经济的影响"),
    )
    .await;
    used(&t, JIANGJIN, YONGCHUAN, "yc-ride").await;
    used(&t, YONGCHUAN, LUXIAN, "lx-expert").await;
    used(&t, XUZHOU, LUXIAN, "lx-expert").await;
    eventually("every contribution and reuse is recorded", || async {
        chain(&t, YONGCHUAN, plan).await
            == [
                ("experience".into(), "jj-live".into(), 1, 0),
                ("experience".into(), "lx-station".into(), 1, 0),
                ("experience".into(), "yc-ride".into(), 1, 1),
                ("expert".into(), "jj-expert".into(), 2, 0),
                ("expert".into(), "lx-expert".into(), 1, 2),
                ("impact".into(), "xz-impact".into(), 1, 0),
            ]
    })
    .await;
    // 荣昌 was never given yc-ride, yet says it used it: the note is recorded and counts for
    // nothing (not in the chain, not in the settlement below).
    used(&t, RONGCHANG, YONGCHUAN, "yc-ride").await;
    let store = bashu_coverage_core::PlanStore::open(&t.bus).await.unwrap();
    eventually("the stranger's note reached the ledger", || async {
        store
            .contributions(plan)
            .await
            .unwrap()
            .iter()
            .any(|c| c.story_id == "yc-ride" && c.used_by.contains_key(RONGCHANG))
    })
    .await;
    let yc_ride = chain(&t, YONGCHUAN, plan).await.into_iter().find(|(_, story, _, _)| story == "yc-ride").unwrap();
    assert_eq!(yc_ride.3, 1, "only 江津, which was given it, counts as reusing it");

    let flags = || async {
        let events: Vec<PlanEvent> =
            t.bus.operations().read_all(bashu_bus::COVERAGE, &t.bus.subjects().all_coverage()).await.unwrap();
        let flags: Vec<(String, i32, String)> = events
            .iter()
            .filter_map(|e| match &e.change {
                Some(Change::PhaseFlagged(f)) => Some((f.phase.clone(), f.flag, f.owner.clone())),
                _ => None,
            })
            .collect();
        (events, flags)
    };
    // Due soon (1), then late (2): a delivery after the due time does not undo the lateness.
    let expected = vec![("impact".to_owned(), 1, XUZHOU.to_owned()), ("impact".to_owned(), 2, XUZHOU.to_owned())];
    eventually("the impact phase is flagged due soon, then late", || async { flags().await.1 == expected }).await;
    let (events, _) = flags().await;
    // 叙州, the impact phase's lead, was told on its own channel consumer, twice.
    let notices = Box::pin(notices_until(&t, XUZHOU, 2)).await;
    let told: Vec<(String, String, i32)> =
        notices.iter().map(|n| (n.county.clone(), n.topic.clone(), n.flagged.as_ref().map_or(0, |f| f.flag))).collect();
    assert_eq!(
        told,
        [(XUZHOU.into(), "渝昆高铁川渝段开通".into(), 1), (XUZHOU.into(), "渝昆高铁川渝段开通".into(), 2)],
        "due soon, then late"
    );
    let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=events.len() as u64).collect::<Vec<_>>(), "every change once, in order");

    // Settling is refused until the proposer closes the plan.
    let settlement_path = format!("/v1/coverage/plans/{plan}/settlement?pool=100000");
    let (status, refused) = get_as(&t, LUXIAN, &settlement_path).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("plan_open")), "{refused}");
    let (status, _) =
        post_as(&t, YONGCHUAN, &format!("/v1/coverage/plans/{plan}/state"), json!({"state": "closed"})).await;
    assert_eq!(status, 200);
    let (status, settlement) = get_as(&t, LUXIAN, &settlement_path).await;
    assert_eq!(status, 200, "{settlement}");
    let amounts: Vec<(&str, &str)> = settlement["shares"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["county"].as_str().unwrap(), s["amountHundredths"].as_str().unwrap()))
        .collect();
    // docs/coverage.md, "A worked example".
    assert_eq!(amounts, [(LUXIAN, "3705882"), (YONGCHUAN, "2529412"), (XUZHOU, "2000000"), (JIANGJIN, "1764706")]);

    // The same through gRPC with a viewer's token, and as CSV.
    let (_, viewer) = t.issue_staff_token("谢敏", StaffRole::Viewer, vec![], "").await;
    let mut grpc = CoverageServiceClient::new(t.staff_channel(&viewer).await);
    let settled = grpc.settle(SettleRequest { plan_id: plan.into(), pool: 100_000 }).await.unwrap().into_inner();
    assert_eq!(settled.shares.iter().map(|s| s.amount_hundredths).sum::<u64>(), 10_000_000);
    let csv = reqwest::Client::new()
        .get(format!("{}{settlement_path}&format=csv", t.http_base()))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.contains("510521,37058.82,0.00"), "{csv}");
    assert!(csv.contains("used:500118:510521.lx-expert"), "every amount traced to its events: {csv}");
}

#[tokio::test]
async fn stories_counties_and_staff_may_not_do_what_is_not_theirs_and_bad_input_changes_nothing() {
    // On the heap: one large future, more than a test thread's stack holds in a debug build.
    Box::pin(refusals()).await;
}

async fn refusals() {
    let t = start().await;
    let plan = "yukun-refusals";
    let due = time::OffsetDateTime::now_utc() + time::Duration::hours(5);
    assert_eq!(post_as(&t, YONGCHUAN, "/v1/coverage/plans", railway_plan(plan, due)).await.0, 200);
    let path = |rest: &str| format!("/v1/coverage/plans/{plan}{rest}");

    // A story for a plan that is not active, one its county has not joined, an unknown phase, a
    // kind the phase does not expect, an unknown plan: refused, the field named.
    let (status, answer) = post_as(
        &t,
        YONGCHUAN,
        "/v1/stories",
        contribution(YONGCHUAN, "s-1", plan, "experience", "CONTRIBUTION_KIND_TEXT", "标题"),
    )
    .await;
    assert_eq!((status, answer["error"]["fields"][0]["field"].as_str()), (400, Some("coverage.planId")), "{answer}");
    assert!(answer["error"]["fields"][0]["reason"].as_str().unwrap().contains("proposed"), "{answer}");
    assert_eq!(post_as(&t, YONGCHUAN, &path("/state"), json!({"state": "active"})).await.0, 200);
    let cases = [
        (LUXIAN, plan, "experience", "CONTRIBUTION_KIND_TEXT", "coverage.planId", "has not joined"),
        (RONGCHANG, plan, "experience", "CONTRIBUTION_KIND_TEXT", "coverage.planId", "has not joined"),
        (YONGCHUAN, plan, "opening", "CONTRIBUTION_KIND_TEXT", "coverage.phase", "no phase"),
        (YONGCHUAN, plan, "expert", "CONTRIBUTION_KIND_VIDEO", "coverage.kind", "expects"),
        (YONGCHUAN, "no-such-plan", "expert", "CONTRIBUTION_KIND_TEXT", "coverage.planId", "no coverage plan"),
        (YONGCHUAN, "Bad Plan!", "expert", "CONTRIBUTION_KIND_TEXT", "coverage.planId", "a-z"),
    ];
    for (county, plan, phase, kind, field, reason) in cases {
        let (status, answer) =
            post_as(&t, county, "/v1/stories", contribution(county, "s-1", plan, phase, kind, "标题")).await;
        assert_eq!(status, 400, "{county} {plan} {phase}: {answer}");
        assert_eq!(answer["error"]["fields"][0]["field"], field, "{answer}");
        assert!(answer["error"]["fields"][0]["reason"].as_str().unwrap().contains(reason), "{answer}");
    }
    assert_eq!(t.submitted_count().await, 0, "nothing refused reached the bus");

    let (_, before) = get_as(&t, YONGCHUAN, &path("")).await;
    // A county not invited sees nothing; an invitee may not act before accepting; only the
    // proposer changes the state or assigns; weights must add up; nobody answers for another
    // county (no field names the acting county: the token does).
    let (status, answer) = get_as(&t, RONGCHANG, &path("")).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (404, Some("not_found")));
    let (status, answer) = post_as(&t, RONGCHANG, &path("/answer"), json!({"answer": "accepted"})).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (404, Some("not_found")));
    let (status, answer) = post_as(&t, LUXIAN, &path("/phases/expert/claim"), json!({})).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (409, Some("not_participant")));
    let (status, answer) =
        post_as(&t, JIANGJIN, &path("/answer"), json!({"answer": "accepted", "county": LUXIAN})).await;
    assert_eq!((status, answer["error"]["fields"][0]["field"].as_str()), (400, Some("county")), "{answer}");
    assert_eq!(post_as(&t, JIANGJIN, &path("/answer"), json!({"answer": "accepted"})).await.0, 200);
    let (status, answer) = post_as(&t, JIANGJIN, &path("/state"), json!({"state": "closed"})).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (403, Some("forbidden")));
    let (status, answer) = post_as(&t, JIANGJIN, &path("/phases/expert/claim"), json!({"assignTo": YONGCHUAN})).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (403, Some("forbidden")));
    let mut weights = railway_plan(plan, due)["weights"].clone();
    weights["phaseSharePercent"]["impact"] = json!(30);
    let (status, answer) = post_as(&t, JIANGJIN, &path("/weights"), weights).await;
    assert_eq!((status, answer["error"]["fields"][0]["field"].as_str()), (400, Some("weights.phaseSharePercent")));
    assert!(answer["error"]["message"].as_str().unwrap().contains("add up to 110"), "{answer}");
    for (body, field) in [(json!({"answer": "maybe"}), "answer"), (json!("accepted"), "body"), (json!({}), "answer")] {
        let (status, answer) = post_as(&t, JIANGJIN, &path("/answer"), body).await;
        assert_eq!((status, answer["error"]["fields"][0]["field"].as_str()), (400, Some(field)), "{answer}");
    }
    let (status, answer) = call(&t, reqwest::Method::GET, &path(""), "", None).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("unauthenticated")));
    let (status, _) = call(&t, reqwest::Method::GET, &path(""), "Bearer not-a-token", None).await;
    assert_eq!(status, 401);
    let (status, answer) = get_as(&t, JIANGJIN, &path("/settlement?pool=0")).await;
    assert_eq!((status, answer["error"]["fields"][0]["field"].as_str()), (400, Some("pool")));
    let (status, answer) = get_as(&t, JIANGJIN, &path("/settlement?pool=-100")).await;
    assert_eq!((status, answer["error"]["fields"][0]["field"].as_str()), (400, Some("pool")));

    // A malformed plan: its field named.
    let mut bad = railway_plan("yukun-bad", due);
    bad["phases"][1]["dueAt"] = json!(rfc3339(due - time::Duration::hours(1)));
    let (status, answer) = post_as(&t, YONGCHUAN, "/v1/coverage/plans", bad).await;
    assert_eq!((status, answer["error"]["fields"][0]["field"].as_str()), (400, Some("phases[1].dueAt")), "{answer}");
    let mut bad = railway_plan("yukun-bad", due);
    bad["invitees"] = json!({"provinces": ["52"]});
    let (status, answer) = post_as(&t, YONGCHUAN, "/v1/coverage/plans", bad).await;
    assert_eq!((status, answer["error"]["fields"][0]["field"].as_str()), (400, Some("invitees.provinces[0]")));
    // Someone else's plan id.
    let (status, answer) = post_as(&t, LUXIAN, "/v1/coverage/plans", railway_plan(plan, due)).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (409, Some("plan_exists")));
    Box::pin(times_out_of_range_are_refused(&t, due)).await;

    // Staff: a viewer reads, changes nothing; a reviewer is not for coverage at all (gRPC).
    let (_, viewer) = t.issue_staff_token("谢敏", StaffRole::Viewer, vec![], "").await;
    let (status, answer) =
        call(&t, reqwest::Method::POST, &path("/state"), &format!("Bearer {viewer}"), Some(json!({"state": "closed"})))
            .await;
    assert_eq!((status, answer["error"]["code"].as_str()), (403, Some("forbidden")));
    let (_, reviewer) = t.issue_staff_token("王审", StaffRole::Reviewer, vec![1], "").await;
    let mut grpc = CoverageServiceClient::new(t.staff_channel(&reviewer).await);
    let refused = grpc.get_plan(GetPlanRequest { plan_id: plan.into() }).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    // Over gRPC a county's token acts as that county too: the plan for an invitee, nothing for
    // another county.
    let channel = tonic::transport::Channel::from_shared(t.grpc_endpoint()).unwrap().connect().await.unwrap();
    let mut as_county = CoverageServiceClient::new(channel);
    let invited = t.as_county(JIANGJIN, GetPlanRequest { plan_id: plan.into() }).await;
    let view = as_county.get_plan(invited).await.expect("an invitee reads the plan").into_inner();
    assert_eq!(view.plan.unwrap().id, plan);
    let stranger = t.as_county(RONGCHANG, GetPlanRequest { plan_id: plan.into() }).await;
    assert_eq!(as_county.get_plan(stranger).await.unwrap_err().code(), tonic::Code::NotFound);
    let mut grpc = CoverageServiceClient::new(t.staff_channel(&viewer).await);
    let refused =
        grpc.propose_plan(ProposePlanRequest { plan_id: "by-staff".into(), ..Default::default() }).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    assert_eq!(refused.metadata().get(bashu_proto::ERROR_CODE_METADATA).unwrap(), "forbidden");

    // What the refusals left: only Jiangjin's own acceptance changed the plan.
    let (_, after) = get_as(&t, YONGCHUAN, &path("")).await;
    let sequence = |view: &Value| view["plan"]["sequence"].as_str().unwrap().parse::<u64>().unwrap();
    assert_eq!(sequence(&after), sequence(&before) + 1);
    assert_eq!(after["plan"]["weights"], before["plan"]["weights"]);
}

/// A plan whose times are out of range, over HTTP and over gRPC (where a client can send times
/// JSON could never spell): refused by field, nothing stored.
async fn times_out_of_range_are_refused(t: &TestSystem, due: time::OffsetDateTime) {
    // A window longer than a year.
    let mut bad = railway_plan("yukun-bad", due);
    bad["windowEnd"] = json!(rfc3339(time::OffsetDateTime::now_utc() + time::Duration::days(400)));
    let (status, answer) = post_as(t, YONGCHUAN, "/v1/coverage/plans", bad).await;
    assert_eq!((status, answer["error"]["fields"][0]["field"].as_str()), (400, Some("windowEnd")), "{answer}");
    // Over gRPC, times JSON could never spell: refused by name, nothing stored.
    let channel = tonic::transport::Channel::from_shared(t.grpc_endpoint()).unwrap().connect().await.unwrap();
    let mut as_county = CoverageServiceClient::new(channel);
    let grpc_plan = || serde_json::from_value::<ProposePlanRequest>(railway_plan("yukun-bad", due)).unwrap();
    let mut far = grpc_plan();
    far.window_start.as_mut().unwrap().seconds = i64::MIN;
    let mut torn = grpc_plan();
    torn.phases[2].due_at.as_mut().unwrap().nanos = -1;
    for (request, field) in [(far, "windowStart"), (torn, "phases[2].dueAt")] {
        let refused = as_county.propose_plan(t.as_county(YONGCHUAN, request).await).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
        assert!(refused.message().starts_with(field), "{field}: {}", refused.message());
    }
    assert_eq!(get_as(t, YONGCHUAN, "/v1/coverage/plans/yukun-bad").await.0, 404, "nothing was stored");
}

#[tokio::test]
async fn a_county_may_have_only_so_many_open_plans_and_closing_one_makes_room() {
    let t = start().await;
    let due = time::OffsetDateTime::now_utc() + time::Duration::hours(5);
    let limit = bashu_coverage_core::MAX_OPEN_PLANS_PER_PROPOSER;
    let first = railway_plan("q-0", due);
    assert_eq!(post_as(&t, YONGCHUAN, "/v1/coverage/plans", first.clone()).await.0, 200);
    for i in 1..limit {
        let (status, answer) = post_as(&t, YONGCHUAN, "/v1/coverage/plans", railway_plan(&format!("q-{i}"), due)).await;
        assert_eq!(status, 200, "{answer}");
    }
    let (status, answer) = post_as(&t, YONGCHUAN, "/v1/coverage/plans", railway_plan("q-more", due)).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (409, Some("too_many_open_plans")), "{answer}");
    let channel = tonic::transport::Channel::from_shared(t.grpc_endpoint()).unwrap().connect().await.unwrap();
    let request = serde_json::from_value::<ProposePlanRequest>(railway_plan("q-grpc", due)).unwrap();
    let refused =
        CoverageServiceClient::new(channel).propose_plan(t.as_county(YONGCHUAN, request).await).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted, "{refused:?}");
    // Another county is not held back by Yongchuan's plans; a resend of an open plan still answers.
    assert_eq!(post_as(&t, LUXIAN, "/v1/coverage/plans", railway_plan("luxian-own", due)).await.0, 200);
    assert_eq!(post_as(&t, YONGCHUAN, "/v1/coverage/plans", first).await.0, 200);
    let (status, answer) = post_as(&t, YONGCHUAN, "/v1/coverage/plans/q-0/state", json!({"state": "cancelled"})).await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = post_as(&t, YONGCHUAN, "/v1/coverage/plans", railway_plan("q-more", due)).await;
    assert_eq!(status, 200, "a cancelled plan makes room: {answer}");
}

#[tokio::test]
async fn two_counties_claiming_one_phase_at_once_on_two_replicas_one_wins_and_the_other_is_told() {
    let t = start().await;
    let (second, shutdown) = t.start_beside(&[Target::Coverage]).await;
    let plan = "yukun-race";
    let due = time::OffsetDateTime::now_utc() + time::Duration::hours(5);
    assert_eq!(post_as(&t, YONGCHUAN, "/v1/coverage/plans", railway_plan(plan, due)).await.0, 200);
    for county in [JIANGJIN, LUXIAN, XUZHOU] {
        assert_eq!(
            post_as(&t, county, &format!("/v1/coverage/plans/{plan}/answer"), json!({"answer": "accepted"})).await.0,
            200
        );
    }
    let claim = |base: String, phase: &'static str, county: &'static str| {
        let t = &t;
        async move {
            let token = t.token_for(county).await;
            let response = reqwest::Client::new()
                .post(format!("{base}/v1/coverage/plans/{plan}/phases/{phase}/claim"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            (county, response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    };
    for (phase, first, second_county) in [("expert", LUXIAN, XUZHOU), ("impact", JIANGJIN, LUXIAN)] {
        let (a, b) = tokio::join!(
            claim(t.http_base(), phase, first),
            claim(format!("http://{}", second.http_addr), phase, second_county)
        );
        let winners: Vec<&str> = [&a, &b].iter().filter(|(_, status, _)| *status == 200).map(|(c, _, _)| *c).collect();
        let losers: Vec<&Value> = [&a, &b].iter().filter(|(_, status, _)| *status == 409).map(|(_, _, v)| v).collect();
        assert_eq!((winners.len(), losers.len()), (1, 1), "{a:?} {b:?}");
        assert_eq!(losers[0]["error"]["code"], "phase_taken");
        assert!(losers[0]["error"]["message"].as_str().unwrap().contains(winners[0]), "the loser is told who holds it");
    }
    let (_, view) = get_as(&t, YONGCHUAN, &format!("/v1/coverage/plans/{plan}")).await;
    let owner = view["plan"]["phases"][1]["owner"].as_str().unwrap();
    assert!([LUXIAN, XUZHOU].contains(&owner));
    let events: Vec<PlanEvent> =
        t.bus.operations().read_all(bashu_bus::COVERAGE, &t.bus.subjects().all_coverage()).await.unwrap();
    let taken = events.iter().filter(|e| matches!(e.change, Some(Change::PhaseTaken(_)))).count();
    assert_eq!(taken, 2, "one event per phase: the loser changed nothing");
    shutdown.cancel();
    assert!(second.stopped(Duration::from_secs(10)).await);
}

/// The coverage service as its own `bashu` process on `http_port`, with retries fast enough
/// for a test.
fn spawn_coverage(t: &TestSystem, http_port: u16) -> tokio::process::Child {
    bashu_tests::spawn_bashu_with(
        "coverage",
        &t.nats.url(),
        &t.config.nats.prefix,
        http_port,
        Duration::from_secs(2),
        &[
            ("BASHU_COVERAGE__CONSUMER__ACK_WAIT_MS", "2000"),
            ("BASHU_COVERAGE__CONSUMER__BACKOFF_MS", "[100]"),
            ("BASHU_COVERAGE__FLAG_INTERVAL_MS", "200"),
        ],
    )
}

#[tokio::test]
async fn kill_minus_nine_of_the_coverage_service_mid_plan_loses_nothing_and_the_ledger_is_exact() {
    let t =
        TestSystem::start_configured(&[Target::Ingest, Target::Moderation, Target::Distribution], fast_coverage).await;
    let http = bashu::http_client();
    let port = bashu_test_support::free_port();
    let mut coverage = spawn_coverage(&t, port);
    bashu_tests::wait_ready(&http, port).await;
    let base = format!("http://127.0.0.1:{port}");
    let as_county = |county: &'static str, path: String, body: Value| {
        let (t, http, base) = (&t, &http, base.clone());
        async move {
            let token = t.token_for(county).await;
            let response = http.post(format!("{base}{path}")).bearer_auth(token).json(&body).send().await.unwrap();
            assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        }
    };
    let plan = "yukun-kill";
    let due = time::OffsetDateTime::now_utc() + time::Duration::hours(5);
    as_county(YONGCHUAN, "/v1/coverage/plans".into(), railway_plan(plan, due)).await;
    for county in [JIANGJIN, LUXIAN, XUZHOU] {
        as_county(county, format!("/v1/coverage/plans/{plan}/answer"), json!({"answer": "accepted"})).await;
    }
    as_county(YONGCHUAN, format!("/v1/coverage/plans/{plan}/state"), json!({"state": "active"})).await;

    // Stories and reuse notes keep coming while the coverage service is killed twice: ingest and
    // moderation do not need it, and the ledger catches up from its durable consumer.
    let counties = [YONGCHUAN, JIANGJIN, LUXIAN, XUZHOU];
    let load = async {
        let mut uses = 0;
        for n in 0..24 {
            let origin = counties[n % 4];
            let id = format!("kill-{n}");
            submit(&t, &contribution(origin, &id, plan, "experience", "CONTRIBUTION_KIND_TEXT", &format!("第{n}篇")))
                .await;
            if n % 2 == 0 {
                used(&t, counties[(n + 1) % 4], origin, &id).await;
                uses += 1;
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        uses
    };
    let kills = async {
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            coverage.start_kill().unwrap();
            coverage.wait().await.unwrap();
            coverage = spawn_coverage(&t, port);
            bashu_tests::wait_ready(&http, port).await;
        }
    };
    let (expected_uses, ()) = tokio::join!(load, kills);
    // A message a killed process held comes back after its ack wait: the ledger is complete once
    // every story's submission, approval and reuse is in, each exactly once.
    let store = bashu_coverage_core::PlanStore::open(&t.bus).await.unwrap();
    eventually("every submission, approval and reuse is in the ledger", || async {
        let items = chain_at(&t, &base, YONGCHUAN, plan).await;
        let contributions = store.contributions(plan).await.unwrap();
        items.len() == 24
            && items.iter().map(|(_, _, _, uses)| uses).sum::<usize>() == expected_uses
            && contributions.len() == 24
            && contributions.iter().all(|c| c.approved_versions == [1] && c.submitted_at.len() == 1)
    })
    .await;
    for contribution in store.contributions(plan).await.unwrap() {
        assert!(contribution.used_by.len() <= 1, "{}", contribution.story_id);
    }
    let events: Vec<PlanEvent> =
        t.bus.operations().read_all(bashu_bus::COVERAGE, &t.bus.subjects().all_coverage()).await.unwrap();
    let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=5).collect::<Vec<_>>(), "the plan's five changes, each once, in order");
    let dead: std::collections::BTreeMap<String, u64> = t
        .bus
        .operations()
        .subject_counts(bashu_bus::DEAD_LETTERS, &format!("{}.bashu.dlq.>", t.config.nats.prefix))
        .await
        .unwrap();
    assert!(dead.is_empty(), "nothing dead-lettered: {dead:?}");
}

/// Every message in `county`'s own channel consumer, as the county reads it: a plain JetStream
/// client fetching `channel-<county>` on the `CHANNELS` stream, raw protobuf told apart by the
/// subject as docs/coverage.md says (`….flag`: a notice about a phase it leads; else a story).
async fn channel_messages(
    t: &TestSystem,
    county: &str,
) -> (Vec<bashu_proto::coverage::v1::ChannelItem>, Vec<bashu_proto::coverage::v1::PhaseNotice>) {
    use futures::StreamExt as _;
    let js = async_nats::jetstream::new(async_nats::connect(t.nats.url()).await.unwrap());
    let stream = format!("{}_CHANNELS", t.config.nats.prefix.to_uppercase());
    let consumer: async_nats::jetstream::consumer::PullConsumer =
        js.get_consumer_from_stream(format!("channel-{county}"), stream).await.expect("the county's channel consumer");
    let mut batch = consumer.fetch().max_messages(100).expires(Duration::from_millis(300)).messages().await.unwrap();
    let (mut items, mut notices) = (Vec::new(), Vec::new());
    while let Some(Ok(message)) = batch.next().await {
        if message.subject.ends_with(".flag") {
            notices
                .push(bashu_proto::coverage::v1::PhaseNotice::decode(message.payload.clone()).expect("a PhaseNotice"));
        } else {
            items.push(bashu_proto::coverage::v1::ChannelItem::decode(message.payload.clone()).expect("a ChannelItem"));
        }
        message.ack().await.unwrap();
    }
    (items, notices)
}

/// The next `count` phase notices of `county`'s channel consumer (a minute at most).
async fn notices_until(t: &TestSystem, county: &str, count: usize) -> Vec<bashu_proto::coverage::v1::PhaseNotice> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut notices = Vec::new();
    while notices.len() < count {
        assert!(tokio::time::Instant::now() < deadline, "{county} was told {notices:?}, not {count} notices");
        notices.extend(channel_messages(t, county).await.1);
    }
    notices
}

/// The stories in `county`'s channel consumer (no notice expected: it leads no phase).
async fn channel_items(t: &TestSystem, county: &str) -> Vec<bashu_proto::coverage::v1::ChannelItem> {
    let (items, notices) = channel_messages(t, county).await;
    assert!(notices.is_empty(), "{county} leads no phase: {notices:?}");
    items
}

/// The next `count` items of `county`'s channel consumer, waiting for them (a minute at most).
async fn channel_items_until(
    t: &TestSystem,
    county: &str,
    count: usize,
) -> Vec<bashu_proto::coverage::v1::ChannelItem> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut items = Vec::new();
    while items.len() < count {
        assert!(tokio::time::Instant::now() < deadline, "{county}'s channel got {items:?}, not {count} items");
        items.extend(channel_items(t, county).await);
    }
    items
}

#[tokio::test]
async fn a_channel_carries_each_countys_share_of_the_plan_with_corrections_and_kills_and_a_ninjs_package() {
    let targets = [Target::Ingest, Target::Moderation, Target::Distribution, Target::Coverage];
    let t = TestSystem::start_configured(&targets, fast_coverage).await;
    let plan = "yukun-channel";
    let mut proposal = railway_plan(plan, time::OffsetDateTime::now_utc() + time::Duration::hours(5));
    proposal["invitees"]["counties"] = json!([JIANGJIN, LUXIAN, XUZHOU]);
    assert_eq!(post_as(&t, YONGCHUAN, "/v1/coverage/plans", proposal).await.0, 200);
    for county in [JIANGJIN, LUXIAN, XUZHOU] {
        let path = format!("/v1/coverage/plans/{plan}/answer");
        assert_eq!(post_as(&t, county, &path, json!({"answer": "accepted"})).await.0, 200);
    }
    assert_eq!(
        post_as(&t, YONGCHUAN, &format!("/v1/coverage/plans/{plan}/state"), json!({"state": "active"})).await.0,
        200
    );
    let channel = format!("/v1/coverage/plans/{plan}/channel");
    // 叙州 follows before anything is delivered; 荣昌, not invited, cannot follow.
    assert_eq!(post_as(&t, XUZHOU, &channel, json!({"subscribe": true})).await.0, 200);
    let (status, answer) = post_as(&t, RONGCHANG, &channel, json!({"subscribe": true})).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (404, Some("not_found")));
    let (status, answer) = post_as(&t, XUZHOU, &channel, json!({"subscribe": "yes"})).await;
    assert_eq!((status, answer["error"]["fields"][0]["field"].as_str()), (400, Some("subscribe")));

    // 永川's story is shared with 江津 and 泸县 only; 泸县's with everyone in the plan.
    let mut ride =
        contribution(YONGCHUAN, "yc-ride", plan, "experience", "CONTRIBUTION_KIND_VIDEO", "记者乘首班车体验渝昆高铁");
    ride["sharing"] = json!({"counties": [JIANGJIN, LUXIAN]});
    submit(&t, &ride).await;
    let expert =
        contribution(LUXIAN, "lx-expert", plan, "expert", "CONTRIBUTION_KIND_TEXT", "专家解读高铁对川南的意义");
    submit(&t, &expert).await;
    eventually("叙州 has 泸县's story in its channel", || async {
        t.bus
            .operations()
            .subject_counts(bashu_bus::CHANNELS, &format!("{}.bashu.channel.{XUZHOU}.>", t.config.nats.prefix))
            .await
            .unwrap()
            .values()
            .sum::<u64>()
            == 1
    })
    .await;
    let items = channel_items(&t, XUZHOU).await;
    assert_eq!(items.len(), 1, "not 永川's story: it was not shared with 叙州");
    assert_eq!(items[0].story.as_ref().unwrap().id, "lx-expert");
    assert_eq!((items[0].county.as_str(), items[0].plan_id.as_str()), (XUZHOU, plan));

    // 江津 follows later: it gets what it missed, both stories (it received both).
    assert_eq!(post_as(&t, JIANGJIN, &channel, json!({"subscribe": true})).await.0, 200);
    let mut ids: Vec<String> =
        channel_items(&t, JIANGJIN).await.iter().map(|i| i.story.as_ref().unwrap().id.clone()).collect();
    ids.sort();
    assert_eq!(ids, ["lx-expert", "yc-ride"]);

    // A correction of 永川's story and a kill of 泸县's reach the followers who had them.
    let mut corrected = ride.clone();
    corrected["version"] = json!(2);
    corrected["headline"] = json!("记者乘首班车体验渝昆高铁（更正）");
    submit(&t, &corrected).await;
    let mut kill = expert.clone();
    kill["version"] = json!(2);
    kill["status"] = json!("PUBLICATION_STATUS_CANCELED");
    submit(&t, &kill).await;
    let jiangjin = channel_items_until(&t, JIANGJIN, 2).await;
    let versions: std::collections::BTreeSet<(String, u32, i32)> =
        jiangjin.iter().map(|i| i.story.as_ref().unwrap()).map(|s| (s.id.clone(), s.version, s.status)).collect();
    assert_eq!(versions, [("lx-expert".into(), 2, 3), ("yc-ride".into(), 2, 1)].into(), "{jiangjin:?}");
    let xuzhou = channel_items_until(&t, XUZHOU, 1).await;
    assert_eq!(xuzhou.len(), 1);
    assert_eq!(xuzhou[0].story.as_ref().unwrap().status(), bashu_proto::story::v1::PublicationStatus::Canceled);

    // The package for 江津's website: 永川's corrected story; the withdrawn one is left out.
    let (status, package) = get_as(&t, JIANGJIN, &format!("/v1/coverage/plans/{plan}/channel.ninjs")).await;
    assert_eq!(status, 200, "{package}");
    assert_eq!(bashu_ninjs::validate_official(&package), Ok(()), "{package}");
    assert_eq!(package["type"], "composite");
    assert_eq!(package["uri"], format!("urn:bashu:coverage:{plan}"));
    let associations = package["associations"].as_array().unwrap();
    assert_eq!(associations.len(), 1, "{package}");
    assert_eq!(associations[0]["uri"], format!("urn:bashu:story:{YONGCHUAN}:yc-ride"));
    assert_eq!(associations[0]["version"], "2");
    // 叙州's package is empty: the one story it could see was withdrawn.
    let (_, package) = get_as(&t, XUZHOU, &format!("/v1/coverage/plans/{plan}/channel.ninjs")).await;
    assert_eq!(package["associations"], json!([]));
}

#[tokio::test]
async fn new_weights_take_effect_only_when_every_participant_consented_and_each_step_is_audited() {
    let t = start().await;
    let plan = "yukun-weights";
    let proposal = railway_plan(plan, time::OffsetDateTime::now_utc() + time::Duration::hours(5));
    assert_eq!(post_as(&t, YONGCHUAN, "/v1/coverage/plans", proposal.clone()).await.0, 200);
    for county in [JIANGJIN, LUXIAN] {
        let path = format!("/v1/coverage/plans/{plan}/answer");
        assert_eq!(post_as(&t, county, &path, json!({"answer": "accepted"})).await.0, 200);
    }
    // 叙州 has not answered: its consent is not needed; the three who accepted must all agree.
    let mut weights = proposal["weights"].clone();
    weights["proposerSharePercent"] = json!(0);
    weights["phaseSharePercent"] = json!({"experience": 50, "expert": 30, "impact": 20});
    let (status, view) = post_as(&t, JIANGJIN, &format!("/v1/coverage/plans/{plan}/weights"), weights).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["plan"]["weights"]["proposerSharePercent"], 10, "not in force yet");
    assert_eq!(view["plan"]["weightsProposal"]["consented"], json!([JIANGJIN]));
    let consent = format!("/v1/coverage/plans/{plan}/weights/consent");
    let (status, answer) = post_as(&t, XUZHOU, &consent, json!({})).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (409, Some("not_participant")));
    let (_, view) = post_as(&t, YONGCHUAN, &consent, json!({})).await;
    assert_eq!(view["plan"]["weights"]["proposerSharePercent"], 10, "still one consent missing");
    let (status, view) = post_as(&t, LUXIAN, &consent, json!({})).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["plan"]["weights"]["proposerSharePercent"], 0, "in force once all consented");
    assert_eq!(view["plan"]["weights"]["phaseSharePercent"]["experience"], 50);
    assert!(view["plan"]["weightsProposal"].is_null(), "{view}");
    let (status, answer) = post_as(&t, LUXIAN, &consent, json!({})).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (409, Some("no_weights_proposal")));

    // Every change is in the audit log with the county whose token made it.
    let audit: Vec<bashu_proto::admin::v1::AuditEvent> =
        t.bus.operations().read_all(bashu_bus::AUDIT, &t.bus.subjects().audit("coverage").unwrap()).await.unwrap();
    let steps: Vec<(String, String)> =
        audit.iter().map(|a| (a.actor.clone(), a.method.rsplit('/').next().unwrap_or_default().to_owned())).collect();
    let expected = [
        (YONGCHUAN, "ProposePlan"),
        (JIANGJIN, "AnswerInvitation"),
        (LUXIAN, "AnswerInvitation"),
        (JIANGJIN, "ProposeWeights"),
        (YONGCHUAN, "ConsentWeights"),
        (LUXIAN, "ConsentWeights"),
    ]
    .map(|(actor, method)| (actor.to_owned(), method.to_owned()));
    assert_eq!(steps, expected);
    let last = audit.last().unwrap();
    assert_eq!((last.role.as_str(), last.service.as_str()), ("county", "coverage"));
    assert!(last.before_json.contains("weightsProposal") && !last.after_json.contains("weightsProposal"), "{last:?}");
}

#[tokio::test]
async fn a_plan_event_left_in_the_outbox_by_a_crash_is_published_by_any_replica() {
    let t = start().await;
    // What a writer leaves when it dies between storing the plan and publishing its event.
    let mut plan = bashu_proto::coverage::v1::Plan {
        id: "yukun-crash".into(),
        proposer: YONGCHUAN.into(),
        topic: "渝昆高铁川渝段开通".into(),
        state: bashu_proto::coverage::v1::PlanState::Proposed as i32,
        sequence: 1,
        updated_at: Some(bashu_proto::Timestamp { seconds: bashu_proto::time::now().seconds - 60, nanos: 0 }),
        ..Default::default()
    };
    let event = PlanEvent {
        plan_id: plan.id.clone(),
        sequence: 1,
        actor: YONGCHUAN.into(),
        at: plan.updated_at,
        change: Some(Change::Proposed(Box::new(bashu_proto::coverage::v1::PlanProposed {
            plan: Some(Box::new(plan.clone())),
        }))),
    };
    plan.outbox = Some(Box::new(event));
    plan.outbox_audit = Some(bashu_proto::admin::v1::AuditEvent {
        id: "coverage-yukun-crash-1".into(),
        actor: YONGCHUAN.into(),
        role: "county".into(),
        method: "/bashu.coverage.v1.CoverageService/ProposePlan".into(),
        target: "coverage plan yukun-crash".into(),
        at: plan.updated_at,
        service: "coverage".into(),
        ..Default::default()
    });
    let store = bashu_coverage_core::PlanStore::open(&t.bus).await.unwrap();
    store.create_plan(&plan).await.unwrap();
    eventually("the phase timer published the event and its audit entry and emptied the outbox", || async {
        let events: Vec<PlanEvent> =
            t.bus.operations().read_all(bashu_bus::COVERAGE, &t.bus.subjects().all_coverage()).await.unwrap();
        let audit: Vec<bashu_proto::admin::v1::AuditEvent> =
            t.bus.operations().read_all(bashu_bus::AUDIT, &t.bus.subjects().audit("coverage").unwrap()).await.unwrap();
        let stored = store.plan("yukun-crash").await.unwrap().unwrap().value;
        let audited = audit.iter().any(|a| a.id == "coverage-yukun-crash-1" && a.actor == YONGCHUAN);
        events.len() == 1
            && events[0].sequence == 1
            && audited
            && stored.outbox.is_none()
            && stored.outbox_audit.is_none()
    })
    .await;
}

/// With one pod per service, the admin pod does not serve `CoverageService`: bashuctl reaches
/// the coverage pod at its own address, given on the command line, in the environment or in the
/// config file, as docs/operations.md says.
#[tokio::test]
async fn bashuctl_reaches_the_coverage_service_at_its_own_endpoint() {
    let t = TestSystem::start_with(&[Target::Admin]).await;
    let (coverage, shutdown) = t.start_beside(&[Target::Coverage]).await;
    let due = time::OffsetDateTime::now_utc() + time::Duration::hours(5);
    let proposed = reqwest::Client::new()
        .post(format!("http://{}/v1/coverage/plans", coverage.http_addr))
        .bearer_auth(t.token_for(YONGCHUAN).await)
        .json(&railway_plan("own-pod", due))
        .send()
        .await
        .unwrap();
    assert_eq!(proposed.status(), 200);

    let home = tempfile::tempdir().unwrap();
    let own_address = format!("http://{}", coverage.grpc_addr);
    let bashuctl = |args: Vec<String>, env: Vec<(&'static str, String)>| {
        let (home, admin) = (home.path().to_owned(), t.grpc_endpoint());
        async move {
            let output = tokio::process::Command::new(bashu_tests::workspace_binary("bashuctl"))
                .args(&args)
                .env_clear()
                .env("HOME", home)
                .env("BASHUCTL_ENDPOINT", admin)
                .env("BASHUCTL_TOKEN", bashu_tests::OPERATOR_TOKEN)
                .envs(env)
                .output()
                .await
                .unwrap();
            let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
            (output.status.code(), text(&output.stdout), text(&output.stderr))
        }
    };
    let list = || vec!["coverage".to_owned(), "list".to_owned()];

    let (code, _, stderr) = bashuctl(list(), vec![]).await;
    assert_eq!(code, Some(1), "the admin pod has no coverage service: {stderr}");
    assert!(stderr.contains("Unimplemented"), "{stderr}");

    let flag = vec!["--endpoint-for".to_owned(), format!("coverage={own_address}")];
    let (code, stdout, stderr) = bashuctl([flag, list()].concat(), vec![]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("own-pod") && stdout.contains("渝昆高铁川渝段开通"), "{stdout}");

    let (code, stdout, stderr) =
        bashuctl(list(), vec![("BASHUCTL_ENDPOINT_FOR", format!("coverage={own_address}"))]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("own-pod"), "{stdout}");

    let config = home.path().join(".config/bashuctl");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("config.toml"), format!("[endpoints]\ncoverage = \"{own_address}\"\n")).unwrap();
    let (code, stdout, stderr) = bashuctl(list(), vec![]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("own-pod"), "{stdout}");

    // Only the services bashuctl calls directly can be given an address.
    let (code, _, stderr) =
        bashuctl([vec!["--endpoint-for".to_owned(), "pool=http://127.0.0.1:1".to_owned()], list()].concat(), vec![])
            .await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("moderation, alerts, ingest, coverage"), "{stderr}");
    shutdown.cancel();
    assert!(coverage.stopped(Duration::from_secs(10)).await);
}

/// The in-memory index of plans the phase timer and the board read: caught up with what the
/// bucket held, then every new plan and every change, as the bucket has them.
#[tokio::test]
async fn the_plan_index_follows_every_plan_and_every_change() {
    let t = TestSystem::start_with(&[]).await;
    let store = bashu_coverage_core::PlanStore::open(&t.bus).await.unwrap();
    let plan = |id: &str| bashu_proto::coverage::v1::Plan {
        id: id.into(),
        proposer: YONGCHUAN.into(),
        topic: "渝昆高铁川渝段开通".into(),
        state: bashu_proto::coverage::v1::PlanState::Proposed as i32,
        sequence: 1,
        ..Default::default()
    };
    store.create_plan(&plan("before-the-index")).await.unwrap();
    let index = bashu_coverage_core::PlanIndex::default();
    assert!(index.plans().is_none(), "not caught up before it follows anything");
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn({
        let (store, index, shutdown) = (store.clone(), index.clone(), shutdown.clone());
        async move { store.follow_plans(index, shutdown).await }
    });
    let ids = |index: &bashu_coverage_core::PlanIndex| {
        index.plans().map(|plans| plans.into_iter().map(|p| (p.id, p.state)).collect::<Vec<_>>())
    };
    let proposed = bashu_proto::coverage::v1::PlanState::Proposed as i32;
    let active = bashu_proto::coverage::v1::PlanState::Active as i32;
    eventually("the index has what the bucket held", || async {
        ids(&index) == Some(vec![("before-the-index".into(), proposed)])
    })
    .await;
    store.create_plan(&plan("after")).await.unwrap();
    store
        .change_plan("before-the-index", |p| {
            p.state = active;
            Ok(true)
        })
        .await
        .unwrap();
    eventually("the index has the new plan and the change", || async {
        ids(&index) == Some(vec![("after".into(), proposed), ("before-the-index".into(), active)])
    })
    .await;
    assert_eq!(store.plans_in(&index).await.unwrap(), store.plans().await.unwrap(), "the same as the bucket's");
    shutdown.cancel();
}

/// A phase's first delivery is when the county sent its story, whatever order the ledger hears
/// of it: here the approval comes first (as after a crash, when the submission is redelivered
/// late), then the submission, which moves the delivery back to when the story was sent.
#[tokio::test]
async fn a_phase_is_delivered_when_its_story_was_sent_whatever_order_the_ledger_hears_it() {
    use bashu_proto::story::v1::{CoverageRef, ModerationDecision, Story, StorySubmitted, Verdict};
    let t = TestSystem::start_configured(&[Target::Coverage], fast_coverage).await;
    let plan = "yukun-order";
    let due = time::OffsetDateTime::now_utc() + time::Duration::hours(5);
    assert_eq!(post_as(&t, YONGCHUAN, "/v1/coverage/plans", railway_plan(plan, due)).await.0, 200);
    let story = Story {
        id: "yc-first".into(),
        version: 1,
        origin_county: YONGCHUAN.into(),
        headline: "首班车体验".into(),
        coverage: Some(CoverageRef {
            plan_id: plan.into(),
            phase: "experience".into(),
            kind: bashu_proto::story::v1::ContributionKind::Text as i32,
        }),
        ..Default::default()
    };
    let now = bashu_proto::time::now();
    let sent = bashu_proto::Timestamp { seconds: now.seconds - 600, nanos: 0 };
    let decision = ModerationDecision {
        story: Some(story.clone()),
        verdict: Verdict::Approved as i32,
        decided_at: Some(now),
        ..Default::default()
    };
    let delivered = || async {
        let (_, view) = get_as(&t, YONGCHUAN, &format!("/v1/coverage/plans/{plan}")).await;
        view["plan"]["phases"][0]["firstDeliveredAt"].as_str().map(str::to_owned)
    };
    let rfc = |t: bashu_proto::Timestamp| serde_json::to_value(t).unwrap().as_str().unwrap().to_owned();
    t.bus.publish(&decision).await.unwrap();
    eventually("the approval alone marks the phase delivered", || async { delivered().await == Some(rfc(now)) }).await;
    let submitted = StorySubmitted { story: Some(story), received_at: Some(sent), ..Default::default() };
    t.bus.publish(&submitted).await.unwrap();
    eventually("the submission moves the delivery back to when it was sent", || async {
        delivered().await == Some(rfc(sent))
    })
    .await;
    // A later approval of the same phase (another story) does not move it forward again.
    let mut other = decision.clone();
    other.story.as_mut().unwrap().id = "yc-second".into();
    t.bus.publish(&other).await.unwrap();
    eventually("the second story is in the ledger", || async {
        let store = bashu_coverage_core::PlanStore::open(&t.bus).await.unwrap();
        store.contributions(plan).await.unwrap().len() == 2
    })
    .await;
    assert_eq!(delivered().await, Some(rfc(sent)));
}
