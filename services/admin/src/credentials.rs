//! `CredentialService`: county tokens, staff tokens and desk keys. Secrets are answered once and
//! never stored, logged or audited.

use base64::Engine as _;
use bashu_proto::admin::v1::{
    DeskKey, IssueCountyTokenRequest, IssueCountyTokenResponse, IssueDeskKeyRequest, IssueDeskKeyResponse,
    IssueNatsUserRequest, IssueNatsUserResponse, IssueStaffTokenRequest, IssueStaffTokenResponse,
    ListCountyTokensRequest, ListCountyTokensResponse, ListDeskKeysRequest, ListDeskKeysResponse, ListNatsUsersRequest,
    ListNatsUsersResponse, ListStaffTokensRequest, ListStaffTokensResponse, RevokeCountyTokenRequest,
    RevokeCountyTokenResponse, RevokeDeskKeyRequest, RevokeDeskKeyResponse, RevokeNatsUserRequest,
    RevokeNatsUserResponse, RevokeStaffTokenRequest, RevokeStaffTokenResponse,
    credential_service_server::CredentialService,
};
use bashu_proto::registry::v1::NatsUserKind;
use tonic::{Request, Response, Status};

use crate::{
    Admin, Error,
    audit::{Who, json},
};

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl Admin {
    /// Gives a desk a new public key (empty: none, the desk cannot sign), audited.
    async fn replace_desk_key(&self, who: &Who, desk_id: &str, public_key: Vec<u8>) -> Result<(), Error> {
        let changed = self.store.set_desk_key(desk_id, public_key).await.map_err(|error| match error {
            bashu_registry::Error::Invalid { .. } => Error::NotFound(format!("no desk {desk_id:?}")),
            other => Error::from(other),
        })?;
        self.audit(who, format!("desk key {desk_id}"), changed.before.as_ref().map(json), Some(json(&changed.stored)))
            .await
    }
}

#[tonic::async_trait]
impl CredentialService for Admin {
    async fn issue_county_token(
        &self,
        request: Request<IssueCountyTokenRequest>,
    ) -> Result<Response<IssueCountyTokenResponse>, Status> {
        let who = Who::of(&request)?;
        let request = request.into_inner();
        if request.label.chars().count() > 100 {
            return Err(Error::Invalid("label: at most 100 characters".into()).into());
        }
        let issued = self.tokens.issue(&request.county, &request.label).await.map_err(Error::from)?;
        let target = format!("county token {} {}", issued.record.county, issued.record.id);
        self.audit(&who, target, None, Some(json(&issued.record))).await?;
        Ok(Response::new(IssueCountyTokenResponse { record: Some(issued.record), token: issued.token }))
    }

    async fn list_county_tokens(
        &self,
        request: Request<ListCountyTokensRequest>,
    ) -> Result<Response<ListCountyTokensResponse>, Status> {
        let tokens = self.tokens.list(&request.into_inner().county).await.map_err(Error::from)?;
        Ok(Response::new(ListCountyTokensResponse { tokens }))
    }

    async fn revoke_county_token(
        &self,
        request: Request<RevokeCountyTokenRequest>,
    ) -> Result<Response<RevokeCountyTokenResponse>, Status> {
        let who = Who::of(&request)?;
        let request = request.into_inner();
        if !self.tokens.revoke(&request.county, &request.id).await.map_err(Error::from)? {
            return Err(Error::NotFound(format!("county {} has no token {}", request.county, request.id)).into());
        }
        self.audit(&who, format!("county token {} {}", request.county, request.id), None, None).await?;
        Ok(Response::new(RevokeCountyTokenResponse {}))
    }

    async fn issue_staff_token(
        &self,
        request: Request<IssueStaffTokenRequest>,
    ) -> Result<Response<IssueStaffTokenResponse>, Status> {
        let who = Who::of(&request)?;
        let request = request.into_inner();
        if !request.desk_id.is_empty() && self.registry.current().desk(&request.desk_id).is_none() {
            return Err(Error::Invalid(format!("desk_id: no desk {:?}", request.desk_id)).into());
        }
        let issued = self
            .staff
            .issue(&request.name, request.role(), &request.review_levels, &request.desk_id)
            .await
            .map_err(Error::from)?;
        let target = format!("staff token {} ({})", issued.record.id, issued.record.name);
        self.audit(&who, target, None, Some(json(&issued.record))).await?;
        Ok(Response::new(IssueStaffTokenResponse { record: Some(issued.record), token: issued.token }))
    }

    async fn list_staff_tokens(
        &self,
        _: Request<ListStaffTokensRequest>,
    ) -> Result<Response<ListStaffTokensResponse>, Status> {
        let tokens = self.staff.list().await.map_err(Error::from)?;
        Ok(Response::new(ListStaffTokensResponse { tokens }))
    }

    async fn revoke_staff_token(
        &self,
        request: Request<RevokeStaffTokenRequest>,
    ) -> Result<Response<RevokeStaffTokenResponse>, Status> {
        let who = Who::of(&request)?;
        let id = request.into_inner().id;
        if !self.staff.revoke(&id).await.map_err(Error::from)? {
            return Err(Error::NotFound(format!("no staff token {id:?}")).into());
        }
        self.audit(&who, format!("staff token {id}"), None, None).await?;
        Ok(Response::new(RevokeStaffTokenResponse {}))
    }

    async fn issue_desk_key(
        &self,
        request: Request<IssueDeskKeyRequest>,
    ) -> Result<Response<IssueDeskKeyResponse>, Status> {
        let who = Who::of(&request)?;
        let desk_id = request.into_inner().desk_id;
        let (secret, public) = bashu_alerts_core::signature::new_key_pair();
        self.replace_desk_key(&who, &desk_id, public.to_vec()).await?;
        Ok(Response::new(IssueDeskKeyResponse { desk_id, secret_key: base64(&secret), public_key: base64(&public) }))
    }

    async fn list_desk_keys(&self, _: Request<ListDeskKeysRequest>) -> Result<Response<ListDeskKeysResponse>, Status> {
        let keys = self
            .registry
            .current()
            .desks()
            .map(|desk| DeskKey {
                desk_id: desk.id.clone(),
                public_key: if desk.public_key.is_empty() { String::new() } else { base64(&desk.public_key) },
                areas: desk.areas.clone(),
            })
            .collect();
        Ok(Response::new(ListDeskKeysResponse { keys }))
    }

    async fn revoke_desk_key(
        &self,
        request: Request<RevokeDeskKeyRequest>,
    ) -> Result<Response<RevokeDeskKeyResponse>, Status> {
        let who = Who::of(&request)?;
        let desk_id = request.into_inner().desk_id;
        self.replace_desk_key(&who, &desk_id, Vec::new()).await?;
        Ok(Response::new(RevokeDeskKeyResponse {}))
    }

    async fn issue_nats_user(
        &self,
        request: Request<IssueNatsUserRequest>,
    ) -> Result<Response<IssueNatsUserResponse>, Status> {
        let who = Who::of(&request)?;
        let request = request.into_inner();
        if request.label.chars().count() > 100 {
            return Err(Error::Invalid("label: at most 100 characters".into()).into());
        }
        let (kind, owner) = match (request.county.is_empty(), request.desk_id.is_empty()) {
            (false, true) => (NatsUserKind::County, request.county),
            (true, false) => {
                if self.registry.current().desk(&request.desk_id).is_none() {
                    return Err(Error::Invalid(format!("desk_id: no desk {:?}", request.desk_id)).into());
                }
                (NatsUserKind::Desk, request.desk_id)
            }
            _ => return Err(Error::Invalid("county, desk_id: give exactly one".into()).into()),
        };
        let issued = self.nats_users.issue(kind, &owner, &request.label).await.map_err(Error::from)?;
        let inbox_prefix = match kind {
            NatsUserKind::Desk => bashu_bus::desk_inbox(&issued.record.owner),
            _ => bashu_bus::county_inbox(&issued.record.owner),
        };
        let target = format!("NATS identity {} of {}", issued.record.public_key, issued.record.owner);
        self.audit(&who, target, None, Some(json(&issued.record))).await?;
        Ok(Response::new(IssueNatsUserResponse { record: Some(issued.record), seed: issued.seed, inbox_prefix }))
    }

    async fn list_nats_users(
        &self,
        _: Request<ListNatsUsersRequest>,
    ) -> Result<Response<ListNatsUsersResponse>, Status> {
        let users = self.nats_users.list().await.map_err(Error::from)?;
        Ok(Response::new(ListNatsUsersResponse { users }))
    }

    async fn revoke_nats_user(
        &self,
        request: Request<RevokeNatsUserRequest>,
    ) -> Result<Response<RevokeNatsUserResponse>, Status> {
        let who = Who::of(&request)?;
        let public_key = request.into_inner().public_key;
        let Some(record) = self.nats_users.revoke(&public_key).await.map_err(Error::from)? else {
            return Err(Error::NotFound(format!("no NATS identity {public_key:?}")).into());
        };
        let target = format!("NATS identity {public_key} of {}", record.owner);
        self.audit(&who, target, Some(json(&record)), None).await?;
        Ok(Response::new(RevokeNatsUserResponse {}))
    }
}
