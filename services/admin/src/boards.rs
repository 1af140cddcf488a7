//! The read-mostly views other services keep, through their domains' contract crates: the alert
//! status board, takedowns, and moderation's rules (changed here, checked by the rules' own
//! parser).

use bashu_proto::admin::v1::{
    GetModerationRulesRequest, ListAlertChainsRequest, ListAlertChainsResponse, ListTakedownsRequest,
    ListTakedownsResponse, ModerationRules, alert_board_service_server::AlertBoardService,
    moderation_rules_service_server::ModerationRulesService, takedown_service_server::TakedownService,
};
use tonic::{Request, Response, Status};

use crate::{Admin, Error, audit::Who};

#[tonic::async_trait]
impl AlertBoardService for Admin {
    async fn list_alert_chains(
        &self,
        request: Request<ListAlertChainsRequest>,
    ) -> Result<Response<ListAlertChainsResponse>, Status> {
        let chains = self.board.chains(request.into_inner().active_only).await.map_err(Error::from)?;
        Ok(Response::new(ListAlertChainsResponse { chains }))
    }

    async fn get_alert_status(
        &self,
        request: Request<bashu_proto::alert::v1::GetAlertStatusRequest>,
    ) -> Result<Response<bashu_proto::alert::v1::AlertChain>, Status> {
        Ok(Response::new(self.board.status(&request.into_inner().alert_key).await.map_err(Error::from)?))
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
            .map_err(|e| Error::unavailable("takedowns unavailable", e))?;
        Ok(Response::new(ListTakedownsResponse { takedowns }))
    }
}

#[tonic::async_trait]
impl ModerationRulesService for Admin {
    async fn get_moderation_rules(
        &self,
        _: Request<GetModerationRulesRequest>,
    ) -> Result<Response<ModerationRules>, Status> {
        let json = bashu_moderation_core::stored_rules(&self.bus).await.map_err(Error::from)?;
        let json = json.unwrap_or_else(|| "{}".into());
        let effective_json =
            bashu_moderation_core::effective_rules(&json).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(Response::new(ModerationRules { json, effective_json }))
    }

    async fn set_moderation_rules(
        &self,
        request: Request<ModerationRules>,
    ) -> Result<Response<ModerationRules>, Status> {
        let who = Who::of(&request)?;
        let rules = request.into_inner();
        let before = bashu_moderation_core::stored_rules(&self.bus).await.map_err(Error::from)?;
        bashu_moderation_core::store_rules(&self.bus, &rules.json).await.map_err(Error::from)?;
        self.audit(&who, "moderation rules", before, Some(rules.json.clone())).await?;
        // Stored and checked: what is in force now, defaults included.
        let effective_json =
            bashu_moderation_core::effective_rules(&rules.json).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(Response::new(ModerationRules { json: rules.json, effective_json }))
    }
}
