//! The test harness itself: a server restarted on the same port and store keeps its streams,
//! and a three-node cluster keeps an R3 stream through a node's death.

use bashu_bus::{Bus, Subjects, Topology};
use bashu_proto::story::v1::{Story, StorySubmitted};
use bashu_test_support::{NatsCluster, NatsServer};

fn submitted(id: &str) -> StorySubmitted {
    StorySubmitted {
        story: Some(Story { id: id.into(), version: 1, origin_county: "511083".into(), ..Default::default() }),
        ..Default::default()
    }
}

async fn stored(bus: &Bus) -> u64 {
    bus.operations()
        .subject_counts(bashu_bus::STORIES, &bus.subjects().all_story_submitted())
        .await
        .unwrap()
        .values()
        .sum()
}

#[tokio::test]
async fn a_killed_server_restarted_on_its_store_keeps_what_it_acknowledged() {
    let mut nats = NatsServer::start().await;
    let bus = Bus::new(nats.connect().await, Subjects::default(), Topology::default());
    bus.provision().await.unwrap();
    bus.publish_all(&[submitted("a"), submitted("b")]).await.unwrap();

    nats.kill();
    nats.restart().await;
    // The same client reconnects by itself.
    bashu_tests::eventually("the client is reconnected", || async { bus.is_connected() }).await;
    assert_eq!(stored(&bus).await, 2);
}

#[tokio::test]
async fn an_r3_stream_survives_the_death_of_one_node() {
    let mut cluster = NatsCluster::start().await;
    let bus = Bus::new(cluster.connect().await, Subjects::default(), Topology { replicas: 3 });
    bashu_tests::eventually("the cluster accepts R3 streams", || async { bus.provision().await.is_ok() }).await;
    bus.publish_all(&[submitted("a"), submitted("b"), submitted("c")]).await.unwrap();

    cluster.nodes[0].kill();
    bashu_tests::eventually("a publish succeeds without node 1", || async {
        bus.publish(&submitted("d")).await.is_ok()
    })
    .await;
    assert_eq!(stored(&bus).await, 4);
    cluster.nodes[0].restart().await;
    bashu_tests::eventually("node 1 is back", || async { stored(&bus).await == 4 }).await;
}

/// nats-server killed (-9) and restarted on its store under a running system: every service
/// reconnects and resumes by itself, and what was submitted before and after arrives once.
#[tokio::test]
async fn the_system_resumes_by_itself_after_nats_server_restarts() {
    use serde_json::json;
    let mut t = bashu_tests::TestSystem::start().await;
    for i in 0..5 {
        t.post_story(&bashu_tests::story_json(&format!("before-{i}"), "511083", json!({"partners": true}))).await;
    }
    bashu_tests::eventually("the first five are delivered", || async { t.published_count().await == 5 }).await;

    t.nats.kill();
    t.nats.restart().await;
    // Ingest answers 503 until its connection is back; a county's CMS retries, so does this.
    for i in 0..5 {
        let story = bashu_tests::story_json(&format!("after-{i}"), "511083", json!({"partners": true}));
        bashu_tests::eventually("ingest accepts again", || async { t.post_story(&story).await.0 == 202 }).await;
    }
    bashu_tests::eventually("the next five are delivered", || async { t.published_count().await == 10 }).await;
    assert_eq!(t.feed_counts().await.get("500153"), Some(&10), "every story once");
}
