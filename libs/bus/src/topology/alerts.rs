//! The alert path's streams, bucket and consumers, and its two ways of delivering a copy to
//! many counties (live and durable).

use std::time::Duration;

use async_nats::{
    HeaderMap,
    jetstream::{kv, stream},
};
use bashu_proto::alert::v1::AlertDelivery;
use bytes::Bytes;
use futures::future::try_join_all;
use prost::Message as _;

use super::{ConsumerSpec, DAY, Retry, stream_base};
use crate::{Bus, Error, Event, Operation, Result, headers};

/// Accepted alerts, receipts, acknowledgements and escalations: the alert ledger.
pub const ALERTS: &str = "ALERTS";
/// Every county's durable alert feed; one durable consumer per county.
pub const ALERT_FEEDS: &str = "ALERT_FEEDS";
/// Alert chains with every county's state, and intake's records (key-value bucket).
pub const ALERT_STATE_BUCKET: &str = "ALERT_STATE";

/// The field number of `AlertDelivery.county` (proto/bashu/alert/v1/alert.proto).
const ALERT_DELIVERY_COUNTY_FIELD: u32 = 2;

/// The alert path's part of the bus ([`Bus::alerts`]).
#[derive(Clone, Copy)]
pub struct AlertTopology<'a> {
    bus: &'a Bus,
}

impl Bus {
    /// The alert path's streams, bucket, consumers and deliveries.
    pub fn alerts(&self) -> AlertTopology<'_> {
        AlertTopology { bus: self }
    }
}

impl AlertTopology<'_> {
    pub(crate) fn stream_configs(&self) -> Vec<stream::Config> {
        let s = &self.bus.subjects;
        let base = stream_base(&self.bus.topology);
        vec![
            stream::Config {
                name: s.name(ALERTS),
                description: Some("accepted alerts, receipts, acknowledgements, escalations".into()),
                subjects: s.alert_tracking_subjects().into_iter().map(String::from).collect(),
                max_age: 400 * DAY,
                duplicate_window: DAY,
                ..base.clone()
            },
            stream::Config {
                name: s.name(ALERT_FEEDS),
                description: Some("every county's durable alert feed".into()),
                subjects: vec![s.all_alert_feeds().into()],
                max_age: 30 * DAY,
                // Longer than any redelivery of the fan-out's input.
                duplicate_window: Duration::from_secs(3600),
                ..base
            },
        ]
    }

    /// Alert chains and intake records.
    pub async fn state_bucket(&self) -> Result<kv::Store> {
        self.bus.bucket(ALERT_STATE_BUCKET, 1).await
    }

    /// The alert fan-out reads every accepted alert.
    pub fn fanout_consumer(&self, retry: Retry) -> ConsumerSpec {
        ConsumerSpec::new(self.bus, ALERTS, "alert-fanout", Some(self.bus.subjects.all_alert_issued()), retry)
    }

    /// The alert tracker reads everything in the alert ledger, in order.
    pub fn tracker_consumer(&self, retry: Retry) -> ConsumerSpec {
        ConsumerSpec::new(self.bus, ALERTS, "alert-tracker", None, retry)
    }

    /// A county's own durable alert consumer, `alerts-<code>`.
    pub fn county_consumer(&self, county: &str) -> Result<ConsumerSpec> {
        let feed = self.bus.subjects.alert_feed(county)?;
        Ok(ConsumerSpec::county(self.bus, ALERT_FEEDS, format!("alerts-{county}"), feed.into()))
    }

    /// Creates or updates the alert consumer of every given county, a few at a time.
    pub async fn provision_county_feeds<'a>(&self, counties: impl IntoIterator<Item = &'a str>) -> Result<()> {
        let specs = counties.into_iter().map(|c| self.county_consumer(c)).collect::<Result<Vec<_>>>()?;
        self.bus.provision_county_consumers(ALERT_FEEDS, specs).await
    }

    /// Every desk's NATS submissions (`bashu.alert.submit.*`), shared among the alert service's
    /// replicas through one queue group.
    pub async fn submissions(&self) -> Result<async_nats::Subscriber> {
        let subject = self.bus.subjects.all_alert_submit();
        self.bus
            .client
            .queue_subscribe(&subject, "alerts".into())
            .await
            .map_err(|e| Error::nats(Operation::Subscribe, &subject, e))
    }

    /// Sends one alert live to many counties, on each county's core NATS subject: no storage,
    /// no acknowledgement, the fast path. The delivery is encoded once and each copy appends its
    /// county's field (protobuf merges concatenated fields, the last one winning), so a
    /// region-wide alert costs one encode, not 220.
    pub async fn publish_live(&self, template: &AlertDelivery, counties: &[String]) -> Result<()> {
        let (encoded, headers) = alert_copy_parts(template);
        for county in counties {
            let subject = self.bus.subjects.alert_live(county)?;
            self.bus
                .client
                .publish_with_headers(&subject, headers.clone(), with_county(&encoded, county))
                .await
                .map_err(|e| Error::nats(Operation::Publish, &subject, e))?;
        }
        self.bus.client.flush().await.map_err(|e| Error::nats(Operation::Publish, "flush", e))
    }

    /// Stores one alert in each county's durable alert feed, all acknowledgements in flight at
    /// once, each copy idempotent (`alert.feed.<county>.<alert_key>.<resend>`).
    pub async fn publish_durable(&self, template: &AlertDelivery, counties: &[String]) -> Result<()> {
        let (encoded, headers) = alert_copy_parts(template);
        let mut pending = Vec::with_capacity(counties.len());
        for county in counties {
            let subject = self.bus.subjects.alert_feed(county)?;
            let mut headers = headers.clone();
            let msg_id = format!("alert.feed.{county}.{}.{}", template.alert_key, template.resend);
            headers.insert(headers::MSG_ID, msg_id.as_str());
            let ack = self
                .bus
                .js
                .publish_with_headers(&subject, headers, with_county(&encoded, county))
                .await
                .map_err(|e| Error::nats(Operation::Publish, &subject, e))?;
            pending.push(async move { ack.await.map_err(|e| Error::nats(Operation::Acknowledge, &subject, e)) });
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
