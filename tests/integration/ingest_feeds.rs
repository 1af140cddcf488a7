//! RSS and Atom feeds served by the test itself, polled by ingest.

use std::sync::{Arc, Mutex};

use axum::{Router, extract::State, http::HeaderMap, response::IntoResponse, routing::get};
use bashu::Target;
use bashu_tests::{TestSystem, eventually};
use serde_json::{Value, json};

const RSS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>隆昌市融媒体中心</title><link>https://longchang.example/</link><description>d</description>
<item><guid>lc-rss-1</guid><title>石牌坊夜游开放</title><description>夜游线路今晚开放。</description><pubDate>Sat, 28 Nov 2026 08:00:00 +0800</pubDate></item>
<item><guid>lc-rss-2</guid><description>这一条没有标题。</description></item>
<item><guid>lc-rss-3</guid><title>隆昌至荣昌公交开通</title><description>跨省公交今日开通。</description></item>
</channel></rss>"#;

const ATOM: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>荣昌区融媒体中心</title><id>urn:rongchang</id><updated>2026-11-28T00:00:00Z</updated>
<entry><id>urn:rc:1</id><title>荣昌夏布展开幕</title><updated>2026-11-28T00:00:00Z</updated><content type="text">夏布展在荣昌开幕。</content></entry>
<entry><id>urn:rc:2</id><title>荣昌卤鹅节</title><updated>2026-11-28T01:00:00Z</updated><summary>卤鹅节周末举行。</summary></entry>
</feed>"#;

/// Each request the feed server saw: the path and the If-None-Match it carried.
type Requests = Vec<(String, Option<String>)>;

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Requests>>);

async fn serve(
    path: &'static str,
    body: &'static str,
    content_type: &'static str,
    seen: Seen,
    headers: HeaderMap,
) -> axum::response::Response {
    let etag = format!("\"{path}-v1\"");
    let presented = headers.get("if-none-match").and_then(|v| v.to_str().ok()).map(str::to_owned);
    seen.0.lock().unwrap().push((path.to_owned(), presented.clone()));
    if presented.as_deref() == Some(etag.as_str()) {
        return axum::http::StatusCode::NOT_MODIFIED.into_response();
    }
    ([("content-type", content_type), ("etag", etag.as_str())], body).into_response()
}

/// Ingest alone, polling every 100 ms, feeds allowed every second.
async fn feed_system(allow_private_addresses: bool) -> TestSystem {
    TestSystem::start_configured(&[Target::Ingest], |config| {
        config.ingest.feeds.min_interval_secs = 1;
        config.ingest.feeds.tick_ms = 100;
        config.ingest.feeds.allow_private_addresses = allow_private_addresses;
    })
    .await
}

/// `PUT /v1/feeds/<name>` as a county: the status and the answer's text.
async fn register_feed(t: &TestSystem, county: &str, name: &str, source: Value) -> (u16, String) {
    let response = bashu::http_client()
        .put(format!("{}/v1/feeds/{name}", t.http_base()))
        .bearer_auth(t.token_for(county).await)
        .json(&source)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// `GET /v1/feeds` as a county.
async fn feeds_of(t: &TestSystem, county: &str) -> Value {
    bashu::http_client()
        .get(format!("{}/v1/feeds", t.http_base()))
        .bearer_auth(t.token_for(county).await)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn rss_and_atom_items_are_ingested_once_a_bad_item_is_reported_and_polls_are_conditional() {
    let seen = Seen::default();
    let app = Router::new()
        .route(
            "/rss",
            get(|State(seen): State<Seen>, headers: HeaderMap| serve("rss", RSS, "application/rss+xml", seen, headers)),
        )
        .route(
            "/atom",
            get(|State(seen): State<Seen>, headers: HeaderMap| {
                serve("atom", ATOM, "application/atom+xml", seen, headers)
            }),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let feeds = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let t = feed_system(true).await;
    for (county, name, path) in [("511083", "news", "rss"), ("500153", "news", "atom")] {
        let source = json!({"url": format!("{feeds}/{path}"), "intervalSecs": 1, "category": "CATEGORY_LIVELIHOOD", "sharing": {"partners": true}});
        let (status, answer) = register_feed(&t, county, name, source).await;
        assert_eq!(status, 204, "{answer}");
    }
    let (status, answer) =
        register_feed(&t, "511083", "x", json!({"url": "ftp://x", "intervalSecs": 0, "category": "NOPE"})).await;
    assert_eq!(status, 400);
    let answer: Value = serde_json::from_str(&answer).unwrap();
    let fields: Vec<&str> =
        answer["error"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["url", "intervalSecs", "category"]);

    let conditional_polls = |path: &'static str| {
        let seen = seen.clone();
        move || {
            let seen = seen.clone();
            async move { seen.0.lock().unwrap().iter().filter(|(p, etag)| p == path && etag.is_some()).count() >= 2 }
        }
    };
    eventually("the RSS feed is polled again with If-None-Match", conditional_polls("rss")).await;
    eventually("the Atom feed is polled again with If-None-Match", conditional_polls("atom")).await;

    // Two good RSS items and two Atom entries, once each, however often the feeds were polled.
    assert_eq!(t.submitted_count().await, 4);
    let first = seen.0.lock().unwrap().iter().find(|(p, _)| p == "rss").cloned().unwrap();
    assert_eq!(first.1, None, "the first poll is unconditional");

    let listed = feeds_of(&t, "511083").await;
    let state = &listed["feeds"][0]["state"];
    assert_eq!(state["itemsIngested"], 2, "{listed}");
    assert_eq!(state["consecutiveFailures"], 0);
    assert_eq!(state["rejectedItems"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(state["rejectedItems"][0]["guid"], "lc-rss-2");
    assert!(state["rejectedItems"][0]["problems"][0].as_str().unwrap().starts_with("headline"), "{listed}");
    assert_eq!(listed["feeds"].as_array().unwrap().len(), 1, "a county sees only its own feeds");
}

#[tokio::test]
async fn a_dead_feed_backs_off_and_says_why() {
    let t = feed_system(true).await;
    let dead = format!("http://127.0.0.1:{}/gone", bashu_test_support::free_port());
    let (status, _) =
        register_feed(&t, "511083", "dead", json!({"url": dead, "intervalSecs": 1, "category": "CATEGORY_OTHER"}))
            .await;
    assert_eq!(status, 204);
    let state = || async { feeds_of(&t, "511083").await["feeds"][0]["state"].clone() };
    eventually("the dead feed has failed twice", || async { state().await["consecutiveFailures"].as_u64() >= Some(2) })
        .await;
    let state = state().await;
    assert!(state["lastError"].as_str().unwrap().contains("fetch failed"), "{state}");
    let wait = state["nextPoll"].as_u64().unwrap() - state["lastPolled"].as_u64().unwrap();
    assert!(wait >= 4, "the second failure waits 2² intervals: {state}");
}

#[tokio::test]
async fn by_default_a_feed_inside_the_network_is_not_fetched() {
    let t = feed_system(false).await;
    let inside = json!({"url": "http://127.0.0.1:8222/varz", "intervalSecs": 1, "category": "CATEGORY_OTHER"});
    assert_eq!(register_feed(&t, "511083", "inside", inside).await.0, 204);
    let error =
        || async { feeds_of(&t, "511083").await["feeds"][0]["state"]["lastError"].as_str().unwrap_or("").to_owned() };
    eventually("the poll is refused", || async { !error().await.is_empty() }).await;
    assert!(error().await.contains("loopback, private or link-local"), "{}", error().await);
}
