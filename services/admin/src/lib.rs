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
use bashu_registry::{Counties, RegistryView};
use tonic::{Request, Response, Status};

/// The admin service.
#[derive(Clone)]
pub struct Admin {
    counties: Arc<Counties>,
    sharing: RegistryView,
    board: AlertBoard,
    takedowns: TakedownBoard,
}

impl Admin {
    /// Builds the service over the registry, the alert board and the takedown board.
    pub fn build(counties: Arc<Counties>, sharing: RegistryView, board: AlertBoard, takedowns: TakedownBoard) -> Self {
        Self { counties, sharing, board, takedowns }
    }

    /// The gRPC `bashu.admin.v1.TakedownService`.
    pub fn takedown_service(&self) -> TakedownServiceServer<Self> {
        TakedownServiceServer::new(self.clone())
    }

    /// The gRPC `bashu.admin.v1.AlertBoardService`.
    pub fn alert_board_service(&self) -> AlertBoardServiceServer<Self> {
        AlertBoardServiceServer::new(self.clone())
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
        Ok(Response::new(ListAlliancesResponse { alliances: self.sharing.current().alliances().cloned().collect() }))
    }

    async fn list_partnerships(
        &self,
        _: Request<ListPartnershipsRequest>,
    ) -> Result<Response<ListPartnershipsResponse>, Status> {
        Ok(Response::new(ListPartnershipsResponse {
            partnerships: self.sharing.current().partnerships().cloned().collect(),
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
