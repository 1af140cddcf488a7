//! A county's side of the alert loop over NATS, as `docs/alerts.md` §5 tells a county to speak
//! it: a plain NATS client, protobuf on the county's own subject, no header but the documented
//! optional `Nats-Msg-Id`. And the same door used by a county speaking for another.

use async_nats::{HeaderMap, jetstream};
use bashu::Target;
use bashu_proto::{
    admin::v1::AuditEvent,
    alert::v1::{AlertAcknowledgement, AlertReceipt},
};
use bashu_tests::{TestSystem, eventually};
use prost::Message as _;
use serde_json::Value;

use crate::alerts::{cap, gbt};

/// An alert to 江油市 and 涪城区; its key.
async fn alert_to_two_counties(t: &TestSystem, identifier: &str) -> String {
    let xml = cap(identifier, "Alert", "Actual", "Extreme", None, &format!("{}{}", gbt("510781"), gbt("510703")));
    let (status, answer) = t.issue_alert("mianyang", &xml).await;
    assert_eq!(status, 202, "{answer}");
    answer["alertKey"].as_str().unwrap().to_owned()
}

async fn state(t: &TestSystem, key: &str, county: &str) -> Value {
    let (status, chain) = t.get(&format!("/v1/alerts/{key}")).await;
    assert_eq!(status, 200, "{chain}");
    chain["counties"].as_array().unwrap().iter().find(|c| c["county"] == county).cloned().unwrap()
}

/// A county's own client: nothing of Bashu's, only async-nats and the generated messages.
async fn county_client(t: &TestSystem) -> jetstream::Context {
    jetstream::new(async_nats::connect(t.nats.url()).await.unwrap())
}

/// `bashu.alert.<kind>.<county>` under the test's prefix, spelled out as the docs spell it.
fn subject(t: &TestSystem, kind: &str, county: &str) -> String {
    format!("{}.bashu.alert.{kind}.{county}", t.config.nats.prefix)
}

#[tokio::test]
async fn a_county_confirms_with_plain_protobuf_and_no_type_header() {
    let t = TestSystem::start_with(&[Target::Alerts]).await;
    let key = alert_to_two_counties(&t, "PLAIN-1").await;
    let county = county_client(&t).await;

    let receipt = AlertReceipt {
        alert_key: key.clone(),
        identifier: "PLAIN-1".into(),
        county: "510781".into(),
        received_at: None,
    };
    county.publish(subject(&t, "receipt", "510781"), receipt.encode_to_vec().into()).await.unwrap().await.unwrap();
    eventually("江油市 is received", || async {
        state(&t, &key, "510781").await["state"] == "COUNTY_ALERT_STATE_RECEIVED"
    })
    .await;

    // The retry rule: the same acknowledgement with the same Nats-Msg-Id is stored once.
    let ack = AlertAcknowledgement {
        alert_key: key.clone(),
        identifier: "PLAIN-1".into(),
        county: "510781".into(),
        acknowledged_by: "值班员 李".into(),
        note: "已转发乡镇".into(),
        acknowledged_at: None,
        // A county cannot pass its own confirmation off as staff's.
        recorded_by: "冒充 (operator)".into(),
    };
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", format!("alert.ack.510781.{key}").as_str());
    let first = county
        .publish_with_headers(subject(&t, "ack", "510781"), headers.clone(), ack.encode_to_vec().into())
        .await
        .unwrap()
        .await
        .unwrap();
    let again = county
        .publish_with_headers(subject(&t, "ack", "510781"), headers, ack.encode_to_vec().into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(!first.duplicate && again.duplicate, "a retry with the same Nats-Msg-Id is not stored twice");
    eventually("江油市 is acknowledged", || async {
        state(&t, &key, "510781").await["state"] == "COUNTY_ALERT_STATE_ACKNOWLEDGED"
    })
    .await;
    assert_eq!(state(&t, &key, "510781").await["acknowledgedBy"], "值班员 李");
    let recorded = state(&t, &key, "510781").await["recordedBy"].clone();
    assert!(recorded.is_null() || recorded == "", "a county's own word is no staff record: {recorded}");

    // The county may leave its code out of the body: the subject says who it is.
    let anonymous =
        AlertAcknowledgement { county: String::new(), acknowledged_by: "值班员 王".into(), ..ack.clone() };
    county.publish(subject(&t, "ack", "510703"), anonymous.encode_to_vec().into()).await.unwrap().await.unwrap();
    eventually("涪城区 is acknowledged", || async {
        state(&t, &key, "510703").await["state"] == "COUNTY_ALERT_STATE_ACKNOWLEDGED"
    })
    .await;
    assert!(t.bus.operations().dead_letters().await.unwrap().is_empty(), "nothing was dead-lettered");
}

#[tokio::test]
async fn a_county_cannot_receipt_or_acknowledge_for_another() {
    let t = TestSystem::start_with(&[Target::Alerts]).await;
    let key = alert_to_two_counties(&t, "IMPERSONATE-1").await;
    let county = county_client(&t).await;

    // 江油市's identity may publish only on its own subjects; its body claims to be 涪城区.
    let receipt = AlertReceipt {
        alert_key: key.clone(),
        identifier: "IMPERSONATE-1".into(),
        county: "510703".into(),
        received_at: None,
    };
    county.publish(subject(&t, "receipt", "510781"), receipt.encode_to_vec().into()).await.unwrap().await.unwrap();
    let ack = AlertAcknowledgement {
        alert_key: key.clone(),
        identifier: "IMPERSONATE-1".into(),
        county: "510703".into(),
        acknowledged_by: "冒名者".into(),
        note: String::new(),
        acknowledged_at: None,
        recorded_by: String::new(),
    };
    county.publish(subject(&t, "ack", "510781"), ack.encode_to_vec().into()).await.unwrap().await.unwrap();

    eventually("both are dead-lettered", || async { t.bus.operations().dead_letters().await.unwrap().len() == 2 })
        .await;
    let letters = t.bus.operations().dead_letters().await.unwrap();
    for (letter, kind) in letters.iter().zip(["receipt", "ack"]) {
        assert_eq!(letter.consumer, "alert-tracker");
        assert_eq!(
            letter.reason,
            format!("county 510781 sent an alert {kind} for county 510703: a county speaks only for itself")
        );
    }
    let fucheng = state(&t, &key, "510703").await;
    assert_eq!(fucheng["state"], "COUNTY_ALERT_STATE_SENT", "{fucheng}");
    assert_eq!(fucheng["acknowledgedBy"], "", "{fucheng}");
    assert_eq!(state(&t, &key, "510781").await["state"], "COUNTY_ALERT_STATE_SENT", "nor does it count for the sender");

    let audit: Vec<AuditEvent> =
        t.bus.operations().read_all(bashu_bus::AUDIT, &t.bus.subjects().audit("alerts").unwrap()).await.unwrap();
    let refused: Vec<(&str, &str, &str)> =
        audit.iter().map(|e| (e.actor.as_str(), e.method.as_str(), e.target.as_str())).collect();
    let target = format!("alert {key} county 510703");
    let (receipt_door, ack_door) = (subject(&t, "receipt", "510781"), subject(&t, "ack", "510781"));
    assert_eq!(
        refused,
        [("510781", receipt_door.as_str(), target.as_str()), ("510781", ack_door.as_str(), target.as_str())],
        "the operators' audit log names who tried, and through which subject"
    );
}
