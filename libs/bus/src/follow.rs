//! Following a bucket's keys into memory: what every replica does to keep a view of shared state
//! (chains, held versions, fingerprints, rules, credentials) current without reading the bucket
//! on every use.

use std::time::Duration;

use async_nats::jetstream::kv;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// What a follower is told.
pub enum Followed {
    /// A (new) watch is open: what was held from the previous one may be stale.
    Opened,
    /// A key's newest value, or its deletion.
    Entry(kv::Entry),
    /// Everything the bucket held when the watch opened has been seen.
    CaughtUp,
}

/// Follows the keys of `kv` matching `filter` (`>`, `chain.>`) until `shutdown`: with `history`,
/// the newest value of every key first and then every change; without, changes only. The watch
/// is opened again whenever it ends (a lost connection), after telling `apply` so.
pub async fn follow_keys(
    kv: &kv::Store,
    filter: &str,
    history: bool,
    shutdown: &CancellationToken,
    mut apply: impl FnMut(Followed),
) {
    while !shutdown.is_cancelled() {
        let watch = if history { kv.watch_with_history(filter).await } else { kv.watch(filter).await };
        let mut watch = match watch {
            Ok(watch) => watch,
            Err(error) => {
                warn!(bucket = %kv.name, filter, error = %error, "cannot follow the bucket yet; retrying");
                pause(shutdown).await;
                continue;
            }
        };
        apply(Followed::Opened);
        // The watch shows every key that exists and every change after it opened: with nothing
        // there now, there is nothing to catch up with.
        let mut caught_up = !history;
        if history && let Ok(mut keys) = kv.keys().await {
            caught_up = keys.next().await.is_none();
        }
        if caught_up {
            apply(Followed::CaughtUp);
        }
        loop {
            let entry = tokio::select! {
                _ = shutdown.cancelled() => return,
                entry = watch.next() => entry,
            };
            let Some(Ok(entry)) = entry else { break };
            let last_of_snapshot = entry.delta == 0;
            apply(Followed::Entry(entry));
            if !caught_up && last_of_snapshot {
                caught_up = true;
                apply(Followed::CaughtUp);
            }
        }
        warn!(bucket = %kv.name, filter, "the bucket's watch ended; opening it again");
        pause(shutdown).await;
    }
}

async fn pause(shutdown: &CancellationToken) {
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
    }
}
