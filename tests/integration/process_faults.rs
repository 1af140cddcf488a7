//! kill -9, in turn, each of Bashu's services running as its own process, in the middle of a
//! load, several times: no accepted story, alert or admin change is lost, and no county gets a
//! story or an alert twice.

use std::{
    collections::{BTreeMap, BTreeSet},
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU16, Ordering},
    },
    time::{Duration, Instant},
};

use bashu_bus::{ALERT_FEEDS, Bus, Subjects, Topology};
use bashu_proto::{
    admin::v1::{ListAlliancesRequest, registry_service_client::RegistryServiceClient},
    alert::v1::AlertDelivery,
    registry::v1::Alliance,
};
use bashu_registry::Counties;
use bashu_test_support::{NatsServer, free_port};
use bashu_tests::{bearer_channel, eventually, spawn_bashu_with, wait_ready};
use tokio_util::sync::CancellationToken;

/// Rounds of kills (each kills every service once); `BASHU_FAULT_ROUNDS` runs the longer variant.
fn rounds() -> usize {
    std::env::var("BASHU_FAULT_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(2)
}

const SERVICES: [&str; 5] = ["ingest", "moderation", "distribution", "alerts", "admin"];
const OPERATOR: &str = "process-faults-operator";
const DESK: &str = "faults-desk";
/// 绵阳: the alerts of the load target its counties.
const PREFECTURE: &str = "5107";

/// One running service: its process and the ports it listens on.
struct Running {
    process: tokio::process::Child,
    http: u16,
    grpc: u16,
}

fn spawn(target: &str, nats: &str, prefix: &str) -> Running {
    let (http, grpc) = (free_port(), free_port());
    let grpc_listen = format!("127.0.0.1:{grpc}");
    let settings = [
        ("BASHU_GRPC__LISTEN", grpc_listen.as_str()),
        ("BASHU_ADMIN__OPERATOR_TOKEN", OPERATOR),
        // A killed fan-out's alert comes back after ack_wait: seconds, not the default 30.
        ("BASHU_ALERTS__FANOUT__ACK_WAIT_MS", "2000"),
        ("BASHU_ALERTS__FANOUT__BACKOFF_MS", "[100]"),
        ("BASHU_ALERTS__TRACKER__ACK_WAIT_MS", "2000"),
        ("BASHU_ALERTS__TRACKER__BACKOFF_MS", "[100]"),
    ];
    let process = spawn_bashu_with(target, nats, prefix, http, Duration::from_secs(10), &settings);
    Running { process, http, grpc }
}

/// Clients that each repeat one request until it is answered as done (a retry carries the same
/// id, as a CMS, a desk and an operator are told to), then go on to the next id.
struct RetryingLoad {
    done: Arc<Mutex<BTreeSet<String>>>,
    stop: CancellationToken,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

impl RetryingLoad {
    fn start<F, Fut>(name: &str, clients: usize, attempt: F) -> Self
    where
        F: Fn(String) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = bool> + Send,
    {
        let done = Arc::new(Mutex::new(BTreeSet::new()));
        let stop = CancellationToken::new();
        let clients = (0..clients)
            .map(|client| {
                let (done, stop, attempt, name) = (done.clone(), stop.clone(), attempt.clone(), name.to_owned());
                tokio::spawn(async move {
                    let mut n = 0;
                    // An id once tried is retried until done, even after stop: a request whose
                    // answer was lost may have taken effect, and must be counted.
                    let mut pending = false;
                    while pending || !stop.is_cancelled() {
                        let id = format!("{name}-{client}-{n}");
                        pending = true;
                        if attempt(id.clone()).await {
                            done.lock().expect("done").insert(id);
                            n += 1;
                            pending = false;
                        } else {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                })
            })
            .collect();
        Self { done, stop, clients }
    }

    async fn stop(self) -> BTreeSet<String> {
        self.stop.cancel();
        for client in self.clients {
            client.await.expect("a load client");
        }
        self.done.lock().expect("done").clone()
    }
}

fn cap(identifier: &str) -> String {
    format!(
        r#"<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>{identifier}</identifier>
<sender>faults-desk@bashu.example</sender><sent>2026-11-28T10:00:00+08:00</sent><status>Exercise</status>
<msgType>Alert</msgType><scope>Public</scope><info><category>Met</category><event>洪水</event>
<urgency>Immediate</urgency><severity>Severe</severity><certainty>Likely</certainty>
<area><areaDesc>绵阳</areaDesc><geocode><valueName>GB/T 2260</valueName><value>{PREFECTURE}</value></geocode></area></info></alert>"#
    )
}

#[tokio::test]
async fn kill_minus_nine_of_each_service_in_turn_loses_and_duplicates_nothing() {
    let nats = NatsServer::start().await;
    let prefix = format!("t{}", free_port());
    let observer =
        Bus::connect(&nats.url(), "observer", Subjects::new(&prefix).unwrap(), Topology::default()).await.unwrap();
    observer.provision().await.unwrap();
    let counties = Arc::new(Counties::builtin().unwrap());
    let (token, desk_secret) = bashu_tests::county_and_desk(&observer, "511083", DESK, &[PREFECTURE]).await;

    let http = bashu::http_client();
    let mut running = BTreeMap::new();
    for target in SERVICES {
        let service = spawn(target, &nats.url(), &prefix);
        wait_ready(&http, service.http).await;
        running.insert(target, service);
    }
    let ingest_port = Arc::new(AtomicU16::new(running["ingest"].http));
    let alerts_port = Arc::new(AtomicU16::new(running["alerts"].http));
    let admin_port = Arc::new(AtomicU16::new(running["admin"].grpc));

    let stories = bashu_tests::CmsLoad::start(&http, ingest_port.clone(), &token, 4, "kill");
    let alerts = RetryingLoad::start("KILL", 1, {
        let (http, port) = (http.clone(), alerts_port.clone());
        move |identifier: String| {
            let (http, port) = (http.clone(), port.clone());
            async move {
                use base64::Engine as _;
                let xml = cap(&identifier);
                let now = bashu_proto::time::now().seconds;
                let signature = bashu_alerts::signature::sign(&desk_secret, DESK, now, xml.as_bytes());
                let answer = http
                    .post(format!("http://127.0.0.1:{}/v1/alerts", port.load(Ordering::SeqCst)))
                    .header("content-type", "application/cap+xml")
                    .header(bashu_alerts::DESK_HEADER, DESK)
                    .header(bashu_alerts::TIMESTAMP_HEADER, now.to_string())
                    .header(bashu_alerts::SIGNATURE_HEADER, base64::engine::general_purpose::STANDARD.encode(signature))
                    .timeout(Duration::from_secs(5))
                    .body(xml)
                    .send()
                    .await;
                tokio::time::sleep(Duration::from_millis(100)).await;
                match answer {
                    Ok(response) if response.status().is_success() => true,
                    // Refused, not unavailable: retrying would not help, and the test is wrong.
                    Ok(response) if response.status().is_client_error() => {
                        panic!("alert {identifier} refused: {}", response.text().await.unwrap_or_default())
                    }
                    _ => false,
                }
            }
        }
    });
    let changes = RetryingLoad::start("kill", 1, {
        let port = admin_port.clone();
        move |id: String| {
            let port = port.clone();
            async move {
                let endpoint = format!("http://127.0.0.1:{}", port.load(Ordering::SeqCst));
                let Ok(channel) = bearer_channel(&endpoint, OPERATOR).await else { return false };
                let alliance = Alliance {
                    id,
                    name: "kill -9".into(),
                    members: vec!["511083".into(), "500153".into()],
                    note: String::new(),
                };
                let mut registry = RegistryServiceClient::new(channel);
                let put = tokio::time::timeout(Duration::from_secs(5), registry.put_alliance(alliance));
                let answered = match put.await {
                    Ok(Ok(_)) => true,
                    Ok(Err(status)) if status.code() == tonic::Code::InvalidArgument => {
                        panic!("the alliance was refused: {status:?}")
                    }
                    _ => false,
                };
                tokio::time::sleep(Duration::from_millis(50)).await;
                answered
            }
        }
    });

    let mut kills = 0;
    let mut recovery = BTreeMap::<&str, Duration>::new();
    for _ in 0..rounds() {
        for target in SERVICES {
            tokio::time::sleep(Duration::from_millis(700)).await;
            eprintln!("kill -9 {target}");
            let mut victim = running.remove(target).unwrap();
            victim.process.start_kill().unwrap();
            victim.process.wait().await.unwrap();
            kills += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
            let restarted = Instant::now();
            // New ports: the old ones may have been taken by a parallel test meanwhile.
            let service = spawn(target, &nats.url(), &prefix);
            wait_ready(&http, service.http).await;
            match target {
                "ingest" => ingest_port.store(service.http, Ordering::SeqCst),
                "alerts" => alerts_port.store(service.http, Ordering::SeqCst),
                "admin" => admin_port.store(service.grpc, Ordering::SeqCst),
                _ => {}
            }
            running.insert(target, service);
            let took = restarted.elapsed();
            recovery.entry(target).and_modify(|max| *max = (*max).max(took)).or_insert(took);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    eprintln!("stopping the load");
    let (accepted_stories, accepted_alerts, made_changes) =
        (stories.stop().await, alerts.stop().await, changes.stop().await);

    let (delivered, lost, duplicated) = bashu_tests::settle_deliveries(&observer, &accepted_stories).await;
    println!(
        "kill -9 under load, {kills} kills: stories accepted {}, delivered {delivered}, lost {lost}, duplicated at \
         the county {duplicated}",
        accepted_stories.len(),
    );
    assert!(accepted_stories.len() > 30, "the story load was real: {}", accepted_stories.len());
    assert_eq!((lost, duplicated), (0, 0));

    let targeted: Vec<String> = counties.within(PREFECTURE).map(|county| county.code.clone()).collect();
    let copies_per_county = || async {
        let mut copies = BTreeMap::new();
        for county in &targeted {
            let feed = observer.subjects().alert_feed(county).unwrap();
            let deliveries: Vec<AlertDelivery> =
                observer.operations().read_all(ALERT_FEEDS, &feed).await.unwrap_or_default();
            let mut per_alert = BTreeMap::<String, usize>::new();
            for delivery in deliveries {
                *per_alert.entry(delivery.alert.unwrap_or_default().identifier).or_default() += 1;
            }
            copies.insert(county.clone(), per_alert);
        }
        copies
    };
    eventually("every county of the prefecture has every accepted alert", || async {
        copies_per_county().await.values().all(|per_alert| accepted_alerts.iter().all(|a| per_alert.contains_key(a)))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let copies = copies_per_county().await;
    let alerts_lost: usize =
        copies.values().map(|per_alert| accepted_alerts.iter().filter(|a| !per_alert.contains_key(*a)).count()).sum();
    let alerts_duplicated: usize =
        copies.values().map(|per_alert| per_alert.values().filter(|n| **n > 1).count()).sum();
    println!(
        "alerts accepted {} to {} counties each, copies {}, lost {alerts_lost}, duplicated at the county \
         {alerts_duplicated}",
        accepted_alerts.len(),
        targeted.len(),
        copies.values().map(|per_alert| per_alert.values().sum::<usize>()).sum::<usize>()
    );
    assert!(accepted_alerts.len() > 5, "the alert load was real: {}", accepted_alerts.len());
    assert!(targeted.len() > 5, "绵阳 has its counties: {targeted:?}");
    assert_eq!((alerts_lost, alerts_duplicated), (0, 0));

    let endpoint = format!("http://127.0.0.1:{}", admin_port.load(Ordering::SeqCst));
    let stored: BTreeSet<String> = RegistryServiceClient::new(bearer_channel(&endpoint, OPERATOR).await.unwrap())
        .list_alliances(ListAlliancesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .alliances
        .into_iter()
        .map(|alliance| alliance.id)
        .collect();
    let changes_lost = made_changes.difference(&stored).count();
    println!(
        "admin changes answered {}, stored {}, lost {changes_lost}; recovery (start to ready), max per service: {recovery:?}",
        made_changes.len(),
        made_changes.intersection(&stored).count()
    );
    assert!(made_changes.len() > 5, "the admin load was real: {}", made_changes.len());
    assert_eq!(changes_lost, 0);
}
