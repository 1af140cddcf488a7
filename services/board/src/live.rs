//! What every open page shares: the alert chains as the tracker last stored them, followed live
//! through a watch on the alert state bucket, and the stories view, refreshed every few seconds.
//! One watch per process, however many pages are open.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::Arc,
    time::{Duration, SystemTime},
};

use bashu_bus::{Bus, async_nats::jetstream::kv};
use bashu_proto::alert::v1::AlertChain;
use futures::StreamExt;
use prost::Message;
use tokio::sync::{RwLock, broadcast, watch};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::view::{ChainView, CrossingView, StoriesView, crosses_border};

/// How many crossings the stories view lists.
const CROSSINGS_SHOWN: usize = 20;
/// How far back the stories view looks for crossings when the process starts.
const CROSSINGS_LOOKBACK: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often the review queue and the dead letters are counted, and pages told of the view.
const STORIES_REFRESH: Duration = Duration::from_secs(3);
/// Chains that ended (cancelled or expired) this long ago are no longer sent to the page.
const ENDED_SHOWN_FOR: Duration = Duration::from_secs(24 * 3600);
/// Updates a slow page may fall behind by before it is sent a fresh snapshot instead.
const UPDATE_BACKLOG: usize = 1024;

/// A change of one chain.
#[derive(Clone, Debug)]
pub(crate) enum ChainChange {
    /// The chain as now stored.
    Updated(Arc<ChainView>),
    /// The chain was removed from the bucket.
    Removed(String),
}

/// The shared state of every page.
pub(crate) struct Live {
    chains: RwLock<BTreeMap<String, Arc<ChainView>>>,
    changes: broadcast::Sender<ChainChange>,
    stories: watch::Sender<Arc<StoriesView>>,
}

impl Live {
    /// Starts following the alert state bucket and the story ledger until `shutdown`.
    pub(crate) fn start(
        bus: Bus,
        review: bashu_moderation_core::ReviewQueue,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let live = Arc::new(Self {
            chains: RwLock::new(BTreeMap::new()),
            changes: broadcast::channel(UPDATE_BACKLOG).0,
            stories: watch::channel(Arc::new(StoriesView::default())).0,
        });
        tokio::spawn(follow_chains(live.clone(), bus.clone(), shutdown.clone()));
        tokio::spawn(follow_stories(live.clone(), bus, review, shutdown));
        live
    }

    /// Every chain worth showing (active, or ended within a day), and a receiver of the changes
    /// after it: subscribe first, so nothing falls between the snapshot and the first change.
    pub(crate) async fn snapshot(&self) -> (Vec<Arc<ChainView>>, broadcast::Receiver<ChainChange>) {
        let changes = self.changes.subscribe();
        let now_ms = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_millis() as i64;
        let ended_after = now_ms - ENDED_SHOWN_FOR.as_millis() as i64;
        let chains =
            self.chains.read().await.values().filter(|c| c.worth_showing(now_ms, ended_after)).cloned().collect();
        (chains, changes)
    }

    /// The stories view, and a receiver told when it changes.
    pub(crate) fn stories(&self) -> watch::Receiver<Arc<StoriesView>> {
        self.stories.subscribe()
    }

    async fn apply(&self, entry: kv::Entry) {
        let Some(chain_key) = entry.key.strip_prefix("chain.") else { return };
        let change = match entry.operation {
            kv::Operation::Put => match AlertChain::decode(entry.value) {
                Ok(chain) => {
                    let view = Arc::new(ChainView::from(&chain));
                    self.chains.write().await.insert(view.key.clone(), view.clone());
                    ChainChange::Updated(view)
                }
                Err(error) => {
                    warn!(chain = chain_key, error = %error, "duty board: undecodable chain skipped");
                    return;
                }
            },
            kv::Operation::Delete | kv::Operation::Purge => {
                self.chains.write().await.remove(chain_key);
                ChainChange::Removed(chain_key.to_owned())
            }
        };
        // No page open is not an error.
        let _ = self.changes.send(change);
    }
}

/// Watches every chain in the bucket (history first), again after any interruption.
async fn follow_chains(live: Arc<Live>, bus: Bus, shutdown: CancellationToken) {
    loop {
        let followed = async {
            let bucket = bus.alerts().state_bucket().await.map_err(|e| e.to_string())?;
            let mut entries = bucket.watch_with_history("chain.>").await.map_err(|e| e.to_string())?;
            while let Some(entry) = entries.next().await {
                live.apply(entry.map_err(|e| e.to_string())?).await;
            }
            Ok::<(), String>(())
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            result = followed => {
                if let Err(error) = result {
                    warn!(error = %error, "duty board: alert state watch interrupted; watching again");
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Keeps the stories view: crossings as they are published, the queue and dead letters by
/// counting every few seconds.
async fn follow_stories(
    live: Arc<Live>,
    bus: Bus,
    review: bashu_moderation_core::ReviewQueue,
    shutdown: CancellationToken,
) {
    let mut crossings: VecDeque<CrossingView> = VecDeque::with_capacity(CROSSINGS_SHOWN);
    let mut published = None;
    let mut refresh = tokio::time::interval(STORIES_REFRESH);
    let mut view = StoriesView::default();
    loop {
        if published.is_none() {
            let since = SystemTime::now() - CROSSINGS_LOOKBACK;
            match bus.operations().follow_published(since).await {
                Ok(stream) => {
                    // Following again reads the lookback again: start the list over.
                    crossings.clear();
                    published = Some(Box::pin(stream));
                }
                Err(error) => warn!(error = %error, "duty board: cannot follow published stories"),
            }
        }
        let next_published = async {
            match published.as_mut() {
                Some(stream) => stream.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            next = next_published => match next {
                Some(stored) if crosses_border(&stored.event.origin_county, &stored.event.audience) => {
                    if crossings.len() == CROSSINGS_SHOWN {
                        crossings.pop_back();
                    }
                    crossings.push_front(CrossingView::of(&stored.event));
                    view.crossings = crossings.iter().cloned().collect();
                }
                Some(_) => {}
                None => published = None,
            },
            _ = refresh.tick() => {
                view.unavailable.clear();
                match review.held().await {
                    Ok(items) => {
                        view.held_per_level.clear();
                        for item in &items {
                            *view.held_per_level.entry(bashu_moderation_core::next_level(item)).or_default() += 1;
                        }
                    }
                    Err(error) => view.unavailable.push(format!("review queue: {error}")),
                }
                match bus.operations().dead_letter_count().await {
                    Ok(count) => view.dead_letters = count,
                    Err(error) => view.unavailable.push(format!("dead letters: {error}")),
                }
                if published.is_none() {
                    view.unavailable.push("published stories: not followed".into());
                }
                // Pages hear of the view only here: catching up on a week of the ledger at start
                // must not become thousands of updates to every open page.
                live.stories.send_if_modified(|current| {
                    let changed = **current != view;
                    if changed {
                        *current = Arc::new(view.clone());
                    }
                    changed
                });
            }
        }
    }
}
