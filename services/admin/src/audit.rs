//! The audit log: every change made through the admin API becomes an `AuditEvent` on the bus
//! (who, which method, what, when, before and after, secrets left out), and operators read it
//! back through `AuditService`.

use bashu_proto::admin::v1::{
    AuditEvent, ListAuditEventsRequest, ListAuditEventsResponse, audit_service_server::AuditService,
};
use bashu_registry::Caller;
use tonic::{Request, Response, Status};

use crate::{Admin, Error, guard::Called};

/// The caller of a request and the method they called, taken before the request is consumed.
pub(crate) struct Who {
    caller: Caller,
    method: String,
}

impl Who {
    /// The guard put both into the request; a request that did not pass the guard is refused.
    pub(crate) fn of<T>(request: &Request<T>) -> Result<Self, Status> {
        let caller = request.extensions().get::<Caller>().cloned();
        let method = request.extensions().get::<Called>().map(|c| c.0.clone());
        match (caller, method) {
            (Some(caller), Some(method)) => Ok(Self { caller, method }),
            _ => Err(Error::Unauthenticated("a staff bearer token is required".into()).into()),
        }
    }
}

/// An object as proto3 JSON for the audit log.
pub(crate) fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// A time as RFC 3339, as the JSON of a timestamp spells it.
pub(crate) fn rfc3339(time: std::time::SystemTime) -> String {
    serde_json::to_value(bashu_proto::time::from_system_time(time))
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn random_id() -> String {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    hex::encode(bytes)
}

impl Admin {
    /// Records one change. The change is already made: if the log cannot be written the caller
    /// is told so (UNAVAILABLE) rather than left thinking all went well.
    pub(crate) async fn audit(
        &self,
        who: &Who,
        target: impl Into<String>,
        before: Option<String>,
        after: Option<String>,
    ) -> Result<(), Error> {
        let event = AuditEvent {
            id: random_id(),
            actor: who.caller.name.clone(),
            role: who.caller.role.as_str_name().to_owned(),
            method: who.method.clone(),
            target: target.into(),
            at: Some(bashu_proto::time::now()),
            before_json: before.unwrap_or_default(),
            after_json: after.unwrap_or_default(),
            service: "admin".into(),
        };
        tracing::info!(actor = %event.actor, method = %event.method, target = %event.target, "admin change");
        self.bus.publish(&event).await.map(drop).map_err(|e| {
            tracing::error!(error = %e, method = %event.method, "audit event not recorded");
            Error::unavailable("the change was made but its audit event was not recorded", e)
        })
    }
}

#[tonic::async_trait]
impl AuditService for Admin {
    async fn list_audit_events(
        &self,
        request: Request<ListAuditEventsRequest>,
    ) -> Result<Response<ListAuditEventsResponse>, Status> {
        let limit = match request.into_inner().limit {
            0 => 100,
            n @ 1..=1000 => n as usize,
            _ => return Err(Error::Invalid("limit: at most 1000".into()).into()),
        };
        let events = self
            .bus
            .operations()
            .newest::<AuditEvent>(bashu_bus::AUDIT, limit)
            .await
            .map_err(|e| Error::unavailable("audit log unavailable", e))?;
        Ok(Response::new(ListAuditEventsResponse { events }))
    }
}
