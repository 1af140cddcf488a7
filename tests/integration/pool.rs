//! The shared content pool as a county's editor uses it, over plain HTTP exactly as docs/pool.md
//! says (a bearer token, query parameters, JSON), and as another county trying to see what was
//! not shared with it.

use bashu::Target;
use bashu_proto::story::v1::StoryUse;
use bashu_tests::{TestSystem, eventually, story_json};
use serde_json::{Value, json};

/// `GET` a pool path as `county`; the status and the JSON answer.
async fn get_as(t: &TestSystem, county: &str, path_and_query: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(format!("{}{path_and_query}", t.http_base()))
        .header("authorization", format!("Bearer {}", t.token_for(county).await))
        .send()
        .await
        .expect("bashu answers");
    (response.status().as_u16(), response.json().await.expect("a JSON answer"))
}

/// The story ids a search finds for `county`.
async fn found(t: &TestSystem, county: &str, query: &str) -> Vec<String> {
    let (status, answer) = get_as(t, county, &format!("/v1/pool/search?q={}", urlencode(query))).await;
    assert_eq!(status, 200, "{answer}");
    answer["hits"].as_array().unwrap().iter().map(|h| h["story"]["id"].as_str().unwrap().to_owned()).collect()
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn railway(id: &str, version: u32, headline: &str, body: &str, counties: &[&str]) -> Value {
    let mut story = story_json(id, "511083", json!({ "counties": counties }));
    story["version"] = json!(version);
    story["headline"] = json!(headline);
    story["body"] = json!(body);
    story["category"] = json!("CATEGORY_MAJOR_PROJECT");
    story
}

#[tokio::test]
async fn a_county_finds_what_was_shared_with_it_in_chinese_and_marks_what_it_reused() {
    let t = TestSystem::start_with(&[Target::Ingest, Target::Moderation, Target::Distribution]).await;
    let (status, _) = t
        .post_story(&railway("rail-1", 1, "成渝中线高铁全线开通", "今天上午，成渝中线高铁正式开通运营。", &["500153"]))
        .await;
    assert_eq!(status, 202);
    let (status, _) =
        t.post_story(&railway("plan-1", 1, "隆昌高铁站周边规划", "只与内江市分享的规划稿。", &["511011"])).await;
    assert_eq!(status, 202);
    eventually("the pool has the story", || async { found(&t, "500153", "高铁").await == ["rail-1"] }).await;

    // Traditional characters, full-width letters and a phrase find it; the origin finds both.
    assert_eq!(found(&t, "500153", "成渝中線").await, ["rail-1"]);
    assert_eq!(found(&t, "500153", "\"中线 高铁\"").await, ["rail-1"]);
    let mut own = found(&t, "511083", "").await;
    own.sort();
    assert_eq!(own, ["plan-1", "rail-1"]);
    let (_, answer) = get_as(&t, "500153", &format!("/v1/pool/search?q={}", urlencode("高铁"))).await;
    assert!(answer["hits"][0]["headlineHtml"].as_str().unwrap().contains("<mark>高铁</mark>"), "{answer}");
    assert_eq!(answer["provinces"][0]["value"], "51");
    assert_eq!(answer["sharing"], json!([{"value": "counties", "label": "counties", "count": "1"}]));
    let (_, by_region) = get_as(&t, "500153", "/v1/pool/search?sharing=region").await;
    assert_eq!(by_region["total"], "0", "it was shared with named counties, not the region");
    let (_, by_counties) = get_as(&t, "500153", "/v1/pool/search?sharing=counties").await;
    assert_eq!(by_counties["total"], "1");

    // A correction replaces the text.
    t.post_story(&railway("rail-1", 2, "成渝中线高铁开通（更正）", "更正：首发时间为上午九时。", &["500153"])).await;
    eventually("the correction is in the pool", || async { found(&t, "500153", "更正").await == ["rail-1"] }).await;
    assert!(found(&t, "500153", "正式开通运营").await.is_empty(), "the old body is gone");

    // Marking it used: a reuse note on the bus, and the origin sees who.
    let response = reqwest::Client::new()
        .post(format!("{}/v1/pool/used", t.http_base()))
        .header("authorization", format!("Bearer {}", t.token_for("500153").await))
        .json(&json!({"originCounty": "511083", "storyId": "rail-1", "placement": "客户端头条"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let marked: Value = response.json().await.unwrap();
    assert_eq!(marked, json!({"version": 2, "recorded": true}));
    let notes: Vec<StoryUse> =
        t.bus.operations().read_all(bashu_bus::STORIES, &t.bus.subjects().all_story_uses()).await.unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!((notes[0].county.as_str(), notes[0].version), ("500153", 2));
    eventually("the origin sees the reuse", || async {
        get_as(&t, "511083", "/v1/pool/reuse").await.1["reuses"][0]["county"] == "500153"
    })
    .await;
    let (_, story) = get_as(&t, "511083", "/v1/pool/stories/511083/rail-1").await;
    assert_eq!(story["usedBy"], json!(["500153"]));

    // A kill removes it for everyone.
    let mut kill = railway("rail-1", 3, "成渝中线高铁开通（更正）", "撤稿", &["500153"]);
    kill["status"] = json!("PUBLICATION_STATUS_CANCELED");
    t.post_story(&kill).await;
    eventually("the kill empties the pool", || async {
        found(&t, "500153", "高铁").await.is_empty() && !found(&t, "511083", "").await.contains(&"rail-1".to_owned())
    })
    .await;
}

#[tokio::test]
async fn another_county_never_sees_what_was_not_shared_with_it_and_bad_requests_change_nothing() {
    let t = TestSystem::start_with(&[Target::Ingest, Target::Moderation, Target::Distribution]).await;
    t.post_story(&railway("secret-1", 1, "隆昌市内部规划", "仅与内江市中区分享。", &["511002"])).await;
    eventually("the receiver finds it", || async { found(&t, "511002", "规划").await == ["secret-1"] }).await;

    // Queries crafted to match it, from a county it was not shared with.
    for query in ["隆昌市内部规划", "规划", "\"内部 规划\"", "隆昌", "", "内江", "secret"] {
        assert!(found(&t, "500153", query).await.is_empty(), "{query:?} reached 500153");
    }
    let (status, answer) = get_as(&t, "500153", "/v1/pool/search?county=511083&province=51").await;
    // 64-bit counts are strings in the proto3 JSON mapping.
    assert_eq!((status, answer["total"].as_str()), (200, Some("0")), "filters do not widen what a county sees");
    let (status, answer) = get_as(&t, "500153", "/v1/pool/stories/511083/secret-1").await;
    assert_eq!((status, answer["error"]["code"].as_str()), (404, Some("not_found")));
    let response = reqwest::Client::new()
        .post(format!("{}/v1/pool/used", t.http_base()))
        .header("authorization", format!("Bearer {}", t.token_for("500153").await))
        .json(&json!({"originCounty": "511083", "storyId": "secret-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404, "cannot note a use of what it was never given");

    // Refusals with the field and, for a query, the position.
    for (query, field) in [
        ("q=%22%E8%A7%84%E5%88%92", "q"),
        ("page_size=51", "page_size"),
        ("sort=oldest", "sort"),
        ("province=5", "origin_provinces"),
        ("cursor=o10000", "cursor"),
        ("colour=red", "query string"),
        ("from=yesterday", "from"),
        ("sharing=everyone", "sharing"),
    ] {
        let (status, answer) = get_as(&t, "511002", &format!("/v1/pool/search?{query}")).await;
        assert_eq!(status, 400, "{query}: {answer}");
        assert_eq!(answer["error"]["fields"][0]["field"], field, "{query}: {answer}");
    }
    let (_, answer) = get_as(&t, "511002", "/v1/pool/search?q=%E8%A7%84%E5%88%92%20%22%E5%86%85").await;
    assert_eq!(answer["error"]["code"], "invalid_query");
    assert_eq!(answer["error"]["fields"][0]["position"], 4, "{answer}");
    let long = "高".repeat(201);
    let (status, _) = get_as(&t, "511002", &format!("/v1/pool/search?q={}", urlencode(&long))).await;
    assert_eq!(status, 400);

    let anonymous = reqwest::Client::new().get(format!("{}/v1/pool/search?q=x", t.http_base())).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let forged = reqwest::Client::new()
        .get(format!("{}/v1/pool/search", t.http_base()))
        .header("authorization", "Bearer bashu_511002_00000000_forged")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);
    assert!(
        t.bus
            .operations()
            .read_all::<StoryUse>(bashu_bus::STORIES, &t.bus.subjects().all_story_uses())
            .await
            .unwrap()
            .is_empty(),
        "no refused request noted a use"
    );
}

/// The replica's index as it is on disk, read beside the replica that writes it.
fn reader(folder: &std::path::Path) -> bashu_pool::PoolIndex {
    let counties = std::sync::Arc::new(bashu_registry::Counties::builtin().unwrap());
    bashu_pool::PoolIndex::open_read_only(folder, counties).expect("the index opens for reading")
}

#[tokio::test]
async fn a_replica_killed_mid_stream_resumes_from_its_own_index_and_misses_nothing() {
    let folder = tempfile::tempdir().unwrap();
    let index_dir = folder.path().to_owned();
    let t = TestSystem::start_with(&[Target::Ingest, Target::Moderation]).await;
    // Distribution as its own process, as a pod runs it, keeping its index in a folder.
    let replica = || {
        let settings = [("BASHU_DISTRIBUTION__POOL__INDEX_DIR", index_dir.to_str().unwrap())];
        let port = bashu_test_support::free_port();
        let grace = std::time::Duration::from_secs(5);
        (
            bashu_tests::spawn_bashu_with("distribution", &t.nats.url(), &t.config.nats.prefix, port, grace, &settings),
            port,
        )
    };
    let (mut first, port) = replica();
    bashu_tests::wait_ready(&reqwest::Client::new(), port).await;
    for n in 0..5 {
        t.post_story(&railway(&format!("before-{n}"), 1, &format!("川南城际铁路第{n}段"), "施工进展", &["500153"]))
            .await;
    }
    eventually("the replica's index has the five stories", || async {
        reader(&index_dir).checkpoint().unwrap().feeds >= 5
    })
    .await;
    // kill -9: nothing runs on the way out.
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    for n in 0..5 {
        t.post_story(&railway(&format!("after-{n}"), 1, &format!("川南城际铁路第{n}段通车"), "通车", &["500153"]))
            .await;
    }
    let (_second, port) = replica();
    bashu_tests::wait_ready(&reqwest::Client::new(), port).await;
    eventually("the restarted replica has every story once", || async {
        reader(&index_dir).counts().unwrap() == (10, 0, 0)
    })
    .await;
    // And it answers the county from what it kept and what it read since.
    let response = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/v1/pool/search?q={}", urlencode("城际铁路")))
        .bearer_auth(t.token_for("500153").await)
        .send()
        .await
        .unwrap();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["total"], "10", "{answer}");
}

#[tokio::test]
async fn the_grpc_door_answers_as_the_token_county_and_refuses_without_one() {
    use bashu_proto::pool::v1::{SearchRequest, pool_service_client::PoolServiceClient};
    let t = TestSystem::start_with(&[Target::Ingest, Target::Moderation, Target::Distribution]).await;
    t.post_story(&railway("grpc-1", 1, "成渝地区双城经济圈建设", "共建共享。", &["500153"])).await;
    let mut pool = PoolServiceClient::connect(t.grpc_endpoint()).await.unwrap();
    let t = &t;
    eventually("the receiver finds it over gRPC", || {
        let mut pool = pool.clone();
        async move {
            let request = t.as_county("500153", SearchRequest { query: "双城".into(), ..Default::default() }).await;
            pool.search(request).await.unwrap().into_inner().hits.len() == 1
        }
    })
    .await;
    let other = t.as_county("510703", SearchRequest { query: "双城".into(), ..Default::default() }).await;
    assert_eq!(pool.search(other).await.unwrap().into_inner().total, 0);
    let refused = pool.search(SearchRequest { query: "双城".into(), ..Default::default() }).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    assert_eq!(refused.metadata().get(bashu_proto::ERROR_CODE_METADATA).unwrap(), "unauthenticated");
    let broken = t.as_county("500153", SearchRequest { query: "\"双城".into(), ..Default::default() }).await;
    let refused = pool.search(broken).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(refused.message().contains("character 1"), "{}", refused.message());
}

#[tokio::test]
async fn an_operator_rebuilds_every_replica_s_index_and_follows_each_until_it_has_caught_up() {
    use bashu_proto::{
        admin::v1::{RebuildPoolIndexRequest, pool_index_service_client::PoolIndexServiceClient},
        registry::v1::StaffRole,
    };
    let t = TestSystem::start_with(&[Target::Admin, Target::Ingest, Target::Moderation, Target::Distribution]).await;
    let (second, _) = t.start_distribution().await;
    for n in 0..3 {
        t.post_story(&railway(&format!("re-{n}"), 1, &format!("成渝双城第{n}期"), "重建索引", &["500153"])).await;
    }
    eventually("the pool has the stories", || async { found(&t, "500153", "双城").await.len() == 3 }).await;

    let (_, viewer) = t.issue_staff_token("观察员", StaffRole::Viewer, vec![], "").await;
    let refused = PoolIndexServiceClient::new(t.staff_channel(&viewer).await)
        .rebuild_pool_index(RebuildPoolIndexRequest {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);

    let mut progress = PoolIndexServiceClient::new(t.operator_channel().await)
        .rebuild_pool_index(RebuildPoolIndexRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut last = None;
    while let Some(step) = progress.message().await.unwrap() {
        last = Some(step);
    }
    let last = last.expect("progress");
    assert!(last.done, "{last:?}");
    assert_eq!(last.replicas.len(), 2, "both replicas answered: {last:?}");
    assert!(last.replicas.iter().all(|r| r.caught_up && r.read >= r.target && r.target >= 3), "{last:?}");
    assert_eq!(found(&t, "500153", "双城").await.len(), 3, "the rebuilt index answers as before");
    second.abort();
}

#[tokio::test]
async fn under_nats_identities_the_pool_reads_marks_used_and_rebuilds_with_only_its_own_permissions() {
    use bashu_proto::admin::v1::{RebuildPoolIndexRequest, pool_index_service_client::PoolIndexServiceClient};
    // Every service as its own nkey identity, nats-server enforcing each one's permissions.
    let secured = bashu_tests::SecuredSystem::start("", |_| {}).await;
    let counties = std::sync::Arc::new(bashu_registry::Counties::builtin().unwrap());
    let tokens = bashu_registry::CountyTokens::open(&secured.admin, counties).await.unwrap();
    let longchang = tokens.issue("511083", "cms").await.unwrap().token;
    let rongchang = tokens.issue("500153", "editor").await.unwrap().token;
    let http = format!("http://{}", secured.system.http_addr);
    let client = reqwest::Client::new();
    let story = railway("secured-1", 1, "成渝中线高铁全线开通", "正式开通运营。", &["500153"]);
    let submitted =
        client.post(format!("{http}/v1/stories")).bearer_auth(&longchang).json(&story).send().await.unwrap();
    assert_eq!(submitted.status().as_u16(), 202);
    let search = || async {
        let answer: Value = client
            .get(format!("{http}/v1/pool/search?q={}", urlencode("高铁")))
            .bearer_auth(&rongchang)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["total"] == "1"
    };
    eventually("distribution's identity reads the feeds into the pool", search).await;

    // Distribution's identity may publish the county's reuse note.
    let marked = client
        .post(format!("{http}/v1/pool/used"))
        .bearer_auth(&rongchang)
        .json(&json!({"originCounty": "511083", "storyId": "secured-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(marked.status().as_u16(), 200, "{}", marked.text().await.unwrap());
    let uses: Vec<StoryUse> =
        secured.admin.operations().read_all(bashu_bus::STORIES, &secured.subjects.all_story_uses()).await.unwrap();
    assert_eq!(uses.len(), 1);

    // Admin asks over core NATS, distribution hears it and answers on its progress subject.
    let channel =
        bashu_tests::bearer_channel(&format!("http://{}", secured.system.grpc_addr), bashu_tests::OPERATOR_TOKEN)
            .await
            .unwrap();
    let mut progress =
        PoolIndexServiceClient::new(channel).rebuild_pool_index(RebuildPoolIndexRequest {}).await.unwrap().into_inner();
    let mut last = None;
    while let Some(step) = progress.message().await.unwrap() {
        last = Some(step);
    }
    let last = last.expect("progress");
    assert!(last.done && last.replicas.len() == 1 && last.replicas[0].caught_up, "{last:?}");
    eventually("the rebuilt index answers", search).await;
}
