//! Distribution: audiences, embargo, corrections, kills and webhooks.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use bashu::Target;
use bashu_proto::{
    admin::v1::{ListTakedownsRequest, takedown_service_client::TakedownServiceClient},
    registry::v1::{Alliance, Subscription, Webhook, WebhookFormat},
    story::v1::TakedownConfirmation,
};
use bashu_registry::Counties;
use bashu_tests::{FUJIANG, TestSystem, eventually, story_json};
use serde_json::{Value, json};

fn rfc3339_in(seconds: f64) -> String {
    let at = SystemTime::now() + Duration::from_secs_f64(seconds);
    serde_json::to_value(bashu_proto::time::from_system_time(at)).unwrap().as_str().unwrap().to_owned()
}

async fn submit(t: &TestSystem, story: &Value) {
    let (status, answer) = t.post_story(story).await;
    assert!(status == 202, "{status}: {answer}");
}

fn counties_in(prefix: &str) -> BTreeSet<String> {
    Counties::builtin().unwrap().within(prefix).map(|c| c.code.clone()).collect()
}

#[tokio::test]
async fn every_scope_reaches_exactly_its_counties_and_two_alliances_give_one_copy() {
    let t = TestSystem::start().await;
    t.registry_store()
        .await
        .put_alliance(Alliance {
            id: "jialing".into(),
            name: "嘉陵江（示例）".into(),
            members: vec!["510703".into(), "500117".into(), "500103".into()],
            note: String::new(),
        })
        .await
        .unwrap();
    eventually("ingest sees the new alliance", || async {
        t.post_story(&story_json("two-alliances", "510703", json!({"alliances": ["fujiang", "jialing"]}))).await.0
            == 202
    })
    .await;
    submit(&t, &story_json("province", "511083", json!({"province": true}))).await;
    submit(&t, &story_json("region", "500153", json!({"region": true}))).await;
    submit(&t, &story_json("explicit", "511083", json!({"counties": ["500101", "511028", "510105"]}))).await;
    eventually("all four are published", || async { t.published_count().await == 4 }).await;

    let audiences: BTreeMap<String, BTreeSet<String>> = t
        .bus
        .operations()
        .read_all::<bashu_proto::story::v1::StoryPublished>(bashu_bus::STORIES, &t.bus.subjects().all_story_published())
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.story_id, p.audience.into_iter().collect()))
        .collect();
    let mut two: BTreeSet<String> = FUJIANG.iter().map(|c| c.to_string()).collect();
    two.extend(["500103".to_string()]);
    two.remove("510703");
    assert_eq!(audiences["two-alliances"], two, "500117 is in both alliances and is listed once");
    let mut sichuan = counties_in("51");
    sichuan.remove("511083");
    assert_eq!(audiences["province"], sichuan);
    let mut region = counties_in("");
    region.remove("500153");
    assert_eq!(audiences["region"], region);
    assert_eq!(
        audiences["explicit"],
        ["500101", "510105"].map(String::from).into(),
        "511028 is 隆昌市, the origin itself"
    );
    assert_eq!(t.feed_counts().await["500117"], 2, "two-alliances once, region once");
}

#[tokio::test]
async fn a_subscription_filters_new_stories_but_never_a_correction() {
    let t = TestSystem::start().await;
    let store = t.registry_store().await;
    store
        .put_subscription(Subscription {
            county: "500153".into(),
            categories: vec!["CATEGORY_EMERGENCY".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    eventually("the services see the subscription", || async {
        t.system.registry.current().subscription("500153").is_some()
    })
    .await;
    submit(&t, &story_json("policy", "511083", json!({"partners": true}))).await;
    eventually("published", || async { t.published_count().await == 1 }).await;
    assert!(t.feed_counts().await.is_empty(), "500153 takes only emergencies");
    let mut emergency = story_json("flood", "511083", json!({"partners": true}));
    emergency["category"] = json!("CATEGORY_EMERGENCY");
    submit(&t, &emergency).await;
    eventually("the emergency is published", || async { t.published_count().await == 2 }).await;
    store
        .put_subscription(Subscription {
            county: "500153".into(),
            categories: vec!["CATEGORY_POLICY".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    eventually("the services see the changed subscription", || async {
        t.system.registry.current().subscription("500153").is_some_and(|s| s.categories == ["CATEGORY_POLICY"])
    })
    .await;
    let mut correction = emergency.clone();
    correction["version"] = json!(2);
    submit(&t, &correction).await;
    eventually("all published", || async { t.published_count().await == 3 }).await;
    let versions: Vec<u32> = t.feed_of("500153").await.iter().map(|d| d.story.as_ref().unwrap().version).collect();
    assert_eq!(versions, [1, 2], "the correction reaches a receiver whose subscription changed since");
}

#[tokio::test]
async fn an_embargoed_story_is_released_after_its_time_also_across_a_restart() {
    let t = TestSystem::start_with(&[Target::Ingest, Target::Moderation]).await;
    let (distribution, _) = t.start_distribution().await;
    let mut held = story_json("embargoed", "511083", json!({"partners": true}));
    held["embargoUntil"] = json!(rfc3339_in(2.0));
    submit(&t, &held).await;
    let mut expiring = story_json("expires-while-held", "511083", json!({"partners": true}));
    expiring["embargoUntil"] = json!(rfc3339_in(1.0));
    expiring["expiresAt"] = json!(rfc3339_in(1.5));
    submit(&t, &expiring).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(t.feed_counts().await.is_empty(), "nothing before the embargo");

    distribution.abort();
    let _ = distribution.await;
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    let (_distribution, _shutdown) = t.start_distribution().await;
    eventually("the embargoed story is released after the restart", || async {
        t.feed_counts().await.get("500153") == Some(&1)
    })
    .await;
    let delivered = t.feed_of("500153").await;
    let story = delivered[0].story.as_ref().unwrap();
    assert_eq!(story.id, "embargoed");
    let embargo = bashu_proto::time::to_system_time(story.embargo_until.as_ref().unwrap()).unwrap();
    let at = bashu_proto::time::to_system_time(delivered[0].delivered_at.as_ref().unwrap()).unwrap();
    assert!(at >= embargo, "never before the embargo");
    println!("embargo released {:?} after its time (across a restart)", at.duration_since(embargo).unwrap());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(t.feed_counts().await.get("500153"), Some(&1), "the story that expired while held is never delivered");
}

#[tokio::test]
async fn a_correction_reaches_old_receivers_after_an_audience_change_and_never_overtakes() {
    let t = TestSystem::start().await;
    let mut v1 = story_json("fix-me", "511083", json!({"partners": true}));
    v1["embargoUntil"] = json!(rfc3339_in(1.5));
    submit(&t, &v1).await;
    // Version 2 names another audience and has no embargo: it must wait behind version 1.
    let mut v2 = story_json("fix-me", "511083", json!({"counties": ["500101"]}));
    v2["version"] = json!(2);
    v2["headline"] = json!("更正：联合采访时间为周五");
    submit(&t, &v2).await;
    eventually("both versions are published", || async { t.published_count().await == 2 }).await;

    let versions = |feed: Vec<bashu_proto::story::v1::StoryDelivery>| -> Vec<u32> {
        feed.iter().map(|d| d.story.as_ref().unwrap().version).collect()
    };
    assert_eq!(versions(t.feed_of("500153").await), [1, 2], "the old receiver gets the correction, after the original");
    assert_eq!(versions(t.feed_of("500101").await), [2], "the new audience gets the correction");

    // An older version arriving late never goes back to a receiver that has a newer one.
    let mut late = story_json("late", "511083", json!({"partners": true}));
    late["version"] = json!(3);
    submit(&t, &late).await;
    let mut older = late.clone();
    older["version"] = json!(2);
    submit(&t, &older).await;
    eventually("published", || async { t.published_count().await == 4 }).await;
    let late_versions: Vec<u32> = t
        .feed_of("500153")
        .await
        .iter()
        .filter(|d| d.story.as_ref().unwrap().id == "late")
        .map(|d| d.story.as_ref().unwrap().version)
        .collect();
    assert_eq!(late_versions, [3]);
}

#[tokio::test]
async fn a_kill_asks_every_receiver_to_take_it_down_and_tracks_who_confirmed() {
    let t = TestSystem::start().await;
    submit(&t, &story_json("kill-me", "510703", json!({"alliances": ["fujiang"]}))).await;
    let mut kill = story_json("kill-me", "510703", json!({"alliances": ["fujiang"]}));
    kill["version"] = json!(2);
    kill["status"] = json!("PUBLICATION_STATUS_CANCELED");
    submit(&t, &kill).await;
    eventually("both versions are published", || async { t.published_count().await == 2 }).await;
    let receivers: Vec<&str> = FUJIANG.iter().copied().filter(|c| *c != "510703").collect();
    for county in &receivers[..3] {
        t.bus
            .publish(&TakedownConfirmation {
                story_id: "kill-me".into(),
                version: 2,
                county: county.to_string(),
                origin_county: "510703".into(),
                confirmed_at: None,
            })
            .await
            .unwrap();
    }
    let mut admin = TakedownServiceClient::new(t.operator_channel().await);
    eventually("three confirmations are recorded", || {
        let mut admin = admin.clone();
        async move {
            let takedowns =
                admin.list_takedowns(ListTakedownsRequest { missing_only: true }).await.unwrap().into_inner().takedowns;
            takedowns.len() == 1 && takedowns[0].confirmed.len() == 3
        }
    })
    .await;
    let takedown = admin
        .list_takedowns(ListTakedownsRequest { missing_only: false })
        .await
        .unwrap()
        .into_inner()
        .takedowns
        .remove(0);
    let mut confirmed: Vec<String> = receivers[..3].iter().map(|c| c.to_string()).collect();
    confirmed.sort();
    let mut missing: Vec<String> = receivers[3..].iter().map(|c| c.to_string()).collect();
    missing.sort();
    assert_eq!(takedown.confirmed.iter().map(|c| c.county.clone()).collect::<Vec<_>>(), confirmed);
    assert_eq!(takedown.missing, missing);
    assert_eq!((takedown.story_id.as_str(), takedown.version), ("kill-me", 2));
}

/// What a test endpoint received: (story id, version, timestamp header, signature header, body).
type Received = Arc<Mutex<Vec<(String, u32, String, String, Vec<u8>)>>>;

async fn endpoint(behaviour: &'static str, received: Received) -> String {
    use axum::{
        http::{HeaderMap, StatusCode},
        routing::post,
    };
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let received = received.clone();
            async move {
                let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                let ninjs: Value = serde_json::from_slice(&body).unwrap_or_default();
                let id = ninjs["uri"].as_str().unwrap_or("").rsplit(':').next().unwrap_or("").to_owned();
                let version = ninjs["version"].as_str().unwrap_or("0").parse().unwrap_or(0);
                received.lock().unwrap().push((
                    id,
                    version,
                    header("Bashu-Webhook-Timestamp"),
                    header("Bashu-Webhook-Signature"),
                    body.to_vec(),
                ));
                match behaviour {
                    "slow" => {
                        tokio::time::sleep(Duration::from_millis(400)).await;
                        StatusCode::NO_CONTENT
                    }
                    "dead" => StatusCode::SERVICE_UNAVAILABLE,
                    "refuses" => StatusCode::BAD_REQUEST,
                    _ => StatusCode::OK,
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}/hook")
}

/// The receiver's side, written here independently of Bashu's code.
fn verifies(secret: &[u8], timestamp: &str, signature: &str, body: &[u8]) -> bool {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected = hex::encode(mac.finalize().into_bytes());
    signature.strip_prefix("v1=") == Some(expected.as_str())
}

#[tokio::test]
async fn webhooks_are_signed_in_order_isolated_retried_and_dead_lettered() {
    let t = TestSystem::start_configured(&Target::ALL, |config| {
        config.distribution.webhooks.timeout_ms = 2_000;
        config.distribution.webhooks.retry =
            bashu_bus::RetryConfig { ack_wait_ms: 5_000, max_deliver: 3, backoff_ms: vec![100, 200] };
    })
    .await;
    let secret = b"a webhook secret of at least 32 bytes!".to_vec();
    let (healthy, slow, dead, refuses) =
        (Received::default(), Received::default(), Received::default(), Received::default());
    let store = t.registry_store().await;
    for (county, behaviour, received) in [
        ("510727", "ok", &healthy),
        ("510781", "slow", &slow),
        ("510704", "dead", &dead),
        ("510722", "refuses", &refuses),
    ] {
        let url = endpoint(behaviour, received.clone()).await;
        store
            .put_webhook(
                Webhook {
                    county: county.into(),
                    url,
                    secret: secret.clone(),
                    format: WebhookFormat::Ninjs as i32,
                    registered_at: None,
                },
                &t.config.egress,
            )
            .await
            .unwrap();
    }
    let feeds = t.bus.operations().stream(bashu_bus::FEEDS).await.unwrap();
    eventually("every webhook sender is running", || async {
        let mut all = true;
        for county in ["510727", "510781", "510704", "510722"] {
            all &= feeds.consumer_info(format!("webhook-{county}")).await.is_ok();
        }
        all
    })
    .await;

    for i in 0..5 {
        submit(&t, &story_json(&format!("hook-{i}"), "510703", json!({"alliances": ["fujiang"]}))).await;
    }
    eventually("the healthy endpoint has all five", || async { healthy.lock().unwrap().len() == 5 }).await;
    let slow_when_healthy_done = slow.lock().unwrap().len();
    eventually("the slow endpoint has all five", || async { slow.lock().unwrap().len() == 5 }).await;
    eventually("every failed delivery is dead-lettered", || async {
        t.bus.operations().dead_letters().await.unwrap().len() == 10
    })
    .await;

    let order = |received: &Received| received.lock().unwrap().iter().map(|r| r.0.clone()).collect::<Vec<_>>();
    let expected: Vec<String> = (0..5).map(|i| format!("hook-{i}")).collect();
    assert_eq!(order(&healthy), expected, "in order");
    assert_eq!(order(&slow), expected, "in order, however slow");
    assert!(
        slow_when_healthy_done < 5,
        "the healthy endpoint finished first: the slow one had {slow_when_healthy_done}"
    );
    for (_, _, timestamp, signature, body) in healthy.lock().unwrap().iter() {
        assert!(verifies(&secret, timestamp, signature, body), "the signature verifies");
        assert!(!verifies(b"another secret, also 32 bytes long", timestamp, signature, body));
    }
    let ninjs: Value = serde_json::from_slice(&healthy.lock().unwrap()[0].4).unwrap();
    assert_eq!(bashu_ninjs::validate_profile(&ninjs), Ok(()), "webhooks send the Bashu ninjs profile");
    assert_eq!(ninjs["altIds"][0], serde_json::json!({"role": "bashu:origin-county", "value": "510703"}));
    assert_eq!(ninjs["headlines"][0]["value"], "测试稿件 hook-0");

    assert_eq!(dead.lock().unwrap().len(), 15, "three attempts for each of five deliveries");
    assert_eq!(refuses.lock().unwrap().len(), 5, "a 400 is not retried");
    let letters = t.bus.operations().dead_letters().await.unwrap();
    assert_eq!(
        letters
            .iter()
            .filter(|l| {
                l.consumer == "webhook-510704"
                    && l.reason.starts_with("webhook_unavailable: ")
                    && l.reason.contains("503")
                    && l.attempts == 3
            })
            .count(),
        5
    );
    assert_eq!(
        letters
            .iter()
            .filter(|l| {
                l.consumer == "webhook-510722"
                    && l.reason.starts_with("webhook_rejected: ")
                    && l.reason.contains("400")
                    && l.attempts == 1
            })
            .count(),
        5
    );
}

#[tokio::test]
async fn a_webhook_cannot_point_inside_the_network_or_skip_tls() {
    use bashu_proto::admin::v1::registry_service_client::RegistryServiceClient;
    // Production's policy: public addresses only, https only.
    let t = TestSystem::start_configured(&Target::ALL, |config| {
        config.egress = bashu_egress::Config::default();
        config.distribution.webhooks.retry =
            bashu_bus::RetryConfig { ack_wait_ms: 5_000, max_deliver: 2, backoff_ms: vec![100] };
    })
    .await;
    let mut admin = RegistryServiceClient::new(t.operator_channel().await);
    let webhook = |url: &str| Webhook {
        county: "510727".into(),
        url: url.into(),
        secret: vec![7; 32],
        format: 0,
        registered_at: None,
    };
    for (url, reason) in [
        ("https://127.0.0.1:9/hook", "not a public address"),
        ("https://[::ffff:127.0.0.1]:9/hook", "not a public address"),
        ("https://169.254.169.254/latest/meta-data", "not a public address"),
        ("http://cms.example.cn/hook", "must be https"),
        ("ftp://cms.example.cn/hook", "not an http(s) URL"),
    ] {
        let refused = admin.put_webhook(webhook(url)).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{url}");
        assert!(
            refused.message().contains("url") && refused.message().contains(reason),
            "{url}: {}",
            refused.message()
        );
    }
    let settings = admin
        .get_county_settings(bashu_proto::admin::v1::GetCountySettingsRequest { county: "510727".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(settings.webhook, None, "nothing was stored");

    // A name is accepted when registered, and checked where it counts: when the sender resolves
    // it. This one resolves to loopback only, so nothing is posted and the delivery is a dead
    // letter that says why.
    let received = Received::default();
    let inside = endpoint("ok", received.clone()).await.replace("http://127.0.0.1", "https://localhost");
    admin.put_webhook(webhook(&inside)).await.expect("a name is accepted");
    submit(&t, &story_json("inside-1", "510703", json!({"counties": ["510727"]}))).await;
    eventually("the delivery to the inside name is dead-lettered", || async {
        t.bus.operations().dead_letters().await.unwrap().iter().any(|l| l.consumer == "webhook-510727")
    })
    .await;
    let letters = t.bus.operations().dead_letters().await.unwrap();
    let letter = letters.iter().find(|l| l.consumer == "webhook-510727").unwrap();
    assert!(letter.reason.contains("resolves to no public address"), "{}", letter.reason);
    assert!(received.lock().unwrap().is_empty(), "the inside endpoint was reached");
}

#[tokio::test]
async fn a_webhook_gets_every_kind_of_feed_message_each_labelled_and_signed() {
    let rules = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(rules.path(), json!({"lexicon": [{"term": "禁词", "action": "reject"}]}).to_string()).unwrap();
    let t = TestSystem::start_configured(&Target::ALL, |config| {
        config.moderation.rules_file = Some(rules.path().to_owned());
    })
    .await;
    // What the county's endpoint received: (event header, delivery id, signature checks, body).
    type Received = Vec<(String, String, bool, Vec<u8>)>;
    let received: Arc<Mutex<Received>> = Arc::default();
    let secret = b"a webhook secret of at least 32 bytes!".to_vec();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let (received, secret) = (received.clone(), secret.clone());
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let (received, secret) = (received.clone(), secret.clone());
                async move {
                    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                    let signed = verifies(
                        &secret,
                        &header("Bashu-Webhook-Timestamp"),
                        &header("Bashu-Webhook-Signature"),
                        &body,
                    );
                    received.lock().unwrap().push((
                        header("Bashu-Webhook-Event"),
                        header("Bashu-Delivery-Id"),
                        signed,
                        body.to_vec(),
                    ));
                    axum::http::StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    t.registry_store()
        .await
        .put_webhook(
            Webhook { county: "511083".into(), url, secret, format: WebhookFormat::Ninjs as i32, registered_at: None },
            &t.config.egress,
        )
        .await
        .unwrap();
    let feeds = t.bus.operations().stream(bashu_bus::FEEDS).await.unwrap();
    eventually("the webhook sender is running", || async { feeds.consumer_info("webhook-511083").await.is_ok() }).await;

    // 荣昌区 shares a story with its partner 隆昌市; 隆昌市's own story is rejected by the rules.
    submit(&t, &story_json("from-partner", "500153", json!({"partners": true}))).await;
    let mut refused = story_json("refused", "511083", json!({"partners": true}));
    refused["body"] = json!("这篇稿件含有禁词，会被拒绝。");
    submit(&t, &refused).await;
    eventually("both reached the endpoint", || async { received.lock().unwrap().len() == 2 }).await;

    let received = received.lock().unwrap().clone();
    let story = received.iter().find(|r| r.0 == "story").expect("the story, labelled story");
    assert_eq!(story.1, "feed.511083.500153.from-partner.1");
    assert!(story.2, "the story's signature verifies");
    let ninjs: Value = serde_json::from_slice(&story.3).unwrap();
    assert_eq!(ninjs["altIds"][0]["value"], "500153");
    let decision = received.iter().find(|r| r.0 == "decision").expect("the decision, labelled decision");
    assert_eq!(decision.1, "decision.511083.refused.1.VERDICT_REJECTED");
    assert!(decision.2, "the decision's signature verifies");
    let notice: Value = serde_json::from_slice(&decision.3).unwrap();
    assert_eq!(notice["county"], "511083");
    assert_eq!(notice["decision"]["verdict"], "VERDICT_REJECTED", "{notice}");
    assert_eq!(notice["decision"]["story"]["id"], "refused");
    assert!(notice["decision"]["reason"].as_str().unwrap().contains("禁词"), "{notice}");
    assert!(t.bus.operations().dead_letters().await.unwrap().is_empty(), "nothing was dead-lettered");
}

#[tokio::test]
async fn a_county_speaks_only_for_itself_about_stories_and_garbage_it_sends_is_dead_lettered() {
    use bashu_proto::story::v1::StoryUse;
    use prost::Message as _;
    let t = TestSystem::start().await;
    // 隆昌市 shares a story with its partner 荣昌区, then withdraws it: 荣昌区 is asked to take it down.
    submit(&t, &story_json("withdrawn", "511083", json!({"partners": true}))).await;
    let mut kill = story_json("withdrawn", "511083", json!({"partners": true}));
    kill["version"] = json!(2);
    kill["status"] = json!("PUBLICATION_STATUS_CANCELED");
    submit(&t, &kill).await;
    eventually("both versions are published", || async { t.published_count().await == 2 }).await;

    // 渝中区's own system, a plain NATS client on its own subjects, speaking for 荣昌区.
    let yuzhong = async_nats::jetstream::new(async_nats::connect(t.nats.url()).await.unwrap());
    let on = |kind: &str| format!("{}.bashu.story.{kind}.500103", t.config.nats.prefix);
    let confirmation = TakedownConfirmation {
        story_id: "withdrawn".into(),
        version: 2,
        county: "500153".into(),
        origin_county: "511083".into(),
        confirmed_at: None,
    };
    let reuse = StoryUse {
        story_id: "withdrawn".into(),
        version: 1,
        county: "500153".into(),
        origin_county: "511083".into(),
        ..Default::default()
    };
    for (kind, payload) in [
        ("takedown", confirmation.encode_to_vec()),
        ("used", reuse.encode_to_vec()),
        ("receipt", b"\xff\xfe not a receipt at all".to_vec()),
    ] {
        yuzhong.publish(on(kind), payload.into()).await.unwrap().await.unwrap();
    }

    eventually("all three are dead-lettered", || async { t.bus.operations().dead_letters().await.unwrap().len() == 3 })
        .await;
    let letters = t.bus.operations().dead_letters().await.unwrap();
    let reason_of = |consumer: &str| letters.iter().find(|l| l.consumer == consumer).map(|l| l.reason.clone()).unwrap();
    assert!(
        reason_of("takedown-tracker")
            .contains("county 500103 sent a takedown confirmation for county 500153: a county speaks only for itself"),
        "{}",
        reason_of("takedown-tracker")
    );
    assert!(reason_of("county-uses").contains("county 500103 sent a reuse note for county 500153"));
    assert!(reason_of("county-receipts").contains("not a story receipt"), "{}", reason_of("county-receipts"));

    // Nothing changed for 荣昌区: its takedown is still missing, and no reuse counts for it.
    let takedowns = TakedownServiceClient::new(t.operator_channel().await)
        .list_takedowns(ListTakedownsRequest { missing_only: false })
        .await
        .unwrap()
        .into_inner()
        .takedowns;
    assert_eq!(takedowns[0].missing, ["500153"]);
    assert!(takedowns[0].confirmed.is_empty());
    let ledger: Vec<bashu_bus::Stored<bashu_bus::StoryLedgerEvent>> = t
        .bus
        .operations()
        .read_range(
            bashu_bus::STORIES,
            vec![t.bus.subjects().all_story_ledger()],
            SystemTime::now() - Duration::from_secs(600),
            SystemTime::now(),
        )
        .await
        .unwrap()
        .0;
    assert!(
        !ledger.iter().any(|s| matches!(
            &s.event,
            bashu_bus::StoryLedgerEvent::Used(_) | bashu_bus::StoryLedgerEvent::TakedownConfirmed(_)
        )),
        "the report reads neither as 荣昌区's"
    );
}
