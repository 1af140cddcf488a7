//! `ReplayService`: sends a county again what its feed already gave it, for a centre whose CMS
//! lost data. Only that county's feed subject is written, so no other county sees anything.

use std::{pin::Pin, time::SystemTime};

use bashu_proto::{
    admin::v1::{ReplayProgress, ReplayRequest, replay_service_server::ReplayService},
    story::v1::StoryDelivery,
    time::to_system_time,
};
use futures::Stream;
use prost::Message as _;
use tonic::{Request, Response, Status};

use crate::{Admin, Error, audit::Who};

/// What to re-deliver.
enum Selection {
    /// The newest version of one story the county received.
    Story { origin: String, id: String },
    /// Every delivery in `[from, to)`.
    Range { from: SystemTime, to: SystemTime },
}

impl Selection {
    fn of(request: &ReplayRequest) -> Result<Self, Status> {
        let by_story = !request.story_id.is_empty() || !request.origin_county.is_empty();
        let by_range = request.from.is_some() || request.to.is_some();
        match (by_story, by_range) {
            (true, false) if !request.story_id.is_empty() && !request.origin_county.is_empty() => {
                Ok(Selection::Story { origin: request.origin_county.clone(), id: request.story_id.clone() })
            }
            (true, false) => {
                Err(Error::Invalid("story_id and origin_county: both are needed for one story".into()).into())
            }
            (false, true) => {
                let time = |field: &str, t: &Option<bashu_proto::Timestamp>| {
                    t.as_ref()
                        .and_then(to_system_time)
                        .ok_or_else(|| Error::Invalid(format!("{field}: a valid timestamp is needed")))
                };
                let (from, to) = (time("from", &request.from)?, time("to", &request.to)?);
                if from >= to {
                    return Err(Error::Invalid("to: must be after from".into()).into());
                }
                Ok(Selection::Range { from, to })
            }
            _ => Err(Error::Invalid("either story_id with origin_county, or from and to".into()).into()),
        }
    }

    fn window(&self) -> (SystemTime, SystemTime) {
        match self {
            Selection::Story { .. } => (SystemTime::UNIX_EPOCH, SystemTime::now()),
            Selection::Range { from, to } => (*from, *to),
        }
    }
}

fn replay_id() -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    hex::encode(bytes)
}

type ProgressStream = Pin<Box<dyn Stream<Item = Result<ReplayProgress, Status>> + Send>>;

impl Admin {
    /// Reads the selected deliveries of `county`, publishes each again, and reports progress.
    async fn replay_into(
        &self,
        county: &str,
        selection: &Selection,
        progress: &tokio::sync::mpsc::Sender<Result<ReplayProgress, Status>>,
    ) -> Result<u64, Status> {
        let subject = self.bus.subjects().feed_story(county).map_err(|e| Error::Invalid(e.to_string()))?;
        let (from, to) = selection.window();
        let mut chosen: Vec<StoryDelivery> = Vec::new();
        let mut last = ReplayProgress::default();
        self.bus
            .operations()
            .scan_range(
                bashu_bus::FEEDS,
                vec![subject.into()],
                from,
                to,
                |message| {
                    // A copy an earlier replay sent is not a delivery of its own.
                    if message.headers.as_ref().is_some_and(|h| h.get(bashu_bus::headers::REPLAY).is_some()) {
                        return;
                    }
                    let Ok(delivery) = StoryDelivery::decode(message.payload.clone()) else { return };
                    match selection {
                        Selection::Range { .. } => chosen.push(delivery),
                        Selection::Story { origin, id } => {
                            let Some(story) = &delivery.story else { return };
                            if story.origin_county == *origin && story.id == *id {
                                // The newest version the county got is the one to send again.
                                chosen.retain(|d| d.story.as_ref().is_some_and(|s| s.version > story.version));
                                if chosen.is_empty() {
                                    chosen.push(delivery);
                                }
                            }
                        }
                    }
                },
                |scanned, total| {
                    last = ReplayProgress { scanned, total, replayed: 0, done: false };
                    if scanned % 100 == 0 {
                        let _ = progress.try_send(Ok(last));
                    }
                },
            )
            .await
            .map_err(|e| Error::unavailable("the feed is unavailable", e))?;
        if let Selection::Story { origin, id } = selection
            && chosen.is_empty()
        {
            return Err(Error::NotFound(format!("county {county} never received story {origin}/{id}")).into());
        }
        let replay = replay_id();
        let again = format!("replay.{replay}");
        let mut replayed = 0;
        for delivery in &chosen {
            self.bus
                .operations()
                .publish_again(delivery, &again, &[(bashu_bus::headers::REPLAY, &replay)])
                .await
                .map_err(|e| Error::unavailable("the replay stopped", format!("after {replayed}: {e}")))?;
            replayed += 1;
            if replayed % 50 == 0 {
                let _ = progress.send(Ok(ReplayProgress { replayed, ..last })).await;
            }
        }
        let _ = progress.send(Ok(ReplayProgress { replayed, done: true, ..last })).await;
        Ok(replayed)
    }
}

#[tonic::async_trait]
impl ReplayService for Admin {
    type ReplayStream = ProgressStream;

    async fn replay(&self, request: Request<ReplayRequest>) -> Result<Response<Self::ReplayStream>, Status> {
        let who = Who::of(&request)?;
        let request = request.into_inner();
        let county = self.counties.resolve(&request.county).map_err(Error::from)?.county.code.clone();
        let selection = Selection::of(&request)?;
        let (sender, receiver) = tokio::sync::mpsc::channel(16);
        let admin = self.clone();
        tokio::spawn(async move {
            let described = match &selection {
                Selection::Story { origin, id } => format!("story {origin}/{id}"),
                Selection::Range { from, to } => {
                    format!("deliveries from {} to {}", crate::audit::rfc3339(*from), crate::audit::rfc3339(*to))
                }
            };
            match admin.replay_into(&county, &selection, &sender).await {
                Ok(replayed) => {
                    let target = format!("replay to {county}: {described} ({replayed} re-delivered)");
                    if let Err(status) = admin.audit(&who, target, None, None).await {
                        let _ = sender.send(Err(status.into())).await;
                    }
                }
                Err(status) => {
                    let _ = sender.send(Err(status)).await;
                }
            }
        });
        let stream = futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|item| (item, receiver))
        });
        Ok(Response::new(Box::pin(stream)))
    }
}
