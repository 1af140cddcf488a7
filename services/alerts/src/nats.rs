//! The NATS front end for desks: a signed CAP document as a request on
//! `bashu.alert.submit.<desk>`, with the HTTP intake's three headers, answered with the HTTP
//! intake's JSON and its status code in a `Bashu-Status` header. nats-server lets a desk publish
//! only on its own subject (docs/security.md); the signature is checked all the same.

use futures::StreamExt;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::{Alerts, DESK_HEADER, Error, STATUS_HEADER, Submission};

/// Answers submissions until `shutdown`; instances share the work through a queue group.
pub(crate) async fn serve(alerts: Alerts, shutdown: CancellationToken) -> Result<(), bashu_bus::Error> {
    let bus = alerts.inner.bus.clone();
    let requests = bus.alerts().submissions().await?;
    // At most 16 submissions in hand at once: a burst waits in the subscription, not in memory.
    requests
        .take_until(shutdown.cancelled_owned())
        .for_each_concurrent(16, |request| {
            let alerts = alerts.clone();
            async move {
                let Some(reply) = request.reply.clone() else { return };
                let (status, body) = match submit(&alerts, &request).await {
                    Ok(accepted) => (if accepted.duplicate { 200 } else { 202 }, json!(accepted)),
                    Err(error) => (
                        crate::http::status_of(&error).as_u16(),
                        json!({"error": {"code": error.code(), "message": error.to_string(), "problems": error.problems()}}),
                    ),
                };
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(STATUS_HEADER, status.to_string().as_str());
                let body = serde_json::to_vec(&body).unwrap_or_default();
                if let Err(error) = alerts.inner.bus.client().publish_with_headers(reply, headers, body.into()).await {
                    tracing::warn!(error = %error, "an alert submission's answer was not sent");
                }
            }
        })
        .await;
    Ok(())
}

async fn submit(
    alerts: &Alerts,
    request: &async_nats::Message,
) -> crate::Result<bashu_proto::alert::v1::AlertAccepted> {
    let subjects = alerts.inner.bus.subjects();
    let desk_id = subjects
        .alert_submit_desk(&request.subject)
        .ok_or_else(|| Error::Unauthenticated("not a desk's submission subject".into()))?;
    let header = |name: &str| request.headers.as_ref().and_then(|h| h.get(name)).map(|v| v.as_str().trim());
    if header(DESK_HEADER).is_some_and(|named| named != desk_id) {
        return Err(Error::Unauthenticated(format!("{DESK_HEADER} names another desk than the subject")));
    }
    let (timestamp, signature) = crate::http::signing(header)?;
    let limit = alerts.inner.config.max_document_bytes;
    if request.payload.len() > limit {
        return Err(Error::TooLarge { limit });
    }
    alerts.submit(Submission { desk_id, timestamp, signature: &signature, cap_xml: &request.payload }, None).await
}
