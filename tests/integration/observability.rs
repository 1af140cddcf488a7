//! What operators watch: the documented metrics after real traffic, and readiness that follows
//! the bus (connection, streams, consumers).

use std::collections::{BTreeMap, BTreeSet};

use bashu_proto::{admin::v1::registry_service_client::RegistryServiceClient, registry::v1::Webhook};
use bashu_tests::{TestSystem, eventually, story_json};
use serde_json::json;

const METRICS_PAGE: &str = include_str!("../../docs/metrics.md");

/// Every metric name in docs/metrics.md's table.
fn documented() -> BTreeSet<String> {
    METRICS_PAGE
        .lines()
        .filter_map(|line| line.strip_prefix("| `bashu_"))
        .filter_map(|rest| rest.split('`').next())
        .map(|name| format!("bashu_{name}"))
        .collect()
}

/// Parses the text exposition: sample name (without labels) → number of samples; fails on any
/// line that is not a comment or `name{labels} value`.
fn parse(text: &str) -> BTreeMap<String, usize> {
    let mut samples = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line}"));
        value.parse::<f64>().unwrap_or_else(|_| panic!("not a number in {line}"));
        let name = series.split('{').next().unwrap();
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "bad name in {line}");
        *samples.entry(name.to_owned()).or_default() += 1;
    }
    assert!(text.trim_end().ends_with("# EOF"), "an OpenMetrics exposition ends with # EOF");
    samples
}

#[tokio::test]
async fn every_documented_metric_is_exposed_after_real_traffic() {
    let t = TestSystem::start_configured(&bashu::Target::ALL, |config| {
        config.distribution.webhooks.retry =
            bashu_bus::RetryConfig { ack_wait_ms: 2_000, max_deliver: 2, backoff_ms: vec![50] };
        config.distribution.webhooks.timeout_ms = 500;
    })
    .await;
    // A webhook nobody answers: retries, then a dead letter.
    RegistryServiceClient::new(t.operator_channel().await)
        .put_webhook(Webhook {
            county: "500153".into(),
            url: format!("http://127.0.0.1:{}/gone", bashu_test_support::free_port()),
            secret: vec![7; 32],
            format: 0,
            registered_at: None,
        })
        .await
        .unwrap();
    let (status, _) = t.post_story(&story_json("m1", "511083", json!({"counties": ["500153"]}))).await;
    assert_eq!(status, 202);
    let (status, _) = t
        .issue_alert(
            "mianyang",
            &crate::alerts::cap("MET-1", "Alert", "Test", "Severe", None, &crate::alerts::gbt("5107")),
        )
        .await;
    assert_eq!(status, 202);
    eventually("the webhook delivery is dead-lettered", || async {
        t.bus.operations().dead_letters().await.map(|d| !d.is_empty()).unwrap_or(false)
    })
    .await;

    let http = bashu::http_client();
    let response = http.get(format!("{}/metrics", t.http_base())).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    let text = response.text().await.unwrap();
    let samples = parse(&text);
    let documented = documented();
    assert_eq!(documented.len(), 9, "{documented:?}");
    for name in &documented {
        // Histograms are exposed as _bucket, _sum and _count.
        let found = samples.keys().any(|s| {
            s == name || s.strip_prefix(name.as_str()).is_some_and(|r| ["_bucket", "_sum", "_count"].contains(&r))
        });
        assert!(found, "{name} has no sample in\n{text}");
    }
    for line in [
        r#"bashu_http_requests_total{method="POST",route="/v1/stories",status="202"} 1"#,
        r#"bashu_webhook_deliveries_total{outcome="retry"}"#,
        r#"bashu_dead_letters_total{consumer="webhook-500153"} 1"#,
        r#"bashu_grpc_requests_total{method="/bashu.admin.v1.RegistryService/PutWebhook",code="Ok"} 1"#,
        r#"bashu_alert_counties{state="sent"} 9"#,
        r#"bashu_consumer_pending{stream="FEEDS",consumer="feed-500153"} 1"#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
}

#[tokio::test]
async fn ready_only_while_nats_is_connected_and_the_streams_and_consumers_exist() {
    let mut t = TestSystem::start().await;
    let http = bashu::http_client();
    let base = t.http_base();
    let ready = || async {
        let response = http.get(format!("{base}/readyz")).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    eventually("ready", || async { ready().await.0 == 200 }).await;
    assert_eq!(http.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);

    // A stream is gone (an operator deleted it): not ready, and ready again once it is back.
    let audit = t.bus.operations().stream(bashu_bus::AUDIT).await.unwrap().cached_info().config.name.clone();
    t.bus.jetstream().delete_stream(audit).await.unwrap();
    let (status, reason) = ready().await;
    assert_eq!(status, 503);
    assert!(reason.contains("AUDIT"), "{reason}");
    t.bus.provision().await.unwrap();
    eventually("ready again with the stream back", || async { ready().await.0 == 200 }).await;
    // A consumer a service reads is missing: the same check says which (the services recreate
    // their own consumers at once, so the bus's check is asked directly).
    let missing = t
        .bus
        .operations()
        .ready(&[t.bus.stories().webhook_consumer("510105", std::time::UNIX_EPOCH, Default::default()).unwrap()])
        .await;
    assert!(missing.unwrap_err().contains("webhook-510105"));

    // The bus is gone: not ready, but alive.
    t.nats.kill();
    eventually("not ready without NATS", || async { ready().await.0 == 503 }).await;
    assert_eq!(http.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
    t.nats.restart().await;
    eventually("ready again after NATS is back", || async { ready().await.0 == 200 }).await;
}
