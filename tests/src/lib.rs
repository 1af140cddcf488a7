//! The harness of Bashu's end-to-end tests: a real nats-server per test, the system started
//! in-process on free ports under a prefix of its own, and helpers to submit stories and to
//! look at what the streams hold.

mod secured;

use std::{collections::BTreeMap, future::Future, sync::Arc, time::Duration};

use bashu_registry::{Counties, RegistryStore};

use bashu::{Config, System, Target, demo::DemoDesk};
use bashu_bus::{ALERT_FEEDS, Bus, FEEDS, RetryConfig, STORIES, Subjects, Topology};
use bashu_test_support::NatsServer;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub use secured::SecuredSystem;

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
    tokens: std::sync::Mutex<BTreeMap<String, String>>,
}

/// The path of one of the workspace's binaries (`bashu`, `bashuctl`), built first: a no-op after
/// `make test`'s own `cargo build --workspace --bins`, whose feature set this repeats.
pub fn workspace_binary(name: &str) -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = std::process::Command::new(cargo);
    build.args(["build", "--quiet", "--workspace", "--bins"]).current_dir(&root);
    // What cargo set for this test process is not the environment of a build: build scripts
    // that watch these (ring watches CARGO_MANIFEST_DIR) would rebuild everything.
    for (variable, _) in std::env::vars_os() {
        let variable = variable.to_string_lossy();
        let set_for_the_test = ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_CRATE_", "CARGO_BIN_"]
            .iter()
            .any(|prefix| variable.starts_with(prefix))
            || ["CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "CARGO_RUSTC_CURRENT_DIR", "OUT_DIR"]
                .contains(&&*variable);
        if set_for_the_test {
            build.env_remove(&*variable);
        }
    }
    assert!(build.status().expect("cargo runs").success(), "the workspace's binaries do not build");
    // The test binary is target/<profile>/deps/<name>; the binaries are in target/<profile>.
    let exe = std::env::current_exe().expect("the test binary's path");
    let binary = exe.ancestors().nth(2).expect("target/<profile>").join(name);
    assert!(binary.is_file(), "{} not found", binary.display());
    binary
}

/// The real `bashu` binary running `targets` (`ingest,moderation`) on `nats` under `prefix`, its
/// HTTP listener on `http_port`, with `--grace-seconds grace`. Killed when dropped.
pub fn spawn_bashu(targets: &str, nats: &str, prefix: &str, http_port: u16, grace: Duration) -> tokio::process::Child {
    spawn_bashu_with(targets, nats, prefix, http_port, grace, &[])
}

/// As [`spawn_bashu`], with more `BASHU_…` settings.
pub fn spawn_bashu_with(
    targets: &str,
    nats: &str,
    prefix: &str,
    http_port: u16,
    grace: Duration,
    settings: &[(&str, &str)],
) -> tokio::process::Child {
    tokio::process::Command::new(workspace_binary("bashu"))
        .args(["--target", targets, "--grace-seconds", &grace.as_secs().to_string()])
        .env("BASHU_NATS__URL", nats)
        .env("BASHU_NATS__PREFIX", prefix)
        .env("BASHU_HTTP__LISTEN", format!("127.0.0.1:{http_port}"))
        .env("BASHU_GRPC__LISTEN", format!("127.0.0.1:{}", bashu_test_support::free_port()))
        .env("BASHU_INGEST__RATE_PER_MINUTE", "10000000")
        .env("BASHU_INGEST__RATE_BURST", "100000")
        // A killed consumer's message comes back after ack_wait: seconds, not the default 30.
        .env("BASHU_MODERATION__CONSUMER__ACK_WAIT_MS", "2000")
        .env("BASHU_MODERATION__CONSUMER__BACKOFF_MS", "[100]")
        .env("BASHU_DISTRIBUTION__CONSUMER__ACK_WAIT_MS", "2000")
        .env("BASHU_DISTRIBUTION__CONSUMER__BACKOFF_MS", "[100]")
        .env("BASHU_INGEST__STATUS_CONSUMER__ACK_WAIT_MS", "2000")
        .env("BASHU_INGEST__STATUS_CONSUMER__BACKOFF_MS", "[100]")
        .env("RUST_LOG", "warn")
        // Last, so that a caller's setting wins over the defaults above.
        .envs(settings.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("bashu starts")
}

/// County CMSs submitting stories to 500153 as fast as they are answered, each retrying a story
/// with the same id until it is accepted (as docs/county-integration.md tells a CMS to).
pub struct CmsLoad {
    /// The ids answered 200 or 202.
    pub accepted: Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>,
    stop: CancellationToken,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

impl CmsLoad {
    /// Starts `clients` CMSs posting to the ingest HTTP listener on `port` with `token` (511083's);
    /// `port` may change while they run (an ingest process restarted elsewhere).
    pub fn start(
        http: &reqwest::Client,
        port: Arc<std::sync::atomic::AtomicU16>,
        token: &str,
        clients: usize,
        name: &str,
    ) -> Self {
        let accepted = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
        let stop = CancellationToken::new();
        let clients = (0..clients)
            .map(|client| {
                let (http, token, accepted, stop) = (http.clone(), token.to_owned(), accepted.clone(), stop.clone());
                let (name, port) = (name.to_owned(), port.clone());
                tokio::spawn(async move {
                    let mut n = 0;
                    while !stop.is_cancelled() {
                        let id = format!("{name}-{client}-{n}");
                        let port = port.load(std::sync::atomic::Ordering::SeqCst);
                        let answer = http
                            .post(format!("http://127.0.0.1:{port}/v1/stories"))
                            .bearer_auth(&token)
                            .timeout(Duration::from_secs(5))
                            .json(&story_json(&id, "511083", json!({"counties": ["500153"]})))
                            .send()
                            .await;
                        match answer {
                            Ok(response) if response.status().is_success() => {
                                accepted.lock().expect("accepted").insert(id);
                                n += 1;
                            }
                            _ => tokio::time::sleep(Duration::from_millis(50)).await,
                        }
                    }
                })
            })
            .collect();
        Self { accepted, stop, clients }
    }

    /// How many stories were accepted so far.
    pub fn accepted_count(&self) -> usize {
        self.accepted.lock().expect("accepted").len()
    }

    /// Stops every client and returns the accepted ids.
    pub async fn stop(self) -> std::collections::BTreeSet<String> {
        self.stop.cancel();
        for client in self.clients {
            client.await.expect("a CMS client");
        }
        self.accepted.lock().expect("accepted").clone()
    }
}

/// What the process-level fault tests start from on a fresh bus: a token for `county` (as an
/// operator issues it) and a desk for `areas`, whose secret key is returned with the token.
pub async fn county_and_desk(observer: &Bus, county: &str, desk: &str, areas: &[&str]) -> (String, [u8; 32]) {
    let counties = Arc::new(Counties::builtin().expect("registry"));
    let token = bashu_registry::CountyTokens::open(observer, counties.clone())
        .await
        .expect("credentials bucket")
        .issue(county, "fault tests")
        .await
        .expect("a county token")
        .token;
    let (desk_secret, desk_public) = bashu_alerts::signature::new_key_pair();
    RegistryStore::open(observer, counties)
        .await
        .expect("registry bucket")
        .put_desk(bashu_proto::registry::v1::Desk {
            id: desk.into(),
            name: format!("{desk} (fault tests)"),
            public_key: desk_public.to_vec(),
            areas: areas.iter().map(|a| a.to_string()).collect(),
            contact: "test".into(),
            senders: vec![format!("{desk}@bashu.example")],
            ..Default::default()
        })
        .await
        .expect("the desk is stored");
    (token, desk_secret)
}

/// How many times each story id is in `county`'s feed.
pub async fn deliveries_per_story(bus: &Bus, county: &str) -> BTreeMap<String, usize> {
    let feed = bus.subjects().feed_story(county).expect("a county code");
    let deliveries: Vec<bashu_proto::story::v1::StoryDelivery> =
        bus.operations().read_all(FEEDS, &feed).await.unwrap_or_default();
    let mut counts = BTreeMap::new();
    for delivery in deliveries {
        *counts.entry(delivery.story.expect("a story").id).or_default() += 1;
    }
    counts
}

/// Waits until every accepted id reached 500153, lets in-flight work settle, and returns the
/// figures (delivered stories, lost, duplicated at the county).
pub async fn settle_deliveries(bus: &Bus, accepted: &std::collections::BTreeSet<String>) -> (usize, usize, usize) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let counts = deliveries_per_story(bus, "500153").await;
        let missing: Vec<&String> = accepted.iter().filter(|id| !counts.contains_key(*id)).collect();
        if missing.is_empty() {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "{} accepted stories never reached 500153: {}",
                missing.len(),
                where_stories_stopped(bus, &missing).await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Anything still in flight settles before duplicates are counted.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let counts = deliveries_per_story(bus, "500153").await;
    let lost = accepted.iter().filter(|id| !counts.contains_key(*id)).count();
    let duplicated = counts.values().filter(|n| **n > 1).count();
    (counts.len(), lost, duplicated)
}

/// How far each of some stories of 511083 got in the `STORIES` ledger (submitted, decided,
/// published), for a failing test's message: lost at a stage, or only late.
async fn where_stories_stopped(bus: &Bus, ids: &[&String]) -> String {
    use bashu_bus::Event as _;
    use bashu_proto::story::v1::{ModerationDecision, StoryPublished, StorySubmitted};
    use prost::Message as _;
    let subjects = bus.subjects();
    let ids_of = |stories: Vec<Option<bashu_proto::story::v1::Story>>| -> std::collections::BTreeSet<String> {
        stories.into_iter().flatten().map(|story| story.id).collect()
    };
    let submitted: Vec<StorySubmitted> = bus
        .operations()
        .read_all(STORIES, &subjects.story_submitted("511083").expect("code"))
        .await
        .unwrap_or_default();
    let decided: Vec<ModerationDecision> =
        bus.operations().read_all(STORIES, &subjects.story_decided("511083").expect("code")).await.unwrap_or_default();
    let published: Vec<StoryPublished> = bus
        .operations()
        .read_all(STORIES, &subjects.story_published("511083").expect("code"))
        .await
        .unwrap_or_default();
    let submitted = ids_of(submitted.into_iter().map(|e| e.story).collect());
    let decided = ids_of(decided.into_iter().map(|e| e.story).collect());
    let published: std::collections::BTreeSet<String> = published.into_iter().map(|e| e.story_id).collect();
    // A story a consumer gave up on is in the dead letters, with the reason.
    let dead: BTreeMap<String, String> = bus
        .operations()
        .dead_letters()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter_map(|letter| {
            let id = match letter.event_type.as_str() {
                StorySubmitted::TYPE => StorySubmitted::decode(letter.payload).ok()?.story?.id,
                ModerationDecision::TYPE => ModerationDecision::decode(letter.payload).ok()?.story?.id,
                _ => return None,
            };
            Some((
                id,
                format!("dead-lettered by {} after {} attempts: {}", letter.consumer, letter.attempts, letter.reason),
            ))
        })
        .collect();
    ids.iter()
        .take(10)
        .map(|id| {
            let stage = if published.contains(*id) {
                "published, not in the feed"
            } else if decided.contains(*id) {
                "decided, not published"
            } else if submitted.contains(*id) {
                "submitted, not decided"
            } else {
                "not even submitted"
            };
            match dead.get(*id) {
                Some(why) => format!("{id}: {stage}, {why}"),
                None => format!("{id}: {stage}"),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Waits until a `bashu` process's `/readyz` on `http_port` answers 200.
pub async fn wait_ready(http: &reqwest::Client, http_port: u16) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::Instant::now() < deadline {
        if let Ok(response) = http.get(format!("http://127.0.0.1:{http_port}/readyz")).send().await
            && response.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("bashu on port {http_port} did not become ready");
}

/// The process's tracing, exporting every finished span to memory (installed once; tests that
/// share a process share it and tell their spans apart by trace id).
pub fn traced() -> opentelemetry_sdk::trace::InMemorySpanExporter {
    static EXPORTER: std::sync::OnceLock<opentelemetry_sdk::trace::InMemorySpanExporter> = std::sync::OnceLock::new();
    EXPORTER
        .get_or_init(|| {
            let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
            let guard = bashu_telemetry::init_with_exporter(
                "bashu-test",
                "warn",
                bashu_telemetry::LogFormat::Text,
                exporter.clone(),
            );
            // The provider lives as long as the process.
            std::mem::forget(guard);
            exporter
        })
        .clone()
}

/// Adds `authorization: Bearer …` to every call.
#[derive(Clone)]
pub struct Bearer(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// A channel whose calls carry a staff token.
pub type StaffChannel = tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Bearer>;

/// A gRPC channel to `endpoint` on which every call carries `token` as a bearer token.
pub async fn bearer_channel(endpoint: &str, token: &str) -> Result<StaffChannel, tonic::transport::Error> {
    let channel = tonic::transport::Channel::from_shared(endpoint.to_owned()).expect("an endpoint").connect().await?;
    let value = format!("Bearer {token}").parse().expect("a header value");
    Ok(tonic::service::interceptor::InterceptedService::new(channel, Bearer(value)))
}

/// The operator token the test systems accept for admin writes.
pub const OPERATOR_TOKEN: &str = "test-operator-token";

/// The configuration tests run with: free ports, a prefix, the demo seed, fast retries.
pub fn test_config(nats_url: &str, prefix: &str) -> Config {
    let mut config = Config::default();
    config.nats.url = nats_url.to_owned();
    config.nats.prefix = prefix.to_owned();
    config.http.listen = "127.0.0.1:0".parse().expect("address");
    config.grpc.listen = "127.0.0.1:0".parse().expect("address");
    config.registry.seed_demo = true;
    config.admin.operator_token = bashu_admin::Secret::new(OPERATOR_TOKEN);
    let fast = RetryConfig { ack_wait_ms: 1_000, max_deliver: 5, backoff_ms: vec![50] };
    config.moderation.consumer = fast.clone();
    config.distribution.consumer = fast.clone();
    config.alerts.fanout = fast.clone();
    config.alerts.tracker = fast;
    config.alerts.escalation.tick_ms = 100;
    // Load tests send thousands of stories from one county; the limit has a test of its own.
    config.ingest.rate_per_minute = 10_000_000;
    config.ingest.rate_burst = 100_000;
    // The tests' feed and webhook servers listen on loopback over plain HTTP; the refusals have
    // tests of their own.
    config.egress.allow_private = true;
    config.egress.allow_plain_http_webhooks = true;
    config
}

impl TestSystem {
    /// Every service.
    pub async fn start() -> Self {
        Self::start_with(&Target::ALL).await
    }

    /// Only the given services.
    pub async fn start_with(targets: &[Target]) -> Self {
        Self::start_configured(targets, |_| {}).await
    }

    /// The given services, with the test configuration changed by `configure`.
    pub async fn start_configured(targets: &[Target], configure: impl FnOnce(&mut Config)) -> Self {
        let nats = NatsServer::start().await;
        let prefix = format!("t{}", bashu_test_support::free_port());
        let mut config = test_config(&nats.url(), &prefix);
        configure(&mut config);
        let shutdown = CancellationToken::new();
        let system = System::start(&config, targets, shutdown.clone()).await.expect("system starts");
        let bus =
            Bus::connect(&nats.url(), "test-observer", Subjects::new(&prefix).expect("prefix"), Topology::default())
                .await
                .expect("observer connects");
        Self { nats, config, system, shutdown, bus, http: bashu::http_client(), tokens: Default::default() }
    }

    /// A token for a county (issued on first use, as an operator would through the admin API).
    pub async fn token_for(&self, county: &str) -> String {
        let counties = Arc::new(Counties::builtin().expect("registry"));
        let county = counties.resolve(county).map(|r| r.county.code.clone()).unwrap_or_else(|_| county.to_owned());
        if let Some(token) = self.tokens.lock().expect("tokens").get(&county) {
            return token.clone();
        }
        let tokens = bashu_registry::CountyTokens::open(&self.bus, counties).await.expect("credentials bucket");
        let token = tokens.issue(&county, "test").await.expect("a token").token;
        self.tokens.lock().expect("tokens").insert(county, token.clone());
        token
    }

    /// A gRPC request carrying a county's token.
    pub async fn as_county<T>(&self, county: &str, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        let value = format!("Bearer {}", self.token_for(county).await).parse().expect("a header value");
        request.metadata_mut().insert("authorization", value);
        request
    }

    /// A gRPC channel on which every call carries `token` as a bearer token.
    pub async fn staff_channel(&self, token: &str) -> StaffChannel {
        bearer_channel(&self.grpc_endpoint(), token).await.expect("the gRPC listener accepts")
    }

    /// A gRPC channel acting as the bootstrap operator.
    pub async fn operator_channel(&self) -> StaffChannel {
        self.staff_channel(OPERATOR_TOKEN).await
    }

    /// Issues a staff token as the bootstrap operator; returns its id and the token.
    pub async fn issue_staff_token(
        &self,
        name: &str,
        role: bashu_proto::registry::v1::StaffRole,
        review_levels: Vec<u32>,
        desk_id: &str,
    ) -> (String, String) {
        use bashu_proto::admin::v1::{IssueStaffTokenRequest, credential_service_client::CredentialServiceClient};
        let mut credentials = CredentialServiceClient::new(self.operator_channel().await);
        let request =
            IssueStaffTokenRequest { name: name.into(), role: role as i32, review_levels, desk_id: desk_id.into() };
        let issued =
            credentials.issue_staff_token(request).await.expect("the operator issues staff tokens").into_inner();
        (issued.record.unwrap_or_default().id, issued.token)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn http_base(&self) -> String {
        format!("http://{}", self.system.http_addr)
    }

    /// `http://127.0.0.1:<port>` of the gRPC listener.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.system.grpc_addr)
    }

    /// POSTs a JSON body to `/v1/stories` as its `originCounty`; returns the status and the
    /// parsed JSON answer.
    pub async fn post_story(&self, body: &Value) -> (u16, Value) {
        // An origin that is no county (a validation test) is sent with some county's token.
        let origin = body["originCounty"].as_str().unwrap_or("");
        let known = Counties::builtin().expect("registry").resolve(origin).is_ok();
        let county = if known { origin.to_owned() } else { "511083".to_owned() };
        self.post_raw_as(&county, body.to_string().into_bytes(), "application/json").await
    }

    /// POSTs raw bytes to `/v1/stories` as county 511083.
    pub async fn post_raw(&self, body: Vec<u8>, content_type: &str) -> (u16, Value) {
        self.post_raw_as("511083", body, content_type).await
    }

    /// POSTs raw bytes to `/v1/stories` with a county's token.
    pub async fn post_raw_as(&self, county: &str, body: Vec<u8>, content_type: &str) -> (u16, Value) {
        let token = self.token_for(county).await;
        let response = self
            .http
            .post(format!("{}/v1/stories", self.http_base()))
            .bearer_auth(token)
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

    /// A demo desk with its secret key.
    pub fn desk(&self, id: &str) -> DemoDesk {
        self.system.demo.desks.iter().find(|d| d.id == id).unwrap_or_else(|| panic!("no demo desk {id}")).clone()
    }

    /// Signs `cap_xml` as desk `desk_id` now and POSTs it to `/v1/alerts`.
    pub async fn issue_alert(&self, desk_id: &str, cap_xml: &str) -> (u16, Value) {
        let response = self
            .desk(desk_id)
            .post_alert(&self.http, &self.http_base(), cap_xml.to_owned())
            .await
            .expect("alerts answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON answer"))
    }

    /// POSTs a CAP document to `/v1/alerts` with the given signature headers.
    pub async fn post_alert(&self, desk_id: &str, timestamp: i64, signature: &[u8], body: Vec<u8>) -> (u16, Value) {
        use base64::Engine as _;
        let response = self
            .http
            .post(format!("{}/v1/alerts", self.http_base()))
            .header("content-type", "application/cap+xml")
            .header(bashu_alerts::DESK_HEADER, desk_id)
            .header(bashu_alerts::TIMESTAMP_HEADER, timestamp.to_string())
            .header(bashu_alerts::SIGNATURE_HEADER, base64::engine::general_purpose::STANDARD.encode(signature))
            .body(body)
            .send()
            .await
            .expect("alerts answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON answer"))
    }

    /// POSTs JSON or bytes to any path and returns the status and JSON answer.
    pub async fn post(&self, path: &str, body: Vec<u8>, content_type: &str) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.http_base()))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("bashu answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON answer"))
    }

    /// Acknowledges alert `key` for `county` over HTTP with that county's own token.
    pub async fn acknowledge(&self, key: &str, county: &str, by: &str) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/v1/alerts/{key}/acknowledgements", self.http_base()))
            .bearer_auth(self.token_for(county).await)
            .json(&json!({"county": county, "acknowledgedBy": by}))
            .send()
            .await
            .expect("bashu answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON answer"))
    }

    /// GETs a path and returns the status and JSON answer. A story's status
    /// (`/v1/stories/<origin>/…`) is read with its origin county's token, an alert's
    /// (`/v1/alerts/<key>`) with the operator's.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let mut request = self.http.get(format!("{}{path}", self.http_base()));
        if let Some(origin) = path.strip_prefix("/v1/stories/").and_then(|rest| rest.split('/').next()) {
            request = request.bearer_auth(self.token_for(origin).await);
        } else if path.starts_with("/v1/alerts/") {
            request = request.bearer_auth(OPERATOR_TOKEN);
        }
        let response = request.send().await.expect("bashu answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON answer"))
    }

    /// Durable alert deliveries per county (county code → count).
    pub async fn alert_feed_counts(&self) -> BTreeMap<String, u64> {
        let subjects = self.bus.subjects();
        let per_subject = self
            .bus
            .operations()
            .subject_counts(ALERT_FEEDS, &subjects.all_alert_feeds())
            .await
            .expect("alert feed counts");
        per_subject
            .into_iter()
            .map(|(subject, count)| {
                (subjects.alert_feed_county(&subject).expect("an alert feed subject").to_owned(), count)
            })
            .collect()
    }

    /// Messages per county across every feed (county code → count).
    pub async fn feed_counts(&self) -> BTreeMap<String, u64> {
        feed_counts(&self.bus).await
    }

    /// The registry's store, to change alliances, subscriptions and webhooks as an operator would.
    pub async fn registry_store(&self) -> RegistryStore {
        RegistryStore::open(&self.bus, Arc::new(Counties::builtin().expect("registry"))).await.expect("registry store")
    }

    /// Another replica (or another pod's services) beside this system: `targets` on the same NATS
    /// and prefix, on listeners of their own. Cancel the token to stop it.
    pub async fn start_beside(&self, targets: &[Target]) -> (System, CancellationToken) {
        let mut config = self.config.clone();
        config.http.listen = "127.0.0.1:0".parse().expect("an address");
        config.grpc.listen = "127.0.0.1:0".parse().expect("an address");
        let shutdown = CancellationToken::new();
        let system = System::start(&config, targets, shutdown.clone()).await.expect("the other system starts");
        (system, shutdown)
    }

    /// Distribution on a connection of its own, as its own process would have: abort the task to
    /// kill it (-9), cancel the token to stop it gracefully.
    pub async fn start_distribution(&self) -> (tokio::task::JoinHandle<()>, CancellationToken) {
        let subjects = Subjects::new(&self.config.nats.prefix).expect("prefix");
        let bus =
            Bus::connect(&self.nats.url(), "distribution", subjects, Topology::default()).await.expect("connects");
        let counties = Arc::new(Counties::builtin().expect("registry"));
        let shutdown = CancellationToken::new();
        let registry = RegistryStore::open(&bus, counties.clone())
            .await
            .expect("store")
            .watch(shutdown.clone())
            .await
            .expect("watch");
        let tokens = bashu_registry::CountyTokens::open(&bus, counties.clone()).await.expect("credentials bucket");
        let distribution = bashu_distribution::Distribution::build(
            self.config.distribution.clone(),
            self.config.egress.clone(),
            bus,
            counties,
            registry,
            tokens,
        )
        .await
        .expect("distribution builds");
        let run = distribution.run(shutdown.clone());
        (tokio::spawn(async move { run.await.expect("distribution runs") }), shutdown)
    }

    /// The story versions in a county's feed, oldest first.
    pub async fn feed_of(&self, county: &str) -> Vec<bashu_proto::story::v1::StoryDelivery> {
        self.bus
            .operations()
            .read_all(FEEDS, &self.bus.subjects().feed_of(county).expect("a county"))
            .await
            .expect("the feed")
    }

    /// How many story versions distribution has published.
    pub async fn published_count(&self) -> u64 {
        published_count(&self.bus).await
    }

    /// How many submissions the STORIES stream holds.
    pub async fn submitted_count(&self) -> u64 {
        let subjects = self.bus.subjects();
        self.bus
            .operations()
            .subject_counts(STORIES, &subjects.all_story_submitted())
            .await
            .expect("counts")
            .values()
            .sum()
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
    let per_subject = bus.operations().subject_counts(FEEDS, &subjects.all_feeds()).await.expect("feed counts");
    let mut counts = BTreeMap::new();
    for (subject, count) in per_subject {
        let county = subjects.feed_county(&subject).expect("a feed subject").to_owned();
        *counts.entry(county).or_default() += count;
    }
    counts
}

/// How many story versions distribution has published.
pub async fn published_count(bus: &Bus) -> u64 {
    bus.operations()
        .subject_counts(STORIES, &bus.subjects().all_story_published())
        .await
        .expect("counts")
        .values()
        .sum()
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
