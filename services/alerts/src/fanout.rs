//! Fan-out: each accepted alert goes to every county it names. The live copies (core NATS, no
//! storage, milliseconds) are sent by intake the moment the alert is stored; this consumer then
//! writes the durable copy for each county (`ALERT_FEEDS`, idempotent per county and alert),
//! which a county that was offline reads later, and acknowledges its input only when every copy
//! is stored. On a redelivery, when intake or an earlier fan-out may have died half-way, it sends
//! the live copies again too; counties deduplicate by `alert_key`.

use std::time::{Duration, SystemTime};

use bashu_bus::{Bus, Delivery, Failure};
use bashu_proto::alert::v1::{AlertDelivery, AlertIssued};
use tracing::info;

/// What every county gets, but for its own code (filled in per copy by the bus).
pub(crate) fn delivery(issued: AlertIssued, resend: u32) -> AlertDelivery {
    AlertDelivery {
        alert: issued.alert,
        county: String::new(),
        sent_at: Some(bashu_proto::time::now()),
        cap_xml: issued.cap_xml,
        alert_key: issued.alert_key,
        chain_key: issued.chain_key,
        resend,
    }
}

pub(crate) async fn fan_out(bus: Bus, durable_delay: Duration, delivery: Delivery<AlertIssued>) -> Result<(), Failure> {
    let mut issued = delivery.event;
    let accepted_at = issued.accepted_at.as_ref().and_then(bashu_proto::time::to_system_time);
    if let Some(wait) = accepted_at.and_then(|at| (at + durable_delay).duration_since(SystemTime::now()).ok()) {
        tokio::time::sleep(wait).await;
    }
    let counties = std::mem::take(&mut issued.counties);
    let template = self::delivery(issued, 0);
    if delivery.attempt > 1 {
        bus.alerts().publish_live(&template, &counties).await?;
    }
    bus.alerts().publish_durable(&template, &counties).await?;
    info!(alert_key = %template.alert_key, counties = counties.len(), "alert fanned out");
    Ok(())
}
