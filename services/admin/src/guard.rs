//! Who may call what: one table of every guarded gRPC method and the role it needs, and the
//! tower service that checks a caller's bearer token against it before the method runs. The
//! checked [`Caller`] and the method travel to the handler in the request's extensions.

use std::{
    convert::Infallible,
    task::{Context, Poll},
};

use crate::Error;
use bashu_proto::registry::v1::StaffRole;
use bashu_registry::{Caller, StaffTokens};
use tonic::{
    Status,
    body::Body,
    codegen::{BoxFuture, Service, http},
    server::NamedService,
};

/// The least a caller must be to call a method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Any staff token: viewer, desk officer, reviewer or operator.
    Viewer,
    /// A reviewer (levels are checked by the review desk itself).
    Reviewer,
    /// An operator.
    Operator,
}

impl Need {
    /// Whether a caller with `role` may call a method needing this.
    pub fn allows(self, role: StaffRole) -> bool {
        match self {
            Need::Viewer => role != StaffRole::Unspecified,
            Need::Reviewer => role == StaffRole::Reviewer,
            Need::Operator => role == StaffRole::Operator,
        }
    }
}

/// Every guarded method and what it needs. A method missing here is refused to everyone.
pub const METHOD_ROLES: &[(&str, Need)] = &[
    ("/bashu.admin.v1.RegistryService/GetCounty", Need::Viewer),
    ("/bashu.admin.v1.RegistryService/ListCounties", Need::Viewer),
    ("/bashu.admin.v1.RegistryService/ListAlliances", Need::Viewer),
    ("/bashu.admin.v1.RegistryService/ListPartnerships", Need::Viewer),
    ("/bashu.admin.v1.RegistryService/ListDesks", Need::Viewer),
    ("/bashu.admin.v1.RegistryService/GetCountySettings", Need::Viewer),
    ("/bashu.admin.v1.RegistryService/PutAlliance", Need::Operator),
    ("/bashu.admin.v1.RegistryService/DeleteAlliance", Need::Operator),
    ("/bashu.admin.v1.RegistryService/PutPartnership", Need::Operator),
    ("/bashu.admin.v1.RegistryService/DeletePartnership", Need::Operator),
    ("/bashu.admin.v1.RegistryService/PutSubscription", Need::Operator),
    ("/bashu.admin.v1.RegistryService/PutWebhook", Need::Operator),
    ("/bashu.admin.v1.RegistryService/DeleteWebhook", Need::Operator),
    ("/bashu.admin.v1.RegistryService/PutDesk", Need::Operator),
    ("/bashu.admin.v1.RegistryService/DeleteDesk", Need::Operator),
    ("/bashu.admin.v1.CredentialService/IssueCountyToken", Need::Operator),
    ("/bashu.admin.v1.CredentialService/ListCountyTokens", Need::Operator),
    ("/bashu.admin.v1.CredentialService/RevokeCountyToken", Need::Operator),
    ("/bashu.admin.v1.CredentialService/IssueStaffToken", Need::Operator),
    ("/bashu.admin.v1.CredentialService/ListStaffTokens", Need::Operator),
    ("/bashu.admin.v1.CredentialService/RevokeStaffToken", Need::Operator),
    ("/bashu.admin.v1.CredentialService/IssueDeskKey", Need::Operator),
    ("/bashu.admin.v1.CredentialService/ListDeskKeys", Need::Operator),
    ("/bashu.admin.v1.CredentialService/RevokeDeskKey", Need::Operator),
    ("/bashu.admin.v1.CredentialService/IssueNatsUser", Need::Operator),
    ("/bashu.admin.v1.CredentialService/ListNatsUsers", Need::Operator),
    ("/bashu.admin.v1.CredentialService/RevokeNatsUser", Need::Operator),
    ("/bashu.admin.v1.AlertBoardService/ListAlertChains", Need::Viewer),
    ("/bashu.admin.v1.AlertBoardService/GetAlertStatus", Need::Viewer),
    ("/bashu.admin.v1.TakedownService/ListTakedowns", Need::Viewer),
    ("/bashu.admin.v1.ModerationRulesService/GetModerationRules", Need::Operator),
    ("/bashu.admin.v1.ModerationRulesService/SetModerationRules", Need::Operator),
    ("/bashu.admin.v1.BusHealthService/GetBusHealth", Need::Viewer),
    ("/bashu.admin.v1.DeadLetterService/ListDeadLetters", Need::Viewer),
    ("/bashu.admin.v1.DeadLetterService/GetDeadLetter", Need::Operator),
    ("/bashu.admin.v1.DeadLetterService/RequeueDeadLetter", Need::Operator),
    ("/bashu.admin.v1.DeadLetterService/DiscardDeadLetter", Need::Operator),
    ("/bashu.admin.v1.ReplayService/Replay", Need::Operator),
    ("/bashu.admin.v1.ReportService/GetCollaborationReport", Need::Viewer),
    ("/bashu.admin.v1.AuditService/ListAuditEvents", Need::Operator),
    ("/bashu.admin.v1.PoolIndexService/RebuildPoolIndex", Need::Operator),
    ("/bashu.moderation.v1.ReviewService/ListQueue", Need::Viewer),
    ("/bashu.moderation.v1.ReviewService/ClaimStory", Need::Reviewer),
    ("/bashu.moderation.v1.ReviewService/ApproveStory", Need::Reviewer),
    ("/bashu.moderation.v1.ReviewService/RejectStory", Need::Reviewer),
];

/// What a method needs, if it is guarded at all.
pub fn need_of(method: &str) -> Option<Need> {
    METHOD_ROLES.iter().find(|(path, _)| *path == method).map(|(_, need)| *need)
}

/// The method a request called, beside its [`Caller`] in the request's extensions.
#[derive(Clone, Debug)]
pub struct Called(pub String);

/// Wraps gRPC services so that every call is checked against [`METHOD_ROLES`].
#[derive(Clone)]
pub struct Guard {
    staff: StaffTokens,
}

impl Guard {
    /// A guard checking tokens against `staff`.
    pub fn new(staff: StaffTokens) -> Self {
        Self { staff }
    }

    /// `service` behind this guard.
    pub fn wrap<S>(&self, service: S) -> Guarded<S> {
        Guarded { inner: service, staff: self.staff.clone() }
    }
}

/// A gRPC service behind the [`Guard`].
#[derive(Clone)]
pub struct Guarded<S> {
    inner: S,
    staff: StaffTokens,
}

impl<S: NamedService> NamedService for Guarded<S> {
    const NAME: &'static str = S::NAME;
}

async fn admit(staff: &StaffTokens, method: &str, authorization: Option<&str>) -> Result<Caller, Status> {
    let need = need_of(method).ok_or_else(|| Error::Forbidden(format!("{method} is not open to anyone")))?;
    let token = bashu_registry::bearer(authorization)
        .ok_or_else(|| Error::Unauthenticated("a staff bearer token is required (authorization: Bearer …)".into()))?;
    let caller = staff
        .authenticate(token)
        .await
        .map_err(|e| Error::unavailable("credentials unavailable", e))?
        .map_err(|_| Error::Unauthenticated("unknown or revoked token".into()))?;
    if !need.allows(caller.role) {
        return Err(Error::Forbidden(format!(
            "{} may not call {method}: it needs {}",
            caller.role.as_str_name(),
            match need {
                Need::Viewer => "any staff role",
                Need::Reviewer => "a reviewer",
                Need::Operator => "an operator",
            }
        ))
        .into());
    }
    Ok(caller)
}

impl<S> Service<http::Request<Body>> for Guarded<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        // The clone that was polled ready is the one that serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let staff = self.staff.clone();
        let method = request.uri().path().to_owned();
        let authorization =
            request.headers().get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
        Box::pin(async move {
            match admit(&staff, &method, authorization.as_deref()).await {
                Ok(caller) => {
                    request.extensions_mut().insert(caller);
                    request.extensions_mut().insert(Called(method));
                    inner.call(request).await
                }
                Err(status) => Ok(status.into_http()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    /// docs/security.md lists every guarded method with the role it needs, exactly as here.
    #[test]
    fn the_documented_roles_are_the_enforced_ones() {
        let page = include_str!("../../../docs/security.md");
        let documented: Vec<(String, String)> = page
            .lines()
            .filter_map(|line| line.strip_prefix("| `bashu."))
            .filter_map(|rest| {
                let (method, need) = rest.split_once("` | ")?;
                Some((format!("/bashu.{method}"), need.trim_end_matches(" |").to_owned()))
            })
            .collect();
        let enforced: Vec<(String, String)> = METHOD_ROLES
            .iter()
            .map(|(method, need)| {
                let need = match need {
                    Need::Viewer => "any staff token",
                    Need::Reviewer => "reviewer (at their levels)",
                    Need::Operator => "operator",
                };
                ((*method).to_owned(), need.to_owned())
            })
            .collect();
        assert_eq!(documented, enforced);
    }

    use super::*;

    #[test]
    fn operators_may_do_everything_and_viewers_only_read() {
        for (method, need) in METHOD_ROLES {
            assert!(need.allows(StaffRole::Operator) || *need == Need::Reviewer, "{method}");
            assert_eq!(need.allows(StaffRole::Viewer), *need == Need::Viewer, "{method}");
            assert!(!need.allows(StaffRole::Unspecified), "{method}");
        }
    }

    #[test]
    fn every_method_is_listed_once() {
        let mut paths: Vec<_> = METHOD_ROLES.iter().map(|(p, _)| *p).collect();
        paths.sort_unstable();
        let before = paths.len();
        paths.dedup();
        assert_eq!(before, paths.len());
        assert_eq!(need_of("/bashu.admin.v1.Nope/Nothing"), None);
    }
}
