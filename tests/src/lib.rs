//! The harness of Bashu's end-to-end tests: a real nats-server per test, the system started
//! in-process on free ports under a prefix of its own, and helpers to submit stories and to
//! look at what the streams hold.

use std::{collections::BTreeMap, future::Future, time::Duration};

use bashu::{Config, System, Target};
use bashu_bus::{Bus, FEEDS, RetryConfig, STORIES, Subjects, Topology};
use bashu_test_support::NatsServer;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// How long a test waits for something that must happen, before it fails. A bound on
/// correctness ("it never arrived"), not a performance assertion.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A running system on its own nats-server.
pub struct TestSystem {
    /// The server (kill, restart).
    pub nats: NatsServer,
    /// The configuration the system runs with.
    pub config: Config,
    /// The running services.
    pub system: System,
    /// Cancel to stop the services.
    pub shutdown: CancellationToken,
    /// An observer's connection, under the same prefix.
    pub bus: Bus,
    http: reqwest::Client,
}

/// The configuration tests run with: free ports, a prefix, the demo seed, fast retries.
pub fn test_config(nats_url: &str, prefix: &str) -> Config {
    let mut config = Config::default();
    config.nats.url = nats_url.to_owned();
    config.nats.prefix = prefix.to_owned();
    config.http.listen = "127.0.0.1:0".parse().expect("address");
    config.grpc.listen = "127.0.0.1:0".parse().expect("address");
    config.registry.seed_demo = true;
    let fast = RetryConfig { ack_wait_ms: 1_000, max_deliver: 5, backoff_ms: vec![50] };
    config.moderation.consumer = fast.clone();
    config.distribution.consumer = fast;
    config
}

impl TestSystem {
    /// Every service.
    pub async fn start() -> Self {
        Self::start_with(&Target::ALL).await
    }

    /// Only the given services.
    pub async fn start_with(targets: &[Target]) -> Self {
        let nats = NatsServer::start().await;
        let prefix = format!("t{}", bashu_test_support::free_port());
        let config = test_config(&nats.url(), &prefix);
        let shutdown = CancellationToken::new();
        let system = System::start(&config, targets, shutdown.clone()).await.expect("system starts");
        let bus =
            Bus::connect(&nats.url(), "test-observer", Subjects::new(&prefix).expect("prefix"), Topology::default())
                .await
                .expect("observer connects");
        Self { nats, config, system, shutdown, bus, http: reqwest::Client::new() }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn http_base(&self) -> String {
        format!("http://{}", self.system.http_addr)
    }

    /// `http://127.0.0.1:<port>` of the gRPC listener.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.system.grpc_addr)
    }

    /// POSTs a JSON body to `/v1/stories`; returns the status and the parsed JSON answer.
    pub async fn post_story(&self, body: &Value) -> (u16, Value) {
        self.post_raw(body.to_string().into_bytes(), "application/json").await
    }

    /// POSTs raw bytes to `/v1/stories`.
    pub async fn post_raw(&self, body: Vec<u8>, content_type: &str) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/v1/stories", self.http_base()))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("ingest answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("answer is JSON, got {status}: {text}"));
        (status, value)
    }

    /// Messages per county across every feed (county code → count).
    pub async fn feed_counts(&self) -> BTreeMap<String, u64> {
        feed_counts(&self.bus).await
    }

    /// How many story versions distribution has published.
    pub async fn published_count(&self) -> u64 {
        published_count(&self.bus).await
    }

    /// How many submissions the STORIES stream holds.
    pub async fn submitted_count(&self) -> u64 {
        let subjects = self.bus.subjects();
        self.bus.subject_counts(STORIES, &subjects.all_story_submitted()).await.expect("counts").values().sum()
    }
}

impl Drop for TestSystem {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Messages per county across every feed (county code → count).
pub async fn feed_counts(bus: &Bus) -> BTreeMap<String, u64> {
    let subjects = bus.subjects();
    let per_subject = bus.subject_counts(FEEDS, &subjects.all_feeds()).await.expect("feed counts");
    let mut counts = BTreeMap::new();
    for (subject, count) in per_subject {
        let county = subjects.feed_county(&subject).expect("a feed subject").to_owned();
        *counts.entry(county).or_default() += count;
    }
    counts
}

/// How many story versions distribution has published.
pub async fn published_count(bus: &Bus) -> u64 {
    bus.subject_counts(STORIES, &bus.subjects().all_story_published()).await.expect("counts").values().sum()
}

/// Polls `condition` until it holds, or fails the test after [`PATIENCE`] with `what`.
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A valid story in canonical JSON.
pub fn story_json(id: &str, origin: &str, sharing: Value) -> Value {
    json!({
        "id": id,
        "version": 1,
        "originCounty": origin,
        "headline": format!("测试稿件 {id}"),
        "body": "正文",
        "category": "CATEGORY_POLICY",
        "sharing": sharing,
    })
}

/// The ten members of the example Fujiang alliance in the demo seed.
pub const FUJIANG: [&str; 10] =
    ["510727", "510781", "510703", "510704", "510722", "510981", "510903", "500152", "500151", "500117"];
