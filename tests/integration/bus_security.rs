//! Least privilege on the bus, against a real nats-server running the authorization that
//! `bashu nats-auth` generates: each county, desk and service is its own NATS identity, and the
//! server refuses whatever that identity may not do. The whole system runs under its service
//! identities meanwhile, and a revoked county is refused within seconds.

use std::{sync::Arc, time::Duration};

use async_nats::jetstream;
use bashu_bus::{Bus, FEEDS, STORIES, Subjects, Topology, county_inbox};
use bashu_proto::{
    registry::v1::{NatsUser, NatsUserKind},
    story::v1::{StoryDelivery, StoryReceipt},
};
use bashu_registry::{Counties, NatsUsers};
use bashu_test_support::NatsServer;
use bashu_tests::{PATIENCE, SecuredSystem, eventually, story_json, test_config};
use futures::StreamExt;
use prost::Message as _;
use serde_json::json;
use tokio::sync::mpsc;

const A: &str = "511083";
const B: &str = "500153";

/// A client connected as one identity, with the server's permission errors collected.
struct Identity {
    client: async_nats::Client,
    js: jetstream::Context,
    violations: mpsc::UnboundedReceiver<String>,
}

impl Identity {
    async fn connect(url: &str, seed: &str, inbox: Option<String>) -> Result<Self, async_nats::ConnectError> {
        let (sender, violations) = mpsc::unbounded_channel();
        let mut options = async_nats::ConnectOptions::with_nkey(seed.to_owned()).event_callback(move |event| {
            let sender = sender.clone();
            async move {
                if let async_nats::Event::ServerError(error) = event {
                    let _ = sender.send(error.to_string());
                }
            }
        });
        if let Some(inbox) = inbox {
            options = options.custom_inbox_prefix(inbox);
        }
        let client = options.connect(url).await?;
        let js = jetstream::ContextBuilder::new().timeout(Duration::from_secs(2)).build(client.clone());
        Ok(Self { client, js, violations })
    }

    /// Runs `attempt` and says whether the server refused it with a permissions violation.
    async fn refused<F: std::future::Future>(&mut self, attempt: F) -> bool {
        while self.violations.try_recv().is_ok() {}
        let _ = tokio::time::timeout(Duration::from_secs(3), attempt).await;
        let _ = self.client.flush().await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while let Ok(Some(violation)) = tokio::time::timeout_at(deadline, self.violations.recv()).await {
            if violation.to_lowercase().contains("permissions violation") {
                return true;
            }
        }
        false
    }
}

#[tokio::test]
async fn each_identity_may_do_only_its_own_part() {
    // The whole system under its service identities, as an operator sets it up.
    let prefix = format!("t{}", bashu_test_support::free_port());
    let secured = SecuredSystem::start(&prefix, |_| {}).await;
    let (nats, url, subjects, system, admin) =
        (&secured.nats, secured.url.clone(), secured.subjects.clone(), &secured.system, &secured.admin);
    assert!(
        Identity::connect(&url, &nkeys::KeyPair::new_user().seed().unwrap(), None).await.is_err(),
        "an unknown identity is refused"
    );
    let users = NatsUsers::open(admin, Arc::new(Counties::builtin().unwrap())).await.unwrap();
    let a = users.issue(NatsUserKind::County, A, "CMS of 隆昌").await.unwrap();
    // B's identity through the admin API, as an operator issues it (bashuctl token issue-nats).
    let mut credentials = bashu_proto::admin::v1::credential_service_client::CredentialServiceClient::new(
        bashu_tests::bearer_channel(&format!("http://{}", system.grpc_addr), bashu_tests::OPERATOR_TOKEN)
            .await
            .unwrap(),
    );
    let issued = credentials
        .issue_nats_user(bashu_proto::admin::v1::IssueNatsUserRequest {
            county: B.into(),
            label: "CMS of 梁平".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(issued.inbox_prefix, county_inbox(B));
    let b = bashu_registry::IssuedNatsUser { record: issued.record.unwrap(), seed: issued.seed };
    let desk = users.issue(NatsUserKind::Desk, "sc-provincial", "duty desk").await.unwrap();
    let identity_usable = |seed: String, inbox: String| {
        let url = url.clone();
        async move { Identity::connect(&url, &seed, Some(inbox)).await.is_ok() }
    };
    eventually("the watcher wrote every identity and the server reloaded", || {
        identity_usable(b.seed.clone(), county_inbox(B))
    })
    .await;

    // A story from A reaches B, which reads it through its own consumer and confirms it.
    let token = bashu_registry::CountyTokens::open(admin, Arc::new(Counties::builtin().unwrap()))
        .await
        .unwrap()
        .issue(A, "test")
        .await
        .unwrap()
        .token;
    let answer = bashu::http_client()
        .post(format!("http://{}/v1/stories", system.http_addr))
        .bearer_auth(&token)
        .json(&story_json("secure-1", A, json!({"counties": [B]})))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.text().await.unwrap_or_default());
    let as_b = Identity::connect(&url, &b.seed, Some(county_inbox(B))).await.unwrap();
    let feeds = subjects.stream_name(FEEDS);
    let consumer: jetstream::consumer::PullConsumer =
        as_b.js.get_consumer_from_stream(format!("feed-{B}"), &feeds).await.expect("B reads its own consumer");
    let delivery = tokio::time::timeout(PATIENCE, async {
        loop {
            let mut batch = consumer.fetch().max_messages(10).expires(Duration::from_secs(1)).messages().await.unwrap();
            if let Some(Ok(message)) = batch.next().await {
                message.ack().await.unwrap();
                return StoryDelivery::decode(message.payload.clone()).unwrap();
            }
        }
    })
    .await
    .expect("B's feed has the story");
    assert_eq!(delivery.story.unwrap().id, "secure-1");
    let receipt = StoryReceipt {
        county: B.into(),
        origin_county: A.into(),
        story_id: "secure-1".into(),
        version: 1,
        ..Default::default()
    };
    as_b.js
        .publish(subjects.story_receipt(B).unwrap(), receipt.encode_to_vec().into())
        .await
        .unwrap()
        .await
        .expect("B's receipt is stored");

    // An alert reaches B's alert consumer, and an operator's call works: every service did its
    // part under its own identity without one refusal.
    let desk_of_region = system.demo.desks.iter().find(|d| d.id == "chengdu-chongqing").unwrap();
    let cap: String = format!(
        r#"<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>SECURE-1</identifier><sender>chengdu-chongqing@bashu.example</sender><sent>2026-11-28T10:00:00+08:00</sent><status>Exercise</status><msgType>Alert</msgType><scope>Public</scope><info><category>Met</category><event>暴雨</event><urgency>Immediate</urgency><severity>Severe</severity><certainty>Likely</certainty><area><areaDesc>川渝</areaDesc><geocode><valueName>GB/T 2260</valueName><value>{B}</value></geocode></area></info></alert>"#
    );
    let answer = desk_of_region
        .post_alert(&bashu::http_client(), &format!("http://{}", system.http_addr), cap.clone())
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.text().await.unwrap_or_default());
    let alert_feeds = subjects.stream_name(bashu_bus::ALERT_FEEDS);
    let alerts_of_b: jetstream::consumer::PullConsumer = as_b
        .js
        .get_consumer_from_stream(format!("alerts-{B}"), &alert_feeds)
        .await
        .expect("B reads its alert consumer");
    tokio::time::timeout(PATIENCE, async {
        loop {
            let mut batch =
                alerts_of_b.fetch().max_messages(10).expires(Duration::from_secs(1)).messages().await.unwrap();
            if let Some(Ok(message)) = batch.next().await {
                message.ack().await.unwrap();
                return;
            }
        }
    })
    .await
    .expect("B's alert feed has the alert");
    // A joint coverage plan of A's that B follows: B reads the plan's channel through its own
    // channel consumer, under its own identity.
    let tokens = bashu_registry::CountyTokens::open(admin, Arc::new(Counties::builtin().unwrap())).await.unwrap();
    let b_token = tokens.issue(B, "test").await.unwrap().token;
    let http = bashu::http_client();
    let coverage = |token: &str, path: &str, body: serde_json::Value| {
        http.post(format!("http://{}/v1/coverage/plans{path}", system.http_addr))
            .bearer_auth(token.to_owned())
            .json(&body)
            .send()
    };
    let due = |hours: i64| {
        let at = time::OffsetDateTime::now_utc() + time::Duration::hours(hours);
        at.format(&time::format_description::well_known::Rfc3339).unwrap()
    };
    let plan = json!({
        "planId": "secure-plan", "topic": "安全测试", "category": "CATEGORY_MAJOR_PROJECT",
        "windowStart": due(-1), "windowEnd": due(48),
        "phases": [{"name": "only", "title": "唯一阶段", "dueAt": due(24), "kinds": ["CONTRIBUTION_KIND_TEXT"]}],
        "invitees": {"counties": [B]},
        "weights": {"proposerSharePercent": 0, "phaseSharePercent": {"only": 100}, "kindPoints": {"text": 1}}
    });
    for (who, path, body) in [
        (&token, "", plan),
        (&b_token, "/secure-plan/answer", json!({"answer": "accepted"})),
        (&token, "/secure-plan/state", json!({"state": "active"})),
        (&b_token, "/secure-plan/channel", json!({"subscribe": true})),
    ] {
        let answer = coverage(who, path, body).await.unwrap();
        assert!(answer.status().is_success(), "{path}: {}", answer.text().await.unwrap_or_default());
    }
    let mut planned = story_json("secure-plan-1", A, json!({"counties": [B]}));
    planned["coverage"] = json!({"planId": "secure-plan", "phase": "only", "kind": "CONTRIBUTION_KIND_TEXT"});
    let answer = http
        .post(format!("http://{}/v1/stories", system.http_addr))
        .bearer_auth(&token)
        .json(&planned)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.text().await.unwrap_or_default());
    let channels = subjects.stream_name(bashu_bus::CHANNELS);
    let channel_of_b: jetstream::consumer::PullConsumer = as_b
        .js
        .get_consumer_from_stream(format!("channel-{B}"), &channels)
        .await
        .expect("B reads its channel consumer");
    let item = tokio::time::timeout(PATIENCE, async {
        loop {
            let mut batch =
                channel_of_b.fetch().max_messages(10).expires(Duration::from_secs(1)).messages().await.unwrap();
            if let Some(Ok(message)) = batch.next().await {
                message.ack().await.unwrap();
                return bashu_proto::coverage::v1::ChannelItem::decode(message.payload.clone()).unwrap();
            }
        }
    })
    .await
    .expect("B's channel has the plan's story");
    assert_eq!((item.county.as_str(), item.story.unwrap().id.as_str()), (B, "secure-plan-1"));

    let operator = bashu_tests::bearer_channel(&format!("http://{}", system.grpc_addr), bashu_tests::OPERATOR_TOKEN)
        .await
        .unwrap();
    bashu_proto::admin::v1::bus_health_service_client::BusHealthServiceClient::new(operator)
        .get_bus_health(bashu_proto::admin::v1::GetBusHealthRequest::default())
        .await
        .expect("bus health under the admin identity");
    let refused_services: Vec<String> =
        nats.log().lines().filter(|l| l.contains("Violation")).map(str::to_owned).collect();
    assert!(refused_services.is_empty(), "the services were refused: {refused_services:#?}");

    // What A may not do, each attempt counted.
    let mut as_a = Identity::connect(&url, &a.seed, Some(county_inbox(A))).await.unwrap();
    let stories = subjects.stream_name(STORIES);
    let mut attempts = 0;
    let mut refusals = 0;
    macro_rules! refused {
        ($who:expr, $what:expr, $attempt:expr) => {{
            attempts += 1;
            if $who.refused($attempt).await {
                refusals += 1;
            } else {
                println!("NOT refused: {}", $what);
            }
        }};
    }
    let (client, js) = (as_a.client.clone(), as_a.js.clone());
    refused!(as_a, "publish B's receipt", client.publish(subjects.story_receipt(B).unwrap(), "x".into()));
    refused!(as_a, "publish B's alert acknowledgement", client.publish(subjects.alert_ack(B).unwrap(), "x".into()));
    refused!(as_a, "publish an alert", client.publish(subjects.alert_issued("sc-provincial").unwrap(), "x".into()));
    refused!(
        as_a,
        "submit an alert as a desk",
        client.publish(subjects.alert_submit("sc-provincial").unwrap(), "x".into())
    );
    refused!(as_a, "publish a submission", client.publish(subjects.story_submitted(A).unwrap(), "x".into()));
    refused!(as_a, "subscribe to B's feed", client.subscribe(subjects.feed_story(B).unwrap()));
    refused!(as_a, "subscribe to every feed", client.subscribe(subjects.all_feeds()));
    refused!(as_a, "subscribe to B's live alerts", client.subscribe(subjects.alert_live(B).unwrap()));
    refused!(as_a, "subscribe to another inbox", client.subscribe("_INBOX.>"));
    refused!(
        as_a,
        "create a consumer on FEEDS",
        js.create_consumer_on_stream(
            jetstream::consumer::pull::Config {
                durable_name: Some("sneaky".into()),
                filter_subject: subjects.feed_story(B).unwrap().into(),
                ..Default::default()
            },
            feeds.as_str(),
        )
    );
    refused!(
        as_a,
        "create an ephemeral consumer on STORIES",
        js.create_consumer_on_stream(jetstream::consumer::pull::Config::default(), stories.as_str())
    );
    refused!(
        as_a,
        "fetch from B's consumer",
        client.publish(format!("$JS.API.CONSUMER.MSG.NEXT.{feeds}.feed-{B}"), "1".into())
    );
    refused!(
        as_a,
        "fetch from B's channel consumer",
        client.publish(format!("$JS.API.CONSUMER.MSG.NEXT.{channels}.channel-{B}"), "1".into())
    );
    refused!(as_a, "subscribe to B's channels", client.subscribe(subjects.channels_of(B).unwrap()));
    refused!(
        as_a,
        "publish into B's channel",
        client.publish(subjects.channel_item(B, "secure-plan").unwrap(), "x".into())
    );
    refused!(
        as_a,
        "direct get from STORIES",
        client.publish(format!("$JS.API.DIRECT.GET.{stories}"), "{\"seq\":1}".into())
    );
    refused!(
        as_a,
        "message get from FEEDS",
        client.publish(format!("$JS.API.STREAM.MSG.GET.{feeds}"), "{\"seq\":1}".into())
    );
    refused!(as_a, "stream info", client.publish(format!("$JS.API.STREAM.INFO.{feeds}"), "".into()));
    refused!(as_a, "delete a stream", client.publish(format!("$JS.API.STREAM.DELETE.{feeds}"), "".into()));
    refused!(
        as_a,
        "read the credentials bucket",
        client.publish(format!("$JS.API.DIRECT.GET.{}", subjects.stream_name("KV_CREDENTIALS")), "".into())
    );
    refused!(
        as_a,
        "write the registry",
        client.publish(format!("$KV.{}.desk.x", subjects.stream_name("REGISTRY")), "x".into())
    );

    let mut as_desk = Identity::connect(&url, &desk.seed, Some(bashu_bus::desk_inbox("sc-provincial"))).await.unwrap();
    let desk_client = as_desk.client.clone();
    refused!(
        as_desk,
        "a desk publishes a story",
        desk_client.publish(subjects.story_submitted(A).unwrap(), "x".into())
    );
    refused!(
        as_desk,
        "a desk publishes an alert event directly",
        desk_client.publish(subjects.alert_issued("sc-provincial").unwrap(), "x".into())
    );
    refused!(
        as_desk,
        "a desk submits as another desk",
        desk_client.publish(subjects.alert_submit("cq-municipal").unwrap(), "x".into())
    );

    // The desk's own part: a signed alert over NATS on its own subject, checked like over HTTP.
    let provincial = system.demo.desks.iter().find(|d| d.id == "sc-provincial").unwrap();
    let submit_as_desk = |signed_by: [u8; 32]| {
        let xml = cap
            .replace("SECURE-1", "SECURE-NATS")
            .replace(B, A)
            .replace("chengdu-chongqing@bashu.example", "sc-provincial@bashu.example");
        let now = bashu_proto::time::now().seconds;
        let signature = bashu_alerts::signature::sign(&signed_by, "sc-provincial", now, xml.as_bytes());
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(bashu_alerts::TIMESTAMP_HEADER, now.to_string().as_str());
        headers.insert(
            bashu_alerts::SIGNATURE_HEADER,
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, signature).as_str(),
        );
        let (client, subject) = (desk_client.clone(), subjects.alert_submit("sc-provincial").unwrap());
        async move {
            let answer =
                client.request_with_headers(subject, headers, xml.into()).await.expect("the alert service answers");
            answer.headers.unwrap().get(bashu_alerts::STATUS_HEADER).unwrap().as_str().to_owned()
        }
    };
    assert_eq!(submit_as_desk([7; 32]).await, "401", "a wrong signature is refused over NATS too");
    assert_eq!(submit_as_desk(provincial.secret_key_bytes()).await, "202");

    for (service, forbidden, what) in [
        ("ingest", subjects.story_decided(A).unwrap(), "ingest publishes moderation's decision"),
        ("moderation", subjects.feed_story(B).unwrap(), "moderation writes a county's feed"),
        ("distribution", subjects.alert_issued("sc-provincial").unwrap(), "distribution issues an alert"),
        ("alerts", subjects.story_submitted(A).unwrap(), "alerts submits a story"),
        ("nats-auth", subjects.story_receipt(B).unwrap(), "nats-auth publishes a receipt"),
    ] {
        let mut as_service = Identity::connect(&url, &secured.service_seed(service), None).await.unwrap();
        let client = as_service.client.clone();
        refused!(as_service, what, client.publish(forbidden.clone(), "x".into()));
    }
    println!("least privilege: {refusals} of {attempts} forbidden attempts refused");
    assert_eq!(refusals, attempts);

    // A's own part still works: its receipt and its consumer's info.
    assert!(
        !as_a
            .refused(client.publish(subjects.story_receipt(A).unwrap(), StoryReceipt::default().encode_to_vec().into()))
            .await
    );
    let own = format!("feed-{A}");
    as_a.js
        .get_consumer_from_stream::<jetstream::consumer::pull::Config, _, _>(own, &feeds)
        .await
        .expect("A reads its own consumer's info");

    // Revoked: refused on the next connection within seconds.
    let revoked_at = tokio::time::Instant::now();
    credentials
        .revoke_nats_user(bashu_proto::admin::v1::RevokeNatsUserRequest { public_key: a.record.public_key.clone() })
        .await
        .expect("A's identity existed");
    let remaining: Vec<NatsUser> = users.list().await.unwrap();
    assert!(remaining.iter().all(|user| user.public_key != a.record.public_key), "{remaining:?}");
    eventually("A's identity is refused", || async {
        Identity::connect(&url, &a.seed, Some(county_inbox(A))).await.is_err()
    })
    .await;
    let refused_after = revoked_at.elapsed();
    // The reload also closes the connection A had open; its client's reconnection is refused.
    eventually("A's open connection is closed", || async {
        as_a.client.connection_state() != async_nats::connection::State::Connected
    })
    .await;
    println!(
        "revocation: a new connection as A refused after {refused_after:?}, its open connection closed after {:?}",
        revoked_at.elapsed()
    );
    assert!(identity_usable(b.seed.clone(), county_inbox(B)).await, "B is not affected");
}

#[tokio::test]
async fn services_reach_nats_over_tls_when_a_ca_is_configured() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca) = (dir.path().join("cert.pem"), dir.path().join("key.pem"), dir.path().join("ca.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    std::fs::write(&ca, certified.cert.pem()).unwrap();
    let tls =
        format!("tls {{ cert_file: {:?}, key_file: {:?} }}", cert.display().to_string(), key.display().to_string());
    let nats = NatsServer::start_with_config(None, &tls).await;

    let mut config = test_config(&nats.url(), "tls");
    config.nats.tls_ca_file = Some(ca);
    let credentials = config.nats.credentials("ingest").unwrap();
    let bus = tokio::time::timeout(
        PATIENCE,
        Bus::connect_as(&nats.url(), "tls-test", &credentials, Subjects::new("tls").unwrap(), Topology::default()),
    )
    .await
    .expect("connected over TLS in time")
    .unwrap();
    bus.provision().await.expect("JetStream over TLS");

    let plain = async_nats::ConnectOptions::new().connect(nats.url()).await;
    assert!(plain.is_err(), "a client without TLS is refused");
    let untrusted = async_nats::ConnectOptions::new().require_tls(true).connect(nats.url()).await;
    assert!(untrusted.is_err(), "a client that does not trust the certificate gives up");
}
