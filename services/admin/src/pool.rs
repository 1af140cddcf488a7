//! `PoolIndexService`: builds every distribution replica's content pool index again from the
//! streams, and follows each replica until it has caught up. The replicas are asked over core
//! NATS (all of them hear it) and answer with their progress, so admin needs to know neither how
//! many there are nor where.

use std::{collections::BTreeMap, pin::Pin, time::Duration};

use bashu_proto::admin::v1::{
    PoolIndexProgress, PoolReplicaProgress, RebuildPoolIndexRequest, pool_index_service_server::PoolIndexService,
};
use futures::{Stream, StreamExt};
use prost::Message as _;
use tonic::{Request, Response, Status};

use crate::{Admin, Error, audit::Who};

/// How long to wait for the first replica to answer before saying none did.
const FIRST_ANSWER: Duration = Duration::from_secs(5);
/// Every replica answers at once when asked; one that is slower than this to say so much as
/// "started" is not waited for before the rebuild may be called done.
const ROLL_CALL: Duration = Duration::from_secs(1);
/// How long a rebuild may take before the operator is told it did not finish.
const AT_MOST: Duration = Duration::from_secs(30 * 60);
/// How often the operator is told where things stand.
const EVERY: Duration = Duration::from_millis(500);

type ProgressStream = Pin<Box<dyn Stream<Item = Result<PoolIndexProgress, Status>> + Send>>;

#[tonic::async_trait]
impl PoolIndexService for Admin {
    type RebuildPoolIndexStream = ProgressStream;

    async fn rebuild_pool_index(
        &self,
        request: Request<RebuildPoolIndexRequest>,
    ) -> Result<Response<Self::RebuildPoolIndexStream>, Status> {
        let who = Who::of(&request)?;
        // Listen before asking, so no replica's first answer is missed.
        let mut reports = self
            .bus
            .stories()
            .pool_progress_reports()
            .await
            .map_err(|e| Error::unavailable("the bus is unavailable", e))?;
        self.bus.stories().request_pool_rebuild().await.map_err(|e| Error::unavailable("the bus is unavailable", e))?;
        self.audit(&who, "content pool index rebuild", None, None).await?;
        let (sender, receiver) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            let mut replicas: BTreeMap<String, PoolReplicaProgress> = BTreeMap::new();
            let started = tokio::time::Instant::now();
            let mut tick = tokio::time::interval(EVERY);
            loop {
                tokio::select! {
                    report = reports.next() => {
                        let Some(report) = report else { break };
                        if let Ok(progress) = PoolReplicaProgress::decode(report.payload) {
                            replicas.insert(progress.replica.clone(), progress);
                        }
                    }
                    _ = tick.tick() => {
                        let done = started.elapsed() >= ROLL_CALL
                            && !replicas.is_empty()
                            && replicas.values().all(|r| r.caught_up);
                        let answer = PoolIndexProgress { replicas: replicas.values().cloned().collect(), done };
                        if replicas.is_empty() && started.elapsed() > FIRST_ANSWER {
                            let error = Error::unavailable("no distribution replica answered", "is distribution running?");
                            let _ = sender.send(Err(error.into())).await;
                            return;
                        }
                        if started.elapsed() > AT_MOST {
                            let error = Error::unavailable("the rebuild did not finish", "the replicas are still reading; ask again later");
                            let _ = sender.send(Err(error.into())).await;
                            return;
                        }
                        if sender.send(Ok(answer)).await.is_err() || done {
                            return;
                        }
                    }
                }
            }
        });
        let stream = futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|item| (item, receiver))
        });
        Ok(Response::new(Box::pin(stream)))
    }
}
