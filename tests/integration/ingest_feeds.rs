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

/// Ingest alone, polling every 100 ms, feeds allowed every second, reaching what `egress`
/// permits.
async fn feed_system(egress: bashu_egress::Config) -> TestSystem {
    TestSystem::start_configured(&[Target::Ingest], |config| {
        config.ingest.feeds.min_interval_secs = 1;
        config.ingest.feeds.tick_ms = 100;
        config.egress = egress;
    })
    .await
}

/// Everything reachable, as on a laptop.
fn anywhere() -> bashu_egress::Config {
    bashu_egress::Config { allow_private: true, ..Default::default() }
}

/// Production's policy, except that 127.0.0.2 stands for "the public internet": the test's
/// outside server listens there, and every other loopback address is inside the network.
fn public_is_127_0_0_2() -> bashu_egress::Config {
    bashu_egress::Config { allowed_networks: vec!["127.0.0.2/32".parse().unwrap()], ..Default::default() }
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

    let t = feed_system(anywhere()).await;
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
    let t = feed_system(anywhere()).await;
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
async fn by_default_a_feed_at_an_inside_address_is_refused_at_registration() {
    let t = feed_system(bashu_egress::Config::default()).await;
    for url in
        ["http://127.0.0.1:8222/varz", "http://[::ffff:127.0.0.1]:8222/varz", "http://[::1]/", "http://10.0.0.7/rss"]
    {
        let (status, answer) =
            register_feed(&t, "511083", "inside", json!({"url": url, "intervalSecs": 1, "category": "CATEGORY_OTHER"}))
                .await;
        assert_eq!(status, 400, "{url}: {answer}");
        let answer: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["error"]["fields"][0]["field"], "url", "{answer}");
        assert!(answer["error"]["fields"][0]["reason"].as_str().unwrap().contains("not a public address"), "{answer}");
    }
    assert_eq!(feeds_of(&t, "511083").await["feeds"].as_array().unwrap().len(), 0, "nothing was registered");
}

/// Counts the requests an inside server (on 127.0.0.1, which the policy treats as inside) got.
async fn inside_server() -> (u16, Arc<Mutex<usize>>) {
    let hits = Arc::new(Mutex::new(0));
    let counted = hits.clone();
    let app = Router::new().fallback(move || {
        let counted = counted.clone();
        async move {
            *counted.lock().unwrap() += 1;
            ([("content-type", "application/rss+xml")], RSS)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, hits)
}

#[tokio::test]
async fn a_public_feed_cannot_redirect_or_resolve_into_the_inside_network() {
    let (inside_port, inside_hits) = inside_server().await;
    // The "public" feed server: one path redirects inside, one to a mapped IPv6 form of an inside
    // address, one to itself (allowed, so the test can tell a refusal from a broken server).
    let app = Router::new()
        .route(
            "/to-inside",
            get(move || async move { axum::response::Redirect::to(&format!("http://127.0.0.1:{inside_port}/secret")) }),
        )
        .route(
            "/to-mapped",
            get(move || async move {
                axum::response::Redirect::to(&format!("http://[::ffff:127.0.0.1]:{inside_port}/secret"))
            }),
        )
        .route("/to-self", get(|| async { axum::response::Redirect::to("/rss") }))
        .route("/rss", get(|| async { ([("content-type", "application/rss+xml")], RSS) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let outside = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let t = feed_system(public_is_127_0_0_2()).await;
    let feeds = [
        ("redirect", format!("{outside}/to-inside")),
        ("mapped", format!("{outside}/to-mapped")),
        // A name that resolves to an inside address (what a rebinding name answers on its second
        // look-up): the resolver drops the answer, so nothing is connected to.
        ("rebinding", format!("http://localhost:{inside_port}/rss")),
        ("allowed", format!("{outside}/to-self")),
    ];
    for (name, url) in &feeds {
        let (status, answer) =
            register_feed(&t, "511083", name, json!({"url": url, "intervalSecs": 1, "category": "CATEGORY_OTHER"}))
                .await;
        assert_eq!(status, 204, "{name}: {answer}");
    }
    let state_of = |name: &'static str| {
        let t = &t;
        async move {
            let listed = feeds_of(t, "511083").await;
            listed["feeds"].as_array().unwrap().iter().find(|f| f["name"] == name).unwrap()["state"].clone()
        }
    };
    eventually("every refused feed has failed", || async {
        let mut failed = true;
        for name in ["redirect", "mapped", "rebinding"] {
            failed &= state_of(name).await["consecutiveFailures"].as_u64() >= Some(1);
        }
        failed
    })
    .await;
    eventually("the allowed redirect was followed", || async { state_of("allowed").await["itemsIngested"] == 2 }).await;
    for (name, expected) in [
        ("redirect", "redirect to http://127.0.0.1"),
        ("mapped", "not a public address"),
        ("rebinding", "resolves to no public address"),
    ] {
        let error = state_of(name).await["lastError"].as_str().unwrap_or_default().to_owned();
        assert!(error.contains(expected), "{name}: {error}");
    }
    assert_eq!(*inside_hits.lock().unwrap(), 0, "the inside server was reached");
    // Only the allowed feed's two good items became stories.
    assert_eq!(t.submitted_count().await, 2);
}

#[tokio::test]
async fn two_ingest_replicas_fetch_each_due_poll_of_a_feed_once() {
    let polls = Arc::new(Mutex::new(Vec::<std::time::Instant>::new()));
    let counted = polls.clone();
    let app = Router::new().route(
        "/rss",
        get(move || {
            let counted = counted.clone();
            async move {
                counted.lock().unwrap().push(std::time::Instant::now());
                ([("content-type", "application/rss+xml")], RSS)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/rss", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let t = feed_system(anywhere()).await;
    // A second ingest process on the same bus: both poll every 100 ms for due feeds.
    let second = bashu::System::start(&t.config, &[Target::Ingest], t.shutdown.clone()).await.unwrap();
    let (status, answer) =
        register_feed(&t, "511083", "shared", json!({"url": url, "intervalSecs": 2, "category": "CATEGORY_OTHER"}))
            .await;
    assert_eq!(status, 204, "{answer}");
    eventually("the feed was polled four times", || async { polls.lock().unwrap().len() >= 4 }).await;
    let polls = polls.lock().unwrap().clone();
    // Due every 2 s (in whole seconds): polls are at least a second apart. Two replicas both
    // fetching a due poll would be a tick (100 ms) apart.
    let closest = polls.windows(2).map(|w| w[1] - w[0]).min().unwrap();
    assert!(closest >= std::time::Duration::from_millis(900), "two fetches {} ms apart", closest.as_millis());
    assert_eq!(t.submitted_count().await, 2, "each good item once");
    drop(second);
}
