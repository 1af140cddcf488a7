//! The bus's promises: bounded retries then dead letters with a reason, idempotent publishes,
//! and prefixes that keep parallel users apart.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bashu_bus::{Bus, Delivery, Failure, Retry, Subjects, Topology};
use bashu_proto::story::v1::{Story, StorySubmitted};
use bashu_test_support::NatsServer;
use bashu_tests::eventually;
use tokio_util::sync::CancellationToken;

async fn bus(nats: &NatsServer, prefix: &str) -> Bus {
    let bus = Bus::connect(&nats.url(), "test", Subjects::new(prefix).unwrap(), Topology::default()).await.unwrap();
    bus.provision().await.unwrap();
    bus
}

fn submitted(id: &str) -> StorySubmitted {
    StorySubmitted {
        story: Some(Story { id: id.into(), version: 1, origin_county: "511083".into(), ..Default::default() }),
        ..Default::default()
    }
}

fn fast_retry(max_deliver: u32) -> Retry {
    Retry { ack_wait: Duration::from_secs(1), max_deliver, backoff: vec![Duration::from_millis(20)] }
}

#[tokio::test]
async fn a_message_whose_handler_always_fails_is_dead_lettered_after_max_deliver_attempts() {
    let nats = NatsServer::start().await;
    let bus = bus(&nats, "dlq").await;
    let attempts = Arc::new(AtomicU64::new(0));
    let shutdown = CancellationToken::new();
    let counter = attempts.clone();
    let consumer = tokio::spawn({
        let bus = bus.clone();
        let shutdown = shutdown.clone();
        async move {
            let spec = bus.stories().moderation_consumer(fast_retry(3));
            bus.consume(
                spec,
                move |_: Delivery<StorySubmitted>| {
                    let counter = counter.clone();
                    async move {
                        counter.fetch_add(1, Ordering::SeqCst);
                        Err(Failure::Retry("the dependency is down".into()))
                    }
                },
                shutdown,
            )
            .await
        }
    });

    bus.publish(&submitted("poison")).await.unwrap();
    eventually("the message is dead-lettered", || async { bus.operations().dead_letters().await.unwrap().len() == 1 })
        .await;
    // The consumer is given time to misbehave (retry again) before the count is checked.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let letters = bus.operations().dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(attempts.load(Ordering::SeqCst), 3, "exactly max_deliver attempts");
    assert_eq!(letters[0].attempts, 3);
    assert_eq!(letters[0].consumer, "moderation");
    assert_eq!(letters[0].reason, "the dependency is down");
    assert_eq!(letters[0].original_subject, "dlq.bashu.story.submitted.511083");
    assert_eq!(prost::Message::decode(letters[0].payload.clone()), Ok(submitted("poison")));
    shutdown.cancel();
    consumer.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_undecodable_message_is_dead_lettered_at_once_and_the_next_one_is_handled() {
    let nats = NatsServer::start().await;
    let bus = bus(&nats, "garbage").await;
    let handled = Arc::new(AtomicU64::new(0));
    let shutdown = CancellationToken::new();
    let counter = handled.clone();
    let spec = bus.stories().moderation_consumer(fast_retry(5));
    let consumer = tokio::spawn({
        let bus = bus.clone();
        let shutdown = shutdown.clone();
        async move {
            bus.consume(
                spec,
                move |_: Delivery<StorySubmitted>| {
                    let counter = counter.clone();
                    async move {
                        counter.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    }
                },
                shutdown,
            )
            .await
        }
    });

    let subject = bus.subjects().story_submitted("511083").unwrap();
    bus.jetstream().publish(subject, vec![0xff, 0x00, 0x13, 0x37].into()).await.unwrap().await.unwrap();
    bus.publish(&submitted("fine")).await.unwrap();

    eventually("the good message is handled", || async { handled.load(Ordering::SeqCst) == 1 }).await;
    eventually("the garbage is dead-lettered", || async { bus.operations().dead_letters().await.unwrap().len() == 1 })
        .await;
    let letter = &bus.operations().dead_letters().await.unwrap()[0];
    assert_eq!(letter.attempts, 1);
    assert!(letter.reason.starts_with("undecodable bashu.story.v1.StorySubmitted"), "{}", letter.reason);
    shutdown.cancel();
    consumer.await.unwrap().unwrap();
}

#[tokio::test]
async fn republishing_an_event_is_acknowledged_as_a_duplicate_and_stored_once() {
    let nats = NatsServer::start().await;
    let bus = bus(&nats, "dedupe").await;
    let events = vec![submitted("a"), submitted("b"), submitted("a")];
    let published = bus.publish_all(&events).await.unwrap();
    assert_eq!(published.iter().map(|p| p.duplicate).collect::<Vec<_>>(), [false, false, true]);
    assert_eq!(published[2].sequence, published[0].sequence);
    let again = bus.publish(&submitted("b")).await.unwrap();
    assert!(again.duplicate);
    let stored: u64 = bus
        .operations()
        .subject_counts(bashu_bus::STORIES, &bus.subjects().all_story_submitted())
        .await
        .unwrap()
        .values()
        .sum();
    assert_eq!(stored, 2);
}

#[tokio::test]
async fn two_prefixes_on_one_server_never_see_each_other() {
    let nats = NatsServer::start().await;
    let left = bus(&nats, "left").await;
    let right = bus(&nats, "right").await;
    left.publish(&submitted("only-left")).await.unwrap();
    let count = |bus: Bus| async move {
        bus.operations()
            .subject_counts(bashu_bus::STORIES, &bus.subjects().all_story_submitted())
            .await
            .unwrap()
            .values()
            .sum::<u64>()
    };
    assert_eq!(count(left.clone()).await, 1);
    assert_eq!(count(right.clone()).await, 0);
    let names: Vec<String> = {
        use futures::TryStreamExt;
        left.jetstream().stream_names().try_collect().await.unwrap()
    };
    assert!(names.contains(&"LEFT_STORIES".to_string()) && names.contains(&"RIGHT_STORIES".to_string()), "{names:?}");
}
