//! Emergency alerts end to end: CAP intake, authority, targeting, live and durable fan-out,
//! acknowledgement, escalation, and Update/Cancel chains.

use std::{collections::BTreeSet, time::Duration};

use bashu::Target;
use bashu_bus::{ALERT_FEEDS, ALERTS};
use bashu_proto::alert::v1::AlertDelivery;
use bashu_tests::{TestSystem, eventually};
use futures::StreamExt;
use prost::Message;
use serde_json::{Value, json};

const A1: &str = include_str!("../../services/alerts/fixtures/a1-advisory.xml");
const A2: &str = include_str!("../../services/alerts/fixtures/a2-thunderstorm.xml");
const A3_ORIGINAL: &str = include_str!("../../services/alerts/fixtures/a3-earthquake-original.xml");
const A3_UPDATE: &str = include_str!("../../services/alerts/fixtures/a3-earthquake-update.xml");
const A4: &str = include_str!("../../services/alerts/fixtures/a4-missing-child.xml");

/// A CAP 1.2 document with one info block and the given area content.
pub(crate) fn cap(
    identifier: &str,
    msg_type: &str,
    status: &str,
    severity: &str,
    references: Option<&str>,
    area: &str,
) -> String {
    let references = references.map(|r| format!("<references>{r}</references>")).unwrap_or_default();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier><sender>mianyang@bashu.example</sender><sent>2026-11-28T10:00:00+08:00</sent>
  <status>{status}</status><msgType>{msg_type}</msgType><scope>Public</scope>{references}
  <info><category>Met</category><event>暴雨</event><urgency>Immediate</urgency><severity>{severity}</severity>
    <certainty>Likely</certainty><headline>暴雨预警 {identifier}</headline>
    <area><areaDesc>测试区域</areaDesc>{area}</area></info>
</alert>"#
    )
}

pub(crate) fn gbt(code: &str) -> String {
    format!("<geocode><valueName>GB/T 2260</valueName><value>{code}</value></geocode>")
}

fn counties_of(answer: &Value) -> BTreeSet<String> {
    answer["counties"].as_array().expect("counties").iter().map(|c| c.as_str().unwrap().to_owned()).collect()
}

async fn issued_count(t: &TestSystem) -> u64 {
    t.bus.operations().subject_counts(ALERTS, &t.bus.subjects().all_alert_issued()).await.unwrap().values().sum()
}

async fn chain(t: &TestSystem, alert_key: &str) -> Value {
    let (status, chain) = t.get(&format!("/v1/alerts/{alert_key}")).await;
    assert_eq!(status, 200, "{chain}");
    chain
}

fn state_of<'a>(chain: &'a Value, county: &str) -> &'a Value {
    chain["counties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["county"] == county)
        .unwrap_or_else(|| panic!("{county} not in {chain}"))
}

#[tokio::test]
async fn the_appendix_a_examples_are_accepted_and_reach_exactly_their_counties() {
    let t = TestSystem::start_with(&[Target::Alerts]).await;
    let (status, a1) = t.issue_alert("sc-provincial", A1).await;
    assert_eq!(status, 202, "{a1}");
    assert_eq!(counties_of(&a1).len(), 183, "all of Sichuan");
    let (status, a2) = t.issue_alert("cq-municipal", A2).await;
    assert_eq!(status, 202, "{a2}");
    assert_eq!(
        counties_of(&a2),
        ["500111", "500118", "500153"].map(String::from).into(),
        "seats in the polygon, and the geocodes"
    );
    let (status, a3) = t.issue_alert("mianyang", A3_ORIGINAL).await;
    assert_eq!(status, 202, "{a3}");
    assert_eq!(counties_of(&a3), ["510727".to_string()].into(), "the seat within the circle");
    let (status, update) = t.issue_alert("mianyang", A3_UPDATE).await;
    assert_eq!(status, 202, "{update}");
    assert_eq!(update["chainKey"], a3["alertKey"], "the Update joins the chain of what it references");
    let (status, a4) = t.issue_alert("mianyang", A4).await;
    assert_eq!(status, 202, "{a4}");
    let mianyang: BTreeSet<String> =
        bashu_registry::Counties::builtin().unwrap().within("5107").map(|c| c.code.clone()).collect();
    assert_eq!(mianyang.len(), 9);
    assert_eq!(counties_of(&a4), mianyang, "exactly the counties of prefecture 5107, 绵阳市");

    let expected = 183 + 3 + 1 + 1 + 9;
    eventually("every durable copy is stored", || async {
        t.alert_feed_counts().await.values().sum::<u64>() == expected
    })
    .await;
    let counts = t.alert_feed_counts().await;
    assert_eq!(counts["510727"], 4, "the Sichuan advisory, the original, the update, the missing-child alert");
    assert_eq!(counts["500153"], 1);
    assert!(!counts.contains_key("500101"), "no Chongqing county outside the polygon");

    let (status, again) = t.issue_alert("mianyang", A4).await;
    assert_eq!((status, &again["duplicate"]), (200, &json!(true)), "the same document again is idempotent");
    assert_eq!(issued_count(&t).await, 5);
}

#[tokio::test]
async fn validation_judges_any_document_without_a_signature_and_delivers_nothing() {
    let t = TestSystem::start_with(&[Target::Alerts]).await;
    let (status, verdict) = t.post("/v1/alerts/validate", A4.as_bytes().to_vec(), "application/cap+xml").await;
    assert_eq!(status, 200);
    assert_eq!(verdict["valid"], true);
    assert_eq!(verdict["counties"].as_array().unwrap().len(), 9);

    let broken =
        A2.replace("<status>Actual</status>", "<status>Real</status>").replace("2026-11-28T09:30:00+08:00", "soon");
    let (status, verdict) = t.post("/v1/alerts/validate", broken.into_bytes(), "application/cap+xml").await;
    assert_eq!(status, 200);
    assert_eq!(verdict["valid"], false);
    let paths: Vec<&str> =
        verdict["problems"].as_array().unwrap().iter().map(|p| p["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["/alert/status", "/alert/info[1]/expires"]);

    // A document for somewhere else is valid CAP; it just reaches nobody here.
    let beijing = cap("BJ-1", "Alert", "Actual", "Severe", None, &gbt("110101"));
    let (_, verdict) = t.post("/v1/alerts/validate", beijing.into_bytes(), "application/cap+xml").await;
    assert_eq!((verdict["valid"].clone(), verdict["counties"].as_array().map(Vec::len)), (json!(true), Some(0)));
    assert_eq!(issued_count(&t).await, 0);
}

#[tokio::test]
async fn forged_tampered_replayed_and_out_of_area_alerts_are_refused_and_deliver_nothing() {
    let t = TestSystem::start_with(&[Target::Alerts]).await;
    let xml = cap("REFUSED-1", "Alert", "Actual", "Severe", None, &gbt("510703"));
    let now = bashu_proto::time::now().seconds;
    let mianyang = t.desk("mianyang");

    let (forger_secret, _) = bashu_alerts::signature::new_key_pair();
    let forged = bashu_alerts::signature::sign(&forger_secret, "mianyang", now, xml.as_bytes());
    let (status, answer) = t.post_alert("mianyang", now, &forged, xml.clone().into_bytes()).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("unauthenticated")), "an unregistered key");

    let signature = bashu_alerts::signature::sign(&mianyang.secret_key_bytes(), "mianyang", now, xml.as_bytes());
    let tampered = xml.replace("暴雨预警", "解除预警");
    let (status, _) = t.post_alert("mianyang", now, &signature, tampered.into_bytes()).await;
    assert_eq!(status, 401, "a tampered body");
    let (status, _) = t.post_alert("sc-provincial", now, &signature, xml.clone().into_bytes()).await;
    assert_eq!(status, 401, "a signature under another desk's name");
    let (status, _) = t.post_alert("nobody", now, &signature, xml.clone().into_bytes()).await;
    assert_eq!(status, 401, "an unknown desk");
    let stale = now - 3600;
    let old = bashu_alerts::signature::sign(&mianyang.secret_key_bytes(), "mianyang", stale, xml.as_bytes());
    let (status, answer) = t.post_alert("mianyang", stale, &old, xml.clone().into_bytes()).await;
    assert_eq!(status, 401, "a stale signature: {answer}");

    let outside = cap("REFUSED-2", "Alert", "Actual", "Severe", None, &format!("{}{}", gbt("510703"), gbt("500153")));
    let (status, answer) = t.issue_alert("mianyang", &outside).await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("500153"));
    let elsewhere = cap("REFUSED-3", "Alert", "Actual", "Severe", None, &gbt("110101"))
        .replace("mianyang@bashu.example", "chengdu-chongqing@bashu.example");
    let (status, answer) = t.issue_alert("chengdu-chongqing", &elsewhere).await;
    assert_eq!(
        (status, answer["error"]["problems"][0]["path"].as_str()),
        (400, Some("/alert/info[1]/area[1]/geocode[1]"))
    );

    assert_eq!(issued_count(&t).await, 0, "nothing refused was accepted");
    assert!(t.alert_feed_counts().await.is_empty(), "nothing refused was delivered");

    // A replay: the identifier of an accepted alert with other content.
    let (status, _) = t.issue_alert("mianyang", &xml).await;
    assert_eq!(status, 202);
    let (status, answer) = t.issue_alert("mianyang", &xml.replace("暴雨预警", "暴雨解除")).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (409, Some("identifier_reused")));
    assert_eq!(issued_count(&t).await, 1);
}

#[tokio::test]
async fn a_region_wide_alert_reaches_all_220_counties_live_and_durably() {
    let t = TestSystem::start_with(&[Target::Alerts]).await;
    let subjects = t.bus.subjects().clone();
    let mut live = t.bus.client().subscribe(subjects.all_alert_live()).await.unwrap();
    // A subscription is active once a message through it comes back (flush alone is no proof).
    let probe = subjects.alert_live("000000").unwrap();
    t.bus.client().publish(probe, "probe".into()).await.unwrap();
    assert_eq!(live.next().await.unwrap().payload.as_ref(), b"probe");

    let region = cap(
        "REGION-1",
        "Alert",
        "Exercise",
        "Extreme",
        None,
        "<geocode><valueName>bashu:region</valueName><value>all</value></geocode>",
    )
    .replace("mianyang@bashu.example", "chengdu-chongqing@bashu.example");
    let (status, answer) = t.issue_alert("chengdu-chongqing", &region).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(counties_of(&answer).len(), 220);

    let mut reached = BTreeSet::new();
    while reached.len() < 220 {
        let message = tokio::time::timeout(bashu_tests::PATIENCE, live.next()).await.expect("live deliveries").unwrap();
        let delivery = AlertDelivery::decode(message.payload).unwrap();
        assert_eq!(subjects.alert_live_county(&message.subject).unwrap(), delivery.county);
        assert_eq!(delivery.alert.unwrap().status(), bashu_proto::alert::v1::Status::Exercise, "visibly marked");
        reached.insert(delivery.county);
    }
    eventually("every durable copy is stored", || async { t.alert_feed_counts().await.len() == 220 }).await;
    assert!(t.alert_feed_counts().await.values().all(|count| *count == 1));
}

#[tokio::test]
async fn an_unacknowledged_county_is_resent_then_escalated_and_an_acknowledged_one_is_not() {
    let t = TestSystem::start_configured(&[Target::Alerts], |config| config.alerts.escalation.severe_ms = 600).await;
    let xml = cap("ESC-1", "Alert", "Actual", "Severe", None, &format!("{}{}", gbt("510703"), gbt("510781")));
    let (_, answer) = t.issue_alert("mianyang", &xml).await;
    let key = answer["alertKey"].as_str().unwrap().to_owned();
    let (status, ack) = t.acknowledge(&key, "510703", "王值班").await;
    assert_eq!(status, 202, "{ack}");

    eventually("江油市 is escalated", || async {
        t.get(&format!("/v1/alerts/{key}")).await.1["counties"].as_array().is_some_and(|counties| {
            counties.iter().any(|c| c["county"] == "510781" && c["state"] == "COUNTY_ALERT_STATE_ESCALATED")
        })
    })
    .await;
    let chain = chain(&t, &key).await;
    let acknowledged = state_of(&chain, "510703");
    assert_eq!(acknowledged["state"], "COUNTY_ALERT_STATE_ACKNOWLEDGED");
    assert_eq!(acknowledged["acknowledgedBy"], "王值班");
    assert_eq!(acknowledged["escalationStep"], 0, "never escalated: {acknowledged}");

    let escalations: Vec<bashu_proto::alert::v1::AlertEscalation> =
        t.bus.operations().read_all(ALERTS, &t.bus.subjects().alert_escalated("510781").unwrap()).await.unwrap();
    assert_eq!(escalations.iter().map(|e| e.step).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(escalations[1].notified, ["mianyang", "sc-provincial", bashu_alerts::OPERATORS]);
    assert!(
        t.bus
            .operations()
            .read_all::<bashu_proto::alert::v1::AlertEscalation>(
                ALERTS,
                &t.bus.subjects().alert_escalated("510703").unwrap()
            )
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(t.alert_feed_counts().await["510781"], 2, "the first delivery and the re-send");
}

#[tokio::test]
async fn a_cancel_after_an_update_reaches_every_county_of_the_chain_and_stops_escalation() {
    let t = TestSystem::start_configured(&[Target::Alerts], |config| config.alerts.escalation.severe_ms = 1_500).await;
    let original = cap("CHAIN-1", "Alert", "Actual", "Severe", None, &gbt("510727"));
    let (_, first) = t.issue_alert("mianyang", &original).await;
    let update = cap(
        "CHAIN-2",
        "Update",
        "Actual",
        "Severe",
        Some("mianyang@bashu.example,CHAIN-1,2026-11-28T10:00:00+08:00"),
        &gbt("510781"),
    );
    let (status, second) = t.issue_alert("mianyang", &update).await;
    assert_eq!(status, 202, "{second}");
    assert_eq!(counties_of(&second), ["510727", "510781"].map(String::from).into());
    let cancel = cap(
        "CHAIN-3",
        "Cancel",
        "Actual",
        "Severe",
        Some("mianyang@bashu.example,CHAIN-2,2026-11-28T10:00:00+08:00"),
        &gbt("510703"),
    );
    let (status, third) = t.issue_alert("mianyang", &cancel).await;
    assert_eq!(status, 202, "{third}");
    assert_eq!(counties_of(&third), ["510703", "510727", "510781"].map(String::from).into());
    assert_eq!(third["chainKey"], first["alertKey"]);

    let key = third["alertKey"].as_str().unwrap().to_owned();
    eventually("the chain is cancelled for every county", || async {
        t.get(&format!("/v1/alerts/{key}")).await.1["counties"]
            .as_array()
            .is_some_and(|c| c.len() == 3 && c.iter().all(|s| s["state"] == "COUNTY_ALERT_STATE_CANCELLED"))
    })
    .await;
    // Past every deadline: nothing is escalated.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let escalated: u64 = t
        .bus
        .operations()
        .subject_counts(ALERTS, &t.bus.subjects().all_alert_escalated())
        .await
        .unwrap()
        .values()
        .sum();
    assert_eq!(escalated, 0);
    let counts = t.alert_feed_counts().await;
    assert_eq!((counts["510727"], counts["510781"], counts["510703"]), (3, 2, 1));
}

/// An area element that does not parse is refused, naming it, even beside a geocode that would
/// target the alert on its own; validation says the same.
#[tokio::test]
async fn a_malformed_polygon_or_circle_is_refused_by_name_even_beside_a_geocode() {
    let t = TestSystem::start_with(&[Target::Alerts]).await;
    let polygon = "<polygon>31.2O,104.5 31.5,104.5 31.5,104.9 31.2O,104.5</polygon>";
    let circle = "<circle>31.4,1O4.7 10</circle>";
    for (identifier, element, path) in [
        ("AREA-1", polygon, "/alert/info[1]/area[1]/polygon[1]"),
        ("AREA-2", circle, "/alert/info[1]/area[1]/circle[1]"),
    ] {
        let document = cap(identifier, "Alert", "Exercise", "Severe", None, &format!("{element}{}", gbt("510703")));
        let (status, verdict) =
            t.post("/v1/alerts/validate", document.clone().into_bytes(), "application/cap+xml").await;
        assert_eq!((status, verdict["valid"].as_bool()), (200, Some(false)), "{verdict}");
        assert_eq!(verdict["problems"][0]["path"], path, "{verdict}");
        let (status, refused) = t.issue_alert("mianyang", &document).await;
        assert_eq!((status, refused["error"]["problems"][0]["path"].as_str()), (400, Some(path)), "{refused}");
    }
    assert_eq!(issued_count(&t).await, 0, "nothing was issued");
}

/// A document is read in the encoding its declaration names (a national agency's Latin-1 alert
/// is valid); bytes that encoding cannot read, and characters XML forbids, are not.
#[tokio::test]
async fn documents_are_decoded_as_declared_and_forbidden_characters_refused() {
    let t = TestSystem::start_with(&[Target::Alerts]).await;
    let document = cap("ENC-1", "Alert", "Exercise", "Severe", None, &gbt("510703")).replace("暴雨", "Séisme");
    let latin = document.replace("encoding=\"UTF-8\"", "encoding=\"ISO-8859-1\"");
    let latin: Vec<u8> = latin.chars().map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')).collect();
    let (status, verdict) = t.post("/v1/alerts/validate", latin, "application/cap+xml").await;
    assert_eq!((status, verdict["valid"].as_bool()), (200, Some(true)), "{verdict}");

    let utf16_declared = document.replace("encoding=\"UTF-8\"", "encoding=\"UTF-16\"");
    let (_, verdict) = t.post("/v1/alerts/validate", utf16_declared.into_bytes(), "application/cap+xml").await;
    assert_eq!(verdict["valid"], false, "{verdict}");
    assert!(verdict["problems"][0]["reason"].as_str().unwrap().contains("not UTF-16"), "{verdict}");

    let surrogate = cap("ENC-2", "Alert", "Exercise", "Severe", None, &gbt("510703")).replace("暴雨", "&#xD800;");
    let (_, verdict) = t.post("/v1/alerts/validate", surrogate.clone().into_bytes(), "application/cap+xml").await;
    assert!(verdict["problems"][0]["reason"].as_str().unwrap().contains("surrogate"), "{verdict}");
    let (status, refused) = t.issue_alert("mianyang", &surrogate).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (400, Some("invalid_alert")), "{refused}");
    assert_eq!(issued_count(&t).await, 0);
}

/// A desk sends only as its own CAP senders: not as another desk, so it can neither speak in
/// another's name nor take the identifiers another's sender will use; and no desk may register
/// a sender another desk has.
#[tokio::test]
async fn a_desk_sends_only_as_its_own_senders() {
    let t = TestSystem::start_with(&[Target::Alerts, Target::Admin]).await;
    // 绵阳 tries sc-provincial's sender, with the identifier sc-provincial will use next.
    let squat = cap("SC-NEXT-1", "Alert", "Exercise", "Severe", None, &gbt("510703"))
        .replace("mianyang@bashu.example", "sc-provincial@bashu.example");
    let (status, refused) = t.issue_alert("mianyang", &squat).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (403, Some("forbidden")), "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("mianyang@bashu.example"), "{refused}");
    let unknown = squat.replace("sc-provincial@bashu.example", "nobody@bashu.example");
    assert_eq!(t.issue_alert("mianyang", &unknown).await.0, 403, "a sender no desk has");
    assert_eq!(issued_count(&t).await, 0);
    // sc-provincial's own alert with that identifier is not taken.
    let own = cap("SC-NEXT-1", "Alert", "Exercise", "Severe", None, &gbt("510703"))
        .replace("mianyang@bashu.example", "sc-provincial@bashu.example");
    let (status, accepted) = t.issue_alert("sc-provincial", &own).await;
    assert_eq!(status, 202, "{accepted}");

    // The registry keeps senders apart.
    use bashu_proto::{admin::v1::registry_service_client::RegistryServiceClient, registry::v1::Desk};
    let mut registry = RegistryServiceClient::new(t.operator_channel().await);
    let taken = Desk {
        id: "squatter".into(),
        name: "squatter".into(),
        areas: vec!["5107".into()],
        senders: vec!["sc-provincial@bashu.example".into()],
        ..Default::default()
    };
    let refused = registry.put_desk(taken.clone()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(refused.message().contains("sc-provincial@bashu.example is desk sc-provincial's sender"), "{refused:?}");
    let refused = registry.put_desk(Desk { senders: vec![], ..taken.clone() }).await.unwrap_err();
    assert!(refused.message().contains("at least one CAP sender"), "{refused:?}");
    let refused = registry.put_desk(Desk { senders: vec!["a b".into()], ..taken }).await.unwrap_err();
    assert!(refused.message().contains("senders[0]"), "{refused:?}");
}

/// A real agency alert with embedded resources (882 KB) fits: validated, accepted and delivered to
/// every county it targets; a document over the 1 MiB limit is refused on both doors.
#[tokio::test]
async fn an_alert_as_large_as_real_agency_alerts_is_accepted_and_delivered() {
    let t = TestSystem::start_with(&[Target::Alerts]).await;
    // An 882 KB document: a map rendered into the description, as agencies embed them.
    let filler = "降雨分布图数据".repeat(882 * 1024 / 21);
    let large = cap("LARGE-1", "Alert", "Exercise", "Severe", None, &gbt("5107"))
        .replace("</headline>", &format!("</headline><description>{filler}</description>"));
    assert!((850 * 1024..1024 * 1024).contains(&large.len()), "{}", large.len());
    let (status, verdict) = t.post("/v1/alerts/validate", large.clone().into_bytes(), "application/cap+xml").await;
    assert_eq!((status, verdict["valid"].as_bool()), (200, Some(true)), "{}", verdict["problems"]);
    let (status, accepted) = t.issue_alert("mianyang", &large).await;
    assert_eq!(status, 202, "{accepted}");
    let counties = counties_of(&accepted);
    eventually("every county has its durable copy", || async { t.alert_feed_counts().await.len() == counties.len() })
        .await;

    let too_large = large.replace(&filler, &filler.repeat(2));
    let (status, verdict) = t.post("/v1/alerts/validate", too_large.clone().into_bytes(), "application/cap+xml").await;
    assert_eq!((status, verdict["error"]["code"].as_str()), (413, Some("body_too_large")), "{verdict}");
    let (status, refused) = t.issue_alert("mianyang", &too_large.replace("LARGE-1", "LARGE-2")).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (413, Some("body_too_large")), "{refused}");
}

/// An enveloped XML signature (CAP 1.2 §3.3.2.1) is verified when a document carries one, and a
/// desk whose operator requires it cannot send without one: valid, tampered digest, tampered
/// signature value, someone else's certificate and unsigned documents, all made here.
#[tokio::test]
async fn xml_signatures_are_verified_and_a_desk_may_be_required_to_sign() {
    use bashu_proto::{admin::v1::registry_service_client::RegistryServiceClient, registry::v1::Desk};
    const KEY: &str = include_str!("../../services/alerts/fixtures/xmldsig/desk-key.pem");
    const CERT: &str = include_str!("../../services/alerts/fixtures/xmldsig/desk-cert.pem");
    const OTHER_KEY: &str = include_str!("../../services/alerts/fixtures/xmldsig/other-key.pem");
    const OTHER_CERT: &str = include_str!("../../services/alerts/fixtures/xmldsig/other-cert.pem");
    let t = TestSystem::start_with(&[Target::Alerts, Target::Admin]).await;
    let (secret, public) = bashu_alerts::signature::new_key_pair();
    let desk = Desk {
        id: "signing-desk".into(),
        name: "签名值班室".into(),
        public_key: public.to_vec(),
        areas: vec!["5107".into()],
        senders: vec!["signing-desk@bashu.example".into()],
        xml_signature_certificates: vec![bashu_alerts::xml_signature::certificate_der(CERT).unwrap()],
        require_xml_signature: true,
        ..Default::default()
    };
    let mut registry = RegistryServiceClient::new(t.operator_channel().await);
    registry.put_desk(desk.clone()).await.expect("the desk is stored");
    // Requiring signatures without a certificate to check them with is refused.
    let refused = registry.put_desk(Desk { xml_signature_certificates: vec![], ..desk.clone() }).await.unwrap_err();
    assert!(refused.message().contains("require_xml_signature"), "{refused:?}");

    let document = |identifier: &str| {
        cap(identifier, "Alert", "Exercise", "Severe", None, &gbt("510703"))
            .replace("mianyang@bashu.example", "signing-desk@bashu.example")
    };
    let post = |xml: String| {
        let now = bashu_proto::time::now().seconds;
        let signature = bashu_alerts::signature::sign(&secret, "signing-desk", now, xml.as_bytes());
        let t = &t;
        async move { t.post_alert("signing-desk", now, &signature, xml.into_bytes()).await }
    };
    let signed = bashu_alerts::xml_signature::sign(&document("SIGNED-1"), KEY, CERT).unwrap();
    // Accepted once the alerts service has seen the new desk (a refusal before changes nothing).
    eventually("the validly signed document is accepted", || async { post(signed.clone()).await.0 == 202 }).await;

    let tampered =
        bashu_alerts::xml_signature::sign(&document("SIGNED-2"), KEY, CERT).unwrap().replace("暴雨预警", "暴雨解除");
    let value_start = |xml: &str| xml.find("<ds:SignatureValue>").unwrap() + "<ds:SignatureValue>".len();
    let mut forged = bashu_alerts::xml_signature::sign(&document("SIGNED-3"), KEY, CERT).unwrap();
    let at = value_start(&forged);
    let flipped = if &forged[at..=at] == "A" { "B" } else { "A" };
    forged.replace_range(at..=at, flipped);
    let stranger = bashu_alerts::xml_signature::sign(&document("SIGNED-4"), OTHER_KEY, OTHER_CERT).unwrap();
    for (what, xml) in
        [("a tampered digest", tampered.clone()), ("a tampered signature", forged), ("another certificate", stranger)]
    {
        let (status, refused) = post(xml).await;
        assert_eq!(
            (status, refused["error"]["problems"][0]["path"].as_str()),
            (400, Some("/alert/Signature")),
            "{what}: {refused}"
        );
        assert!(
            refused["error"]["problems"][0]["reason"].as_str().unwrap().contains("does not verify"),
            "{what}: {refused}"
        );
    }
    let (status, refused) = post(document("UNSIGNED-1")).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (401, Some("unauthenticated")), "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("requires an XML signature"), "{refused}");
    assert_eq!(issued_count(&t).await, 1, "only the validly signed one");

    // Validation checks what it can without a desk: that the document is as it was signed.
    let (_, verdict) = t.post("/v1/alerts/validate", tampered.into_bytes(), "application/cap+xml").await;
    assert_eq!(
        (verdict["valid"].as_bool(), verdict["problems"][0]["path"].as_str()),
        (Some(false), Some("/alert/Signature")),
        "{verdict}"
    );
}

/// A Cancel that names only the chain's first message still reaches the county a later Update
/// added; an Update after the Cancel is refused and reopens nothing; references must name one
/// chain, at the time each message was sent.
#[tokio::test]
async fn a_chain_once_cancelled_stays_cancelled_for_every_county_it_reached() {
    let t = TestSystem::start_with(&[Target::Alerts]).await;
    const FIRST: &str = "mianyang@bashu.example,LOOP-1,2026-11-28T10:00:00+08:00";
    let (status, first) =
        t.issue_alert("mianyang", &cap("LOOP-1", "Alert", "Actual", "Severe", None, &gbt("510727"))).await;
    assert_eq!(status, 202, "{first}");
    let (status, update) =
        t.issue_alert("mianyang", &cap("LOOP-2", "Update", "Actual", "Severe", Some(FIRST), &gbt("510781"))).await;
    assert_eq!(status, 202, "{update}");
    let chain_key = first["alertKey"].as_str().unwrap().to_owned();
    eventually("the update is in the chain", || async {
        chain(&t, &chain_key).await["counties"].as_array().is_some_and(|c| c.len() == 2)
    })
    .await;

    // The Cancel names only LOOP-1; 510781, added by the Update, is cancelled too.
    let (status, cancel) =
        t.issue_alert("mianyang", &cap("LOOP-3", "Cancel", "Actual", "Severe", Some(FIRST), &gbt("510727"))).await;
    assert_eq!(status, 202, "{cancel}");
    assert_eq!(counties_of(&cancel), ["510727", "510781"].map(String::from).into());
    eventually("every county of the chain is cancelled", || async {
        let chain = chain(&t, &chain_key).await;
        chain["counties"].as_array().is_some_and(|c| c.iter().all(|s| s["state"] == "COUNTY_ALERT_STATE_CANCELLED"))
    })
    .await;

    // An Update after the Cancel: refused, and nothing is sent or reopened.
    let issued_before = issued_count(&t).await;
    let (status, refused) =
        t.issue_alert("mianyang", &cap("LOOP-4", "Update", "Actual", "Severe", Some(FIRST), &gbt("510703"))).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("chain_cancelled")), "{refused}");
    assert_eq!(issued_count(&t).await, issued_before);
    let chain_now = chain(&t, &chain_key).await;
    assert!(
        chain_now["counties"].as_array().unwrap().iter().all(|s| s["state"] == "COUNTY_ALERT_STATE_CANCELLED"),
        "{chain_now}"
    );

    // A reference whose sent time is not the message's.
    let (_, other) =
        t.issue_alert("mianyang", &cap("OTHER-1", "Alert", "Actual", "Severe", None, &gbt("510703"))).await;
    let wrong_time = "mianyang@bashu.example,OTHER-1,2026-11-28T11:00:00+08:00";
    let (status, refused) = t
        .issue_alert("mianyang", &cap("OTHER-2", "Update", "Actual", "Severe", Some(wrong_time), &gbt("510703")))
        .await;
    assert_eq!(
        (status, refused["error"]["problems"][0]["path"].as_str()),
        (400, Some("/alert/references[1]")),
        "{refused}"
    );
    // A Cancel naming messages of two chains.
    let two_chains = format!("{FIRST} mianyang@bashu.example,OTHER-1,2026-11-28T10:00:00+08:00");
    let (status, refused) = t
        .issue_alert("mianyang", &cap("OTHER-3", "Cancel", "Actual", "Severe", Some(&two_chains), &gbt("510703")))
        .await;
    assert_eq!(
        (status, refused["error"]["problems"][0]["path"].as_str()),
        (400, Some("/alert/references[2]")),
        "{refused}"
    );
    assert!(refused["error"]["problems"][0]["reason"].as_str().unwrap().contains("one chain"), "{refused}");
    let other_key = other["alertKey"].as_str().unwrap().to_owned();
    assert_ne!(chain(&t, &other_key).await["cancelled"], true, "the other chain was not touched");
}

#[tokio::test]
async fn the_grpc_api_issues_updates_and_cancels_and_counties_confirm_over_nats() {
    use bashu_proto::alert::v1::{
        AlertAcknowledgement, AlertReceipt, CountyAlertState, GetAlertStatusRequest, SignedCap,
        alert_service_client::AlertServiceClient,
    };
    let t = TestSystem::start_with(&[Target::Alerts]).await;
    let mut client = AlertServiceClient::connect(t.grpc_endpoint()).await.unwrap();
    let desk = t.desk("mianyang");
    let signed = |xml: &str| {
        let now = bashu_proto::time::now().seconds;
        SignedCap {
            cap_xml: xml.as_bytes().to_vec(),
            desk_id: "mianyang".into(),
            timestamp: now,
            signature: bashu_alerts::signature::sign(&desk.secret_key_bytes(), "mianyang", now, xml.as_bytes())
                .to_vec(),
        }
    };
    let original = cap("GRPC-1", "Alert", "Actual", "Extreme", None, &gbt("510703"));
    let accepted = client.issue_alert(signed(&original)).await.unwrap().into_inner();
    assert_eq!(accepted.counties, ["510703"]);
    let wrong_call = client
        .cancel_alert(signed(&cap("GRPC-X", "Alert", "Actual", "Extreme", None, &gbt("510703"))))
        .await
        .unwrap_err();
    assert_eq!(wrong_call.code(), tonic::Code::InvalidArgument, "CancelAlert takes msgType Cancel");
    let forged = client.issue_alert(SignedCap { signature: vec![0; 64], ..signed(&original) }).await.unwrap_err();
    assert_eq!(forged.code(), tonic::Code::Unauthenticated);

    // The county's system says it has it, and a person confirms, both straight on NATS.
    let key = accepted.alert_key.clone();
    let feed = t.bus.subjects().alert_feed("510703").unwrap();
    eventually("the durable copy is stored", || async { t.alert_feed_counts().await.get("510703") == Some(&1) }).await;
    let copies: Vec<AlertDelivery> = t.bus.operations().read_all(bashu_bus::ALERT_FEEDS, &feed).await.unwrap();
    assert_eq!(copies[0].cap_xml, original.as_bytes(), "counties get the desk's signed bytes");
    t.bus
        .publish(&AlertReceipt {
            identifier: "GRPC-1".into(),
            county: "510703".into(),
            received_at: None,
            alert_key: key.clone(),
        })
        .await
        .unwrap();
    // Status is read with a staff token (a desk reads it through its officers' tokens).
    let operator = AlertServiceClient::new(t.operator_channel().await);
    let status = || {
        let mut client = operator.clone();
        let key = key.clone();
        async move { client.get_alert_status(GetAlertStatusRequest { alert_key: key }).await.map(|r| r.into_inner()) }
    };
    eventually("the county is received", || async {
        status().await.is_ok_and(|chain| chain.counties[0].state() == CountyAlertState::Received)
    })
    .await;
    t.bus
        .publish(&AlertAcknowledgement {
            identifier: "GRPC-1".into(),
            county: "510703".into(),
            acknowledged_by: "张主任".into(),
            note: "已转发乡镇".into(),
            acknowledged_at: None,
            alert_key: key.clone(),
            recorded_by: String::new(),
        })
        .await
        .unwrap();
    eventually("the county is acknowledged", || async {
        status().await.is_ok_and(|chain| chain.counties[0].state() == CountyAlertState::Acknowledged)
    })
    .await;
    let chain = status().await.unwrap();
    assert_eq!((chain.counties[0].acknowledged_by.as_str(), chain.counties[0].note.as_str()), ("张主任", "已转发乡镇"));
    assert!(chain.counties[0].received_at.is_some() && chain.counties[0].acknowledged_at.is_some());

    let cancel = cap(
        "GRPC-2",
        "Cancel",
        "Actual",
        "Extreme",
        Some("mianyang@bashu.example,GRPC-1,2026-11-28T10:00:00+08:00"),
        &gbt("510703"),
    );
    let cancelled = client.cancel_alert(signed(&cancel)).await.unwrap().into_inner();
    assert_eq!(cancelled.chain_key, key);
    let unknown = operator.clone().get_alert_status(GetAlertStatusRequest { alert_key: "nope".into() }).await;
    assert_eq!(unknown.unwrap_err().code(), tonic::Code::NotFound);
    let anonymous = client.get_alert_status(GetAlertStatusRequest { alert_key: key.clone() }).await;
    assert_eq!(anonymous.unwrap_err().code(), tonic::Code::Unauthenticated, "status needs a token");
}

#[tokio::test]
async fn the_admin_status_board_counts_every_county_per_state() {
    use bashu_proto::{
        admin::v1::{ListAlertChainsRequest, alert_board_service_client::AlertBoardServiceClient},
        alert::v1::GetAlertStatusRequest,
    };
    let t = TestSystem::start_with(&[Target::Alerts, Target::Admin]).await;
    let (_, accepted) = t.issue_alert("mianyang", &cap("BOARD-1", "Alert", "Test", "Severe", None, &gbt("5107"))).await;
    let key = accepted["alertKey"].as_str().unwrap().to_owned();
    let (status, _) = t.acknowledge(&key, "510781", "赵值班").await;
    assert_eq!(status, 202);

    let mut board = AlertBoardServiceClient::new(t.operator_channel().await);
    eventually("the board shows one acknowledgement", || {
        let mut board = board.clone();
        async move {
            let chains = board
                .list_alert_chains(ListAlertChainsRequest { active_only: true })
                .await
                .unwrap()
                .into_inner()
                .chains;
            chains.len() == 1 && chains[0].counts.get("COUNTY_ALERT_STATE_ACKNOWLEDGED") == Some(&1)
        }
    })
    .await;
    let summary =
        &board.list_alert_chains(ListAlertChainsRequest { active_only: false }).await.unwrap().into_inner().chains[0];
    assert_eq!(summary.counts.get("COUNTY_ALERT_STATE_SENT"), Some(&8));
    assert_eq!((summary.identifier.as_str(), summary.status()), ("BOARD-1", bashu_proto::alert::v1::Status::Test));
    let chain = board.get_alert_status(GetAlertStatusRequest { alert_key: key }).await.unwrap().into_inner();
    assert_eq!(chain.counties.len(), 9);
    assert!(chain.counties.iter().all(|c| c.next_deadline.is_none()), "a Test alert is never escalated");
}

/// docs/alerts.md's signing example, run: a desk with openssl and curl and none of our code.
#[tokio::test]
async fn the_documented_openssl_signing_script_is_accepted() {
    use base64::Engine as _;
    let t = TestSystem::start_with(&[Target::Alerts]).await;
    let dir = tempfile::tempdir().unwrap();
    // A raw 32-byte ed25519 secret as PKCS#8 DER (a fixed 16-byte prefix), then PEM via openssl.
    let secret = base64::engine::general_purpose::STANDARD.decode(&t.desk("mianyang").secret_key).unwrap();
    let mut der = vec![0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
    der.extend_from_slice(&secret);
    std::fs::write(dir.path().join("desk.der"), der).unwrap();
    let pem = dir.path().join("desk.pem");
    let converted = std::process::Command::new("openssl")
        .args(["pkey", "-inform", "DER", "-in"])
        .arg(dir.path().join("desk.der"))
        .arg("-out")
        .arg(&pem)
        .status()
        .expect("openssl is needed by this test (Debian: apt-get install openssl)");
    assert!(converted.success());
    let cap_file = dir.path().join("alert.xml");
    std::fs::write(&cap_file, A4).unwrap();

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/post-alert.sh");
    let output = tokio::process::Command::new(script)
        .arg(t.http_base())
        .arg("mianyang")
        .arg(&pem)
        .arg(&cap_file)
        .output()
        .await
        .expect("the script runs (needs curl)");
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| panic!("{output:?}"));
    assert!(output.status.success(), "{answer}");
    assert_eq!(answer["identifier"], "MY-CHILD-20261128-01");
    assert_eq!(answer["counties"].as_array().unwrap().len(), 9);
}

#[tokio::test]
async fn one_alert_is_one_trace_from_the_desk_to_every_county_copy() {
    let spans = bashu_tests::traced();
    let t = TestSystem::start_with(&[Target::Alerts]).await;
    let (status, accepted) =
        t.issue_alert("mianyang", &cap("TRACE-1", "Alert", "Test", "Severe", None, &gbt("5107"))).await;
    assert_eq!(status, 202, "{accepted}");
    let counties = counties_of(&accepted);
    eventually("every durable copy is stored", || async { t.alert_feed_counts().await.len() == counties.len() }).await;

    let finished = spans.get_finished_spans().unwrap();
    let submit = finished.iter().find(|s| s.name == "alerts.submit").expect("the desk's request span");
    let trace = submit.span_context.trace_id().to_string();
    let fanout = finished.iter().any(|s| {
        s.span_context.trace_id().to_string() == trace
            && s.attributes.iter().any(|kv| kv.key.as_str() == "consumer" && kv.value.to_string() == "alert-fanout")
    });
    assert!(fanout, "the fan-out's span is in the desk's trace");
    // Every county's durable copy carries the same trace.
    for county in &counties {
        let subject = t.bus.subjects().alert_feed(county).unwrap();
        let stored = t
            .bus
            .operations()
            .stream(ALERT_FEEDS)
            .await
            .unwrap()
            .get_last_raw_message_by_subject(&subject)
            .await
            .unwrap();
        let header = stored.headers.get(bashu_bus::headers::TRACEPARENT).expect("traceparent").as_str().to_owned();
        assert_eq!(header.split('-').nth(1), Some(trace.as_str()), "{county}: {header}");
    }
}

#[tokio::test]
async fn only_the_county_itself_or_a_desk_officer_acknowledges_and_counties_read_only_their_alerts() {
    use bashu_proto::{
        admin::v1::{IssueStaffTokenRequest, credential_service_client::CredentialServiceClient},
        alert::v1::{AcknowledgeAlertRequest, GetAlertStatusRequest, alert_service_client::AlertServiceClient},
        registry::v1::StaffRole,
    };
    let t = TestSystem::start_with(&[Target::Alerts, Target::Admin]).await;
    let (_, accepted) =
        t.issue_alert("mianyang", &cap("WHO-1", "Alert", "Exercise", "Severe", None, &gbt("5107"))).await;
    let key = accepted["alertKey"].as_str().unwrap().to_owned();
    let http = bashu::http_client();
    let ack_url = format!("{}/v1/alerts/{key}/acknowledgements", t.http_base());
    let body = json!({"county": "510781", "acknowledgedBy": "值班员"});
    let ack_as = |token: Option<String>| {
        let mut request = http.post(&ack_url).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let mut credentials = CredentialServiceClient::new(t.operator_channel().await);
    let mut staff = Vec::new();
    for (role, desk) in [(StaffRole::Viewer, ""), (StaffRole::Desk, "mianyang"), (StaffRole::Desk, "cq-municipal")] {
        let request = IssueStaffTokenRequest {
            name: format!("{role:?}"),
            role: role as i32,
            desk_id: desk.into(),
            ..Default::default()
        };
        staff.push(credentials.issue_staff_token(request).await.unwrap().into_inner().token);
    }
    let (viewer, desk_officer, chongqing_officer) = (staff[0].clone(), staff[1].clone(), staff[2].clone());

    assert_eq!(ack_as(None).await, 401, "no token");
    assert_eq!(ack_as(Some("bashu_510781_00000000_forged".into())).await, 401, "an unknown token");
    assert_eq!(ack_as(Some(t.token_for("510703").await)).await, 403, "another county's token");
    assert_eq!(ack_as(Some(viewer.clone())).await, 403, "a viewer");
    assert_eq!(ack_as(Some(chongqing_officer)).await, 403, "a desk officer outside their desk's areas");
    assert_eq!(t.alert_feed_counts().await.len(), 9, "nothing refused changed anything");
    assert_eq!(ack_as(Some(t.token_for("510781").await)).await, 202, "the county itself");
    assert_eq!(ack_as(Some(desk_officer.clone())).await, 202, "绵阳's desk officer on its behalf");
    // An officer's confirmation (the first for 三台) names their token in the chain and in the
    // operators' audit log; the county's own is not staff's doing and is not audited.
    let by_officer = http
        .post(&ack_url)
        .bearer_auth(&desk_officer)
        .json(&json!({"county": "510722", "acknowledgedBy": "三台值班员", "note": "电话确认"}))
        .send()
        .await
        .unwrap();
    assert_eq!(by_officer.status(), 202);
    eventually("the chain records whose token recorded it", || async {
        let chain = chain(&t, &key).await;
        chain["counties"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["county"] == "510722" && c["recordedBy"] == "Desk (desk)")
    })
    .await;
    let own = chain(&t, &key).await;
    let own = own["counties"].as_array().unwrap().iter().find(|c| c["county"] == "510781").unwrap().clone();
    assert!(own["recordedBy"].is_null() || own["recordedBy"] == "", "the county's own: {own}");
    let mut audit = bashu_proto::admin::v1::audit_service_client::AuditServiceClient::new(t.operator_channel().await);
    let events = audit
        .list_audit_events(bashu_proto::admin::v1::ListAuditEventsRequest { limit: 100 })
        .await
        .unwrap()
        .into_inner()
        .events;
    let acknowledgements: Vec<_> = events.iter().filter(|e| e.service == "alerts").collect();
    // 绵阳's officer twice (510781, then 510722); the county itself never.
    assert_eq!(acknowledgements.len(), 2, "{acknowledgements:#?}");
    let audited = acknowledgements.iter().find(|e| e.target.ends_with("county 510722")).expect("三台's");
    assert_eq!(
        (audited.actor.as_str(), audited.role.as_str(), audited.method.as_str()),
        ("Desk", "STAFF_ROLE_DESK", "POST /v1/alerts/{key}/acknowledgements")
    );
    assert_eq!(audited.target, format!("alert {key} county 510722"));
    assert!(audited.after_json.contains("三台值班员") && audited.after_json.contains("电话确认"), "{audited:?}");

    // Over gRPC the same rules hold.
    let grpc = |token: String| {
        let endpoint = t.grpc_endpoint();
        async move { AlertServiceClient::new(bashu_tests::bearer_channel(&endpoint, &token).await.unwrap()) }
    };
    let request = || AcknowledgeAlertRequest {
        alert_key: key.clone(),
        county: "510703".into(),
        acknowledged_by: "值班员".into(),
        note: String::new(),
    };
    let refused = grpc(t.token_for("510781").await).await.acknowledge_alert(request()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    grpc(t.token_for("510703").await).await.acknowledge_alert(request()).await.expect("510703 for itself");

    // Reading: a county only the alerts sent to it; staff every alert.
    let status_as = |token: String| {
        let request = http.get(format!("{}/v1/alerts/{key}", t.http_base())).bearer_auth(token);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status_as(t.token_for("510781").await).await, 200);
    assert_eq!(status_as(t.token_for("500153").await).await, 404, "荣昌 was not sent this alert");
    assert_eq!(status_as(viewer).await, 200);
    let status = grpc(t.token_for("500153").await)
        .await
        .get_alert_status(GetAlertStatusRequest { alert_key: key.clone() })
        .await;
    assert_eq!(status.unwrap_err().code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn an_alert_not_declared_as_xml_is_refused_with_415_and_issues_nothing() {
    use base64::Engine as _;
    let t = TestSystem::start_with(&[Target::Alerts]).await;
    let desk = t.desk("mianyang");
    let xml = cap("TYPED-1", "Alert", "Exercise", "Severe", None, &gbt("510703"));
    let http = reqwest::Client::new();
    let send = |content_type: Option<&'static str>, path: &'static str| {
        let (http, xml, base) = (http.clone(), xml.clone(), t.http_base());
        let now = bashu_proto::time::now().seconds;
        let signature = bashu_alerts::signature::sign(&desk.secret_key_bytes(), "mianyang", now, xml.as_bytes());
        async move {
            let mut request = http
                .post(format!("{base}{path}"))
                .header("Bashu-Desk", "mianyang")
                .header("Bashu-Timestamp", now.to_string())
                .header("Bashu-Signature", base64::engine::general_purpose::STANDARD.encode(signature))
                .body(xml);
            if let Some(content_type) = content_type {
                request = request.header("Content-Type", content_type);
            }
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    };
    for content_type in [Some("application/json"), Some("text/plain"), Some("application/x-www-form-urlencoded"), None]
    {
        for path in ["/v1/alerts", "/v1/alerts/validate"] {
            let (status, answer) = send(content_type, path).await;
            assert_eq!(status, 415, "{content_type:?} on {path}: {answer}");
            assert_eq!(answer["error"]["code"], "unsupported_media_type", "{answer}");
            assert!(answer["error"]["message"].as_str().unwrap().contains("application/cap+xml"), "{answer}");
        }
    }
    assert_eq!(issued_count(&t).await, 0, "nothing was issued");
    let (status, answer) = send(Some("application/xml; charset=utf-8"), "/v1/alerts").await;
    assert_eq!(status, 202, "XML by another of its names is taken: {answer}");
}
