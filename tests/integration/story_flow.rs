//! A story from submission to the receiving counties' feeds.

use std::collections::BTreeMap;

use bashu_bus::FEEDS;
use bashu_proto::{
    ingest::v1::{SubmitStoryRequest, ingest_service_client::IngestServiceClient},
    story::v1::{Category, SharingPolicy, Story, StoryDelivery},
};
use bashu_tests::{FUJIANG, TestSystem, eventually, story_json};
use serde_json::json;

#[tokio::test]
async fn partner_story_reaches_the_partner_once_and_nobody_else() {
    let t = TestSystem::start().await;
    let (status, answer) = t.post_story(&story_json("lc-1", "511083", json!({"partners": true}))).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["storyId"], "lc-1");

    eventually("the story is published", || async { t.published_count().await == 1 }).await;
    assert_eq!(t.feed_counts().await, BTreeMap::from([("500153".to_string(), 1)]));

    let feed = t.bus.subjects().feed_of("500153").unwrap();
    let delivered: Vec<StoryDelivery> = t.bus.operations().read_all(FEEDS, &feed).await.unwrap();
    let story = delivered[0].story.as_ref().unwrap();
    assert_eq!(
        (story.id.as_str(), story.origin_county.as_str(), delivered[0].county.as_str()),
        ("lc-1", "511083", "500153")
    );
    assert_eq!(story.language, "", "a language the origin did not give is not guessed");
    assert!(story.created_at.is_some() && story.version_created_at == story.created_at, "ingest fills the times in");
}

#[tokio::test]
async fn alliance_story_reaches_exactly_the_other_nine_members() {
    let t = TestSystem::start().await;
    let (status, answer) = t.post_story(&story_json("fc-1", "510703", json!({"alliances": ["fujiang"]}))).await;
    assert_eq!(status, 202, "{answer}");

    eventually("the story is published", || async { t.published_count().await == 1 }).await;
    let expected: BTreeMap<String, u64> =
        FUJIANG.iter().filter(|c| **c != "510703").map(|c| (c.to_string(), 1)).collect();
    assert_eq!(expected.len(), 9);
    assert_eq!(t.feed_counts().await, expected);
}

#[tokio::test]
async fn the_same_id_and_version_submitted_twice_is_delivered_once() {
    let t = TestSystem::start().await;
    let story = story_json("lc-dup", "511083", json!({"partners": true}));
    let (first, _) = t.post_story(&story).await;
    let (second, answer) = t.post_story(&story).await;
    assert_eq!((first, second), (202, 200));
    assert_eq!(answer["duplicate"], true);
    let mut changed = story.clone();
    changed["headline"] = json!("同一版本号，不同内容");
    let (status, answer) = t.post_story(&changed).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (409, Some("version_conflict")), "{answer}");

    // A second story behind the duplicate: once it is published, the duplicate would have been too.
    t.post_story(&story_json("lc-after", "511083", json!({"partners": true}))).await;
    eventually("both distinct stories are published", || async { t.published_count().await == 2 }).await;
    assert_eq!(t.submitted_count().await, 2);
    assert_eq!(t.feed_counts().await, BTreeMap::from([("500153".to_string(), 2)]));
}

#[tokio::test]
async fn a_malformed_body_gets_400_naming_the_field_and_nothing_is_published() {
    let t = TestSystem::start().await;
    let cases = [
        (r#"{"id":"x","version":1,"sharing":{"partners":"yes"}}"#.as_bytes().to_vec(), "sharing.partners"),
        (r#"{"id":"x","version":"one"}"#.as_bytes().to_vec(), "version"),
        (r#"{"id":"x","category":"CATEGORY_GOSSIP"}"#.as_bytes().to_vec(), "category"),
        (b"{\"id\":\"\xff\xfe\"}".to_vec(), "id"),
        (b"not json".to_vec(), ""),
    ];
    for (body, field) in cases {
        let (status, answer) = t.post_raw(body.clone(), "application/json").await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["code"], "malformed_body");
        assert_eq!(answer["error"]["fields"][0]["field"], field, "{answer}");
        assert!(!answer["error"]["fields"][0]["reason"].as_str().unwrap().is_empty());
    }

    let mut invalid = story_json("lc-bad", "999999", json!({"partners": true}));
    invalid["headline"] = json!("");
    let (status, answer) = t.post_story(&invalid).await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["code"], "invalid_story");
    let fields: Vec<&str> =
        answer["error"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["originCounty", "headline"]);

    let (status, answer) = t.post_raw(b"{}".to_vec(), "text/plain").await;
    assert_eq!((status, answer["error"]["code"].as_str()), (415, Some("unsupported_media_type")));
    let huge = json!({"id": "big", "body": "x".repeat(2 * 1024 * 1024)}).to_string().into_bytes();
    let (status, answer) = t.post_raw(huge, "application/json").await;
    assert_eq!((status, answer["error"]["code"].as_str()), (413, Some("body_too_large")));

    assert_eq!(t.submitted_count().await, 0, "a refused submission publishes nothing");
}

#[tokio::test]
async fn grpc_submission_is_accepted_and_an_old_origin_code_is_resolved() {
    let t = TestSystem::start().await;
    let mut client = IngestServiceClient::connect(t.grpc_endpoint()).await.unwrap();
    let story = Story {
        id: "grpc-1".into(),
        version: 1,
        origin_county: "511028".into(),
        headline: "旧代码投稿".into(),
        body: "正文".into(),
        category: Category::Livelihood as i32,
        sharing: Some(SharingPolicy { partners: true, ..Default::default() }),
        ..Default::default()
    };
    let request = t.as_county("511083", SubmitStoryRequest { story: Some(story.clone()) }).await;
    let answer = client.submit_story(request).await.unwrap().into_inner();
    assert!(!answer.duplicate);
    assert_eq!(answer.resolved_codes.len(), 1);
    assert_eq!(
        (answer.resolved_codes[0].given.as_str(), answer.resolved_codes[0].resolved.as_str()),
        ("511028", "511083")
    );

    let refused = client
        .submit_story(
            t.as_county("511083", SubmitStoryRequest { story: Some(Story { headline: String::new(), ..story }) }).await,
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(refused.message().contains("headline: required"), "{}", refused.message());

    eventually("the story is published", || async { t.published_count().await == 1 }).await;
    assert_eq!(t.feed_counts().await, BTreeMap::from([("500153".to_string(), 1)]));
}

/// The trace id of a stored message's `traceparent` header (`00-<trace>-<span>-<flags>`).
async fn trace_id(t: &TestSystem, stream: &str, subject: &str) -> String {
    let message =
        t.bus.operations().stream(stream).await.unwrap().get_last_raw_message_by_subject(subject).await.unwrap();
    let header =
        message.headers.get(bashu_bus::headers::TRACEPARENT).expect("a traceparent header").as_str().to_owned();
    let parts: Vec<&str> = header.split('-').collect();
    assert_eq!(parts.len(), 4, "{header}");
    parts[1].to_owned()
}

#[tokio::test]
async fn one_story_is_one_trace_from_ingest_to_the_county_feed() {
    let spans = bashu_tests::traced();
    let t = TestSystem::start().await;
    t.post_story(&story_json("traced-1", "511083", json!({"partners": true}))).await;
    eventually("the story is published", || async { t.published_count().await == 1 }).await;

    let subjects = t.bus.subjects();
    let submitted = trace_id(&t, bashu_bus::STORIES, &subjects.story_submitted("511083").unwrap()).await;
    let decided = trace_id(&t, bashu_bus::STORIES, &subjects.story_decided("511083").unwrap()).await;
    let delivered = trace_id(&t, FEEDS, &subjects.feed_story("500153").unwrap()).await;
    assert_ne!(submitted, "0".repeat(32));
    assert_eq!((&decided, &delivered), (&submitted, &submitted));

    // The spans themselves, as an exporter receives them: ingest's request, moderation's and
    // distribution's handling, all in the one trace.
    let finished = spans.get_finished_spans().unwrap();
    let in_trace: Vec<_> = finished.iter().filter(|s| s.span_context.trace_id().to_string() == submitted).collect();
    let consumer = |span: &&opentelemetry_sdk::trace::SpanData| {
        span.attributes.iter().find(|kv| kv.key.as_str() == "consumer").map(|kv| kv.value.to_string())
    };
    assert!(in_trace.iter().any(|s| s.name == "ingest.submit"), "{in_trace:#?}");
    let consumers: std::collections::BTreeSet<String> = in_trace.iter().filter_map(consumer).collect();
    assert!(consumers.contains("moderation") && consumers.contains("distribution"), "{consumers:?}");
}

/// Each story and each alert is a trace of its own, from the request to the county, even while
/// a long-lived task holds a span open the whole time (here the test's own task, on the thread
/// every service runs on): nothing handled meanwhile may take that span as its parent.
#[tokio::test]
async fn two_stories_and_two_alerts_are_four_traces_whatever_span_is_open() {
    let _spans = bashu_tests::traced();
    let t = TestSystem::start().await;
    let long_lived = tracing::info_span!(target: "bashu", "long-lived");
    let _inside = long_lived.enter();

    for (id, origin) in [("trace-a", "511083"), ("trace-b", "500153")] {
        let (status, answer) = t.post_story(&story_json(id, origin, json!({"partners": true}))).await;
        assert_eq!(status, 202, "{answer}");
    }
    eventually("both stories are published", || async { t.published_count().await == 2 }).await;
    let subjects = t.bus.subjects();
    let first = trace_id(&t, FEEDS, &subjects.feed_story("500153").unwrap()).await;
    let second = trace_id(&t, FEEDS, &subjects.feed_story("511083").unwrap()).await;
    assert_ne!(first, second, "two stories, one trace");

    let cap = |identifier: &str, county: &str| {
        crate::alerts::cap(identifier, "Alert", "Exercise", "Severe", None, &crate::alerts::gbt(county))
    };
    for (identifier, county) in [("TRACE-A", "510703"), ("TRACE-B", "510704")] {
        let (status, answer) = t.issue_alert("mianyang", &cap(identifier, county)).await;
        assert_eq!(status, 202, "{answer}");
    }
    eventually("both alerts are stored for their counties", || async { t.alert_feed_counts().await.len() == 2 }).await;
    let mut alerts = Vec::new();
    for county in ["510703", "510704"] {
        alerts.push(trace_id(&t, bashu_bus::ALERT_FEEDS, &subjects.alert_feed(county).unwrap()).await);
    }
    assert_ne!(alerts[0], alerts[1], "two alerts, one trace");
    let all: std::collections::BTreeSet<&String> = [&first, &second, &alerts[0], &alerts[1]].into_iter().collect();
    assert_eq!(all.len(), 4, "four requests, four traces");
    drop(_inside);
}
