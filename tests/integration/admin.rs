//! The admin API as operators use it: roles checked per method from one table, the audit log,
//! the collaboration report, replay, dead letters and the bus's health.

use std::{collections::BTreeMap, time::SystemTime};

use bashu::Target;
use bashu_admin::{METHOD_ROLES, Need};
use bashu_proto::{
    admin::v1::{
        CollaborationReportRequest, DeadLetterRef, GetBusHealthRequest, ListAuditEventsRequest, ListCountiesRequest,
        ListDeadLettersRequest, ReplayRequest, audit_service_client::AuditServiceClient,
        bus_health_service_client::BusHealthServiceClient, credential_service_client::CredentialServiceClient,
        dead_letter_service_client::DeadLetterServiceClient, registry_service_client::RegistryServiceClient,
        replay_service_client::ReplayServiceClient, report_service_client::ReportServiceClient,
    },
    alert::v1::{AlertIssued, AlertReceipt, GetAlertStatusRequest},
    registry::v1::{Alliance, StaffRole},
    story::v1::{StoryDelivery, StoryUse},
    time::{from_system_time, to_system_time},
};
use bashu_tests::{TestSystem, eventually, story_json};
use serde_json::json;
use tonic::Code;

use crate::alerts::{cap, gbt};

/// Issues a staff token as the bootstrap operator.
async fn staff_token(t: &TestSystem, name: &str, role: StaffRole, levels: Vec<u32>, desk: &str) -> String {
    t.issue_staff_token(name, role, levels, desk).await.1
}

/// Calls any method by its path with an empty message, as a generic client would.
async fn call(t: &TestSystem, method: &str, token: Option<&str>) -> Code {
    let channel = tonic::transport::Channel::from_shared(t.grpc_endpoint()).unwrap().connect().await.unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(());
    if let Some(token) = token {
        request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let path = method.parse().unwrap();
    match grpc.server_streaming(request, path, codec).await {
        Ok(response) => {
            let mut stream = response.into_inner();
            match stream.message().await {
                Ok(_) => Code::Ok,
                Err(status) => status.code(),
            }
        }
        Err(status) => status.code(),
    }
}

#[tokio::test]
async fn every_admin_method_refuses_callers_without_a_token_or_without_the_role() {
    let t = TestSystem::start_with(&[Target::Admin, Target::Moderation]).await;
    let roles = [
        ("viewer", staff_token(&t, "值班观察员", StaffRole::Viewer, vec![], "").await, StaffRole::Viewer),
        ("desk", staff_token(&t, "绵阳值班", StaffRole::Desk, vec![], "mianyang").await, StaffRole::Desk),
        ("reviewer", staff_token(&t, "初审员", StaffRole::Reviewer, vec![1], "").await, StaffRole::Reviewer),
        ("operator", staff_token(&t, "运维", StaffRole::Operator, vec![], "").await, StaffRole::Operator),
    ];

    // The table covers every method of every guarded service, and nothing else.
    let descriptors: prost_types::FileDescriptorSet =
        prost::Message::decode(bashu_proto::FILE_DESCRIPTOR_SET).expect("descriptors");
    let mut served = Vec::new();
    for file in &descriptors.file {
        for service in &file.service {
            let full = format!("{}.{}", file.package(), service.name());
            if full.starts_with("bashu.admin.v1.") || full == "bashu.moderation.v1.ReviewService" {
                served.extend(service.method.iter().map(|m| format!("/{full}/{}", m.name())));
            }
        }
    }
    let mut listed: Vec<String> = METHOD_ROLES.iter().map(|(m, _)| m.to_string()).collect();
    served.sort();
    listed.sort();
    assert_eq!(served, listed, "METHOD_ROLES must list exactly the guarded methods");

    let mut refusals = 0;
    for (method, need) in METHOD_ROLES {
        assert_eq!(call(&t, method, None).await, Code::Unauthenticated, "{method} without a token");
        assert_eq!(call(&t, method, Some("bashu_staff_00000000_guess")).await, Code::Unauthenticated, "{method}");
        for (label, token, role) in &roles {
            let code = call(&t, method, Some(token)).await;
            let allowed = match need {
                Need::Viewer => true,
                Need::Reviewer => *role == StaffRole::Reviewer,
                Need::Operator => *role == StaffRole::Operator,
            };
            if allowed {
                assert!(
                    !matches!(code, Code::Unauthenticated | Code::PermissionDenied),
                    "{label} may call {method}, got {code:?}"
                );
            } else {
                assert_eq!(code, Code::PermissionDenied, "{label} calling {method}");
                refusals += 1;
            }
        }
    }
    assert!(refusals > METHOD_ROLES.len(), "the roles must refuse something: {refusals}");

    // A revoked token is refused on its next call.
    let mut credentials = CredentialServiceClient::new(t.operator_channel().await);
    let tokens = credentials
        .list_staff_tokens(bashu_proto::admin::v1::ListStaffTokensRequest {})
        .await
        .unwrap()
        .into_inner()
        .tokens;
    assert_eq!(tokens.len(), 4);
    assert!(tokens.iter().all(|t| t.sha256.is_empty()), "digests never leave the server");
    let viewer = tokens.iter().find(|t| t.role() == StaffRole::Viewer).unwrap();
    credentials
        .revoke_staff_token(bashu_proto::admin::v1::RevokeStaffTokenRequest { id: viewer.id.clone() })
        .await
        .unwrap();
    assert_eq!(
        call(&t, "/bashu.admin.v1.RegistryService/ListAlliances", Some(&roles[0].1)).await,
        Code::Unauthenticated
    );
}

#[tokio::test]
async fn every_change_is_audited_with_who_before_and_after_and_no_secret() {
    let t = TestSystem::start_with(&[Target::Admin]).await;
    let operator = staff_token(&t, "李运维", StaffRole::Operator, vec![], "").await;
    let mut registry = RegistryServiceClient::new(t.staff_channel(&operator).await);
    let alliance = Alliance {
        id: "chengyu".into(),
        name: "成渝".into(),
        members: vec!["511083".into(), "500101".into()],
        note: String::new(),
    };
    registry.put_alliance(alliance.clone()).await.unwrap();
    registry
        .put_alliance(Alliance { members: vec!["511083".into(), "500101".into(), "500153".into()], ..alliance })
        .await
        .unwrap();
    let issued = CredentialServiceClient::new(t.staff_channel(&operator).await)
        .issue_county_token(bashu_proto::admin::v1::IssueCountyTokenRequest {
            county: "500153".into(),
            label: "CMS".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .token;

    let mut audit = AuditServiceClient::new(t.operator_channel().await);
    let events = audit.list_audit_events(ListAuditEventsRequest { limit: 10 }).await.unwrap().into_inner().events;
    let methods: Vec<&str> = events.iter().map(|e| e.method.rsplit('/').next().unwrap()).collect();
    // Newest first; the bootstrap operator's issue of 李运维's token is the oldest.
    assert_eq!(methods, ["IssueCountyToken", "PutAlliance", "PutAlliance", "IssueStaffToken"]);
    assert_eq!(events[0].actor, "李运维");
    assert_eq!(events[0].role, "STAFF_ROLE_OPERATOR");
    assert_eq!(events[3].actor, "bootstrap-operator");
    let change = &events[1];
    assert_eq!(change.target, "alliance chengyu");
    let before: serde_json::Value = serde_json::from_str(&change.before_json).unwrap();
    let after: serde_json::Value = serde_json::from_str(&change.after_json).unwrap();
    assert_eq!(before["members"], json!(["500101", "511083"]));
    assert_eq!(after["members"], json!(["500101", "500153", "511083"]));
    assert!(events[2].before_json.is_empty(), "a new alliance had nothing before");
    let every_byte = serde_json::to_string(&events.iter().map(|e| &e.after_json).collect::<Vec<_>>()).unwrap();
    assert!(!every_byte.contains(&issued) && !every_byte.contains(&operator), "no token in the audit log");

    // Viewers may not read the audit log; refusals change nothing.
    let viewer = staff_token(&t, "观察员", StaffRole::Viewer, vec![], "").await;
    let refused = AuditServiceClient::new(t.staff_channel(&viewer).await)
        .list_audit_events(ListAuditEventsRequest { limit: 10 })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let refused = RegistryServiceClient::new(t.staff_channel(&viewer).await)
        .delete_alliance(bashu_proto::admin::v1::DeleteAllianceRequest { id: "chengyu".into() })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let alliances =
        registry.list_alliances(bashu_proto::admin::v1::ListAlliancesRequest {}).await.unwrap().into_inner().alliances;
    assert_eq!(alliances.len(), 2, "the demo alliance and chengyu");
}

/// Two admin replicas changing one alliance at the same time, many times over: the audit log's
/// entries form one chain, each `before` exactly one other entry's `after`, though neither
/// replica's live view need have caught up with the other's writes.
#[tokio::test]
async fn two_admin_replicas_changing_one_record_at_once_audit_exactly_what_each_replaced() {
    let t = TestSystem::start_with(&[Target::Admin]).await;
    let (second, shutdown) = t.start_beside(&[Target::Admin]).await;
    let replicas = [
        RegistryServiceClient::new(t.operator_channel().await),
        RegistryServiceClient::new(
            bashu_tests::bearer_channel(&format!("http://{}", second.grpc_addr), bashu_tests::OPERATOR_TOKEN)
                .await
                .unwrap(),
        ),
    ];
    const CHANGES: usize = 16;
    let changes = (0..CHANGES).map(|i| {
        let mut replica = replicas[i % 2].clone();
        async move {
            let alliance = Alliance {
                id: "yuxi".into(),
                name: "渝西".into(),
                members: vec!["500101".into(), "500102".into()],
                note: format!("change {i}"),
            };
            replica.put_alliance(alliance).await.map(drop)
        }
    });
    for answer in futures::future::join_all(changes).await {
        answer.unwrap();
    }

    let events = AuditServiceClient::new(t.operator_channel().await)
        .list_audit_events(ListAuditEventsRequest { limit: 100 })
        .await
        .unwrap()
        .into_inner()
        .events;
    let note = |json: &str| -> Option<String> {
        (!json.is_empty()).then(|| serde_json::from_str::<serde_json::Value>(json).unwrap()["note"].to_string())
    };
    let replaced: Vec<(Option<String>, String)> = events
        .iter()
        .filter(|e| e.target == "alliance yuxi")
        .map(|e| (note(&e.before_json), note(&e.after_json).unwrap()))
        .collect();
    assert_eq!(replaced.len(), CHANGES);
    // Follow the chain from the change that created the alliance: it must visit every change once.
    let mut current = None;
    for step in 0..CHANGES {
        let next: Vec<&String> = replaced.iter().filter(|(before, _)| *before == current).map(|(_, a)| a).collect();
        assert_eq!(next.len(), 1, "step {step}: exactly one change replaced {current:?}: {replaced:?}");
        current = Some(next[0].clone());
    }
    shutdown.cancel();
    assert!(second.stopped(std::time::Duration::from_secs(10)).await);
}

async fn submit(t: &TestSystem, id: &str, origin: &str, counties: &[&str]) {
    let (status, answer) = t.post_story(&story_json(id, origin, json!({ "counties": counties }))).await;
    assert_eq!(status, 202, "{answer}");
}

async fn wait_published(t: &TestSystem, count: u64) {
    eventually(&format!("{count} versions are published"), || async { t.published_count().await == count }).await;
}

fn line<'a>(
    lines: &'a [bashu_proto::admin::v1::CollaborationLine],
    id: &str,
) -> &'a bashu_proto::admin::v1::CollaborationLine {
    lines.iter().find(|l| l.id == id).unwrap_or_else(|| panic!("no line {id}"))
}

#[tokio::test]
async fn the_collaboration_report_matches_a_scripted_scenario_exactly() {
    let t = TestSystem::start().await;
    let start = SystemTime::now() - std::time::Duration::from_secs(1);
    let mut registry = RegistryServiceClient::new(t.operator_channel().await);
    registry
        .put_alliance(Alliance {
            id: "chengyu".into(),
            name: "成渝".into(),
            members: vec!["511083".into(), "500101".into()],
            note: String::new(),
        })
        .await
        .unwrap();

    // Across the border both ways, a correction, and a story that stays in Sichuan.
    submit(&t, "s1", "511083", &["500101", "500153"]).await;
    submit(&t, "s2", "500101", &["511083"]).await;
    submit(&t, "s3", "510703", &["510781"]).await;
    wait_published(&t, 3).await;
    let mut correction = story_json("s1", "511083", json!({ "counties": ["500101", "500153"] }));
    correction["version"] = json!(2);
    correction["headline"] = json!("更正：测试稿件 s1");
    let (status, answer) = t.post_story(&correction).await;
    assert_eq!(status, 202, "{answer}");
    wait_published(&t, 4).await;
    // 500153 reports that it used s1.
    t.bus
        .publish(&StoryUse {
            story_id: "s1".into(),
            version: 2,
            county: "500153".into(),
            origin_county: "511083".into(),
            used_at: Some(bashu_proto::time::now()),
            placement: "https://www.example.cn/news/1".into(),
        })
        .await
        .unwrap();

    // An alert to Mianyang's counties: two acknowledge, one of them sent a receipt first.
    let (status, accepted) =
        t.issue_alert("mianyang", &cap("REPORT-1", "Alert", "Exercise", "Severe", None, &gbt("5107"))).await;
    assert_eq!(status, 202, "{accepted}");
    let key = accepted["alertKey"].as_str().unwrap().to_owned();
    let targeted = accepted["counties"].as_array().unwrap().len() as u32;
    t.bus
        .publish(&AlertReceipt {
            identifier: "REPORT-1".into(),
            county: "510781".into(),
            received_at: Some(bashu_proto::time::now()),
            alert_key: key.clone(),
        })
        .await
        .unwrap();
    for county in ["510781", "510703"] {
        let (status, body) = t.acknowledge(&key, county, "值班员").await;
        assert_eq!(status, 202, "{body}");
    }
    let mut board =
        bashu_proto::admin::v1::alert_board_service_client::AlertBoardServiceClient::new(t.operator_channel().await);
    let chain = loop {
        let chain =
            board.get_alert_status(GetAlertStatusRequest { alert_key: key.clone() }).await.unwrap().into_inner();
        if chain.counties.iter().filter(|c| c.acknowledged_at.is_some()).count() == 2
            && chain.counties.iter().any(|c| c.received_at.is_some())
        {
            break chain;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    // The expected times, from the ledger's acceptance time and the board's county times.
    let issued: Vec<AlertIssued> =
        t.bus.operations().read_all(bashu_bus::ALERTS, &t.bus.subjects().all_alert_issued()).await.unwrap();
    let accepted_at = to_system_time(issued[0].accepted_at.as_ref().unwrap()).unwrap();
    let millis = |t: &Option<bashu_proto::Timestamp>| {
        to_system_time(t.as_ref().unwrap()).unwrap().duration_since(accepted_at).unwrap().as_millis() as u64
    };
    let county = |code: &str| chain.counties.iter().find(|c| c.county == code).unwrap();
    let ack_781 = millis(&county("510781").acknowledged_at);
    let ack_703 = millis(&county("510703").acknowledged_at);
    let receipt_781 = millis(&county("510781").received_at);

    let mut reports = ReportServiceClient::new(t.operator_channel().await);
    let report = reports
        .get_collaboration_report(CollaborationReportRequest {
            from: Some(from_system_time(start)),
            to: Some(from_system_time(SystemTime::now() + std::time::Duration::from_secs(1))),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.counties.len(), 220);
    let figures = |id: &str| {
        let l = line(&report.counties, id);
        [
            l.contributed,
            l.contributed_cross_province,
            l.received,
            l.received_cross_province,
            l.reused,
            l.corrections_issued,
            l.corrections_received,
        ]
    };
    // contributed, of them across, received, of them across, reused, corrections issued, received
    assert_eq!(figures("511083"), [1, 1, 1, 1, 0, 1, 0]);
    assert_eq!(figures("500101"), [1, 1, 1, 1, 0, 0, 1]);
    assert_eq!(figures("500153"), [0, 0, 1, 1, 1, 0, 1]);
    assert_eq!(figures("510703"), [1, 0, 0, 0, 0, 0, 0]);
    assert_eq!(figures("510781"), [0, 0, 1, 0, 0, 0, 0]);
    assert_eq!(figures("510105"), [0; 7]);
    let alliance = line(&report.alliances, "chengyu");
    assert_eq!([alliance.contributed, alliance.received, alliance.received_cross_province], [2, 2, 2]);
    let region = report.region.as_ref().unwrap();
    assert_eq!([region.contributed, region.contributed_cross_province, region.received, region.reused], [3, 2, 3, 1]);

    let alerts_781 = line(&report.counties, "510781").alerts.unwrap();
    assert_eq!((alerts_781.targeted, alerts_781.received, alerts_781.acknowledged, alerts_781.missed), (1, 1, 1, 0));
    assert_eq!((alerts_781.receipt_median_ms, alerts_781.ack_median_ms), (receipt_781, ack_781));
    let alerts = region.alerts.unwrap();
    assert_eq!((alerts.targeted, alerts.acknowledged, alerts.missed), (targeted, 2, targeted - 2));
    // Nearest rank over two values: the median is the smaller, the 95th the larger.
    assert_eq!((alerts.ack_median_ms, alerts.ack_p95_ms), (ack_781.min(ack_703), ack_781.max(ack_703)));
    assert_eq!(line(&report.counties, "500101").alerts.unwrap().targeted, 0);

    // A period before any of it holds nothing.
    let empty = reports
        .get_collaboration_report(CollaborationReportRequest {
            from: Some(from_system_time(start - std::time::Duration::from_secs(3600))),
            to: Some(from_system_time(start)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(empty.region.unwrap().contributed, 0);
    let backwards = reports
        .get_collaboration_report(CollaborationReportRequest {
            from: Some(from_system_time(start)),
            to: Some(from_system_time(start - std::time::Duration::from_secs(1))),
        })
        .await
        .unwrap_err();
    assert_eq!(backwards.code(), Code::InvalidArgument);
}

async fn replay(t: &TestSystem, request: ReplayRequest) -> Result<u64, tonic::Status> {
    let mut client = ReplayServiceClient::new(t.operator_channel().await);
    let mut stream = client.replay(request).await?.into_inner();
    let mut last = None;
    while let Some(progress) = stream.message().await? {
        last = Some(progress);
    }
    let last = last.expect("a final progress message");
    assert!(last.done);
    Ok(last.replayed)
}

#[tokio::test]
async fn replay_redelivers_exactly_the_chosen_range_to_exactly_one_county() {
    let t = TestSystem::start().await;
    let pause = || tokio::time::sleep(std::time::Duration::from_millis(1200));
    // Three stories to the same two counties, with clear gaps between them.
    submit(&t, "r1", "511083", &["500153", "500101"]).await;
    wait_published(&t, 1).await;
    pause().await;
    let from = SystemTime::now();
    submit(&t, "r2", "511083", &["500153", "500101"]).await;
    submit(&t, "r3", "511083", &["500153", "500101"]).await;
    wait_published(&t, 3).await;
    pause().await;
    let to = SystemTime::now();
    submit(&t, "r4", "511083", &["500153", "500101"]).await;
    wait_published(&t, 4).await;
    let before = t.feed_counts().await;
    let feed = t.bus.subjects().feed_story("500153").unwrap();
    let subject = |c: &str| c.to_owned();
    assert_eq!(before.get(&subject("500153")), Some(&4));

    let replayed = replay(
        &t,
        ReplayRequest {
            county: "500153".into(),
            from: Some(from_system_time(from)),
            to: Some(from_system_time(to)),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(replayed, 2);
    let after = t.feed_counts().await;
    assert_eq!(after.get(&subject("500153")), Some(&6));
    let mut others = after.clone();
    others.remove(&subject("500153"));
    let mut others_before: BTreeMap<_, _> = before.clone();
    others_before.remove(&subject("500153"));
    assert_eq!(others, others_before, "no other county's feed changed");
    let deliveries: Vec<StoryDelivery> = t.bus.operations().read_all(bashu_bus::FEEDS, &feed).await.unwrap();
    let ids: Vec<&str> = deliveries.iter().map(|d| d.story.as_ref().unwrap().id.as_str()).collect();
    assert_eq!(ids, ["r1", "r2", "r3", "r4", "r2", "r3"]);

    // One story: its newest version the county received, once.
    let replayed = replay(
        &t,
        ReplayRequest {
            county: "500153".into(),
            origin_county: "511083".into(),
            story_id: "r4".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(replayed, 1);
    assert_eq!(t.feed_counts().await.get(&subject("500153")), Some(&7));
    let never = replay(
        &t,
        ReplayRequest {
            county: "510105".into(),
            origin_county: "511083".into(),
            story_id: "r4".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(never.code(), Code::NotFound);
    let neither = replay(&t, ReplayRequest { county: "500153".into(), ..Default::default() }).await.unwrap_err();
    assert_eq!(neither.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn dead_letters_are_listed_inspected_requeued_and_discarded() {
    use bashu_bus::headers;
    let t = TestSystem::start().await;
    let subject = t.bus.subjects().story_submitted("511083").unwrap();
    // A good submission a consumer gave up on during an outage, as the dead-letter stream holds it.
    let (status, _) = t.post_story(&story_json("kept", "511083", json!({ "counties": ["500153"] }))).await;
    assert_eq!(status, 202);
    wait_published(&t, 1).await;
    let submitted: Vec<bashu_proto::story::v1::StorySubmitted> =
        t.bus.operations().read_all(bashu_bus::STORIES, &subject).await.unwrap();
    // A poison message: moderation cannot decode it and dead-letters it at once.
    let mut poison = async_nats::HeaderMap::new();
    poison.insert(headers::MSG_ID, "poison-1");
    poison.insert(headers::EVENT_TYPE, "bashu.story.v1.StorySubmitted");
    t.bus
        .jetstream()
        .publish_with_headers(subject.clone(), poison, b"\xff\xff not protobuf".as_slice().into())
        .await
        .unwrap()
        .await
        .unwrap();
    let mut lost = submitted.into_iter().find(|s| s.story.is_some()).unwrap();
    lost.story.as_mut().unwrap().id = "lost".into();
    let mut dead = async_nats::HeaderMap::new();
    dead.insert(headers::MSG_ID, "dlq-test-1");
    dead.insert(headers::EVENT_TYPE, "bashu.story.v1.StorySubmitted");
    dead.insert(headers::DLQ_REASON, "bus unavailable (test)");
    dead.insert(headers::DLQ_CONSUMER, "moderation");
    dead.insert(headers::DLQ_SUBJECT, subject.as_str());
    dead.insert(headers::DLQ_ATTEMPTS, "5");
    t.bus
        .jetstream()
        .publish_with_headers(
            t.bus.subjects().dead_letter("moderation").unwrap(),
            dead,
            prost::Message::encode_to_vec(&lost).into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();

    let mut letters = DeadLetterServiceClient::new(t.operator_channel().await);
    let lister = letters.clone();
    let list = || {
        let mut letters = lister.clone();
        async move { letters.list_dead_letters(ListDeadLettersRequest::default()).await.unwrap().into_inner().dead_letters }
    };
    eventually("the poison message is dead-lettered", || async { list().await.len() == 2 }).await;
    let all = list().await;
    let poison = all.iter().find(|l| l.reason != "bus unavailable (test)").unwrap().clone();
    let outage = all.iter().find(|l| l.reason == "bus unavailable (test)").unwrap().clone();
    assert_eq!(poison.original_subject, subject);

    let detail = letters.get_dead_letter(DeadLetterRef { sequence: outage.sequence }).await.unwrap().into_inner();
    let shown: serde_json::Value = serde_json::from_str(&detail.payload_json).unwrap();
    assert_eq!(shown["story"]["id"], "lost");
    let raw = letters.get_dead_letter(DeadLetterRef { sequence: poison.sequence }).await.unwrap().into_inner();
    assert_eq!(raw.payload, b"\xff\xff not protobuf");
    assert!(raw.payload_json.is_empty());

    // Requeued, the lost story goes through; discarded, the poison is gone.
    let requeued = letters.requeue_dead_letter(DeadLetterRef { sequence: outage.sequence }).await.unwrap().into_inner();
    assert_eq!(requeued.subject, subject);
    wait_published(&t, 2).await;
    letters.discard_dead_letter(DeadLetterRef { sequence: poison.sequence }).await.unwrap();
    assert!(list().await.is_empty());
    let gone = letters.requeue_dead_letter(DeadLetterRef { sequence: outage.sequence }).await.unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    let audited = AuditServiceClient::new(t.operator_channel().await)
        .list_audit_events(ListAuditEventsRequest { limit: 2 })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert!(audited[0].target.contains("discarded") && audited[1].target.contains("requeued"), "{audited:?}");
}

#[tokio::test]
async fn bus_health_names_the_counties_that_are_not_reading() {
    let t = TestSystem::start().await;
    submit(&t, "h1", "511083", &["500153", "500101"]).await;
    wait_published(&t, 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let viewer = staff_token(&t, "观察员", StaffRole::Viewer, vec![], "").await;
    let mut health = BusHealthServiceClient::new(t.staff_channel(&viewer).await);
    let answer = health.get_bus_health(GetBusHealthRequest { silent_after_seconds: 1 }).await.unwrap().into_inner();
    assert_eq!(answer.not_reading, ["500101", "500153"]);
    let feed = answer.consumers.iter().find(|c| c.name == "feed-500153").unwrap();
    assert_eq!((feed.county.as_str(), feed.pending), ("500153", 1));
    assert!(feed.last_active.is_none());
    let stories = answer.streams.iter().find(|s| s.name == "STORIES").unwrap();
    assert!(stories.messages >= 3, "submitted, decided, published: {stories:?}");
    // With the default threshold (an hour) nobody is silent yet.
    let answer = health.get_bus_health(GetBusHealthRequest::default()).await.unwrap().into_inner();
    assert!(answer.not_reading.is_empty());
}

#[tokio::test]
async fn with_certificates_configured_the_grpc_listener_speaks_only_tls() {
    use tonic::transport::{Certificate, Channel, ClientTlsConfig};
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
    let dir = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, certified.cert.pem()).unwrap();
    std::fs::write(&key_file, certified.signing_key.serialize_pem()).unwrap();
    let t = TestSystem::start_configured(&[Target::Admin], |config| {
        config.grpc.tls = Some(bashu::config::TlsConfig { cert_file, key_file });
    })
    .await;
    let address = format!("https://localhost:{}", t.system.grpc_addr.port());

    let tls =
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(certified.cert.pem())).domain_name("localhost");
    let channel = Channel::from_shared(address.clone()).unwrap().tls_config(tls).unwrap().connect().await.unwrap();
    let value: tonic::metadata::MetadataValue<_> = format!("Bearer {}", bashu_tests::OPERATOR_TOKEN).parse().unwrap();
    let mut registry = RegistryServiceClient::with_interceptor(channel, move |mut request: tonic::Request<()>| {
        request.metadata_mut().insert("authorization", value.clone());
        Ok(request)
    });
    let counties = registry.list_counties(ListCountiesRequest { within: "50".into() }).await.unwrap().into_inner();
    assert_eq!(counties.counties.len(), 37);

    // Plain HTTP/2 gets nowhere, and a client that does not trust the certificate neither.
    let plain = Channel::from_shared(t.grpc_endpoint()).unwrap().connect().await;
    if let Ok(plain) = plain {
        let refused = RegistryServiceClient::new(plain).list_counties(ListCountiesRequest::default()).await;
        assert!(refused.is_err(), "a plaintext call was answered");
    }
    let untrusted =
        Channel::from_shared(address).unwrap().tls_config(ClientTlsConfig::new().domain_name("localhost")).unwrap();
    assert!(untrusted.connect().await.is_err(), "an untrusted certificate was accepted");
}

/// The stable code a refused admin call carries in its metadata (docs/operations.md).
fn error_code(status: &tonic::Status) -> &str {
    status.metadata().get("bashu-error-code").and_then(|v| v.to_str().ok()).unwrap_or("(none)")
}

#[tokio::test]
async fn a_refused_admin_call_names_its_stable_code_beside_the_grpc_status() {
    let t = TestSystem::start_with(&[Target::Admin]).await;
    let mut registry = RegistryServiceClient::new(t.operator_channel().await);
    let mut credentials = CredentialServiceClient::new(t.operator_channel().await);
    let viewer = staff_token(&t, "观察员", StaffRole::Viewer, vec![], "").await;

    let malformed = registry
        .get_county(bashu_proto::admin::v1::GetCountyRequest { code: "51108".into() })
        .await
        .expect_err("a five-digit code");
    assert_eq!((malformed.code(), error_code(&malformed)), (Code::InvalidArgument, "malformed_code"));

    let unknown = registry
        .get_county(bashu_proto::admin::v1::GetCountyRequest { code: "519999".into() })
        .await
        .expect_err("no such county");
    assert_eq!((unknown.code(), error_code(&unknown)), (Code::NotFound, "unknown_county"));

    let missing = registry
        .delete_alliance(bashu_proto::admin::v1::DeleteAllianceRequest { id: "no-such-alliance".into() })
        .await
        .expect_err("no such alliance");
    assert_eq!((missing.code(), error_code(&missing)), (Code::NotFound, "not_found"));

    let too_long = credentials
        .issue_county_token(bashu_proto::admin::v1::IssueCountyTokenRequest {
            county: "500153".into(),
            label: "标".repeat(101),
        })
        .await
        .expect_err("a label over 100 characters");
    assert_eq!((too_long.code(), error_code(&too_long)), (Code::InvalidArgument, "invalid_argument"));
    assert!(too_long.message().starts_with("label:"), "{}", too_long.message());

    let forbidden = RegistryServiceClient::new(t.staff_channel(&viewer).await)
        .delete_alliance(bashu_proto::admin::v1::DeleteAllianceRequest { id: "chengyu".into() })
        .await
        .expect_err("a viewer may not change the registry");
    assert_eq!((forbidden.code(), error_code(&forbidden)), (Code::PermissionDenied, "permission_denied"));

    let anonymous = RegistryServiceClient::new(t.staff_channel("not-a-token").await)
        .list_counties(ListCountiesRequest::default())
        .await
        .expect_err("an unknown token");
    assert_eq!((anonymous.code(), error_code(&anonymous)), (Code::Unauthenticated, "unauthenticated"));
}
