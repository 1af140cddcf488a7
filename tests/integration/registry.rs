//! The registry through the admin gRPC API.

use bashu_proto::admin::v1::{
    GetCountyRequest, ListAlliancesRequest, ListCountiesRequest, registry_service_client::RegistryServiceClient,
};
use bashu_tests::TestSystem;

#[tokio::test]
async fn the_registry_has_220_units_resolves_old_codes_and_refuses_unknown_ones() {
    let t = TestSystem::start_with(&[bashu::Target::Admin]).await;
    let mut admin = RegistryServiceClient::new(t.operator_channel().await);

    let all = admin.list_counties(ListCountiesRequest { within: String::new() }).await.unwrap().into_inner();
    assert_eq!(all.counties.len(), 220);
    let sichuan = admin.list_counties(ListCountiesRequest { within: "51".into() }).await.unwrap().into_inner();
    assert_eq!(sichuan.counties.len(), 183);

    let longchang = admin.get_county(GetCountyRequest { code: "511028".into() }).await.unwrap().into_inner();
    let county = longchang.county.unwrap();
    assert_eq!((county.code.as_str(), county.name.as_str()), ("511083", "隆昌市"));
    assert_eq!(longchang.resolved_from, "511028");

    let unknown = admin.get_county(GetCountyRequest { code: "999999".into() }).await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    assert!(unknown.message().contains("999999 is not a county"), "{}", unknown.message());
    let malformed = admin.get_county(GetCountyRequest { code: "5110".into() }).await.unwrap_err();
    assert_eq!(malformed.code(), tonic::Code::InvalidArgument);

    let alliances = admin.list_alliances(ListAlliancesRequest {}).await.unwrap().into_inner().alliances;
    assert_eq!(alliances.len(), 1);
    assert_eq!(alliances[0].members.len(), 10);
}

#[tokio::test]
async fn registry_writes_need_the_operator_token_and_apply_to_the_next_story() {
    use bashu_proto::registry::v1::{Alliance, Webhook};
    use serde_json::json;
    let t = TestSystem::start().await;
    let mut admin = RegistryServiceClient::connect(t.grpc_endpoint()).await.unwrap();
    let alliance = Alliance {
        id: "chengyu".into(),
        name: "成渝（示例）".into(),
        members: vec!["511083".into(), "500101".into()],
        note: String::new(),
    };
    fn with_token<T>(token: &str, value: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(value);
        request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        request
    }

    assert_eq!(admin.put_alliance(alliance.clone()).await.unwrap_err().code(), tonic::Code::Unauthenticated);
    assert_eq!(
        admin.put_alliance(with_token("guess", alliance.clone())).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    let bad = Alliance { members: vec!["511083".into(), "999999".into()], ..alliance.clone() };
    let refused = admin.put_alliance(with_token(bashu_tests::OPERATOR_TOKEN, bad)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(refused.message().contains("members[1]"), "{}", refused.message());
    admin.put_alliance(with_token(bashu_tests::OPERATOR_TOKEN, alliance)).await.unwrap();

    bashu_tests::eventually("the next story uses the new alliance", || async {
        t.post_story(&bashu_tests::story_json("chengyu-1", "511083", json!({"alliances": ["chengyu"]}))).await.0 == 202
    })
    .await;
    bashu_tests::eventually("published", || async { t.published_count().await == 1 }).await;
    assert_eq!(t.feed_counts().await.get("500101"), Some(&1));

    let webhook = Webhook {
        county: "500101".into(),
        url: "http://127.0.0.1:9/hook".into(),
        secret: vec![7; 32],
        format: 0,
        registered_at: None,
    };
    let answer = admin.put_webhook(with_token(bashu_tests::OPERATOR_TOKEN, webhook)).await.unwrap().into_inner();
    assert!(answer.secret.is_empty(), "the secret is never sent back");
    assert_eq!(
        answer.format,
        bashu_proto::registry::v1::WebhookFormat::Ninjs as i32,
        "ninjs unless protobuf is asked for"
    );
}

#[tokio::test]
async fn known_tokens_are_checked_from_memory_and_a_revoked_one_fails_its_very_next_use() {
    use std::sync::{Arc, atomic::Ordering};

    use bashu_bus::{Bus, Subjects, Topology};
    use bashu_registry::{CountyTokens, CredentialCache, Refusal};
    let nats = bashu_test_support::NatsServer::start().await;
    let bus = Bus::connect(&nats.url(), "cache", Subjects::new("cache").unwrap(), Topology::default()).await.unwrap();
    let counties = Arc::new(bashu_registry::Counties::builtin().unwrap());
    let cache = CredentialCache::open(&bus).await.unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(cache.clone().follow(shutdown.clone()));
    bashu_tests::eventually("the cache has caught up with the bucket", || async { cache.is_current() }).await;
    let tokens = CountyTokens::open(&bus, counties).await.unwrap().with_cache(cache.clone());

    // Issued a moment ago: it works at once, whether or not the watch has brought it yet.
    let issued = tokens.issue("510781", "cache test").await.unwrap();
    assert_eq!(tokens.authenticate(&issued.token).await.unwrap(), Ok("510781".to_owned()));

    // Once the watch has it, checking it sends nothing to the server.
    let sent = || bus.client().statistics().out_messages.load(Ordering::Relaxed);
    bashu_tests::eventually("the watch has brought the token", || async {
        let before = sent();
        tokens.authenticate(&issued.token).await.unwrap() == Ok("510781".to_owned()) && sent() == before
    })
    .await;
    let before = sent();
    for _ in 0..200 {
        assert_eq!(tokens.authenticate(&issued.token).await.unwrap(), Ok("510781".to_owned()));
    }
    assert!(sent() - before < 10, "200 checks sent {} messages to the server", sent() - before);

    // Another process (its own connection and cache), checking the same tokens.
    let elsewhere_bus =
        Bus::connect(&nats.url(), "elsewhere", Subjects::new("cache").unwrap(), Topology::default()).await.unwrap();
    let elsewhere_cache = CredentialCache::open(&elsewhere_bus).await.unwrap();
    tokio::spawn(elsewhere_cache.clone().follow(shutdown.clone()));
    bashu_tests::eventually("the other cache has caught up", || async { elsewhere_cache.is_current() }).await;
    let elsewhere = CountyTokens::open(&elsewhere_bus, Arc::new(bashu_registry::Counties::builtin().unwrap()))
        .await
        .unwrap()
        .with_cache(elsewhere_cache);

    // Revoked, then used straight away, fifty times over: the revoking process refuses it every
    // time; the other process as soon as the change reaches it.
    let mut slowest = std::time::Duration::ZERO;
    for round in 0..50 {
        let issued = tokens.issue("510781", &format!("round {round}")).await.unwrap();
        for checker in [&tokens, &elsewhere] {
            assert_eq!(checker.authenticate(&issued.token).await.unwrap(), Ok("510781".to_owned()));
        }
        assert!(tokens.revoke("510781", &issued.record.id).await.unwrap());
        let revoked = std::time::Instant::now();
        assert_eq!(tokens.authenticate(&issued.token).await.unwrap(), Err(Refusal::Unknown), "round {round}");
        while elsewhere.authenticate(&issued.token).await.unwrap().is_ok() {
            assert!(revoked.elapsed() < bashu_tests::PATIENCE, "round {round}: the other process never saw it");
            tokio::task::yield_now().await;
        }
        slowest = slowest.max(revoked.elapsed());
    }
    println!("a revocation reached another process's token cache within {} µs (slowest of 50)", slowest.as_micros());
    shutdown.cancel();
}

fn desk(id: &str, senders: &[&str]) -> bashu_proto::registry::v1::Desk {
    bashu_proto::registry::v1::Desk {
        id: id.into(),
        name: format!("{id} desk"),
        public_key: vec![7; 32],
        areas: vec!["5107".into()],
        contact: "值班室".into(),
        senders: senders.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// Two operators on two admin replicas give one CAP sender to two desks at the same moment:
/// one desk gets it, the other is refused by name; freed senders (a deleted desk, a sender
/// dropped) can be given again at once.
#[tokio::test]
async fn one_cap_sender_goes_to_one_desk_even_when_two_operators_race_for_it() {
    let t = TestSystem::start_with(&[bashu::Target::Admin]).await;
    let (second, shutdown) = t.start_beside(&[bashu::Target::Admin]).await;
    let mut first = RegistryServiceClient::new(t.operator_channel().await);
    let mut other = RegistryServiceClient::new(
        bashu_tests::bearer_channel(&format!("http://{}", second.grpc_addr), bashu_tests::OPERATOR_TOKEN)
            .await
            .unwrap(),
    );
    for round in 0..8 {
        let sender = format!("mianyang-{round}@bashu.example");
        let (a, b) = tokio::join!(
            first.put_desk(desk(&format!("race-a-{round}"), &[&sender])),
            other.put_desk(desk(&format!("race-b-{round}"), &[&sender]))
        );
        let (won, lost) = match (a, b) {
            (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won.into_inner(), lost),
            (a, b) => panic!("round {round}: exactly one desk gets {sender}: {a:?} {b:?}"),
        };
        assert_eq!(lost.code(), tonic::Code::InvalidArgument);
        assert!(lost.message().contains(&format!("{sender} is desk {}'s sender", won.id)), "{}", lost.message());
        let desks = first.list_desks(bashu_proto::admin::v1::ListDesksRequest {}).await.unwrap().into_inner().desks;
        let holders: Vec<&str> = desks.iter().filter(|d| d.senders.contains(&sender)).map(|d| d.id.as_str()).collect();
        assert_eq!(holders, [won.id.as_str()], "round {round}");
    }

    // A deleted desk's sender, and a sender a desk no longer lists, are free at once.
    first.put_desk(desk("old", &["old@bashu.example", "kept@bashu.example"])).await.unwrap();
    first.put_desk(desk("old", &["kept@bashu.example"])).await.unwrap();
    other.put_desk(desk("new", &["old@bashu.example"])).await.expect("a dropped sender is free");
    let refused = other.put_desk(desk("new", &["old@bashu.example", "kept@bashu.example"])).await.unwrap_err();
    assert!(refused.message().contains("kept@bashu.example is desk old's sender"), "{}", refused.message());
    first.delete_desk(bashu_proto::admin::v1::DeleteDeskRequest { id: "old".into() }).await.unwrap();
    other
        .put_desk(desk("new", &["old@bashu.example", "kept@bashu.example"]))
        .await
        .expect("a deleted desk's senders are free");
    shutdown.cancel();
    assert!(second.stopped(std::time::Duration::from_secs(10)).await);
}

/// A writer that died between claiming a sender and writing its desk leaves a claim no desk
/// lists: honoured for the grace period (that writer may still be at work), then taken over.
#[tokio::test]
async fn a_sender_claim_left_by_a_dead_writer_lapses_after_its_grace() {
    use sha2::{Digest, Sha256};
    let t = TestSystem::start_with(&[]).await;
    let bucket = t.bus.registry().bucket().await.unwrap();
    let sender = "ghost@bashu.example";
    let key = format!("desk-sender.{}", hex::encode(Sha256::digest(sender.as_bytes())));
    bucket.create(&key, "ghost".into()).await.unwrap();

    let refused = t.registry_store().await.put_desk(desk("living", &[sender])).await.unwrap_err();
    assert!(refused.to_string().contains("senders[0]"), "{refused}");
    assert!(format!("{refused:?}").contains("is desk ghost's sender"), "{refused:?}");
    let taken = t.registry_store().await.with_sender_claim_grace(0).put_desk(desk("living", &[sender])).await.unwrap();
    assert_eq!(taken.stored.senders, [sender]);
    assert_eq!(bucket.get(&key).await.unwrap().as_deref(), Some(&b"living"[..]), "the claim is the living desk's");
}
