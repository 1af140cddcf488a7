//! SIGTERM under load, against the real `bashu` binary: it stops taking work, finishes what it
//! accepted, exits within its grace period, and not one accepted story is lost.

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bashu_bus::{Bus, STORIES, Subjects, Topology};
use bashu_proto::story::v1::StoryPublished;
use bashu_test_support::{NatsServer, free_port};
use bashu_tests::story_json;
use serde_json::json;

const GRACE: Duration = Duration::from_secs(15);

/// A fresh bus under `prefix` and a token for 511083 on it.
async fn county_token(nats: &str, prefix: &str) -> (Bus, String) {
    let observer = Bus::connect(nats, "observer", Subjects::new(prefix).unwrap(), Topology::default()).await.unwrap();
    observer.provision().await.unwrap();
    let counties = Arc::new(bashu_registry::Counties::builtin().unwrap());
    let tokens = bashu_registry::CountyTokens::open(&observer, counties).await.unwrap();
    let token = tokens.issue("511083", "shutdown test").await.unwrap().token;
    (observer, token)
}

fn start_bashu(nats: &str, prefix: &str, http: u16) -> tokio::process::Child {
    bashu_tests::spawn_bashu("ingest,moderation,distribution", nats, prefix, http, GRACE)
}

#[tokio::test]
async fn sigterm_under_load_loses_no_accepted_story_and_exits_within_the_grace_period() {
    let nats = NatsServer::start().await;
    let prefix = format!("t{}", free_port());
    let (observer, token) = county_token(&nats.url(), &prefix).await;
    let http = bashu::http_client();
    let port = free_port();
    let mut bashu = start_bashu(&nats.url(), &prefix, port);
    bashu_tests::wait_ready(&http, port).await;

    // Four clients submit as fast as they are answered; every 202 is a promise.
    let accepted = Arc::new(Mutex::new(BTreeSet::new()));
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stop = tokio_util::sync::CancellationToken::new();
    let mut clients = Vec::new();
    for client in 0..4 {
        let (http, token, accepted, sent, stop) =
            (http.clone(), token.clone(), accepted.clone(), sent.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            for n in 0.. {
                if stop.is_cancelled() {
                    break;
                }
                let id = format!("load-{client}-{n}");
                sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let answer = http
                    .post(format!("http://127.0.0.1:{port}/v1/stories"))
                    .bearer_auth(&token)
                    .json(&story_json(&id, "511083", json!({"counties": ["500153"]})))
                    .send()
                    .await;
                match answer {
                    Ok(response) if response.status() == 202 => {
                        accepted.lock().unwrap().insert(id);
                    }
                    // Refused while stopping, or the listener is gone: not accepted, not promised.
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let signalled = Instant::now();
    let pid = bashu.id().expect("a running process").to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::time::timeout(GRACE + Duration::from_secs(5), bashu.wait()).await.expect("exits").unwrap();
    let took = signalled.elapsed();
    stop.cancel();
    for client in clients {
        client.await.unwrap();
    }
    assert!(status.success(), "bashu exited with {status}");
    assert!(took < GRACE, "took {took:?}, the grace period is {GRACE:?}");

    // Started again, it carries on with whatever the first one left in the streams.
    // On a new port: the old one may have been taken by a parallel test meanwhile.
    let port = free_port();
    let mut again = start_bashu(&nats.url(), &prefix, port);
    bashu_tests::wait_ready(&http, port).await;
    let accepted = accepted.lock().unwrap().clone();
    let subject = observer.subjects().all_story_published();
    let published = || async {
        let events: Vec<StoryPublished> = observer.operations().read_all(STORIES, &subject).await.unwrap();
        events.into_iter().map(|e| e.story_id).collect::<BTreeSet<_>>()
    };
    bashu_tests::eventually("every accepted story is published", || async { accepted.is_subset(&published().await) })
        .await;
    let published = published().await;
    let lost = accepted.difference(&published).count();
    println!(
        "sigterm under load: sent {}, accepted {}, published {}, lost {lost}, exit after {took:?}",
        sent.load(std::sync::atomic::Ordering::SeqCst),
        accepted.len(),
        published.len()
    );
    assert!(accepted.len() > 20, "the load was real: {} accepted", accepted.len());
    assert_eq!(lost, 0);
    let _ = again.kill().await;
}

#[tokio::test]
async fn a_second_signal_exits_at_once_while_the_first_waits_for_in_flight_work() {
    use tokio::io::AsyncWriteExt;
    let nats = NatsServer::start().await;
    let prefix = format!("t{}", free_port());
    let http = bashu::http_client();
    let port = free_port();
    let (_observer, token) = county_token(&nats.url(), &prefix).await;
    let mut bashu = start_bashu(&nats.url(), &prefix, port);
    bashu_tests::wait_ready(&http, port).await;

    // A request still arriving: its body trickles in, so a graceful stop waits for it.
    let mut slow = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = format!(
        "POST /v1/stories HTTP/1.1\r\nhost: bashu\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{{"
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let pid = bashu.id().expect("a running process").to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    // The first signal waits for the slow request (up to the grace period)...
    assert!(tokio::time::timeout(Duration::from_secs(2), bashu.wait()).await.is_err(), "it did not wait");
    // ...the second one ends it now.
    let second = Instant::now();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::time::timeout(Duration::from_secs(5), bashu.wait()).await.expect("exits at once").unwrap();
    assert_eq!(status.code(), Some(130), "{status}");
    assert!(second.elapsed() < Duration::from_secs(5));
    drop(slow);
}
