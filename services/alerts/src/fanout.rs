//! Fan-out: each accepted alert goes to every county it names, first live over core NATS (no
//! storage, no acknowledgement: milliseconds), then durably into each county's alert feed
//! (`ALERT_FEEDS`, idempotent per county and alert), which a county that was offline reads later.
//! The input is acknowledged only after every durable copy is stored.

use bashu_bus::{Bus, Delivery, Failure};
use bashu_proto::alert::v1::{AlertDelivery, AlertIssued};
use tracing::info;

pub(crate) fn deliveries(issued: &AlertIssued, counties: &[String], resend: u32) -> Vec<AlertDelivery> {
    let now = bashu_proto::time::now();
    counties
        .iter()
        .map(|county| AlertDelivery {
            alert: issued.alert.clone(),
            county: county.clone(),
            sent_at: Some(now),
            cap_xml: issued.cap_xml.clone(),
            alert_key: issued.alert_key.clone(),
            chain_key: issued.chain_key.clone(),
            resend,
        })
        .collect()
}

pub(crate) async fn fan_out(bus: Bus, delivery: Delivery<AlertIssued>) -> Result<(), Failure> {
    let issued = delivery.event;
    let deliveries = deliveries(&issued, &issued.counties, 0);
    bus.publish_live_all(&deliveries).await?;
    bus.publish_all(&deliveries).await?;
    info!(alert_key = %issued.alert_key, counties = deliveries.len(), "alert fanned out");
    Ok(())
}
