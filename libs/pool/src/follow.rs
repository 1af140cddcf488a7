//! Keeping the index current from the bus. Each replica reads every feed message and every reuse
//! note itself (ordered consumers, not a shared durable one: each needs all of them), from where
//! its own last commit ended, in batches that each commit with the new checkpoint. A replica
//! killed at any moment starts again after its last commit: nothing is lost and nothing counts
//! twice (applying a delivery or a use again changes nothing).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use bashu_bus::{Bus, FeedEvent, Sequenced};
use futures::{StreamExt, stream};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{Change, Checkpoint, PoolIndex};

/// The most changes one commit takes.
const BATCH: usize = 2_000;
/// How long a batch waits for more once it has something: each batch is a commit and a new
/// segment to merge, so a steady trickle is gathered rather than committed message by message
/// (a story is findable within about this long).
const LINGER: Duration = Duration::from_millis(500);

/// How far the index has read, against how much there was when it (re)started reading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Progress {
    /// Where the index stands.
    pub checkpoint: Checkpoint,
    /// The feeds' last sequence when reading began: the index has caught up once
    /// `checkpoint.feeds` reaches it.
    pub feeds_target: u64,
    /// Whether it is being built again from the start.
    pub rebuilding: bool,
    /// Counts the reading sessions (a restart after a failure, a rebuild): a rebuild asked for
    /// during session n shows from session n+1 on.
    pub session: u64,
}

/// Feeds one replica's index from the bus. Cheap to clone.
#[derive(Clone)]
pub struct Follower {
    pool: PoolIndex,
    rebuild: Arc<AtomicBool>,
    wake: Arc<Notify>,
    progress: Arc<watch::Sender<Progress>>,
}

enum Read {
    Feed(Box<Sequenced<FeedEvent>>),
    Use(Sequenced<bashu_bus::FromCounty<bashu_proto::story::v1::StoryUse>>),
}

impl Follower {
    /// A follower for `pool`.
    pub fn new(pool: PoolIndex) -> Self {
        let checkpoint = pool.checkpoint().unwrap_or_default();
        let (progress, _) = watch::channel(Progress { checkpoint, ..Default::default() });
        Self {
            pool,
            rebuild: Arc::new(AtomicBool::new(false)),
            wake: Arc::new(Notify::new()),
            progress: Arc::new(progress),
        }
    }

    /// Empties the index and reads the streams again from their start; returns the session in
    /// which that happens (see [`Progress::session`]).
    pub fn rebuild(&self) -> u64 {
        let next = self.progress.borrow().session + 1;
        self.rebuild.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        next
    }

    /// Where the index stands, as it changes.
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// Reads and indexes until `shutdown`; a failure (the bus away, a commit refused) is retried
    /// from the last commit after a pause.
    pub async fn run(self, bus: Bus, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            match self.read(&bus, &shutdown).await {
                Ok(()) => {}
                Err(error) => {
                    warn!(error = %error, "the content pool stopped reading; resuming from its last commit");
                    tokio::select! {
                        _ = shutdown.cancelled() => {}
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }

    /// One reading session: from the checkpoint until shutdown, a rebuild, or a failure.
    async fn read(&self, bus: &Bus, shutdown: &CancellationToken) -> Result<(), String> {
        let rebuilding = self.rebuild.swap(false, Ordering::SeqCst);
        if rebuilding {
            let pool = self.pool.clone();
            tokio::task::spawn_blocking(move || pool.clear())
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            info!("the content pool is being built again from the streams");
        }
        let mut checkpoint = self.pool.checkpoint().map_err(|e| e.to_string())?;
        let session = self.progress.borrow().session + 1;
        let feeds_target = {
            let mut feeds = bus.operations().stream(bashu_bus::FEEDS).await.map_err(|e| e.to_string())?;
            feeds.info().await.map_err(|e| e.to_string())?.state.last_sequence
        };
        self.progress.send_replace(Progress { checkpoint, feeds_target, rebuilding, session });
        let feeds = bus.stories().follow_feeds(checkpoint.feeds).await.map_err(|e| e.to_string())?;
        let uses = bus.stories().follow_uses(checkpoint.uses).await.map_err(|e| e.to_string())?;
        let mut reads =
            stream::select(feeds.map(|r| r.map(|s| Read::Feed(Box::new(s)))), uses.map(|r| r.map(Read::Use)));
        loop {
            let first = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = self.wake.notified() => return Ok(()),
                next = reads.next() => next,
            };
            let Some(first) = first else { return Err("the streams ended".into()) };
            let mut batch = vec![first.map_err(|e| e.to_string())?];
            let deadline = tokio::time::Instant::now() + LINGER;
            while batch.len() < BATCH {
                match tokio::time::timeout_at(deadline, reads.next()).await {
                    Ok(Some(read)) => batch.push(read.map_err(|e| e.to_string())?),
                    Ok(None) | Err(_) => break,
                }
            }
            let mut changes = Vec::with_capacity(batch.len());
            for read in batch {
                match read {
                    Read::Feed(feed) => {
                        let Sequenced { sequence, event } = *feed;
                        checkpoint.feeds = checkpoint.feeds.max(sequence);
                        match event {
                            Ok(FeedEvent::Story(delivery)) => changes.push(Change::Delivered(Box::new(delivery))),
                            // Moderation's word to an origin is not content to find.
                            Ok(FeedEvent::Decision(_)) => {}
                            Err(reason) => {
                                warn!(sequence, reason = %reason, "a feed message the pool cannot read, skipped")
                            }
                        }
                    }
                    Read::Use(Sequenced { sequence, event }) => {
                        checkpoint.uses = checkpoint.uses.max(sequence);
                        match event {
                            Ok(used) => changes.push(Change::Used(used.0)),
                            Err(reason) => {
                                warn!(sequence, reason = %reason, "a reuse note the pool cannot read, skipped")
                            }
                        }
                    }
                }
            }
            let pool = self.pool.clone();
            tokio::task::spawn_blocking(move || pool.apply(changes, checkpoint))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            self.progress.send_replace(Progress { checkpoint, feeds_target, rebuilding, session });
        }
    }
}
