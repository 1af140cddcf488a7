//! What operators do to the bus: look at consumers, handle dead letters, read the ledgers over a
//! time range, and publish a stored event again under a fresh idempotency key.

use std::time::{Duration, SystemTime};

use async_nats::{
    HeaderMap,
    jetstream::consumer::{DeliverPolicy, pull::OrderedConfig},
};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use crate::{Bus, DEAD_LETTERS, DeadLetter, Error, Event, Incoming, Operation, Result, SubjectFilter, headers};

/// One stream's figures.
#[derive(Clone, Debug)]
pub struct StreamFigures {
    /// Its name without the isolation prefix (`STORIES`).
    pub name: String,
    /// Messages stored.
    pub messages: u64,
    /// Bytes stored.
    pub bytes: u64,
    /// Consumers on it.
    pub consumers: usize,
    /// When the newest message was stored.
    pub last_message_at: Option<SystemTime>,
}

/// One durable consumer's figures.
#[derive(Clone, Debug)]
pub struct ConsumerFigures {
    /// The stream's name without the isolation prefix.
    pub stream: String,
    /// The durable name (`feed-510703`, `moderation`).
    pub name: String,
    /// The county, for a county's own consumer (`feed-<county>`, `alerts-<county>`) or its
    /// webhook sender (`webhook-<county>`).
    pub county: Option<String>,
    /// Not yet delivered.
    pub pending: u64,
    /// Delivered, not yet acknowledged.
    pub ack_pending: u64,
    /// Delivered more than once, not yet acknowledged.
    pub redelivered: u64,
    /// When it last fetched.
    pub last_active: Option<SystemTime>,
    /// When it was created.
    pub created: SystemTime,
}

/// A message read back from a stream, with the time the stream stored it.
#[derive(Clone, Debug)]
pub struct Stored<E> {
    /// The decoded event.
    pub event: E,
    /// Its subject.
    pub subject: String,
    /// When the stream stored it.
    pub stored_at: SystemTime,
}

/// How long a range scan waits for its next message before it fails rather than end short.
const SCAN_STALL: Duration = Duration::from_secs(30);

/// Durable-name prefixes of the consumers that belong to one county.
const COUNTY_CONSUMERS: [&str; 3] = ["feed-", "alerts-", "webhook-"];

fn system_time(t: time::OffsetDateTime) -> SystemTime {
    SystemTime::from(t)
}

/// What operators (and tests) do to the bus besides publishing and consuming
/// ([`Bus::operations`]): figures, dead letters, reading the ledgers back, publishing again.
#[derive(Clone, Copy)]
pub struct Operations<'a> {
    bus: &'a Bus,
}

impl Bus {
    /// Operator tooling over this bus.
    pub fn operations(&self) -> Operations<'_> {
        Operations { bus: self }
    }
}

impl Operations<'_> {
    /// The JetStream stream handle of a stream named by its base name (`STORIES`, `FEEDS`, ...).
    pub async fn stream(&self, base: &str) -> Result<async_nats::jetstream::stream::Stream> {
        self.bus.stream(base).await
    }

    /// Every message in the dead-letter stream, oldest first.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>> {
        let mut stream = self.stream(DEAD_LETTERS).await?;
        let state = stream.info().await.map_err(|e| Error::nats(Operation::Read, DEAD_LETTERS, e))?.state.clone();
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

    /// Every stream of this deployment and every consumer on them.
    pub async fn health(&self) -> Result<(Vec<StreamFigures>, Vec<ConsumerFigures>)> {
        let mut streams = Vec::new();
        let mut consumers = Vec::new();
        for base in crate::topology::STREAMS {
            let stream = self.stream(base).await?;
            let info = stream.get_info().await.map_err(|e| Error::nats(Operation::Read, base, e))?;
            let last = info.state.last_timestamp;
            streams.push(StreamFigures {
                name: base.to_owned(),
                messages: info.state.messages,
                bytes: info.state.bytes,
                consumers: info.state.consumer_count,
                last_message_at: (info.state.messages > 0).then(|| system_time(last)),
            });
            let infos: Vec<_> =
                stream.consumers().try_collect().await.map_err(|e| Error::nats(Operation::Read, base, e))?;
            for info in infos {
                let county = COUNTY_CONSUMERS
                    .iter()
                    .find_map(|prefix| info.name.strip_prefix(prefix))
                    .filter(|code| code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()))
                    .map(str::to_owned);
                consumers.push(ConsumerFigures {
                    stream: base.to_owned(),
                    name: info.name.clone(),
                    county,
                    pending: info.num_pending,
                    ack_pending: info.num_ack_pending as u64,
                    redelivered: info.num_redelivered as u64,
                    last_active: info.delivered.last_active.map(system_time),
                    created: system_time(info.created),
                });
            }
        }
        consumers.sort_by(|a, b| (&a.stream, &a.name).cmp(&(&b.stream, &b.name)));
        Ok((streams, consumers))
    }

    /// Whether this deployment's bus is usable: connected, every stream there, and each of
    /// `consumers` created. The reason when it is not.
    pub async fn ready(&self, consumers: &[crate::ConsumerSpec]) -> std::result::Result<(), String> {
        if !self.bus.is_connected() {
            return Err("nats not connected".into());
        }
        for base in crate::topology::STREAMS {
            self.stream(base).await.map_err(|e| e.to_string())?;
        }
        for spec in consumers {
            let stream =
                self.bus.js.get_stream(spec.stream()).await.map_err(|e| format!("stream {}: {e}", spec.stream()))?;
            stream.consumer_info(spec.durable()).await.map_err(|e| format!("consumer {}: {e}", spec.durable()))?;
        }
        Ok(())
    }

    /// One dead letter by its sequence in the dead-letter stream.
    pub async fn dead_letter(&self, sequence: u64) -> Result<Option<DeadLetter>> {
        let stream = self.stream(DEAD_LETTERS).await?;
        match stream.get_raw_message(sequence).await {
            Ok(raw) => Ok(Some(DeadLetter::from_stored(sequence, &raw.headers, raw.payload, system_time(raw.time)))),
            Err(error) if error.kind() == async_nats::jetstream::stream::RawMessageErrorKind::NoMessageFound => {
                Ok(None)
            }
            Err(error) => Err(Error::nats(Operation::Read, format!("dead letter {sequence}"), error)),
        }
    }

    /// Removes a dead letter; false if there was none.
    pub async fn discard_dead_letter(&self, sequence: u64) -> Result<bool> {
        if self.dead_letter(sequence).await?.is_none() {
            return Ok(false);
        }
        let stream = self.stream(DEAD_LETTERS).await?;
        stream
            .delete_message(sequence)
            .await
            .map_err(|e| Error::nats(Operation::Delete, format!("dead letter {sequence}"), e))
    }

    /// Publishes a dead letter's original message again on its original subject, with its
    /// original headers and a new idempotency key, then removes the dead letter. Returns the
    /// subject, or `None` if there was no such dead letter.
    pub async fn requeue_dead_letter(&self, sequence: u64) -> Result<Option<String>> {
        let stream = self.stream(DEAD_LETTERS).await?;
        let raw = match stream.get_raw_message(sequence).await {
            Ok(raw) => raw,
            Err(error) if error.kind() == async_nats::jetstream::stream::RawMessageErrorKind::NoMessageFound => {
                return Ok(None);
            }
            Err(error) => return Err(Error::nats(Operation::Read, format!("dead letter {sequence}"), error)),
        };
        let subject = raw.headers.get(headers::DLQ_SUBJECT).map(|v| v.as_str().to_owned()).unwrap_or_default();
        if subject.is_empty() {
            return Err(Error::MissingField { event: "dead letter", field: headers::DLQ_SUBJECT });
        }
        let mut original = HeaderMap::new();
        for (name, values) in raw.headers.iter() {
            let name: &str = name.as_ref();
            if !name.starts_with("Bashu-Dlq-") && name != headers::MSG_ID {
                for value in values {
                    original.append(name, value.as_str());
                }
            }
        }
        // The original id may still be inside the duplicate window; a new one makes the
        // requeue count, and the sequence keeps a retried requeue from publishing twice.
        original
            .insert(headers::MSG_ID, format!("requeue.{}.{sequence}", self.bus.subjects.name(DEAD_LETTERS)).as_str());
        self.bus
            .js
            .publish_with_headers(subject.clone(), original, raw.payload.clone())
            .await
            .map_err(|e| Error::nats(Operation::Publish, &subject, e))?
            .await
            .map_err(|e| Error::nats(Operation::Acknowledge, &subject, e))?;
        stream
            .delete_message(sequence)
            .await
            .map_err(|e| Error::nats(Operation::Delete, format!("dead letter {sequence}"), e))?;
        Ok(Some(subject))
    }

    /// Every message of stream `base` under `filters` stored in `[from, to)`, oldest first,
    /// decoded. Messages that do not decode are skipped and counted in the second value.
    pub async fn read_range<E: Incoming>(
        &self,
        base: &str,
        filters: Vec<SubjectFilter>,
        from: SystemTime,
        to: SystemTime,
    ) -> Result<(Vec<Stored<E>>, u64)> {
        let mut found = Vec::new();
        let mut undecodable = 0;
        self.scan_range(
            base,
            filters,
            from,
            to,
            |message| {
                let event_type = message.headers.as_ref().and_then(|h| h.get(headers::EVENT_TYPE)).map(|v| v.as_str());
                match E::decode_incoming(
                    crate::Arrival { subjects: &self.bus.subjects, subject: &message.subject, event_type },
                    message.payload.clone(),
                ) {
                    Ok(event) => {
                        found.push(Stored { event, subject: message.subject.to_string(), stored_at: message.stored_at })
                    }
                    Err(_) => undecodable += 1,
                }
            },
            |_, _| {},
        )
        .await?;
        Ok((found, undecodable))
    }

    /// Walks stream `base` under `filters` from `from` until a message stored at or after `to`
    /// or the end, calling `each` for every message and `progress(scanned, total)` as it goes.
    pub async fn scan_range(
        &self,
        base: &str,
        filters: Vec<SubjectFilter>,
        from: SystemTime,
        to: SystemTime,
        mut each: impl FnMut(&RangeMessage),
        mut progress: impl FnMut(u64, u64),
    ) -> Result<()> {
        let stream = self.stream(base).await?;
        let consumer = stream
            .create_consumer(OrderedConfig {
                filter_subjects: filters.into_iter().map(String::from).collect(),
                deliver_policy: DeliverPolicy::ByStartTime { start_time: from.into() },
                ..Default::default()
            })
            .await
            .map_err(|e| Error::nats(Operation::Read, base, e))?;
        // The server counted what matches when it made the consumer: nothing means an empty range.
        // (Waiting for a quiet moment instead ended a busy server's scans early, silently.)
        if consumer.cached_info().num_pending == 0 {
            return Ok(());
        }
        let mut messages = consumer.messages().await.map_err(|e| Error::nats(Operation::Read, base, e))?;
        let mut scanned = 0u64;
        loop {
            let next = match tokio::time::timeout(SCAN_STALL, messages.next()).await {
                Ok(Some(next)) => next.map_err(|e| Error::nats(Operation::Read, base, e))?,
                Ok(None) => break,
                Err(_) => {
                    let stalled = format!("no message for {} s after {scanned}", SCAN_STALL.as_secs());
                    return Err(Error::nats(Operation::Read, base, stalled));
                }
            };
            let info = next.info().map_err(|e| Error::nats(Operation::Read, base, e))?;
            let stored_at = system_time(info.published);
            let pending = info.pending;
            if stored_at >= to {
                break;
            }
            scanned += 1;
            progress(scanned, scanned + pending);
            each(&RangeMessage {
                subject: next.subject.to_string(),
                headers: next.headers.clone(),
                payload: next.payload.clone(),
                stored_at,
            });
            if pending == 0 {
                break;
            }
        }
        Ok(())
    }

    /// The newest `limit` events of stream `base`, newest first (deleted messages skipped).
    pub async fn newest<E: Event>(&self, base: &str, limit: usize) -> Result<Vec<E>> {
        let mut stream = self.stream(base).await?;
        let state = stream.info().await.map_err(|e| Error::nats(Operation::Read, base, e))?.state.clone();
        let mut events = Vec::new();
        if state.messages == 0 {
            return Ok(events);
        }
        let mut sequence = state.last_sequence;
        while events.len() < limit && sequence >= state.first_sequence && sequence > 0 {
            if let Ok(raw) = stream.get_raw_message(sequence).await {
                events.push(E::decode(raw.payload).map_err(|e| Error::nats(Operation::Decode, E::TYPE, e))?);
            }
            sequence -= 1;
        }
        Ok(events)
    }

    /// Publishes a stored event again, to its own subject, under the idempotency key
    /// `<its key>.<again>`: a replay with the same `again` is stored once.
    pub async fn publish_again<E: Event>(&self, event: &E, again: &str, extra: &[(&str, &str)]) -> Result<bool> {
        let route = event.route(&self.bus.subjects)?;
        let mut headers = HeaderMap::new();
        headers.insert(headers::MSG_ID, format!("{}.{again}", route.msg_id).as_str());
        headers.insert(headers::EVENT_TYPE, E::TYPE);
        for (name, value) in extra {
            headers.insert(*name, *value);
        }
        headers::inject_trace_context(&mut headers);
        let ack = self
            .bus
            .js
            .publish_with_headers(route.subject.clone(), headers, Bytes::from(event.encode_to_vec()))
            .await
            .map_err(|e| Error::nats(Operation::Publish, &route.subject, e))?
            .await
            .map_err(|e| Error::nats(Operation::Acknowledge, &route.subject, e))?;
        Ok(!ack.duplicate)
    }

    /// How many dead letters wait in the dead-letter stream.
    pub async fn dead_letter_count(&self) -> Result<u64> {
        let mut stream = self.stream(DEAD_LETTERS).await?;
        Ok(stream.info().await.map_err(|e| Error::nats(Operation::Read, DEAD_LETTERS, e))?.state.messages)
    }

    /// Every story version published since `since`, oldest first, and then each one as it is
    /// published, for as long as the returned stream is read (an ordered consumer: it recreates
    /// itself after a reconnect or a gap). Undecodable messages and read errors are skipped.
    pub async fn follow_published(
        &self,
        since: SystemTime,
    ) -> Result<impl futures::Stream<Item = Stored<bashu_proto::story::v1::StoryPublished>> + Send + use<>> {
        use prost::Message as _;
        let stream = self.stream(crate::STORIES).await?;
        let consumer = stream
            .create_consumer(OrderedConfig {
                filter_subject: self.bus.subjects.all_story_published().into(),
                deliver_policy: DeliverPolicy::ByStartTime { start_time: since.into() },
                ..Default::default()
            })
            .await
            .map_err(|e| Error::nats(Operation::Read, "published stories", e))?;
        let messages = consumer.messages().await.map_err(|e| Error::nats(Operation::Read, "published stories", e))?;
        Ok(messages.filter_map(|message| async move {
            let message = message.ok()?;
            let stored_at = system_time(message.info().ok()?.published);
            let event = bashu_proto::story::v1::StoryPublished::decode(message.payload.clone()).ok()?;
            Some(Stored { event, subject: message.subject.to_string(), stored_at })
        }))
    }
}

/// A message read by a follower, with its place in the stream.
#[derive(Debug)]
pub struct Sequenced<E> {
    /// Its stream sequence: where a follower resumes after it.
    pub sequence: u64,
    /// The decoded event, or why it does not decode (a follower skips it, and moves on).
    pub event: std::result::Result<E, String>,
}

impl Bus {
    /// Every message of stream `base` under `filter` stored after sequence `after`, in order, and
    /// then each new one as it is stored, for as long as the returned stream is read: how a
    /// replica keeps a read model of its own (the content pool) and resumes from its own
    /// checkpoint. An ordered consumer: it recreates itself after a reconnect or a gap.
    pub(crate) async fn follow_after<E: Incoming>(
        &self,
        base: &str,
        filter: SubjectFilter,
        after: u64,
    ) -> Result<impl futures::Stream<Item = Result<Sequenced<E>>> + Send + use<E>> {
        let stream = self.stream(base).await?;
        let consumer = stream
            .create_consumer(OrderedConfig {
                filter_subject: filter.into(),
                deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: after + 1 },
                ..Default::default()
            })
            .await
            .map_err(|e| Error::nats(Operation::Read, base, e))?;
        let messages = consumer.messages().await.map_err(|e| Error::nats(Operation::Read, base, e))?;
        let subjects = self.subjects.clone();
        let base = base.to_owned();
        Ok(messages.map(move |message| {
            let message = message.map_err(|e| Error::nats(Operation::Read, &base, e))?;
            let sequence = message.info().map_err(|e| Error::nats(Operation::Read, &base, e))?.stream_sequence;
            let event_type = message.headers.as_ref().and_then(|h| h.get(headers::EVENT_TYPE)).map(|v| v.as_str());
            let event = E::decode_incoming(
                crate::Arrival { subjects: &subjects, subject: &message.subject, event_type },
                message.payload.clone(),
            );
            Ok(Sequenced { sequence, event })
        }))
    }
}

/// A message met by [`Operations::scan_range`].
#[derive(Debug)]
pub struct RangeMessage {
    /// Its subject.
    pub subject: String,
    /// Its headers.
    pub headers: Option<HeaderMap>,
    /// Its payload.
    pub payload: Bytes,
    /// When the stream stored it.
    pub stored_at: SystemTime,
}

impl DeadLetter {
    pub(crate) fn from_stored(sequence: u64, stored: &HeaderMap, payload: Bytes, dead_at: SystemTime) -> Self {
        let header = |name: &str| stored.get(name).map(|v| v.as_str().to_owned()).unwrap_or_default();
        DeadLetter {
            sequence,
            reason: header(headers::DLQ_REASON),
            consumer: header(headers::DLQ_CONSUMER),
            original_subject: header(headers::DLQ_SUBJECT),
            attempts: header(headers::DLQ_ATTEMPTS).parse().unwrap_or(0),
            event_type: header(headers::EVENT_TYPE),
            dead_at,
            payload,
        }
    }
}
