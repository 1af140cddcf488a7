//! Durable pull consumption: ack after the handler succeeded, bounded retries, dead letters.

use std::{future::Future, time::Duration};

use async_nats::{
    HeaderMap,
    jetstream::{AckKind, Message, consumer::PullConsumer},
};
use bytes::Bytes;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span, warn};

use crate::{Bus, ConsumerSpec, DEAD_LETTERS, Error, Incoming, Result, headers};

/// One consumed event.
#[derive(Debug)]
pub struct Delivery<E> {
    /// The decoded event.
    pub event: E,
    /// The subject it was published on.
    pub subject: String,
    /// Its sequence number in the stream.
    pub stream_sequence: u64,
    /// 1 on first delivery, then 2, 3, ...
    pub attempt: u64,
}

/// Why a handler did not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Worth trying again later (the bus was unavailable, a dependency timed out).
    Retry(String),
    /// Will never succeed (the event is invalid): dead-letter it now.
    Permanent(String),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        match error {
            Error::Nats { .. } => Failure::Retry(error_chain(&error)),
            Error::InvalidToken { .. } | Error::MissingField { .. } => Failure::Permanent(error.to_string()),
        }
    }
}

/// The error and its sources on one line, for a dead letter's reason.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Handles one delivery. Implemented for async closures.
pub trait Handler<E>: Send + Sync {
    /// Does the work; `Ok` only once its effect is durable.
    fn handle(&self, delivery: Delivery<E>) -> impl Future<Output = Result<(), Failure>> + Send;
}

impl<E, F, Fut> Handler<E> for F
where
    E: Send,
    F: Fn(Delivery<E>) -> Fut + Send + Sync,
    Fut: Future<Output = Result<(), Failure>> + Send,
{
    fn handle(&self, delivery: Delivery<E>) -> impl Future<Output = Result<(), Failure>> + Send {
        self(delivery)
    }
}

/// A message a consumer gave up on.
#[derive(Clone, Debug)]
pub struct DeadLetter {
    /// Its sequence in the dead-letter stream.
    pub sequence: u64,
    /// Why it was given up on.
    pub reason: String,
    /// The consumer that gave up.
    pub consumer: String,
    /// Its original subject.
    pub original_subject: String,
    /// How many times it was delivered.
    pub attempts: u64,
    /// The payload's protobuf type, when its publisher named it.
    pub event_type: String,
    /// When it was dead-lettered.
    pub dead_at: std::time::SystemTime,
    /// The original payload, unchanged.
    pub payload: Bytes,
}

impl Bus {
    /// Runs a durable consumer until `shutdown` is cancelled. Messages are handled one at a time
    /// in stream order; the one in hand when shutdown comes is finished and acked first.
    pub async fn consume<E: Incoming, H: Handler<E>>(
        &self,
        spec: ConsumerSpec,
        handler: H,
        shutdown: CancellationToken,
    ) -> Result<()> {
        while !shutdown.is_cancelled() {
            let consumer = match self.open_consumer(&spec).await {
                Ok(consumer) => consumer,
                Err(error) => {
                    warn!(consumer = spec.durable(), error = %error_chain(&error), "consumer unavailable, retrying");
                    sleep_or_shutdown(Duration::from_secs(1), &shutdown).await;
                    continue;
                }
            };
            let mut messages = match consumer.messages().await {
                Ok(messages) => messages,
                Err(error) => {
                    warn!(consumer = spec.durable(), error = %error_chain(&error), "pull subscription failed, retrying");
                    sleep_or_shutdown(Duration::from_secs(1), &shutdown).await;
                    continue;
                }
            };
            loop {
                let next = tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => return Ok(()),
                    next = messages.next() => next,
                };
                match next {
                    Some(Ok(message)) => self.process(&spec, &handler, message).await,
                    Some(Err(error)) => {
                        warn!(consumer = spec.durable(), error = %error_chain(&error), "pull failed");
                    }
                    // The pull stream ended (consumer deleted, server gone): open it again.
                    None => break,
                }
            }
        }
        Ok(())
    }

    async fn open_consumer(&self, spec: &ConsumerSpec) -> Result<PullConsumer> {
        let stream = self
            .js
            .get_stream(&spec.stream)
            .await
            .map_err(|e| Error::nats(format!("get stream {}", spec.stream), e))?;
        match stream.create_consumer(spec.config()).await {
            Ok(consumer) => Ok(consumer),
            // Some settings (where it starts) cannot change once a consumer exists: keep the one
            // there, with its position, rather than lose it.
            Err(error) => match stream.get_consumer(&spec.durable).await {
                Ok(existing) => {
                    warn!(consumer = spec.durable(), error = %error, "consumer kept with its earlier settings");
                    Ok(existing)
                }
                Err(_) => Err(Error::nats(format!("create consumer {}", spec.durable), error)),
            },
        }
    }

    async fn process<E: Incoming, H: Handler<E>>(&self, spec: &ConsumerSpec, handler: &H, message: Message) {
        let (stream_sequence, attempt) = match message.info() {
            Ok(info) => (info.stream_sequence, info.delivered.max(1) as u64),
            Err(error) => {
                warn!(consumer = spec.durable(), error = %error, "message without JetStream metadata, ignored");
                return;
            }
        };
        let subject = message.subject.to_string();
        let span = info_span!("consume", consumer = spec.durable(), subject = %subject, stream_sequence, attempt);
        headers::adopt_trace_context(&span, message.headers.as_ref());

        let max_deliver = u64::from(spec.retry.max_deliver);
        let outcome = if attempt > max_deliver {
            // The process died during the last attempt; the server handed it back once more.
            Err(Failure::Permanent(format!("gave up after {max_deliver} attempts (the last one did not finish)")))
        } else {
            let event_type = message.headers.as_ref().and_then(|h| h.get(headers::EVENT_TYPE)).map(|v| v.as_str());
            match E::decode_incoming(
                crate::Arrival { subjects: &self.subjects, subject: &message.subject, event_type },
                message.payload.clone(),
            ) {
                Ok(event) => {
                    handler
                        .handle(Delivery { event, subject: subject.clone(), stream_sequence, attempt })
                        .instrument(span.clone())
                        .await
                }
                Err(error) => Err(Failure::Permanent(format!("undecodable {}: {error}", E::NAME))),
            }
        };

        let _entered = span.enter();
        let result = match outcome {
            Ok(()) => message.ack().await,
            Err(Failure::Retry(reason)) if attempt < max_deliver => {
                let delay = jittered(spec.retry.delay_after(attempt as u32));
                warn!(consumer = spec.durable(), reason = %reason, attempt, "handler failed, will retry");
                message.ack_with(AckKind::Nak(Some(delay))).await
            }
            Err(Failure::Retry(reason) | Failure::Permanent(reason)) => {
                match self.send_to_dead_letters(spec, &message, stream_sequence, attempt, &reason).await {
                    Ok(()) => {
                        warn!(consumer = spec.durable(), reason = %reason, attempt, "dead-lettered");
                        message.ack_with(AckKind::Term).await
                    }
                    Err(error) => {
                        // Keep the message: it is redelivered after ack_wait and tried again.
                        warn!(consumer = spec.durable(), error = %error_chain(&error), "dead-letter publish failed");
                        Ok(())
                    }
                }
            }
        };
        if let Err(error) = result {
            // The server redelivers after ack_wait; handlers are idempotent.
            warn!(consumer = spec.durable(), error = %error, "ack failed");
        }
    }

    async fn send_to_dead_letters(
        &self,
        spec: &ConsumerSpec,
        message: &Message,
        sequence: u64,
        attempts: u64,
        reason: &str,
    ) -> Result<()> {
        let mut headers = HeaderMap::new();
        if let Some(original) = &message.headers {
            for (name, values) in original.iter() {
                let name: &str = name.as_ref();
                if name != headers::MSG_ID {
                    for value in values {
                        headers.append(name, value.as_str());
                    }
                }
            }
        }
        headers.insert(headers::MSG_ID, format!("dlq.{}.{sequence}", spec.stream).as_str());
        // Header values are single lines.
        headers.insert(headers::DLQ_REASON, reason.replace(['\r', '\n'], " ").as_str());
        headers.insert(headers::DLQ_CONSUMER, spec.durable.as_str());
        headers.insert(headers::DLQ_STREAM, spec.stream.as_str());
        headers.insert(headers::DLQ_SUBJECT, message.subject.as_str());
        headers.insert(headers::DLQ_SEQUENCE, sequence.to_string().as_str());
        headers.insert(headers::DLQ_ATTEMPTS, attempts.to_string().as_str());
        let subject = self.subjects.dead_letter(&spec.durable)?;
        bashu_telemetry::metrics()
            .dead_letters
            .get_or_create(&bashu_telemetry::metrics::DeadLetterLabels { consumer: spec.durable.clone() })
            .inc();
        self.js
            .publish_with_headers(subject.clone(), headers, message.payload.clone())
            .await
            .map_err(|e| Error::nats(format!("publish to {subject}"), e))?
            .await
            .map_err(|e| Error::nats(format!("ack of {subject}"), e))?;
        Ok(())
    }

    /// Every message in the dead-letter stream, oldest first.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>> {
        let mut stream = self.stream(DEAD_LETTERS).await?;
        let state = stream.info().await.map_err(|e| Error::nats("dead-letter stream info", e))?.state.clone();
        let mut letters = Vec::new();
        if state.messages == 0 {
            return Ok(letters);
        }
        for sequence in state.first_sequence..=state.last_sequence {
            let raw = match stream.get_raw_message(sequence).await {
                Ok(raw) => raw,
                // Deleted by an operator in between.
                Err(_) => continue,
            };
            letters.push(DeadLetter::from_stored(sequence, &raw.headers, raw.payload.clone(), raw.time.into()));
        }
        Ok(letters)
    }
}

async fn sleep_or_shutdown(duration: Duration, shutdown: &CancellationToken) {
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = tokio::time::sleep(duration) => {}
    }
}

/// ±20 % of the delay, so that many failing consumers do not retry in lockstep.
fn jittered(delay: Duration) -> Duration {
    let noise =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let factor = 0.8 + f64::from(noise % 1000) / 1000.0 * 0.4;
    delay.mul_f64(factor)
}
