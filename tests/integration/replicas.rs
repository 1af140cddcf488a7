//! Every service as several active replicas, each its own `bashu` process on one nats-server: a
//! kill -9 of one replica under load, and a rolling restart of every service under load. Stories
//! with several versions, alerts whose counties never acknowledge (so every escalation step comes
//! due while processes die), and desks issuing throughout.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use bashu_bus::{ALERT_FEEDS, ALERTS, Bus, FEEDS, Subjects, Topology};
use bashu_proto::{
    alert::v1::{AlertDelivery, AlertEscalation},
    story::v1::StoryDelivery,
};
use bashu_registry::Counties;
use bashu_test_support::{NatsServer, free_port};
use bashu_tests::{PATIENCE, eventually, spawn_bashu_with, story_json};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const DESK: &str = "replicas-desk";
/// 绵阳's nine counties: every alert of the load targets them.
const PREFECTURE: &str = "5107";
const ORIGIN: &str = "511083";
const RECEIVER: &str = "500153";
/// Versions of each story of the load: the second and third are corrections.
const VERSIONS: u32 = 3;
/// An Actual, Severe alert's deadline in these tests: re-sent after it, escalated after twice it.
const SEVERE_MS: u64 = 1_500;

/// One running `bashu` process.
struct Process {
    child: tokio::process::Child,
    http: u16,
}

impl Process {
    fn spawn(target: &str, nats: &str, prefix: &str) -> Self {
        let http = free_port();
        let grpc = format!("127.0.0.1:{}", free_port());
        let severe = SEVERE_MS.to_string();
        let settings = [
            ("BASHU_GRPC__LISTEN", grpc.as_str()),
            ("BASHU_ALERTS__FANOUT__ACK_WAIT_MS", "2000"),
            ("BASHU_ALERTS__FANOUT__BACKOFF_MS", "[100]"),
            ("BASHU_ALERTS__TRACKER__ACK_WAIT_MS", "2000"),
            ("BASHU_ALERTS__TRACKER__BACKOFF_MS", "[100, 200, 400, 800]"),
            ("BASHU_ALERTS__TRACKER__MAX_DELIVER", "10"),
            ("BASHU_ALERTS__ESCALATION__SEVERE_MS", severe.as_str()),
            ("BASHU_ALERTS__ESCALATION__TICK_MS", "100"),
            ("BASHU_DISTRIBUTION__RELEASE_TICK_MS", "100"),
        ];
        let child = spawn_bashu_with(target, nats, prefix, http, Duration::from_secs(10), &settings);
        Self { child, http }
    }

    /// Spawns `target` and waits until it is ready. A process that exits before (one of the free
    /// ports it was given was taken meanwhile by a test running beside this one) is spawned
    /// again on other ports.
    async fn ready(target: &str, nats: &str, prefix: &str, http: &reqwest::Client) -> Self {
        for _ in 0..3 {
            let mut process = Self::spawn(target, nats, prefix);
            let deadline = tokio::time::Instant::now() + PATIENCE;
            while tokio::time::Instant::now() < deadline {
                if process.child.try_wait().expect("the process's state").is_some() {
                    break;
                }
                let url = format!("http://127.0.0.1:{}/readyz", process.http);
                if http.get(url).send().await.is_ok_and(|r| r.status() == 200) {
                    return process;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        panic!("bashu --target {target} did not become ready in three tries");
    }

    fn kill(&mut self) {
        self.child.start_kill().expect("kill -9");
    }

    /// SIGTERM, then waits for the process to end by itself.
    async fn terminate(mut self) {
        let pid = self.child.id().expect("a running process") as i32;
        std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill runs");
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
        assert!(status.is_ok_and(|s| s.is_ok()), "the process did not end after SIGTERM");
    }
}

/// The system under test: `replicas` processes of each service.
struct Replicated {
    nats: NatsServer,
    prefix: String,
    observer: Bus,
    http: reqwest::Client,
    token: String,
    desk_secret: [u8; 32],
    processes: BTreeMap<&'static str, Vec<Process>>,
}

const SERVICES: [&str; 5] = ["ingest", "moderation", "distribution", "alerts", "admin"];

impl Replicated {
    async fn start(replicas: &[(&'static str, usize)]) -> Self {
        let nats = NatsServer::start().await;
        let prefix = format!("t{}", free_port());
        let observer =
            Bus::connect(&nats.url(), "observer", Subjects::new(&prefix).unwrap(), Topology::default()).await.unwrap();
        observer.provision().await.unwrap();
        let (token, desk_secret) = bashu_tests::county_and_desk(&observer, ORIGIN, DESK, &[PREFECTURE]).await;
        let http = bashu::http_client();
        let mut processes = BTreeMap::new();
        for (target, count) in replicas {
            let mut started = Vec::new();
            for _ in 0..*count {
                started.push(Process::ready(target, &nats.url(), &prefix, &http).await);
            }
            processes.insert(*target, started);
        }
        Self { nats, prefix, observer, http, token, desk_secret, processes }
    }

    /// The HTTP ports a load balancer would send a target's requests to right now.
    fn ports(&self, target: &str) -> Vec<u16> {
        self.processes[target].iter().map(|p| p.http).collect()
    }
}

/// Where the load balancer sends requests: the ready replicas of one service, round robin.
#[derive(Clone, Default)]
struct Balancer(Arc<Mutex<(Vec<u16>, usize)>>);

impl Balancer {
    fn set(&self, ports: Vec<u16>) {
        self.0.lock().unwrap().0 = ports;
    }

    fn next(&self) -> u16 {
        let mut guard = self.0.lock().unwrap();
        guard.1 += 1;
        guard.0[guard.1 % guard.0.len()]
    }
}

/// A CMS submitting stories of `VERSIONS` versions each, every version retried until accepted.
fn story_load(
    http: &reqwest::Client,
    ingest: Balancer,
    token: &str,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<BTreeSet<String>> {
    let (http, token) = (http.clone(), token.to_owned());
    tokio::spawn(async move {
        let mut done = BTreeSet::new();
        let mut n = 0;
        while !stop.is_cancelled() {
            let id = format!("replicated-{n}");
            for version in 1..=VERSIONS {
                let mut story = story_json(&id, ORIGIN, json!({"counties": [RECEIVER]}));
                story["version"] = json!(version);
                story["headline"] = json!(format!("多副本测试 {id} 第{version}版"));
                loop {
                    let answer = http
                        .post(format!("http://127.0.0.1:{}/v1/stories", ingest.next()))
                        .bearer_auth(&token)
                        .timeout(Duration::from_secs(5))
                        .json(&story)
                        .send()
                        .await;
                    match answer {
                        Ok(response) if response.status().is_success() => break,
                        _ => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            }
            done.insert(id);
            n += 1;
        }
        done
    })
}

fn cap(identifier: &str) -> String {
    format!(
        r#"<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>{identifier}</identifier>
<sender>replicas-desk@bashu.example</sender><sent>2026-11-28T10:00:00+08:00</sent><status>Actual</status>
<msgType>Alert</msgType><scope>Public</scope><info><category>Met</category><event>洪水</event>
<urgency>Immediate</urgency><severity>Severe</severity><certainty>Likely</certainty>
<area><areaDesc>绵阳</areaDesc><geocode><valueName>GB/T 2260</valueName><value>{PREFECTURE}</value></geocode></area></info></alert>"#
    )
}

/// What a desk saw: the alerts accepted, and every answer that was not a success.
#[derive(Default)]
struct DeskLog {
    accepted: BTreeSet<String>,
    failures: Vec<String>,
}

/// A desk issuing one alert every 150 ms through the balancer; a failed request is recorded and
/// retried with the same identifier (as docs/alerts.md tells a desk to).
fn alert_load(
    http: &reqwest::Client,
    alerts: Balancer,
    secret: [u8; 32],
    stop: CancellationToken,
) -> tokio::task::JoinHandle<DeskLog> {
    let http = http.clone();
    tokio::spawn(async move {
        use base64::Engine as _;
        let mut log = DeskLog::default();
        let mut n = 0;
        while !stop.is_cancelled() {
            let identifier = format!("REPLICAS-{n}");
            let xml = cap(&identifier);
            loop {
                let now = bashu_proto::time::now().seconds;
                let signature = bashu_alerts::signature::sign(&secret, DESK, now, xml.as_bytes());
                let answer = http
                    .post(format!("http://127.0.0.1:{}/v1/alerts", alerts.next()))
                    .header("content-type", "application/cap+xml")
                    .header(bashu_alerts::DESK_HEADER, DESK)
                    .header(bashu_alerts::TIMESTAMP_HEADER, now.to_string())
                    .header(bashu_alerts::SIGNATURE_HEADER, base64::engine::general_purpose::STANDARD.encode(signature))
                    .timeout(Duration::from_secs(5))
                    .body(xml.clone())
                    .send()
                    .await;
                match answer {
                    Ok(response) if response.status().is_success() => break,
                    Ok(response) if response.status().is_client_error() => {
                        panic!("alert {identifier} refused: {}", response.text().await.unwrap_or_default())
                    }
                    Ok(response) => log.failures.push(format!("{identifier}: HTTP {}", response.status())),
                    Err(error) => log.failures.push(format!("{identifier}: {error}")),
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            log.accepted.insert(identifier);
            n += 1;
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        log
    })
}

/// Every county feed's versions per story, in feed order.
async fn versions_in_feed(bus: &Bus) -> BTreeMap<String, Vec<u32>> {
    let feed = bus.subjects().feed_story(RECEIVER).unwrap();
    let deliveries: Vec<StoryDelivery> = bus.operations().read_all(FEEDS, &feed).await.unwrap_or_default();
    let mut versions = BTreeMap::<String, Vec<u32>>::new();
    for delivery in deliveries {
        let story = delivery.story.unwrap();
        versions.entry(story.id).or_default().push(story.version);
    }
    versions
}

/// Checks every accepted story reached the receiver in order: versions strictly increasing (a
/// superseded version may be skipped, never delivered after a newer one), none twice, the newest
/// always there. Returns (stories, versions delivered).
async fn check_stories(bus: &Bus, accepted: &BTreeSet<String>) -> (usize, usize) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let versions = versions_in_feed(bus).await;
        let complete = accepted.iter().all(|id| versions.get(id).is_some_and(|v| v.last() == Some(&VERSIONS)));
        if complete {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "stories never reached {RECEIVER} in full");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let versions = versions_in_feed(bus).await;
    for id in accepted {
        let got = &versions[id];
        assert!(got.windows(2).all(|w| w[0] < w[1]), "{id} reached {RECEIVER} out of order or twice: {got:?}");
        assert_eq!(got.last(), Some(&VERSIONS), "{id}: the newest version is missing: {got:?}");
    }
    (accepted.len(), accepted.iter().map(|id| versions[id].len()).sum())
}

/// Checks every accepted alert reached each of its counties once, was re-sent once and
/// escalated once per county; returns the largest delay of an escalation step past its due time.
async fn check_alerts(bus: &Bus, accepted: &BTreeSet<String>) -> Duration {
    let counties: Vec<String> = Counties::builtin().unwrap().within(PREFECTURE).map(|c| c.code.clone()).collect();
    let keys: BTreeMap<String, String> =
        accepted.iter().map(|id| (bashu_alerts::alert_key("replicas-desk@bashu.example", id), id.clone())).collect();
    let escalations = || async {
        let subject = bus.subjects().all_alert_escalated();
        let steps: Vec<AlertEscalation> = bus.operations().read_all(ALERTS, &subject).await.unwrap_or_default();
        steps
    };
    // Every county of every alert reaches step 2 (the last) before the test looks closer.
    eventually("every county of every alert is escalated", || async {
        let steps = escalations().await;
        keys.keys().all(|key| {
            counties
                .iter()
                .all(|county| steps.iter().any(|s| &s.chain_key == key && &s.county == county && s.step == 2))
        })
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut per_step = BTreeMap::<(String, String, u32), Vec<SystemTime>>::new();
    for step in escalations().await.into_iter().filter(|s| keys.contains_key(&s.chain_key)) {
        let at = step.at.as_ref().and_then(bashu_proto::time::to_system_time).unwrap();
        per_step.entry((step.chain_key, step.county, step.step)).or_default().push(at);
    }
    assert_eq!(per_step.len(), keys.len() * counties.len() * 2, "one re-send and one escalation per county");
    let twice: Vec<_> = per_step.iter().filter(|(_, at)| at.len() > 1).map(|(step, _)| step).collect();
    assert!(twice.is_empty(), "escalation steps taken twice: {twice:?}");

    let mut latest_step = Duration::ZERO;
    for county in &counties {
        let feed = bus.subjects().alert_feed(county).unwrap();
        let copies: Vec<AlertDelivery> = bus.operations().read_all(ALERT_FEEDS, &feed).await.unwrap_or_default();
        let mut per_alert = BTreeMap::<(String, u32), usize>::new();
        for copy in copies.iter().filter(|c| keys.contains_key(&c.alert_key)) {
            *per_alert.entry((copy.alert_key.clone(), copy.resend)).or_default() += 1;
        }
        for key in keys.keys() {
            for resend in [0, 1] {
                let n = per_alert.get(&(key.clone(), resend)).copied().unwrap_or(0);
                assert_eq!(n, 1, "{county} has {n} durable copies of {} (resend {resend})", keys[key]);
            }
            // Step 1 is due SEVERE_MS after acceptance, step 2 SEVERE_MS after step 1.
            let one = per_step[&(key.clone(), county.clone(), 1)][0];
            let two = per_step[&(key.clone(), county.clone(), 2)][0];
            latest_step = latest_step
                .max(two.duration_since(one).unwrap_or_default().saturating_sub(Duration::from_millis(SEVERE_MS)));
        }
    }
    latest_step
}

#[tokio::test]
async fn three_replicas_each_lose_nothing_when_one_of_each_is_killed() {
    let mut system =
        Replicated::start(&[("ingest", 1), ("moderation", 2), ("distribution", 3), ("alerts", 3), ("admin", 1)]).await;
    let (ingest, alerts) = (Balancer::default(), Balancer::default());
    ingest.set(system.ports("ingest"));
    alerts.set(system.ports("alerts"));
    let stop = CancellationToken::new();
    let stories = story_load(&system.http, ingest.clone(), &system.token, stop.clone());
    let desk = alert_load(&system.http, alerts.clone(), system.desk_secret, stop.clone());

    // Steps come due every SEVERE_MS: kill while some are due and stories are in flight.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let killed_at = Instant::now();
    for target in ["distribution", "alerts"] {
        eprintln!("kill -9 one {target} replica");
        let mut victim = system.processes.get_mut(target).unwrap().remove(0);
        victim.kill();
        victim.child.wait().await.unwrap();
    }
    // The balancer notices (a readiness probe would): the victims' ports are gone.
    alerts.set(system.ports("alerts"));
    tokio::time::sleep(Duration::from_millis(4_000)).await;
    stop.cancel();
    let load_after_kill = killed_at.elapsed();
    let accepted_stories = stories.await.unwrap();
    let log = desk.await.unwrap();

    let (stories_checked, versions) = check_stories(&system.observer, &accepted_stories).await;
    let late = check_alerts(&system.observer, &log.accepted).await;
    println!(
        "replicas (3 distribution, 3 alerts), one of each killed: stories {stories_checked} ({versions} versions \
         delivered, 0 lost, 0 twice, order kept), alerts {} to 9 counties (each delivered, re-sent and escalated \
         exactly once), desk failures {} (the killed replica's requests), worst escalation step {} ms after due, \
         load ran {} ms after the kill",
        log.accepted.len(),
        log.failures.len(),
        late.as_millis(),
        load_after_kill.as_millis()
    );
    assert!(stories_checked >= 5, "the story load was real: {stories_checked}");
    assert!(log.accepted.len() >= 5, "the alert load was real: {}", log.accepted.len());
    assert!(system.observer.operations().dead_letters().await.unwrap().is_empty(), "nothing was dead-lettered");
}

#[tokio::test]
async fn a_rolling_restart_of_every_service_fails_no_desk_request_and_loses_no_story() {
    let replicas: Vec<(&'static str, usize)> = SERVICES.iter().map(|s| (*s, 2)).collect();
    let mut system = Replicated::start(&replicas).await;
    let (ingest, alerts) = (Balancer::default(), Balancer::default());
    ingest.set(system.ports("ingest"));
    alerts.set(system.ports("alerts"));
    let stop = CancellationToken::new();
    let stories = story_load(&system.http, ingest.clone(), &system.token, stop.clone());
    let desk = alert_load(&system.http, alerts.clone(), system.desk_secret, stop.clone());

    let started = Instant::now();
    for target in SERVICES {
        for _ in 0..2 {
            // As a Deployment rolls with maxUnavailable 0: the new pod is ready before the old one
            // is taken out of the Service and sent SIGTERM.
            let fresh = Process::ready(target, &system.nats.url(), &system.prefix, &system.http).await;
            let processes = system.processes.get_mut(target).unwrap();
            processes.push(fresh);
            let old = processes.remove(0);
            match target {
                "ingest" => ingest.set(system.ports("ingest")),
                "alerts" => alerts.set(system.ports("alerts")),
                _ => {}
            }
            eprintln!("rolling {target}: SIGTERM to the old process");
            old.terminate().await;
        }
    }
    let rolled = started.elapsed();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    stop.cancel();
    let accepted_stories = stories.await.unwrap();
    let log = desk.await.unwrap();

    let (stories_checked, versions) = check_stories(&system.observer, &accepted_stories).await;
    let late = check_alerts(&system.observer, &log.accepted).await;
    println!(
        "rolling restart of 5 services x 2 replicas in {} ms: desk requests failed {}, alerts accepted {}, stories \
         {stories_checked} ({versions} versions, 0 lost, 0 twice, order kept), worst escalation step {} ms after due",
        rolled.as_millis(),
        log.failures.len(),
        log.accepted.len(),
        late.as_millis()
    );
    assert_eq!(log.failures, Vec::<String>::new(), "every desk request succeeded while every service rolled");
    assert!(stories_checked >= 5, "the story load was real: {stories_checked}");
    assert!(log.accepted.len() >= 5, "the alert load was real: {}", log.accepted.len());
    assert!(system.observer.operations().dead_letters().await.unwrap().is_empty(), "nothing was dead-lettered");
}
