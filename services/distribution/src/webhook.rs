//! Webhooks: everything a county's feed carries (story copies, and moderation's decisions on the
//! county's own stories) is also POSTed to the endpoint it registered, signed with HMAC-SHA256 over
//! the timestamp and the body, with `Bashu-Webhook-Event` saying which it is. Each county has its own durable consumer with
//! one message in flight, so deliveries to one endpoint stay in order and a slow or dead endpoint
//! delays nobody else. Failures are retried with exponential backoff and jitter (the bus's
//! retries), 4xx answers other than 408 and 429 are not retried, and what exhausts the budget is
//! dead-lettered with the reason.

use std::{collections::BTreeMap, time::Duration};

use bashu_bus::{Bus, Delivery, Event as _, Failure, FeedEvent, Retry, Subjects};

use crate::error::Error;
use bashu_proto::registry::v1::WebhookFormat;
use bashu_registry::RegistryView;
use hmac::{Hmac, Mac};
use prost::Message as _;
use sha2::Sha256;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The signing time header (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "Bashu-Webhook-Timestamp";
/// The signature header: `v1=<hex of HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub const SIGNATURE_HEADER: &str = "Bashu-Webhook-Signature";
/// The delivery's idempotency key (`feed.<county>.<origin>.<id>.<version>` for a story,
/// `decision.<origin>.<id>.<version>.<VERDICT>` for a decision): the same delivery can be POSTed
/// twice (a retry after a lost answer); receivers deduplicate by it.
pub const DELIVERY_ID_HEADER: &str = "Bashu-Delivery-Id";
/// What the POST carries: `story` (a story version for the county) or `decision` (moderation held
/// or rejected one of the county's own stories).
pub const EVENT_HEADER: &str = "Bashu-Webhook-Event";

/// The signature of a body at a time with a secret, as the header carries it.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Starts, follows and stops one sender per registered webhook until `shutdown`. The senders
/// run inside this future: if it is dropped, they stop.
pub(crate) async fn run(
    bus: Bus,
    registry: RegistryView,
    retry: Retry,
    timeout: Duration,
    egress: bashu_egress::Config,
    shutdown: CancellationToken,
) {
    // A webhook is posted to where it was registered, never redirected: a redirect would turn a
    // county's URL into a way to make Bashu reach something else.
    let client = match egress.client(timeout, "bashu-distribution webhooks", 0) {
        Ok(client) => client,
        Err(error) => {
            warn!(error = %error, "webhooks disabled: no HTTP client");
            return;
        }
    };
    let mut senders: BTreeMap<String, CancellationToken> = BTreeMap::new();
    let mut tasks = JoinSet::new();
    loop {
        let graph = registry.current();
        let registered: Vec<String> = graph.webhooks().map(|w| w.county.clone()).collect();
        for webhook in graph.webhooks() {
            let county = &webhook.county;
            if senders.contains_key(county) {
                continue;
            }
            // A webhook stored before registration times were kept starts from now.
            let since = webhook
                .registered_at
                .as_ref()
                .and_then(bashu_proto::time::to_system_time)
                .unwrap_or_else(std::time::SystemTime::now);
            let Ok(spec) = bus.stories().webhook_consumer(county, since, retry.clone()) else { continue };
            let stop = shutdown.child_token();
            senders.insert(county.clone(), stop.clone());
            let (bus, registry, client, county) = (bus.clone(), registry.clone(), client.clone(), county.clone());
            let egress = egress.clone();
            info!(county = %county, "webhook sender started");
            tasks.spawn(async move {
                let subjects = bus.subjects().clone();
                let handler =
                    |delivery: Delivery<FeedEvent>| send(&client, &egress, &registry, &county, &subjects, delivery);
                if let Err(error) = bus.consume(spec, handler, stop).await {
                    warn!(county = %county, error = %error, "webhook sender stopped");
                }
            });
        }
        let gone: Vec<String> = senders.keys().filter(|c| !registered.contains(c)).cloned().collect();
        for county in gone {
            if let Some(stop) = senders.remove(&county) {
                stop.cancel();
            }
            if let Err(error) = bus.stories().delete_webhook_consumer(&county).await {
                warn!(county = %county, error = %error, "webhook sender's consumer not removed");
            }
            info!(county = %county, "webhook sender stopped: unregistered");
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    while tasks.join_next().await.is_some() {}
}

async fn send(
    client: &reqwest::Client,
    egress: &bashu_egress::Config,
    registry: &RegistryView,
    county: &str,
    subjects: &Subjects,
    delivery: Delivery<FeedEvent>,
) -> Result<(), Failure> {
    let graph = registry.current();
    // Unregistered since: nothing to send to.
    let Some(webhook) = graph.webhook(county) else { return Ok(()) };
    // Registered before the policy was what it is now: the policy wins.
    if let Err(error) = egress.check_webhook_url(&webhook.url) {
        return Err(Error::WebhookRefused { url: redact(&webhook.url).to_owned(), reason: error.to_string() }.into());
    }
    let protobuf = webhook.format() == WebhookFormat::Protobuf;
    let (event, delivery_id, body, content_type) = match &delivery.event {
        FeedEvent::Story(copy) => {
            let story = copy.story.as_ref().ok_or_else(|| Error::Incomplete("delivery without a story"))?;
            let id = copy.route(subjects)?.msg_id;
            if protobuf {
                ("story", id, copy.encode_to_vec(), "application/x-protobuf")
            } else {
                let ninjs = bashu_ninjs::story_to_ninjs(
                    story,
                    Some(bashu_ninjs::Delivery { receiving_county: county, approvals: &copy.approvals }),
                );
                ("story", id, ninjs.to_string().into_bytes(), "application/ninjs+json")
            }
        }
        FeedEvent::Decision(notice) => {
            let decision =
                notice.decision.as_ref().ok_or_else(|| Error::Incomplete("decision notice without a decision"))?;
            if decision.story.is_none() {
                return Err(Error::Incomplete("decision without a story").into());
            }
            let id = notice.route(subjects)?.msg_id;
            if protobuf {
                ("decision", id, notice.encode_to_vec(), "application/x-protobuf")
            } else {
                // The proto3 JSON mapping of `DecisionNotice`, as the HTTP API writes it.
                let json = serde_json::to_vec(notice)
                    .map_err(|e| Error::Encode { what: "a decision notice", reason: e.to_string() })?;
                ("decision", id, json, "application/json")
            }
        }
    };
    let timestamp = bashu_proto::time::now().seconds;
    let response = client
        .post(&webhook.url)
        .header("Content-Type", content_type)
        .header(TIMESTAMP_HEADER, timestamp.to_string())
        .header(SIGNATURE_HEADER, signature(&webhook.secret, timestamp, &body))
        .header(DELIVERY_ID_HEADER, delivery_id)
        .header(EVENT_HEADER, event)
        .body(body)
        .send()
        .await;
    let outcome = match response {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(Error::WebhookAnswered { url: redact(&webhook.url).to_owned(), status: response.status() }),
        Err(error) => Err(Error::WebhookUnreachable {
            url: redact(&webhook.url).to_owned(),
            reason: bashu_bus::error_chain(&error.without_url()),
        }),
    };
    let outcome = outcome.map_err(Failure::from);
    let label = match &outcome {
        Ok(()) => "delivered",
        Err(Failure::Retry(_)) => "retry",
        Err(Failure::Permanent(_)) => "failed",
    };
    bashu_telemetry::metrics()
        .webhook_deliveries
        .get_or_create(&bashu_telemetry::metrics::WebhookLabels { outcome: label.to_owned() })
        .inc();
    outcome
}

/// The URL without its query, which may carry a token.
fn redact(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // HMAC-SHA256("key", "1.{}"), computed independently with Python's hmac module.
        assert_eq!(
            super::signature(b"key", 1, b"{}"),
            "v1=1ba6b8171186efc613e8bcc0cbdab2748f24984d7c5a84faa2637afa0e40d224"
        );
    }
}
