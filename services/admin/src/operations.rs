//! The bus as operators see it: streams and consumers with the counties that are not reading
//! (`BusHealthService`), and the dead letters with inspect, requeue and discard
//! (`DeadLetterService`).

use std::time::{Duration, SystemTime};

use bashu_proto::{
    admin::v1::{
        ConsumerHealth, DeadLetter, DeadLetterDetail, DeadLetterRef, DiscardDeadLetterResponse, GetBusHealthRequest,
        GetBusHealthResponse, ListDeadLettersRequest, ListDeadLettersResponse, RequeueDeadLetterResponse, StreamHealth,
        bus_health_service_server::BusHealthService, dead_letter_service_server::DeadLetterService,
    },
    time::from_system_time,
};
use tonic::{Request, Response, Status};

use crate::{Admin, Error, audit::Who};

/// A county consumer silent for longer than this, with messages waiting, is not reading.
const DEFAULT_SILENT_AFTER: Duration = Duration::from_secs(3600);

fn unavailable(error: bashu_bus::Error) -> Error {
    Error::unavailable("the bus is unavailable", error)
}

fn dead_letter_line(letter: &bashu_bus::DeadLetter) -> DeadLetter {
    DeadLetter {
        sequence: letter.sequence,
        reason: letter.reason.clone(),
        consumer: letter.consumer.clone(),
        original_subject: letter.original_subject.clone(),
        attempts: letter.attempts,
        dead_at: Some(from_system_time(letter.dead_at)),
        event_type: letter.event_type.clone(),
        size: letter.payload.len() as u64,
    }
}

/// A payload of a known event type as proto3 JSON; empty when the type is unknown or the
/// payload does not decode (which is often why it is a dead letter).
fn payload_json(event_type: &str, payload: &[u8]) -> String {
    use bashu_bus::Event as _;
    use bashu_proto::{alert::v1 as alert, moderation::v1 as moderation, story::v1 as story};
    use prost::Message;
    fn render<M: Message + Default + serde::Serialize>(payload: &[u8]) -> String {
        M::decode(payload).ok().and_then(|m| serde_json::to_string(&m).ok()).unwrap_or_default()
    }
    match event_type {
        story::StorySubmitted::TYPE => render::<story::StorySubmitted>(payload),
        story::ModerationDecision::TYPE => render::<story::ModerationDecision>(payload),
        story::StoryPublished::TYPE => render::<story::StoryPublished>(payload),
        story::StoryDelivery::TYPE => render::<story::StoryDelivery>(payload),
        story::StoryReceipt::TYPE => render::<story::StoryReceipt>(payload),
        story::StoryUse::TYPE => render::<story::StoryUse>(payload),
        story::TakedownConfirmation::TYPE => render::<story::TakedownConfirmation>(payload),
        story::DecisionNotice::TYPE => render::<story::DecisionNotice>(payload),
        moderation::ReviewRecorded::TYPE => render::<moderation::ReviewRecorded>(payload),
        alert::AlertIssued::TYPE => render::<alert::AlertIssued>(payload),
        alert::AlertDelivery::TYPE => render::<alert::AlertDelivery>(payload),
        alert::AlertReceipt::TYPE => render::<alert::AlertReceipt>(payload),
        alert::AlertAcknowledgement::TYPE => render::<alert::AlertAcknowledgement>(payload),
        alert::AlertEscalation::TYPE => render::<alert::AlertEscalation>(payload),
        _ => String::new(),
    }
}

#[tonic::async_trait]
impl BusHealthService for Admin {
    async fn get_bus_health(
        &self,
        request: Request<GetBusHealthRequest>,
    ) -> Result<Response<GetBusHealthResponse>, Status> {
        let silent_after = match request.into_inner().silent_after_seconds {
            0 => DEFAULT_SILENT_AFTER,
            seconds => Duration::from_secs(u64::from(seconds)),
        };
        let (streams, consumers) = self.bus.operations().health().await.map_err(unavailable)?;
        let now = SystemTime::now();
        let mut not_reading = std::collections::BTreeSet::new();
        let consumers = consumers
            .into_iter()
            .map(|c| {
                let since = c.last_active.unwrap_or(c.created);
                let silent = now.duration_since(since).unwrap_or_default();
                // Webhook senders are Bashu's own; a county not reading is the county's consumer.
                let own = c.name.starts_with("feed-") || c.name.starts_with("alerts-");
                if own && c.pending + c.ack_pending > 0 && silent >= silent_after {
                    not_reading.extend(c.county.clone());
                }
                ConsumerHealth {
                    stream: c.stream,
                    name: c.name,
                    county: c.county.unwrap_or_default(),
                    pending: c.pending,
                    ack_pending: c.ack_pending,
                    redelivered: c.redelivered,
                    last_active: c.last_active.map(from_system_time),
                    silent_seconds: silent.as_secs(),
                }
            })
            .collect();
        let dead_letters =
            streams.iter().find(|s| s.name == bashu_bus::DEAD_LETTERS).map(|s| s.messages).unwrap_or_default();
        Ok(Response::new(GetBusHealthResponse {
            streams: streams
                .into_iter()
                .map(|s| StreamHealth {
                    name: s.name,
                    messages: s.messages,
                    bytes: s.bytes,
                    consumers: s.consumers as u32,
                    last_message_at: s.last_message_at.map(from_system_time),
                })
                .collect(),
            consumers,
            not_reading: not_reading.into_iter().collect(),
            dead_letters,
        }))
    }
}

impl Admin {
    async fn existing_dead_letter(&self, sequence: u64) -> Result<bashu_bus::DeadLetter, Error> {
        self.bus
            .operations()
            .dead_letter(sequence)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| Error::NotFound(format!("no dead letter {sequence}")))
    }
}

#[tonic::async_trait]
impl DeadLetterService for Admin {
    async fn list_dead_letters(
        &self,
        request: Request<ListDeadLettersRequest>,
    ) -> Result<Response<ListDeadLettersResponse>, Status> {
        let consumer = request.into_inner().consumer;
        let letters = self.bus.operations().dead_letters().await.map_err(unavailable)?;
        Ok(Response::new(ListDeadLettersResponse {
            dead_letters: letters
                .iter()
                .filter(|l| consumer.is_empty() || l.consumer == consumer)
                .map(dead_letter_line)
                .collect(),
        }))
    }

    async fn get_dead_letter(&self, request: Request<DeadLetterRef>) -> Result<Response<DeadLetterDetail>, Status> {
        let sequence = request.into_inner().sequence;
        let letter = self.existing_dead_letter(sequence).await?;
        Ok(Response::new(DeadLetterDetail {
            dead_letter: Some(dead_letter_line(&letter)),
            payload_json: payload_json(&letter.event_type, &letter.payload),
            payload: letter.payload.to_vec(),
        }))
    }

    async fn requeue_dead_letter(
        &self,
        request: Request<DeadLetterRef>,
    ) -> Result<Response<RequeueDeadLetterResponse>, Status> {
        let who = Who::of(&request)?;
        let sequence = request.into_inner().sequence;
        let letter = self.existing_dead_letter(sequence).await?;
        let subject = self
            .bus
            .operations()
            .requeue_dead_letter(sequence)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| Error::NotFound(format!("no dead letter {sequence}")))?;
        let before = crate::audit::json(&dead_letter_line(&letter));
        self.audit(&who, format!("dead letter {sequence} requeued to {subject}"), Some(before), None).await?;
        Ok(Response::new(RequeueDeadLetterResponse { subject }))
    }

    async fn discard_dead_letter(
        &self,
        request: Request<DeadLetterRef>,
    ) -> Result<Response<DiscardDeadLetterResponse>, Status> {
        let who = Who::of(&request)?;
        let sequence = request.into_inner().sequence;
        let letter = self.existing_dead_letter(sequence).await?;
        self.bus.operations().discard_dead_letter(sequence).await.map_err(unavailable)?;
        let before = crate::audit::json(&dead_letter_line(&letter));
        self.audit(&who, format!("dead letter {sequence} discarded"), Some(before), None).await?;
        Ok(Response::new(DiscardDeadLetterResponse {}))
    }
}
