//! Bashu admin: the operators' gRPC API. So far: reading the registry (counties with old-code
//! lookup, alliances, partnerships), the alert status board and the takedowns of withdrawn stories.

use std::sync::Arc;

use bashu_alerts::AlertBoard;
use bashu_distribution::TakedownBoard;
use bashu_proto::admin::v1::{
    GetCountyRequest, GetCountyResponse, ListAlertChainsRequest, ListAlertChainsResponse, ListAlliancesRequest,
    ListAlliancesResponse, ListCountiesRequest, ListCountiesResponse, ListPartnershipsRequest,
    ListPartnershipsResponse, ListTakedownsRequest, ListTakedownsResponse,
    alert_board_service_server::{AlertBoardService, AlertBoardServiceServer},
    registry_service_server::{RegistryService, RegistryServiceServer},
    takedown_service_server::{TakedownService, TakedownServiceServer},
};
use bashu_proto::admin::v1::{
    IssueCountyTokenRequest, IssueCountyTokenResponse, ListCountyTokensRequest, ListCountyTokensResponse,
    RevokeCountyTokenRequest, RevokeCountyTokenResponse,
    credential_service_server::{CredentialService, CredentialServiceServer},
};
use bashu_proto::{
    admin::v1::{
        DeleteWebhookRequest, DeleteWebhookResponse, GetModerationRulesRequest, ModerationRules,
        moderation_rules_service_server::{ModerationRulesService, ModerationRulesServiceServer},
    },
    registry::v1::{Alliance, Partnership, Subscription, Webhook},
};
use bashu_registry::{Counties, CountyTokens, RegistryStore, RegistryView};
use tonic::{Request, Response, Status};

/// A secret that never shows in logs or `Debug`.
#[derive(Clone, Default, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    fn digest(&self) -> [u8; 32] {
        bashu_registry::token_digest(&self.0)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "<unset>" } else { "<redacted>" })
    }
}

/// Admin's settings.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The bearer token that allows registry writes (`authorization: Bearer <token>`). Unset: no
    /// writes at all. Roles per caller come with the admin issue.
    pub operator_token: Secret,
}

/// The admin service.
#[derive(Clone)]
pub struct Admin {
    bus: bashu_bus::Bus,
    operator_token: Option<[u8; 32]>,
    store: RegistryStore,
    counties: Arc<Counties>,
    registry: RegistryView,
    board: AlertBoard,
    takedowns: TakedownBoard,
    tokens: CountyTokens,
}

impl Admin {
    /// Builds the service over the registry, the alert board and the takedown board.
    #[allow(
        clippy::too_many_arguments,
        reason = "each is a distinct handle the API serves; a builder would only rename the list"
    )]
    pub fn build(
        config: &Config,
        bus: bashu_bus::Bus,
        store: RegistryStore,
        counties: Arc<Counties>,
        registry: RegistryView,
        board: AlertBoard,
        takedowns: TakedownBoard,
        tokens: CountyTokens,
    ) -> Self {
        let operator_token = (!config.operator_token.0.is_empty()).then(|| config.operator_token.digest());
        Self { bus, operator_token, store, counties, registry, board, takedowns, tokens }
    }

    /// Refuses a write without the operator's token. Digests are compared, in constant time.
    fn require_operator<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let Some(expected) = self.operator_token else {
            return Err(Status::permission_denied(
                "registry writes are disabled: no admin.operator_token is configured",
            ));
        };
        let authorization = request.metadata().get("authorization").and_then(|v| v.to_str().ok());
        let presented = bashu_registry::bearer(authorization)
            .ok_or_else(|| Status::unauthenticated("an operator bearer token is required"))?;
        if bashu_registry::digests_equal(&expected, &bashu_registry::token_digest(presented)) {
            Ok(())
        } else {
            Err(Status::unauthenticated("unknown token"))
        }
    }

    /// The gRPC `bashu.admin.v1.ModerationRulesService`.
    pub fn moderation_rules_service(&self) -> ModerationRulesServiceServer<Self> {
        ModerationRulesServiceServer::new(self.clone())
    }

    /// The gRPC `bashu.admin.v1.TakedownService`.
    pub fn takedown_service(&self) -> TakedownServiceServer<Self> {
        TakedownServiceServer::new(self.clone())
    }

    /// The gRPC `bashu.admin.v1.AlertBoardService`.
    pub fn alert_board_service(&self) -> AlertBoardServiceServer<Self> {
        AlertBoardServiceServer::new(self.clone())
    }

    /// The gRPC `bashu.admin.v1.CredentialService`.
    pub fn credential_service(&self) -> CredentialServiceServer<Self> {
        CredentialServiceServer::new(self.clone())
    }

    /// The gRPC `bashu.admin.v1.RegistryService`.
    pub fn registry_service(&self) -> RegistryServiceServer<Self> {
        RegistryServiceServer::new(self.clone())
    }
}

/// Registry errors as gRPC statuses (the one place this mapping is made).
fn to_status(error: &bashu_registry::Error) -> Status {
    use bashu_registry::Error;
    match error {
        Error::MalformedCode { .. } | Error::Invalid { .. } => Status::invalid_argument(error.to_string()),
        Error::UnknownCode { .. } => Status::not_found(error.to_string()),
        Error::Store { .. } | Error::Bus(_) => Status::unavailable(error.to_string()),
        Error::BuiltinData { .. } | Error::Corrupt { .. } => Status::internal(error.to_string()),
    }
}

#[tonic::async_trait]
impl RegistryService for Admin {
    async fn get_county(&self, request: Request<GetCountyRequest>) -> Result<Response<GetCountyResponse>, Status> {
        let code = request.into_inner().code;
        let resolved = self.counties.resolve(&code).map_err(|e| to_status(&e))?;
        Ok(Response::new(GetCountyResponse {
            county: Some(resolved.county.clone()),
            resolved_from: resolved.resolved_from.unwrap_or_default().to_owned(),
        }))
    }

    async fn list_counties(
        &self,
        request: Request<ListCountiesRequest>,
    ) -> Result<Response<ListCountiesResponse>, Status> {
        let within = request.into_inner().within;
        if !(within.is_empty() || (matches!(within.len(), 2 | 4) && within.bytes().all(|b| b.is_ascii_digit()))) {
            return Err(Status::invalid_argument("within: empty, a 2-digit province or a 4-digit prefecture code"));
        }
        Ok(Response::new(ListCountiesResponse { counties: self.counties.within(&within).cloned().collect() }))
    }

    async fn list_alliances(
        &self,
        _: Request<ListAlliancesRequest>,
    ) -> Result<Response<ListAlliancesResponse>, Status> {
        Ok(Response::new(ListAlliancesResponse { alliances: self.registry.current().alliances().cloned().collect() }))
    }

    async fn put_alliance(&self, request: Request<Alliance>) -> Result<Response<Alliance>, Status> {
        self.require_operator(&request)?;
        self.store.put_alliance(request.into_inner()).await.map(Response::new).map_err(|e| to_status(&e))
    }

    async fn put_partnership(&self, request: Request<Partnership>) -> Result<Response<Partnership>, Status> {
        self.require_operator(&request)?;
        self.store.put_partnership(request.into_inner()).await.map(Response::new).map_err(|e| to_status(&e))
    }

    async fn put_subscription(&self, request: Request<Subscription>) -> Result<Response<Subscription>, Status> {
        self.require_operator(&request)?;
        self.store.put_subscription(request.into_inner()).await.map(Response::new).map_err(|e| to_status(&e))
    }

    async fn put_webhook(&self, request: Request<Webhook>) -> Result<Response<Webhook>, Status> {
        self.require_operator(&request)?;
        let stored = self.store.put_webhook(request.into_inner()).await.map_err(|e| to_status(&e))?;
        Ok(Response::new(Webhook { secret: Vec::new(), ..stored }))
    }

    async fn delete_webhook(
        &self,
        request: Request<DeleteWebhookRequest>,
    ) -> Result<Response<DeleteWebhookResponse>, Status> {
        self.require_operator(&request)?;
        self.store.delete_webhook(&request.into_inner().county).await.map_err(|e| to_status(&e))?;
        Ok(Response::new(DeleteWebhookResponse {}))
    }

    async fn list_partnerships(
        &self,
        _: Request<ListPartnershipsRequest>,
    ) -> Result<Response<ListPartnershipsResponse>, Status> {
        Ok(Response::new(ListPartnershipsResponse {
            partnerships: self.registry.current().partnerships().cloned().collect(),
        }))
    }
}

#[tonic::async_trait]
impl AlertBoardService for Admin {
    async fn list_alert_chains(
        &self,
        request: Request<ListAlertChainsRequest>,
    ) -> Result<Response<ListAlertChainsResponse>, Status> {
        let chains = self.board.chains(request.into_inner().active_only).await.map_err(|e| e.to_status())?;
        Ok(Response::new(ListAlertChainsResponse { chains }))
    }

    async fn get_alert_status(
        &self,
        request: Request<bashu_proto::alert::v1::GetAlertStatusRequest>,
    ) -> Result<Response<bashu_proto::alert::v1::AlertChain>, Status> {
        self.board.status(&request.into_inner().alert_key).await.map(Response::new).map_err(|e| e.to_status())
    }
}

#[tonic::async_trait]
impl TakedownService for Admin {
    async fn list_takedowns(
        &self,
        request: Request<ListTakedownsRequest>,
    ) -> Result<Response<ListTakedownsResponse>, Status> {
        let takedowns = self
            .takedowns
            .takedowns(request.into_inner().missing_only)
            .await
            .map_err(|e| Status::unavailable(format!("takedowns unavailable: {e}")))?;
        Ok(Response::new(ListTakedownsResponse { takedowns }))
    }
}

#[tonic::async_trait]
impl ModerationRulesService for Admin {
    async fn get_moderation_rules(
        &self,
        request: Request<GetModerationRulesRequest>,
    ) -> Result<Response<ModerationRules>, Status> {
        self.require_operator(&request)?;
        let json = bashu_moderation::stored_rules(&self.bus).await.map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(Response::new(ModerationRules { json: json.unwrap_or_else(|| "{}".into()) }))
    }

    async fn set_moderation_rules(
        &self,
        request: Request<ModerationRules>,
    ) -> Result<Response<ModerationRules>, Status> {
        self.require_operator(&request)?;
        let rules = request.into_inner();
        bashu_moderation::store_rules(&self.bus, &rules.json).await.map_err(|error| match error {
            bashu_moderation::Error::Rules(reason) => Status::invalid_argument(reason),
            other => Status::unavailable(other.to_string()),
        })?;
        Ok(Response::new(rules))
    }
}

#[tonic::async_trait]
impl CredentialService for Admin {
    async fn issue_county_token(
        &self,
        request: Request<IssueCountyTokenRequest>,
    ) -> Result<Response<IssueCountyTokenResponse>, Status> {
        self.require_operator(&request)?;
        let request = request.into_inner();
        if request.label.chars().count() > 100 {
            return Err(Status::invalid_argument("label: at most 100 characters"));
        }
        let issued = self.tokens.issue(&request.county, &request.label).await.map_err(|e| to_status(&e))?;
        tracing::info!(county = %issued.record.county, token_id = %issued.record.id, "county token issued");
        Ok(Response::new(IssueCountyTokenResponse { record: Some(issued.record), token: issued.token }))
    }

    async fn list_county_tokens(
        &self,
        request: Request<ListCountyTokensRequest>,
    ) -> Result<Response<ListCountyTokensResponse>, Status> {
        self.require_operator(&request)?;
        let tokens = self.tokens.list(&request.into_inner().county).await.map_err(|e| to_status(&e))?;
        Ok(Response::new(ListCountyTokensResponse { tokens }))
    }

    async fn revoke_county_token(
        &self,
        request: Request<RevokeCountyTokenRequest>,
    ) -> Result<Response<RevokeCountyTokenResponse>, Status> {
        self.require_operator(&request)?;
        let request = request.into_inner();
        if !self.tokens.revoke(&request.county, &request.id).await.map_err(|e| to_status(&e))? {
            return Err(Status::not_found(format!("county {} has no token {}", request.county, request.id)));
        }
        tracing::info!(county = %request.county, token_id = %request.id, "county token revoked");
        Ok(Response::new(RevokeCountyTokenResponse {}))
    }
}
