//! Bashu's bus: every NATS subject, stream, consumer and header lives here, with the typed
//! publish (awaiting acks, idempotency keys, trace context) and the durable consume (ack after
//! success, bounded retries, dead letters) that every service uses. Services never format a
//! subject string themselves.
//!
//! [`Bus`] itself is the transport: connect, publish, consume. Each domain's streams, buckets
//! and consumers hang off it ([`Bus::stories`], [`Bus::alerts`], [`Bus::coverage`],
//! [`Bus::registry`]), and the
//! operators' tools are apart ([`Bus::operations`]).

mod consume;
mod error;
mod events;
mod follow;
pub mod headers;
mod inspect;
mod operate;
mod permissions;
mod subjects;
mod topology;

pub use async_nats;
pub use consume::{DeadLetter, Delivery, Failure, Handler, error_chain};
pub use error::{Error, Operation, Result};
pub use events::{
    AlertTrackingEvent, Arrival, ChannelEvent, ContributionSource, CountyMessage, Event, FeedEvent, FromCounty,
    Incoming, Route, StoryLedgerEvent,
};
pub use follow::{Followed, follow_keys};
pub use operate::{ConsumerFigures, Operations, RangeMessage, Sequenced, Stored, StreamFigures};
pub use permissions::{Permissions, SERVICES, county_inbox, desk_inbox};
pub use subjects::{Subject, SubjectFilter, Subjects};
pub use topology::{
    ALERT_FEEDS, ALERT_STATE_BUCKET, ALERTS, AUDIT, AlertTopology, CHANNELS, COVERAGE, COVERAGE_BUCKET,
    CREDENTIALS_BUCKET, ConsumerSpec, CoverageTopology, DEAD_LETTERS, DISTRIBUTION_BUCKET, FEEDS, INGEST_BUCKET,
    INGEST_FEEDS_BUCKET, MEDIA_STORE, MODERATION_BUCKET, REGISTRY_BUCKET, RegistryTopology, Retry, RetryConfig,
    STORIES, StoryTopology, Topology,
};

use async_nats::{HeaderMap, jetstream};
use bytes::Bytes;
use futures::future::try_join_all;

/// A connection to the bus with its names. Cheap to clone.
#[derive(Clone)]
pub struct Bus {
    client: async_nats::Client,
    js: jetstream::Context,
    subjects: Subjects,
    topology: Topology,
}

/// How a client proves who it is to nats-server, and how it checks the server.
#[derive(Clone, Default)]
pub struct Credentials {
    /// The identity's nkey seed (`SU…`); none: connect without one (a server without
    /// authorization).
    pub nkey_seed: Option<String>,
    /// A CA certificate (PEM) to check the server's TLS certificate against; set: TLS required.
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// The inbox prefix a county or desk identity must use ([`county_inbox`]); none: `_INBOX`.
    pub inbox_prefix: Option<String>,
}

impl std::fmt::Debug for Credentials {
    // The seed is a secret: never in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("nkey_seed", &self.nkey_seed.as_ref().map(|_| "<redacted>"))
            .field("tls_ca_file", &self.tls_ca_file)
            .field("inbox_prefix", &self.inbox_prefix)
            .finish()
    }
}

/// What JetStream said about a stored publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// The stream's sequence number of the message.
    pub sequence: u64,
    /// True when the `Nats-Msg-Id` had been seen inside the duplicate window: nothing new stored.
    pub duplicate: bool,
}

impl Bus {
    /// A bus over an established connection.
    pub fn new(client: async_nats::Client, subjects: Subjects, topology: Topology) -> Self {
        let js = jetstream::new(client.clone());
        Self { client, js, subjects, topology }
    }

    /// Connects to `url` (one or several comma-separated servers), retrying until the server is
    /// up and reconnecting forever after, as a service should.
    pub async fn connect(url: &str, name: &str, subjects: Subjects, topology: Topology) -> Result<Self> {
        Self::connect_as(url, name, &Credentials::default(), subjects, topology).await
    }

    /// As [`Bus::connect`], proving who it is with `credentials` (and checking the server's TLS
    /// certificate against their CA, when given).
    pub async fn connect_as(
        url: &str,
        name: &str,
        credentials: &Credentials,
        subjects: Subjects,
        topology: Topology,
    ) -> Result<Self> {
        let servers = url
            .split(',')
            .map(|server| server.trim().parse::<async_nats::ServerAddr>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::nats(Operation::Connect, url, e))?;
        let mut options = async_nats::ConnectOptions::new().name(name).retry_on_initial_connect();
        if let Some(seed) = &credentials.nkey_seed {
            options = options.nkey(seed.clone());
        }
        if let Some(prefix) = &credentials.inbox_prefix {
            options = options.custom_inbox_prefix(prefix);
        }
        if let Some(ca) = &credentials.tls_ca_file {
            options = options.require_tls(true).add_root_certificates(ca.clone());
        }
        let client = options.connect(servers).await.map_err(|e| Error::nats(Operation::Connect, url, e))?;
        Ok(Self::new(client, subjects, topology))
    }

    /// The names on this bus.
    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    /// The underlying core NATS client.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The underlying JetStream context.
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// True while the client is connected to a server.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Publishes one event and waits for JetStream to store it.
    pub async fn publish<E: Event>(&self, event: &E) -> Result<Published> {
        let mut published = self.publish_all(std::slice::from_ref(event)).await?;
        Ok(published.remove(0))
    }

    /// Publishes every event with all acknowledgements in flight at once, then waits for all of
    /// them. Returns in the order given; fails if any publish failed (re-publishing the whole set
    /// is harmless: each event carries its idempotency key).
    pub async fn publish_all<E: Event>(&self, events: &[E]) -> Result<Vec<Published>> {
        let mut pending = Vec::with_capacity(events.len());
        let started = std::time::Instant::now();
        let latency = bashu_telemetry::metrics()
            .publish_ack_seconds
            .get_or_create(&bashu_telemetry::metrics::EventLabels { event: E::TYPE.to_owned() })
            .clone();
        for event in events {
            let route = event.route(&self.subjects)?;
            let mut headers = HeaderMap::new();
            headers.insert(headers::MSG_ID, route.msg_id.as_str());
            headers.insert(headers::EVENT_TYPE, E::TYPE);
            headers::inject_trace_context(&mut headers);
            let payload = Bytes::from(event.encode_to_vec());
            let ack = self
                .js
                .publish_with_headers(route.subject.clone(), headers, payload)
                .await
                .map_err(|e| Error::nats(Operation::Publish, &route.subject, e))?;
            let latency = latency.clone();
            pending.push(async move {
                let acked = ack.await;
                latency.observe(started.elapsed().as_secs_f64());
                acked
                    .map(|ack| Published { sequence: ack.sequence, duplicate: ack.duplicate })
                    .map_err(|e| Error::nats(Operation::Acknowledge, &route.subject, e))
            });
        }
        try_join_all(pending).await
    }
}
