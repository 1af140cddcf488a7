//! A county whose webhook hangs, and a county that never reads its feed, delay nobody: other
//! counties get every story and the alert path delivers while the webhook is still hanging.
//! Proven by order (everything else arrives while the webhook has not answered once), not by
//! timing.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use bashu_proto::{admin::v1::registry_service_client::RegistryServiceClient, registry::v1::Webhook};
use bashu_tests::{TestSystem, eventually, story_json};
use futures::StreamExt;
use serde_json::json;

#[tokio::test]
async fn a_hanging_webhook_and_a_county_that_never_reads_delay_no_one_else() {
    let t = TestSystem::start_configured(&bashu::Target::ALL, |config| {
        // The webhook may hang for a minute before a retry: far longer than this test waits.
        config.distribution.webhooks.retry =
            bashu_bus::RetryConfig { ack_wait_ms: 120_000, max_deliver: 3, backoff_ms: vec![1_000] };
        config.distribution.webhooks.timeout_ms = 60_000;
    })
    .await;

    // 500153's CMS accepts the connection and then says nothing until the test lets it.
    let release = Arc::new(tokio::sync::Notify::new());
    let hanging = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let app = {
        let (release, hanging, answered) = (release.clone(), hanging.clone(), answered.clone());
        axum::Router::new().fallback(move || {
            let (release, hanging, answered) = (release.clone(), hanging.clone(), answered.clone());
            async move {
                hanging.fetch_add(1, Ordering::SeqCst);
                release.notified().await;
                answered.fetch_add(1, Ordering::SeqCst);
                axum::http::StatusCode::OK
            }
        })
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    RegistryServiceClient::new(t.operator_channel().await)
        .put_webhook(Webhook { county: "500153".into(), url, secret: vec![9; 32], format: 0, registered_at: None })
        .await
        .unwrap();

    // Stories for the hanging county, for a county that never reads (510105), and for 500101.
    let stories = 40;
    for n in 0..stories {
        let (status, answer) = t
            .post_story(&story_json(
                &format!("slow-{n}"),
                "511083",
                json!({"counties": ["500153", "510105", "500101"]}),
            ))
            .await;
        assert_eq!(status, 202, "{answer}");
    }
    eventually("the webhook hangs on its first delivery", || async { hanging.load(Ordering::SeqCst) == 1 }).await;
    eventually("every county's feed has every story", || async {
        let feeds = t.feed_counts().await;
        ["500153", "510105", "500101"].iter().all(|c| feeds.get(*c) == Some(&(stories as u64)))
    })
    .await;

    // An alert to Chongqing reaches the hanging county live, while its webhook still hangs.
    let mut live = t.bus.client().subscribe(t.bus.subjects().alert_live("500153").unwrap()).await.unwrap();
    let cap = crate::alerts::cap("SLOW-1", "Alert", "Test", "Severe", None, &crate::alerts::gbt("50"))
        .replace("mianyang@bashu.example", "cq-provincial@bashu.example");
    let (status, accepted) = t.issue_alert("cq-municipal", &cap).await;
    assert_eq!(status, 202, "{accepted}");
    let delivery = tokio::time::timeout(bashu_tests::PATIENCE, live.next()).await.expect("the live alert").unwrap();
    assert!(!delivery.payload.is_empty());

    let (hung, done) = (hanging.load(Ordering::SeqCst), answered.load(Ordering::SeqCst));
    println!(
        "slow receivers: {stories} stories to each of 3 counties delivered and an alert delivered live \
         while 500153's webhook had {hung} call hanging and {done} answered"
    );
    assert_eq!((hung, done), (1, 0), "everything above happened while the webhook hung");

    // Released, the webhook gets every delivery (their order is the webhook test's subject).
    for _ in 0..stories {
        release.notify_one();
        tokio::task::yield_now().await;
    }
    eventually("the webhook catches up", || async {
        release.notify_one();
        answered.load(Ordering::SeqCst) >= stories
    })
    .await;
}
