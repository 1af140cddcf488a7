//! kill -9, in turn, each of the story pipeline's services running as its own process, in the
//! middle of a load, several times: no accepted story is lost, and no county gets one twice.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bashu_bus::{Bus, FEEDS, Subjects, Topology};
use bashu_proto::story::v1::StoryDelivery;
use bashu_test_support::{NatsServer, free_port};
use bashu_tests::{spawn_bashu, story_json, wait_ready};
use serde_json::json;

/// Rounds of kills (each kills every service once); `BASHU_FAULT_ROUNDS` runs the longer variant.
fn rounds() -> usize {
    std::env::var("BASHU_FAULT_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(2)
}

#[tokio::test]
async fn kill_minus_nine_of_each_service_in_turn_loses_and_duplicates_nothing() {
    let nats = NatsServer::start().await;
    let prefix = format!("t{}", free_port());
    let observer =
        Bus::connect(&nats.url(), "observer", Subjects::new(&prefix).unwrap(), Topology::default()).await.unwrap();
    observer.provision().await.unwrap();
    let counties = Arc::new(bashu_registry::Counties::builtin().unwrap());
    let token = bashu_registry::CountyTokens::open(&observer, counties)
        .await
        .unwrap()
        .issue("511083", "faults")
        .await
        .unwrap()
        .token;
    let http = bashu::http_client();
    let grace = Duration::from_secs(10);
    let ports: BTreeMap<&str, u16> =
        [("ingest", free_port()), ("moderation", free_port()), ("distribution", free_port())].into();
    let mut processes = BTreeMap::new();
    for (target, port) in &ports {
        processes.insert(*target, spawn_bashu(target, &nats.url(), &prefix, *port, grace));
        wait_ready(&http, *port).await;
    }

    // Four CMSs submit continuously; a CMS retries a story with the same id until it is accepted,
    // as docs/county-integration.md tells it to.
    let accepted = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = tokio_util::sync::CancellationToken::new();
    let ingest_port = ports["ingest"];
    let mut clients = Vec::new();
    for client in 0..4 {
        let (http, token, accepted, stop) = (http.clone(), token.clone(), accepted.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.is_cancelled() {
                let id = format!("kill-{client}-{n}");
                let answer = http
                    .post(format!("http://127.0.0.1:{ingest_port}/v1/stories"))
                    .bearer_auth(&token)
                    .timeout(Duration::from_secs(5))
                    .json(&story_json(&id, "511083", json!({"counties": ["500153"]})))
                    .send()
                    .await;
                match answer {
                    Ok(response) if response.status().is_success() => {
                        accepted.lock().unwrap().insert(id);
                        n += 1;
                    }
                    _ => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        }));
    }

    let mut kills = 0;
    let mut recovery = Vec::new();
    for _ in 0..rounds() {
        for target in ["ingest", "moderation", "distribution"] {
            tokio::time::sleep(Duration::from_millis(700)).await;
            let mut victim = processes.remove(target).unwrap();
            victim.start_kill().unwrap();
            victim.wait().await.unwrap();
            kills += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
            let restarted = Instant::now();
            processes.insert(target, spawn_bashu(target, &nats.url(), &prefix, ports[target], grace));
            wait_ready(&http, ports[target]).await;
            recovery.push(restarted.elapsed());
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    for client in clients {
        client.await.unwrap();
    }

    let accepted = accepted.lock().unwrap().clone();
    let feed = observer.subjects().feed_story("500153").unwrap();
    let delivered = || async {
        let deliveries: Vec<StoryDelivery> = observer.read_all(FEEDS, &feed).await.unwrap();
        let mut counts = BTreeMap::<String, usize>::new();
        for delivery in deliveries {
            *counts.entry(delivery.story.unwrap().id).or_default() += 1;
        }
        counts
    };
    bashu_tests::eventually("every accepted story reaches 500153", || async {
        let counts = delivered().await;
        accepted.iter().all(|id| counts.contains_key(id))
    })
    .await;
    // Anything still in flight settles before duplicates are counted.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let counts = delivered().await;
    let lost = accepted.iter().filter(|id| !counts.contains_key(*id)).count();
    let duplicated = counts.values().filter(|n| **n > 1).count();
    println!(
        "kill -9 under load: accepted {}, delivered {}, lost {lost}, duplicated at the county {duplicated}, \
         {kills} kills, recovery (start to ready) max {:?}",
        accepted.len(),
        counts.len(),
        recovery.iter().max().unwrap()
    );
    assert!(accepted.len() > 30, "the load was real: {}", accepted.len());
    assert_eq!(lost, 0);
    assert_eq!(duplicated, 0);
}
