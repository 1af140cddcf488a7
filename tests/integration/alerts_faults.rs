//! The alert service killed (kill -9 of its task) and restarted: every county still has every
//! alert exactly once, and escalation timers go on.
//!
//! Deduplication of the durable copies happens in the ALERT_FEEDS stream: each copy carries
//! `alert.feed.<county>.<alert_key>.<resend>` as `Nats-Msg-Id`, so the fan-out redone after a
//! restart stores nothing twice. The live path may deliver an alert twice; counties deduplicate by
//! `alert_key` (docs/alerts.md).

use std::{sync::Arc, time::Duration};

use bashu_alerts::{Alerts, Submission};
use bashu_bus::{ALERTS, Bus, Subjects, Topology};
use bashu_proto::alert::v1::AlertEscalation;
use bashu_registry::{Counties, RegistryStore};
use bashu_tests::{TestSystem, eventually};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

async fn build_alerts(t: &TestSystem, name: &str) -> Alerts {
    let subjects = Subjects::new(&t.config.nats.prefix).unwrap();
    let bus = Bus::connect(&t.nats.url(), name, subjects, Topology::default()).await.unwrap();
    let counties = Arc::new(Counties::builtin().unwrap());
    let registry =
        RegistryStore::open(&bus, counties.clone()).await.unwrap().watch(CancellationToken::new()).await.unwrap();
    Alerts::build(t.config.alerts.clone(), bus, counties, registry).await.unwrap()
}

fn run(alerts: &Alerts) -> (JoinHandle<()>, CancellationToken) {
    let shutdown = CancellationToken::new();
    let running = alerts.clone().run(shutdown.clone());
    (tokio::spawn(async move { running.await.unwrap() }), shutdown)
}

async fn submit(t: &TestSystem, alerts: &Alerts, desk_id: &str, xml: &str) -> bashu_proto::alert::v1::AlertAccepted {
    let desk = t.desk(desk_id);
    let now = bashu_proto::time::now().seconds;
    let signature = bashu_alerts::signature::sign(&desk.secret_key_bytes(), desk_id, now, xml.as_bytes());
    let submission = Submission { desk_id, timestamp: now, signature: &signature, cap_xml: xml.as_bytes() };
    alerts.submit(submission, None).await.unwrap()
}

/// A CAP document as 绵阳's desk sends it (`region`: as the region desk).
fn cap(identifier: &str, status: &str, area: &str) -> String {
    let sender = if area.contains("bashu:region") { "chengdu-chongqing" } else { "mianyang" };
    format!(
        r#"<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>{identifier}</identifier>
<sender>{sender}@bashu.example</sender><sent>2026-11-28T10:00:00+08:00</sent><status>{status}</status>
<msgType>Alert</msgType><scope>Public</scope><info><category>Met</category><event>洪水</event>
<urgency>Immediate</urgency><severity>Severe</severity><certainty>Likely</certainty>
<area><areaDesc>测试</areaDesc>{area}</area></info></alert>"#
    )
}

#[tokio::test]
async fn alerts_killed_mid_region_wide_fan_out_and_restarted_deliver_every_alert_once() {
    const ALERT_COUNT: u64 = 20;
    let t = TestSystem::start_with(&[]).await;
    let first = build_alerts(&t, "alerts-1").await;

    let region = "<geocode><valueName>bashu:region</valueName><value>all</value></geocode>";
    for i in 0..ALERT_COUNT {
        let accepted = submit(&t, &first, "chengdu-chongqing", &cap(&format!("KILL-{i}"), "Exercise", region)).await;
        assert_eq!(accepted.counties.len(), 220);
    }
    // Accepted first, fanned out after: the kill lands in a backlog, not in a race.
    let (running, _) = run(&first);
    eventually("the fan-out is under way", || async { t.alert_feed_counts().await.values().sum::<u64>() >= 300 }).await;
    running.abort();
    let _ = running.await;
    let at_kill: u64 = t.alert_feed_counts().await.values().sum();

    let second = build_alerts(&t, "alerts-2").await;
    let (running, shutdown) = run(&second);
    let expected = ALERT_COUNT * 220;
    eventually("every county has every alert", || async {
        t.alert_feed_counts().await.values().sum::<u64>() >= expected
    })
    .await;
    // Past the redelivery of anything the killed instance held: nothing more arrives.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let counts = t.alert_feed_counts().await;
    let delivered: u64 = counts.values().sum();
    println!(
        "alerts kill: {ALERT_COUNT} region-wide alerts to 220 counties, killed at {at_kill} of {expected} durable copies, delivered {delivered}, lost {}, duplicated {}",
        expected.saturating_sub(delivered),
        delivered.saturating_sub(expected)
    );
    assert!(at_kill < expected, "the kill came in the middle of the fan-out");
    assert_eq!(counts.len(), 220);
    assert!(counts.values().all(|c| *c == ALERT_COUNT), "each county exactly once per alert: {counts:?}");
    shutdown.cancel();
    running.await.unwrap();
}

#[tokio::test]
async fn escalation_timers_survive_a_restart_of_the_alert_service() {
    let t = TestSystem::start_configured(&[], |config| config.alerts.escalation.severe_ms = 1_000).await;
    let first = build_alerts(&t, "alerts-1").await;
    let (running, _) = run(&first);
    let accepted = submit(
        &t,
        &first,
        "mianyang",
        &cap("TIMER-1", "Actual", "<geocode><valueName>GB/T 2260</valueName><value>5107</value></geocode>"),
    )
    .await;
    first.acknowledge(&accepted.alert_key, "510703", "李值班", "", bashu_alerts::Recorder::County).await.unwrap();
    eventually("the tracker has recorded the acknowledgement", || async {
        first
            .status(&accepted.alert_key)
            .await
            .is_ok_and(|chain| chain.counties.iter().any(|c| c.county == "510703" && c.acknowledged_by == "李值班"))
    })
    .await;

    // Killed before any deadline; the deadlines pass while it is down.
    running.abort();
    let _ = running.await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let escalations = |t: &TestSystem| {
        let bus = t.bus.clone();
        async move {
            bus.operations().read_all::<AlertEscalation>(ALERTS, &bus.subjects().all_alert_escalated()).await.unwrap()
        }
    };
    assert!(escalations(&t).await.is_empty(), "nothing escalates while the service is down");

    let second = build_alerts(&t, "alerts-2").await;
    let (running, shutdown) = run(&second);
    eventually("the eight silent counties reach the last step", || async {
        escalations(&t).await.iter().filter(|e| e.step == 2).count() == 8
    })
    .await;
    let all = escalations(&t).await;
    assert_eq!(all.iter().filter(|e| e.step == 1).count(), 8, "one re-send each");
    assert!(all.iter().all(|e| e.county != "510703"), "the acknowledged county is never escalated");
    shutdown.cancel();
    running.await.unwrap();
}
