//! Durable pull consumption: ack after the handler succeeded, bounded retries, dead letters.

use std::{
    collections::{HashMap, VecDeque},
    future::Future,
    time::Duration,
};

use async_nats::{
    HeaderMap,
    jetstream::{AckKind, Message, consumer::PullConsumer},
};
use bytes::Bytes;
use futures::{StreamExt, stream::FuturesUnordered};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span, warn};

use crate::{Bus, ConsumerSpec, Error, Incoming, Operation, Result, headers};

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
        if error.is_transient() { Failure::Retry(error_chain(&error)) } else { Failure::Permanent(error_chain(&error)) }
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
        self.consume_keyed(spec.in_parallel(1), |_: &E| String::new(), handler, shutdown).await
    }

    /// Runs a durable consumer until `shutdown` is cancelled, handling up to the spec's
    /// [`ConsumerSpec::in_parallel`] messages at once: messages whose `order_key` differs run
    /// side by side, messages with the same key one after the other in stream order (a story's
    /// versions, an alert chain's messages). Each is acked only after its own handler succeeded.
    /// At shutdown no new message is taken, and those in hand are finished and acked first.
    pub async fn consume_keyed<E, H, K>(
        &self,
        spec: ConsumerSpec,
        order_key: K,
        handler: H,
        shutdown: CancellationToken,
    ) -> Result<()>
    where
        E: Incoming,
        H: Handler<E>,
        K: Fn(&E) -> String,
    {
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
            let mut lanes = Lanes::default();
            let mut running = FuturesUnordered::new();
            loop {
                let room = lanes.holding < spec.parallel;
                tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => break,
                    Some(key) = running.next(), if !running.is_empty() => {
                        lanes.holding -= 1;
                        if let Some(next) = lanes.finished(key) {
                            running.push(self.process(&spec, &handler, next));
                        }
                    }
                    next = messages.next(), if room => match next {
                        Some(Ok(message)) => {
                            lanes.holding += 1;
                            let arrived = self.arrive::<E>(&spec, message);
                            let key = arrived.event.as_ref().ok().map(&order_key).unwrap_or_default();
                            if let Some(first) = lanes.admit(key, arrived) {
                                running.push(self.process(&spec, &handler, first));
                            }
                        }
                        Some(Err(error)) => {
                            warn!(consumer = spec.durable(), error = %error_chain(&error), "pull failed");
                        }
                        // The pull stream ended (consumer deleted, server gone): open it again.
                        None => break,
                    },
                }
            }
            // Whatever is in hand is finished, in order per key, before the consumer is left.
            while let Some(key) = running.next().await {
                if let Some(next) = lanes.finished(key) {
                    running.push(self.process(&spec, &handler, next));
                }
            }
        }
        Ok(())
    }

    async fn open_consumer(&self, spec: &ConsumerSpec) -> Result<PullConsumer> {
        let stream =
            self.js.get_stream(&spec.stream).await.map_err(|e| Error::nats(Operation::Read, &spec.stream, e))?;
        match stream.create_consumer(spec.config()).await {
            Ok(consumer) => Ok(consumer),
            // Some settings (where it starts) cannot change once a consumer exists: keep the one
            // there, with its position, rather than lose it.
            Err(error) => match stream.get_consumer(&spec.durable).await {
                Ok(existing) => {
                    warn!(consumer = spec.durable(), error = %error, "consumer kept with its earlier settings");
                    Ok(existing)
                }
                Err(_) => Err(Error::nats(Operation::Provision, &spec.durable, error)),
            },
        }
    }

    /// A message as it arrived: its metadata and its decoded event, or why it does not decode.
    fn arrive<E: Incoming>(&self, spec: &ConsumerSpec, message: Message) -> Arrived<E> {
        let (stream_sequence, attempt) = match message.info() {
            Ok(info) => (info.stream_sequence, info.delivered.max(1) as u64),
            // Not from a JetStream consumer: nothing to ack, nothing to redeliver.
            Err(_) => (0, 0),
        };
        let event = if stream_sequence == 0 {
            Err(Failure::Permanent("message without JetStream metadata".into()))
        } else if attempt > u64::from(spec.retry.max_deliver) {
            // The process died during the last attempt; the server handed it back once more.
            Err(Failure::Permanent(format!(
                "gave up after {} attempts (the last one did not finish)",
                spec.retry.max_deliver
            )))
        } else {
            let event_type = message.headers.as_ref().and_then(|h| h.get(headers::EVENT_TYPE)).map(|v| v.as_str());
            E::decode_incoming(
                crate::Arrival { subjects: &self.subjects, subject: &message.subject, event_type },
                message.payload.clone(),
            )
            .map_err(|error| Failure::Permanent(format!("undecodable {}: {error}", E::NAME)))
        };
        Arrived { message, stream_sequence, attempt, event }
    }

    /// Handles one arrived message and acks, retries or dead-letters it; returns its lane's key.
    async fn process<E: Incoming, H: Handler<E>>(
        &self,
        spec: &ConsumerSpec,
        handler: &H,
        (key, arrived): (String, Arrived<E>),
    ) -> String {
        let Arrived { message, stream_sequence, attempt, event } = arrived;
        if stream_sequence == 0 {
            warn!(consumer = spec.durable(), "message without JetStream metadata, ignored");
            return key;
        }
        let subject = message.subject.to_string();
        // A root: the message's own trace (from its headers) is its parent, never whatever span
        // the consuming task happens to be in.
        let span = info_span!(parent: None, "consume", consumer = spec.durable(), subject = %subject, stream_sequence, attempt);
        headers::adopt_trace_context(&span, message.headers.as_ref());

        let max_deliver = u64::from(spec.retry.max_deliver);
        let outcome = match event {
            Ok(event) => {
                handler
                    .handle(Delivery { event, subject: subject.clone(), stream_sequence, attempt })
                    .instrument(span.clone())
                    .await
            }
            Err(failure) => Err(failure),
        };

        let result = match outcome {
            Ok(()) => message.ack().instrument(span.clone()).await,
            Err(Failure::Retry(reason)) if attempt < max_deliver => {
                let delay = jittered(spec.retry.delay_after(attempt as u32));
                span.in_scope(
                    || warn!(consumer = spec.durable(), reason = %reason, attempt, "handler failed, will retry"),
                );
                message.ack_with(AckKind::Nak(Some(delay))).await
            }
            Err(Failure::Retry(reason) | Failure::Permanent(reason)) => {
                match self.send_to_dead_letters(spec, &message, stream_sequence, attempt, &reason).await {
                    Ok(()) => {
                        span.in_scope(|| warn!(consumer = spec.durable(), reason = %reason, attempt, "dead-lettered"));
                        message.ack_with(AckKind::Term).await
                    }
                    Err(error) => {
                        // Keep the message: it is redelivered after ack_wait and tried again.
                        span.in_scope(
                            || warn!(consumer = spec.durable(), error = %error_chain(&error), "dead-letter publish failed"),
                        );
                        Ok(())
                    }
                }
            }
        };
        if let Err(error) = result {
            // The server redelivers after ack_wait; handlers are idempotent.
            span.in_scope(|| warn!(consumer = spec.durable(), error = %error, "ack failed"));
        }
        key
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
            .map_err(|e| Error::nats(Operation::Publish, &subject, e))?
            .await
            .map_err(|e| Error::nats(Operation::Acknowledge, &subject, e))?;
        Ok(())
    }
}

/// A message taken from the consumer, decoded (or not) once.
struct Arrived<E> {
    message: Message,
    stream_sequence: u64,
    attempt: u64,
    event: Result<E, Failure>,
}

/// The messages in hand, one lane per order key: the head of each lane is being handled, the
/// rest wait behind it in stream order.
struct Lanes<E> {
    waiting: HashMap<String, VecDeque<Arrived<E>>>,
    /// Messages in hand, running or waiting: the bound on what is taken from the server.
    holding: usize,
}

impl<E> Default for Lanes<E> {
    fn default() -> Self {
        Self { waiting: HashMap::new(), holding: 0 }
    }
}

impl<E> Lanes<E> {
    /// Takes a message in; returns it if it may start now (its lane was empty).
    fn admit(&mut self, key: String, arrived: Arrived<E>) -> Option<(String, Arrived<E>)> {
        match self.waiting.get_mut(&key) {
            Some(lane) => {
                lane.push_back(arrived);
                None
            }
            None => {
                self.waiting.insert(key.clone(), VecDeque::new());
                Some((key, arrived))
            }
        }
    }

    /// The head of `key`'s lane finished; returns the next message of that lane, if any.
    fn finished(&mut self, key: String) -> Option<(String, Arrived<E>)> {
        let lane = self.waiting.get_mut(&key)?;
        match lane.pop_front() {
            Some(next) => Some((key, next)),
            None => {
                self.waiting.remove(&key);
                None
            }
        }
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
