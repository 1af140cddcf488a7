//! Bashu on a three-node nats-server cluster with R3 streams: one node killed in the middle of a
//! load and brought back loses no accepted story and delivers none twice.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use bashu_bus::{Bus, FEEDS, Subjects, Topology};
use bashu_proto::story::v1::StoryDelivery;
use bashu_test_support::{NatsCluster, free_port};
use bashu_tests::{eventually, spawn_bashu_with, story_json, wait_ready};
use serde_json::json;

#[tokio::test]
async fn a_node_killed_under_load_and_brought_back_loses_nothing() {
    let mut cluster = NatsCluster::start().await;
    let urls = cluster.urls().join(",");
    let prefix = format!("t{}", free_port());
    let observer = Bus::new(cluster.connect().await, Subjects::new(&prefix).unwrap(), Topology { replicas: 3 });
    eventually("the cluster accepts R3 streams", || async { observer.provision().await.is_ok() }).await;
    let counties = Arc::new(bashu_registry::Counties::builtin().unwrap());
    let token = bashu_registry::CountyTokens::open(&observer, counties)
        .await
        .unwrap()
        .issue("511083", "cluster")
        .await
        .unwrap()
        .token;
    let http = bashu::http_client();
    let port = free_port();
    let _bashu = spawn_bashu_with(
        "ingest,moderation,distribution",
        &urls,
        &prefix,
        port,
        Duration::from_secs(10),
        &[("BASHU_NATS__REPLICAS", "3")],
    );
    wait_ready(&http, port).await;

    let accepted = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = tokio_util::sync::CancellationToken::new();
    let mut clients = Vec::new();
    for client in 0..3 {
        let (http, token, accepted, stop) = (http.clone(), token.clone(), accepted.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.is_cancelled() {
                let id = format!("r3-{client}-{n}");
                let answer = http
                    .post(format!("http://127.0.0.1:{port}/v1/stories"))
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
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.nodes[0].kill();
    let during = accepted.lock().unwrap().len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.nodes[0].restart().await;
    let back = std::time::Instant::now();
    // The load goes on until the system has clearly recovered: more stories accepted since.
    let resumed_at = accepted.lock().unwrap().len();
    eventually("stories are accepted again", || async { accepted.lock().unwrap().len() >= resumed_at + 30 }).await;
    let recovery = back.elapsed();
    stop.cancel();
    for client in clients {
        client.await.unwrap();
    }

    let accepted = accepted.lock().unwrap().clone();
    let feed = observer.subjects().feed_story("500153").unwrap();
    let delivered = || async {
        let deliveries: Vec<StoryDelivery> = observer.read_all(FEEDS, &feed).await.unwrap_or_default();
        let mut counts = BTreeMap::<String, usize>::new();
        for delivery in deliveries {
            *counts.entry(delivery.story.unwrap().id).or_default() += 1;
        }
        counts
    };
    eventually("every accepted story reaches 500153", || async {
        let counts = delivered().await;
        accepted.iter().all(|id| counts.contains_key(id))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let counts = delivered().await;
    let lost = accepted.iter().filter(|id| !counts.contains_key(*id)).count();
    let duplicated = counts.values().filter(|n| **n > 1).count();
    println!(
        "R3 node killed under load: accepted {} ({} before the kill), delivered {}, lost {lost}, duplicated {duplicated}, \
         30 more accepted within {recovery:?} of the node's return",
        accepted.len(),
        during,
        counts.len()
    );
    assert!(accepted.len() > during, "stories were accepted after the node died");
    assert_eq!((lost, duplicated), (0, 0));
}
