//! Ingest's doors: county identity, limits, ninjs, batches, mapping adapters and media.

use bashu::Target;
use bashu_proto::{
    admin::v1::{
        IssueCountyTokenRequest, RevokeCountyTokenRequest, credential_service_client::CredentialServiceClient,
    },
    ingest::v1::{SubmitStoriesRequest, ingest_service_client::IngestServiceClient, item_result::Outcome},
    story::v1::{Category, SharingPolicy, Story},
};
use bashu_tests::{OPERATOR_TOKEN, TestSystem, story_json};
use serde_json::{Value, json};

async fn send(
    t: &TestSystem,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Vec<u8>,
    content_type: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = bashu::http_client()
        .request(method, format!("{}{path}", t.http_base()))
        .header("content-type", content_type)
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("ingest answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    (status, headers, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn operator<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {OPERATOR_TOKEN}").parse().unwrap());
    request
}

async fn post_json(t: &TestSystem, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let (status, _, answer) =
        send(t, reqwest::Method::POST, path, token, body.to_string().into_bytes(), "application/json").await;
    (status, answer)
}

#[tokio::test]
async fn a_county_acts_only_as_itself_and_a_revoked_token_stops_at_once() {
    let t = TestSystem::start().await;
    let story = story_json("id-1", "511083", json!({"partners": true}));

    let (status, answer) = post_json(&t, "/v1/stories", None, &story).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("unauthenticated")), "{answer}");
    let (status, _) = post_json(&t, "/v1/stories", Some("bashu_511083_00000000_forged"), &story).await;
    assert_eq!(status, 401);
    let (status, _) = post_json(&t, "/v1/stories", Some("not-even-a-token"), &story).await;
    assert_eq!(status, 401);

    let other = t.token_for("500153").await;
    let (status, answer) = post_json(&t, "/v1/stories", Some(&other), &story).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (403, Some("forbidden")), "{answer}");
    assert_eq!(t.submitted_count().await, 0, "refused submissions publish nothing");

    // Issued and revoked through the admin API, as an operator would.
    let mut admin = CredentialServiceClient::connect(t.grpc_endpoint()).await.unwrap();
    let without_role =
        admin.issue_county_token(IssueCountyTokenRequest { county: "511028".into(), label: "x".into() }).await;
    assert_eq!(without_role.unwrap_err().code(), tonic::Code::Unauthenticated);
    let issued = admin
        .issue_county_token(operator(IssueCountyTokenRequest { county: "511028".into(), label: "CMS".into() }))
        .await
        .unwrap()
        .into_inner();
    let record = issued.record.unwrap();
    assert_eq!(record.county, "511083", "old codes resolve");
    assert!(record.sha256.is_empty(), "digests are never returned");
    let (status, answer) = post_json(&t, "/v1/stories", Some(&issued.token), &story).await;
    assert_eq!(status, 202, "{answer}");

    admin
        .revoke_county_token(operator(RevokeCountyTokenRequest { county: "511083".into(), id: record.id.clone() }))
        .await
        .unwrap();
    let (status, _) =
        post_json(&t, "/v1/stories", Some(&issued.token), &story_json("id-2", "511083", json!({"partners": true})))
            .await;
    assert_eq!(status, 401, "the next request after revocation is refused");

    // A county reads only its own stories' status: another's is not there for it.
    let (status, _, _) =
        send(&t, reqwest::Method::GET, "/v1/stories/511083/id-1/1", Some(&other), Vec::new(), "application/json").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn over_its_rate_a_county_gets_429_with_retry_after_and_others_are_unaffected() {
    let t = TestSystem::start_configured(&[Target::Ingest], |config| {
        config.ingest.rate_per_minute = 1;
        config.ingest.rate_burst = 2;
    })
    .await;
    let token = t.token_for("511083").await;
    for i in 0..2 {
        let (status, answer) = post_json(
            &t,
            "/v1/stories",
            Some(&token),
            &story_json(&format!("r-{i}"), "511083", json!({"partners": true})),
        )
        .await;
        assert_eq!(status, 202, "{answer}");
    }
    let (status, headers, answer) = send(
        &t,
        reqwest::Method::POST,
        "/v1/stories",
        Some(&token),
        story_json("r-2", "511083", json!({"partners": true})).to_string().into_bytes(),
        "application/json",
    )
    .await;
    assert_eq!((status, answer["error"]["code"].as_str()), (429, Some("rate_limited")), "{answer}");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");

    let (status, _) = post_json(
        &t,
        "/v1/stories",
        Some(&t.token_for("500153").await),
        &story_json("r-0", "500153", json!({"partners": true})),
    )
    .await;
    assert_eq!(status, 202, "each county has its own allowance");
}

fn ninjs(uri: &str, headline: &str) -> Value {
    json!({
        "uri": uri,
        "version": "1",
        "language": "zh-CN",
        "headlines": [{"role": "main", "value": headline}],
        "bodies": [{"role": "main", "value": "正文", "contentType": "text/plain"}],
        "subjects": [{"rel": "bashu:category", "name": "CATEGORY_LIVELIHOOD", "uri": "urn:bashu:category:CATEGORY_LIVELIHOOD"}],
        "places": [{"rel": "bashu:concerned", "uri": "urn:bashu:gbt2260:500153", "literal": "500153"}],
        "rightsInfo": {"langId": "urn:bashu:sharing-policy:1", "encodedRights": "{\"partners\":true}"},
    })
}

#[tokio::test]
async fn ninjs_is_validated_mapped_and_accepted() {
    let t = TestSystem::start().await;
    let token = t.token_for("511083").await;
    let document = ninjs("https://cms.longchang.example/a/1", "ninjs 投稿");
    let (status, _, answer) = send(
        &t,
        reqwest::Method::POST,
        "/v1/stories",
        Some(&token),
        document.to_string().into_bytes(),
        "application/ninjs+json",
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["storyId"].as_str().unwrap().to_owned();
    assert!(id.starts_with("ninjs-"));
    bashu_tests::eventually("the ninjs story reaches the partner", || async {
        t.feed_of("500153")
            .await
            .iter()
            .any(|d| d.story.as_ref().is_some_and(|s| s.id == id && s.headline == "ninjs 投稿"))
    })
    .await;

    let mut broken = ninjs("urn:x", "坏");
    broken["urgency"] = json!(0);
    let (status, _, answer) = send(
        &t,
        reqwest::Method::POST,
        "/v1/stories/ninjs",
        Some(&token),
        broken.to_string().into_bytes(),
        "application/json",
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["fields"][0]["field"], "ninjs:/urgency", "{answer}");

    let (status, _, schema) =
        send(&t, reqwest::Method::GET, "/v1/schemas/bashu-ninjs-profile_1.0.json", None, Vec::new(), "").await;
    assert_eq!((status, schema["$id"].as_str()), (200, Some("urn:bashu:ninjs-profile:1.0")));
}

#[tokio::test]
async fn a_batch_answers_each_item_over_http_and_grpc() {
    let t = TestSystem::start().await;
    let token = t.token_for("511083").await;
    let mut bad = story_json("b-2", "511083", json!({"partners": true}));
    bad["headline"] = json!("");
    let body = json!({"stories": [story_json("b-1", "511083", json!({"partners": true})), bad, {"id": 7}, story_json("b-4", "500153", json!({"partners": true}))]});
    let (status, answer) = post_json(&t, "/v1/stories/batch", Some(&token), &body).await;
    assert_eq!(status, 200, "{answer}");
    let statuses: Vec<u64> =
        answer["results"].as_array().unwrap().iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [202, 400, 400, 403], "{answer}");
    assert_eq!(answer["results"][1]["error"]["fields"][0]["field"], "stories[1].headline");
    assert_eq!(answer["results"][2]["error"]["fields"][0]["field"], "stories[2].id");

    let mut client = IngestServiceClient::connect(t.grpc_endpoint()).await.unwrap();
    let story = |id: &str, headline: &str| Story {
        id: id.into(),
        version: 1,
        origin_county: "511083".into(),
        headline: headline.into(),
        body: "正文".into(),
        category: Category::Other as i32,
        sharing: Some(SharingPolicy { partners: true, ..Default::default() }),
        ..Default::default()
    };
    let request =
        t.as_county("511083", SubmitStoriesRequest { stories: vec![story("g-1", "一"), story("g-2", "")] }).await;
    let results = client.submit_stories(request).await.unwrap().into_inner().results;
    assert!(matches!(&results[0].outcome, Some(Outcome::Accepted(a)) if a.story_id == "g-1"));
    assert!(
        matches!(&results[1].outcome, Some(Outcome::Error(e)) if e.code == "invalid_story" && e.fields[0].field == "headline")
    );
    bashu_tests::eventually("two batch stories submitted", || async { t.submitted_count().await == 2 }).await;
}

#[tokio::test]
async fn the_example_mappings_ingest_their_samples_and_a_broken_mapping_is_refused() {
    let t = TestSystem::start().await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/mappings");
    let sample = |name: &str| std::fs::read(root.join(name)).unwrap();

    let fucheng = t.token_for("510703").await;
    let (status, _, answer) = send(
        &t,
        reqwest::Method::POST,
        "/v1/mappings/tianfu-rongmei/dry-run",
        Some(&fucheng),
        sample("tianfu-rongmei.sample.json"),
        "application/json",
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let story = &answer["story"];
    assert_eq!(story["id"], "88123");
    assert_eq!(story["version"], 2);
    assert_eq!(story["originCounty"], "510703");
    assert_eq!(story["category"], "CATEGORY_CULTURE_TOURISM");
    assert_eq!(story["tags"], json!(["川渝合作", "文旅"]));
    assert_eq!(story["createdAt"], "2026-11-28T00:30:00+00:00", "local time at +08:00");
    assert_eq!(story["attribution"]["responsibleEditor"], "王芳");
    assert_eq!(story["countiesConcerned"], json!(["510703", "500101"]));
    let (status, _, answer) = send(
        &t,
        reqwest::Method::POST,
        "/v1/stories/mapped/tianfu-rongmei",
        Some(&fucheng),
        sample("tianfu-rongmei.sample.json"),
        "application/json",
    )
    .await;
    assert_eq!(status, 202, "{answer}");

    let wanzhou = t.token_for("500101").await;
    let (status, _, answer) = send(
        &t,
        reqwest::Method::POST,
        "/v1/mappings/xin-chongqing/dry-run",
        Some(&wanzhou),
        sample("xin-chongqing.sample.json"),
        "application/json",
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let story = &answer["story"];
    assert_eq!((story["id"].as_str(), story["originCounty"].as_str()), (Some("wz-2026-1128-07"), Some("500101")));
    assert_eq!(story["category"], "CATEGORY_CULTURE_TOURISM");
    assert_eq!(story["createdAt"], "2026-11-28T02:30:00+00:00", "Unix milliseconds");
    assert_eq!(story["sharing"]["counties"], json!(["510703"]));
    assert!(story.get("embargoUntil").is_none(), "null is absent");
    let (status, _, answer) = send(
        &t,
        reqwest::Method::POST,
        "/v1/stories/mapped/xin-chongqing",
        Some(&wanzhou),
        sample("xin-chongqing.sample.json"),
        "application/json",
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    bashu_tests::eventually("both mapped stories submitted", || async { t.submitted_count().await == 2 }).await;

    let broken = json!({"name": "cms", "fields": {"headline": {"pointer": "title"}, "colour": {"default": 1}}});
    let (status, answer) = post_json(&t, "/v1/mappings", Some(&wanzhou), &broken).await;
    assert_eq!(status, 400, "{answer}");
    let fields: Vec<&str> =
        answer["error"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&"fields.headline.pointer") && fields.contains(&"fields.colour"), "{answer}");

    let good = json!({"name": "wz-cms", "fields": {
        "id": {"pointer": "/k"}, "headline": {"pointer": "/t"}, "body": {"pointer": "/b"},
        "category": {"default": "CATEGORY_OTHER"}, "sharing.partners": {"default": true}}});
    let (status, answer) = post_json(&t, "/v1/mappings", Some(&wanzhou), &good).await;
    assert_eq!((status, answer["name"].as_str()), (201, Some("wz-cms")), "{answer}");
    let (status, answer) = post_json(&t, "/v1/mappings", Some(&fucheng), &good).await;
    assert_eq!(status, 403, "a name belongs to the county that registered it: {answer}");
    let (status, answer) =
        post_json(&t, "/v1/stories/mapped/wz-cms", Some(&wanzhou), &json!({"k": "w-1", "t": "题", "b": "文"})).await;
    assert_eq!(status, 202, "{answer}");
}

#[tokio::test]
async fn media_is_stored_with_its_digest_fetched_by_reference_and_limited_by_type() {
    let t = TestSystem::start_configured(&[Target::Ingest], |config| {
        config.ingest.media_limits = [("image/".to_owned(), 64 * 1024)].into();
    })
    .await;
    let token = t.token_for("511083").await;
    let http = bashu::http_client();
    let upload = |bytes: Vec<u8>, media_type: &'static str| {
        let part = reqwest::multipart::Part::bytes(bytes).file_name("photo").mime_str(media_type).unwrap();
        http.post(format!("{}/v1/media", t.http_base()))
            .bearer_auth(&token)
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
    };
    let photo: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let response = upload(photo.clone(), "image/jpeg").await.unwrap();
    assert_eq!(response.status(), 201);
    let stored: Value = response.json().await.unwrap();
    let digest = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&photo))
    };
    assert_eq!(stored["sha256"], digest);
    assert_eq!(stored["uri"], format!("bashu-object:{digest}"));
    assert_eq!(stored["sizeBytes"], 50_000);

    let fetched = http
        .get(format!("{}/v1/media/{digest}", t.http_base()))
        .bearer_auth(t.token_for("500153").await)
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.headers()["content-type"], "image/jpeg");
    assert_eq!(fetched.bytes().await.unwrap().to_vec(), photo, "any county fetches it by reference");

    let response = upload(vec![0; 64 * 1024 + 1], "image/png").await.unwrap();
    assert_eq!(response.status(), 413);
    let response = upload(vec![1, 2, 3], "application/x-msdownload").await.unwrap();
    assert_eq!(response.status(), 415);

    let mut story = story_json("with-photo", "511083", json!({"partners": true}));
    story["media"] = json!([{"uri": stored["uri"], "mediaType": "image/jpeg", "sha256": digest, "sizeBytes": 50000}]);
    let (status, answer) = t.post_story(&story).await;
    assert_eq!(status, 202, "{answer}");

    // A reference to an object nobody uploaded is refused, naming the field; nothing is accepted.
    let never = "0".repeat(64);
    let mut dangling = story_json("dangling-photo", "511083", json!({"partners": true}));
    dangling["media"] = json!([
        {"uri": stored["uri"], "mediaType": "image/jpeg"},
        {"uri": format!("bashu-object:{never}"), "mediaType": "image/jpeg"}
    ]);
    let (status, answer) = t.post_story(&dangling).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["fields"][0]["field"], "media[1].uri", "{answer}");
    assert!(answer["error"]["fields"][0]["reason"].as_str().unwrap().contains(&never), "{answer}");
    assert_eq!(t.get("/v1/stories/511083/dangling-photo/1").await.0, 404, "nothing was accepted");
}

async fn put_defaults(t: &TestSystem, token: &str, body: Value) -> (u16, Value) {
    let (status, _, answer) = send(
        t,
        reqwest::Method::PUT,
        "/v1/ingest-defaults",
        Some(token),
        body.to_string().into_bytes(),
        "application/json",
    )
    .await;
    (status, answer)
}

/// IPTC's own published ninjs 3.x examples, sent as a county's CMS sends them: refused while the
/// county has no ingest defaults (naming the fields it lacks), accepted once the county set its
/// own; the defaults are the county's alone, checked, and in the operators' audit log.
#[tokio::test]
async fn plain_ninjs_as_iptc_publishes_it_is_accepted_for_a_county_with_ingest_defaults() {
    let t = TestSystem::start().await;
    let token = t.token_for("511083").await;
    let other = t.token_for("500153").await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../libs/ninjs/tests/iptc-examples");
    let mut examples: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("the examples")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    examples.sort();
    assert_eq!(examples.len(), 27);
    let submit = |body: Vec<u8>| {
        let t = &t;
        let token = token.clone();
        async move {
            let (status, _, answer) =
                send(t, reqwest::Method::POST, "/v1/stories", Some(&token), body, "application/ninjs+json").await;
            (status, answer)
        }
    };
    let dpa = examples.iter().find(|(name, _)| name == "3.0_dpa_text.json").unwrap().1.clone();

    let (status, answer) = submit(dpa.clone()).await;
    assert_eq!(status, 400, "{answer}");
    let fields: Vec<&str> =
        answer["error"]["fields"].as_array().unwrap().iter().filter_map(|f| f["field"].as_str()).collect();
    assert_eq!(fields, ["category", "sharing"], "{answer}");

    // The adversary: another county's defaults, unknown categories, a policy sharing with nobody.
    let (status, answer) = put_defaults(&t, &token, json!({"county": "500153", "category": "CATEGORY_OTHER"})).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (403, Some("forbidden")), "{answer}");
    let (status, answer) = put_defaults(&t, &token, json!({"category": "CATEGORY_NOPE"})).await;
    assert_eq!((status, answer["error"]["fields"][0]["field"].as_str()), (400, Some("category")), "{answer}");
    let (status, answer) = put_defaults(&t, &token, json!({"sharing": {}})).await;
    assert_eq!((status, answer["error"]["fields"][0]["field"].as_str()), (400, Some("sharing")), "{answer}");
    let (status, answer) = put_defaults(&t, &token, json!({"sharing": {"alliances": ["nope"]}})).await;
    assert_eq!(
        (status, answer["error"]["fields"][0]["field"].as_str()),
        (400, Some("sharing.alliances[0]")),
        "{answer}"
    );
    let (status, answer) = put_defaults(&t, &token, json!({"sharing": {"partners": true}, "extra": 1})).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("malformed_body")), "{answer}");
    let (status, answer) =
        put_defaults(&t, "bashu_511083_00000000_forged", json!({"category": "CATEGORY_OTHER"})).await;
    assert_eq!(status, 401, "{answer}");

    let defaults = json!({"category": "CATEGORY_CULTURE_TOURISM", "sharing": {"partners": true}});
    let (status, answer) = put_defaults(&t, &token, defaults).await;
    assert_eq!((status, answer["county"].as_str()), (200, Some("511083")), "{answer}");
    let (status, _, mine) = send(&t, reqwest::Method::GET, "/v1/ingest-defaults", Some(&token), Vec::new(), "").await;
    assert_eq!((status, mine["category"].as_str()), (200, Some("CATEGORY_CULTURE_TOURISM")), "{mine}");
    let (_, _, theirs) = send(&t, reqwest::Method::GET, "/v1/ingest-defaults", Some(&other), Vec::new(), "").await;
    assert_eq!(theirs["county"], "500153", "{theirs}");
    assert!(theirs.get("sharing").is_none() && theirs["category"] != "CATEGORY_CULTURE_TOURISM", "{theirs}");

    // Every example is accepted; one that repeats an earlier one's uri and version is answered
    // as any resent story is, and the one that is a list of events is refused.
    let mut uris = std::collections::HashSet::new();
    for (name, body) in examples {
        let document: Value = serde_json::from_slice(&body).unwrap();
        let (status, answer) = submit(body).await;
        if document.is_array() {
            assert_eq!(status, 400, "{name}: {answer}");
            continue;
        }
        if document.get("expires").is_some() {
            // TT's example expired in 2023: an expired story is never delivered, so it is refused.
            assert_eq!((status, answer["error"]["fields"][0]["field"].as_str()), (400, Some("expiresAt")), "{name}");
        } else if uris.insert((document["uri"].clone(), document["version"].clone())) {
            assert_eq!(status, 202, "{name}: {answer}");
        } else {
            // The same story again (its rights aside) is a duplicate; other content, a conflict.
            let repeated = (status == 200 && answer["duplicate"] == true) || status == 409;
            assert!(repeated, "{name}: {status} {answer}");
        }
    }

    bashu_tests::eventually("the plain ninjs stories reach the partner as text, their language unguessed", || async {
        let feed = t.feed_of("500153").await;
        let stories: Vec<_> = feed.iter().filter_map(|d| d.story.as_ref()).collect();
        let dpa = stories.iter().find(|s| s.headline.starts_with("Faktencheck Derby-Elfmeter"));
        let unlabelled = stories.iter().any(|s| {
            s.headline == "Captain of wrecked cruise ship on trial in Italy"
                && s.language.is_empty()
                && s.category == Category::CultureTourism as i32
        });
        dpa.is_some_and(|s| s.language == "de" && s.body.starts_with("Für Lucien Favre") && !s.body.contains('<'))
            && unlabelled
    })
    .await;

    let mut audit = bashu_proto::admin::v1::audit_service_client::AuditServiceClient::new(t.operator_channel().await);
    let events = audit
        .list_audit_events(bashu_proto::admin::v1::ListAuditEventsRequest { limit: 50 })
        .await
        .unwrap()
        .into_inner()
        .events;
    let change = events.iter().find(|e| e.method == "PUT /v1/ingest-defaults").expect("the change is audited");
    assert_eq!((change.actor.as_str(), change.service.as_str()), ("511083", "ingest"));
    assert!(change.after_json.contains("CATEGORY_CULTURE_TOURISM"), "{change:?}");
}
