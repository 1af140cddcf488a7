//! Bashu's bus: every NATS subject, stream, consumer and header lives here, with the typed
//! publish (awaiting acks, idempotency keys, trace context) and the durable consume (ack after
//! success, bounded retries, dead letters) that every service uses. Services never format a
//! subject string themselves.

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
pub use error::{Error, Result};
pub use events::{
    AlertTrackingEvent, Arrival, CountyMessage, Event, FeedEvent, FromCounty, Incoming, Route, StoryLedgerEvent,
};
pub use follow::{Followed, follow_keys};
pub use operate::{ConsumerFigures, RangeMessage, Stored, StreamFigures};
pub use permissions::{Permissions, SERVICES, county_inbox, desk_inbox};
pub use subjects::Subjects;
pub use topology::{
    ALERT_FEEDS, ALERT_STATE_BUCKET, ALERTS, AUDIT, CREDENTIALS_BUCKET, ConsumerSpec, DEAD_LETTERS,
    DISTRIBUTION_BUCKET, FEEDS, INGEST_BUCKET, INGEST_FEEDS_BUCKET, MEDIA_STORE, MODERATION_BUCKET, REGISTRY_BUCKET,
    Retry, RetryConfig, STORIES, Topology,
};

use async_nats::{HeaderMap, jetstream};
use bashu_proto::alert::v1::AlertDelivery;
use bytes::Bytes;
use futures::future::try_join_all;
use prost::Message as _;

/// The field number of `AlertDelivery.county` (proto/bashu/alert/v1/alert.proto).
const ALERT_DELIVERY_COUNTY_FIELD: u32 = 2;

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
            .map_err(|e| Error::nats(format!("parse server list {url}"), e))?;
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
        let client = options.connect(servers).await.map_err(|e| Error::nats(format!("connect to {url}"), e))?;
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
                .map_err(|e| Error::nats(format!("publish to {}", route.subject), e))?;
            let latency = latency.clone();
            pending.push(async move {
                let acked = ack.await;
                latency.observe(started.elapsed().as_secs_f64());
                acked
                    .map(|ack| Published { sequence: ack.sequence, duplicate: ack.duplicate })
                    .map_err(|e| Error::nats(format!("ack of {}", route.subject), e))
            });
        }
        try_join_all(pending).await
    }

    /// Sends one alert live to many counties, on each county's core NATS subject: no storage,
    /// no acknowledgement, the fast path. The delivery is encoded once and each copy appends its
    /// county's field (protobuf merges concatenated fields, the last one winning), so a
    /// region-wide alert costs one encode, not 220.
    pub async fn publish_alert_live(&self, template: &AlertDelivery, counties: &[String]) -> Result<()> {
        let (encoded, headers) = alert_copy_parts(template);
        for county in counties {
            let subject = self.subjects.alert_live(county)?;
            self.client
                .publish_with_headers(subject.clone(), headers.clone(), with_county(&encoded, county))
                .await
                .map_err(|e| Error::nats(format!("publish to {subject}"), e))?;
        }
        self.client.flush().await.map_err(|e| Error::nats("flush", e))
    }

    /// Stores one alert in each county's durable alert feed, all acknowledgements in flight at
    /// once, each copy idempotent (`alert.feed.<county>.<alert_key>.<resend>`).
    pub async fn publish_alert_durable(&self, template: &AlertDelivery, counties: &[String]) -> Result<()> {
        let (encoded, headers) = alert_copy_parts(template);
        let mut pending = Vec::with_capacity(counties.len());
        for county in counties {
            let subject = self.subjects.alert_feed(county)?;
            let mut headers = headers.clone();
            let msg_id = format!("alert.feed.{county}.{}.{}", template.alert_key, template.resend);
            headers.insert(headers::MSG_ID, msg_id.as_str());
            let ack = self
                .js
                .publish_with_headers(subject.clone(), headers, with_county(&encoded, county))
                .await
                .map_err(|e| Error::nats(format!("publish to {subject}"), e))?;
            pending.push(async move { ack.await.map_err(|e| Error::nats(format!("ack of {subject}"), e)) });
        }
        try_join_all(pending).await.map(drop)
    }
}

/// The encoded delivery without a county, and the headers every copy carries.
fn alert_copy_parts(template: &AlertDelivery) -> (Vec<u8>, HeaderMap) {
    let mut common = template.clone();
    common.county.clear();
    let mut headers = HeaderMap::new();
    headers.insert(headers::EVENT_TYPE, AlertDelivery::TYPE);
    headers::inject_trace_context(&mut headers);
    (common.encode_to_vec(), headers)
}

/// An encoded `AlertDelivery` without a county, plus that county's field.
fn with_county(encoded: &[u8], county: &str) -> Bytes {
    let mut payload = Vec::with_capacity(encoded.len() + county.len() + 2);
    payload.extend_from_slice(encoded);
    prost::encoding::string::encode(ALERT_DELIVERY_COUNTY_FIELD, &county.to_owned(), &mut payload);
    payload.into()
}

#[cfg(test)]
mod tests {
    use bashu_proto::alert::v1::{Alert, AlertDelivery};
    use prost::Message as _;

    #[test]
    fn a_copy_with_an_appended_county_decodes_as_the_whole_delivery() {
        let delivery = AlertDelivery {
            alert: Some(Alert { identifier: "X-1".into(), ..Default::default() }),
            cap_xml: b"<alert/>".to_vec(),
            alert_key: "k".into(),
            resend: 1,
            ..Default::default()
        };
        let copy = super::with_county(&delivery.encode_to_vec(), "500153");
        assert_eq!(AlertDelivery::decode(copy).unwrap(), AlertDelivery { county: "500153".into(), ..delivery });
    }
}
