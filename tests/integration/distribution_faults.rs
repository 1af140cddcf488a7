//! Distribution killed in the middle of a load: nothing lost, nothing duplicated at the county.
//!
//! Deduplication happens in the FEEDS stream: every feed message carries the idempotency key
//! `feed.<county>.<origin>.<id>.<version>` as `Nats-Msg-Id`, so when the restarted distribution
//! re-handles the decisions the killed one had not acknowledged, JetStream stores nothing twice.

use std::collections::HashSet;

use bashu::Target;
use bashu_bus::FEEDS;
use bashu_proto::{
    ingest::v1::{SubmitStoryRequest, ingest_service_client::IngestServiceClient},
    story::v1::{Category, SharingPolicy, Story, StoryDelivery},
};
use bashu_tests::{FUJIANG, TestSystem, eventually};
use futures::StreamExt;

const STORIES: usize = 1_000;

#[tokio::test]
async fn distribution_killed_mid_load_and_restarted_loses_and_duplicates_nothing() {
    let t = TestSystem::start_with(&[Target::Ingest, Target::Moderation]).await;
    let (first, _first_shutdown) = t.start_distribution().await;

    let receivers: Vec<&str> = FUJIANG.iter().copied().filter(|c| *c != "510703").collect();
    let client = IngestServiceClient::connect(t.grpc_endpoint()).await.unwrap();
    let token = format!("Bearer {}", t.token_for("510703").await);
    let submit = futures::stream::iter(0..STORIES)
        .map(move |i| {
            let mut client = client.clone();
            let token = token.clone();
            async move {
                let story = Story {
                    id: format!("load-{i:04}"),
                    version: 1,
                    origin_county: "510703".into(),
                    headline: format!("涪江 {i}"),
                    body: "正文".into(),
                    category: Category::Livelihood as i32,
                    sharing: Some(SharingPolicy { alliances: vec!["fujiang".into()], ..Default::default() }),
                    ..Default::default()
                };
                let mut request = tonic::Request::new(SubmitStoryRequest { story: Some(story) });
                request.metadata_mut().insert("authorization", token.parse().unwrap());
                client.submit_story(request).await.unwrap();
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>();
    let submitter = tokio::spawn(submit);

    // kill -9 of the task: no graceful stop, no acks for what it had in hand.
    eventually("distribution is under way", || async { t.feed_counts().await.values().sum::<u64>() >= 1_500 }).await;
    first.abort();
    let _ = first.await;
    let at_kill: u64 = t.feed_counts().await.values().sum();

    let (second, second_shutdown) = t.start_distribution().await;
    submitter.await.unwrap();
    eventually("every story is published", || async { t.published_count().await == STORIES as u64 }).await;

    let counts = t.feed_counts().await;
    let delivered: u64 = counts.values().sum();
    let expected = (STORIES * receivers.len()) as u64;
    println!(
        "distribution kill: sent {STORIES} stories to {} counties, delivered {delivered} of {expected} (killed at {at_kill}), lost {}, duplicated {}",
        receivers.len(),
        expected.saturating_sub(delivered),
        delivered.saturating_sub(expected)
    );
    assert!(at_kill < expected, "the kill came in the middle of the load");
    for county in &receivers {
        assert_eq!(counts.get(*county), Some(&(STORIES as u64)), "county {county}");
    }
    assert_eq!(counts.len(), receivers.len(), "no county outside the audience: {counts:?}");

    // One county's feed read back: every story exactly once.
    let feed = t.bus.subjects().feed_of("500117").unwrap();
    let stories: Vec<StoryDelivery> = t.bus.operations().read_all(FEEDS, &feed).await.unwrap();
    let ids: HashSet<String> = stories.iter().map(|d| d.story.as_ref().unwrap().id.clone()).collect();
    assert_eq!((stories.len(), ids.len()), (STORIES, STORIES));

    second_shutdown.cancel();
    second.await.unwrap();
}
