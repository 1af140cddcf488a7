//! kill -9, in turn, each of the story pipeline's services running as its own process, in the
//! middle of a load, several times: no accepted story is lost, and no county gets one twice.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use bashu_bus::{Bus, Subjects, Topology};
use bashu_test_support::{NatsServer, free_port};
use bashu_tests::{spawn_bashu, wait_ready};

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

    let ingest_port = Arc::new(std::sync::atomic::AtomicU16::new(ports["ingest"]));
    let load = bashu_tests::CmsLoad::start(&http, ingest_port.clone(), &token, 4, "kill");
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
            // A new port: the old one may have been taken by a parallel test meanwhile.
            let port = free_port();
            processes.insert(target, spawn_bashu(target, &nats.url(), &prefix, port, grace));
            wait_ready(&http, port).await;
            if target == "ingest" {
                ingest_port.store(port, std::sync::atomic::Ordering::SeqCst);
            }
            recovery.push(restarted.elapsed());
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let accepted = load.stop().await;
    let (delivered, lost, duplicated) = bashu_tests::settle_deliveries(&observer, &accepted).await;
    println!(
        "kill -9 under load: accepted {}, delivered {}, lost {lost}, duplicated at the county {duplicated}, \
         {kills} kills, recovery (start to ready) max {:?}",
        accepted.len(),
        delivered,
        recovery.iter().max().unwrap()
    );
    assert!(accepted.len() > 30, "the load was real: {}", accepted.len());
    assert_eq!(lost, 0);
    assert_eq!(duplicated, 0);
}
