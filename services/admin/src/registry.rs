//! `RegistryService`: counties, alliances, partnerships, desks, subscriptions and webhooks.
//! Every write goes through the registry store's checks and is audited.

use bashu_proto::{
    admin::v1::{
        DeleteAllianceRequest, DeleteAllianceResponse, DeleteDeskRequest, DeleteDeskResponse, DeletePartnershipRequest,
        DeletePartnershipResponse, DeleteWebhookRequest, DeleteWebhookResponse, GetCountyRequest, GetCountyResponse,
        GetCountySettingsRequest, GetCountySettingsResponse, ListAlliancesRequest, ListAlliancesResponse,
        ListCountiesRequest, ListCountiesResponse, ListDesksRequest, ListDesksResponse, ListPartnershipsRequest,
        ListPartnershipsResponse, registry_service_server::RegistryService,
    },
    registry::v1::{Alliance, Desk, Partnership, Subscription, Webhook},
};
use bashu_registry::Replaced;
use tonic::{Request, Response, Status};

use crate::{
    Admin, Error,
    audit::{Who, json},
};

/// A webhook as the audit log and the API show it: without its key.
fn without_secret(webhook: &Webhook) -> Webhook {
    Webhook { secret: Vec::new(), ..webhook.clone() }
}

#[tonic::async_trait]
impl RegistryService for Admin {
    async fn get_county(&self, request: Request<GetCountyRequest>) -> Result<Response<GetCountyResponse>, Status> {
        let code = request.into_inner().code;
        let resolved = self.counties.resolve(&code).map_err(Error::from)?;
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
            return Err(Error::Invalid("within: empty, a 2-digit province or a 4-digit prefecture code".into()).into());
        }
        Ok(Response::new(ListCountiesResponse { counties: self.counties.within(&within).cloned().collect() }))
    }

    async fn list_alliances(
        &self,
        _: Request<ListAlliancesRequest>,
    ) -> Result<Response<ListAlliancesResponse>, Status> {
        Ok(Response::new(ListAlliancesResponse { alliances: self.registry.current().alliances().cloned().collect() }))
    }

    async fn list_partnerships(
        &self,
        _: Request<ListPartnershipsRequest>,
    ) -> Result<Response<ListPartnershipsResponse>, Status> {
        Ok(Response::new(ListPartnershipsResponse {
            partnerships: self.registry.current().partnerships().cloned().collect(),
        }))
    }

    async fn list_desks(&self, _: Request<ListDesksRequest>) -> Result<Response<ListDesksResponse>, Status> {
        Ok(Response::new(ListDesksResponse { desks: self.registry.current().desks().cloned().collect() }))
    }

    async fn get_county_settings(
        &self,
        request: Request<GetCountySettingsRequest>,
    ) -> Result<Response<GetCountySettingsResponse>, Status> {
        let code = request.into_inner().county;
        let county = self.counties.resolve(&code).map_err(Error::from)?.county.code.clone();
        let snapshot = self.registry.current();
        Ok(Response::new(GetCountySettingsResponse {
            subscription: snapshot.subscription(&county).cloned(),
            webhook: snapshot.webhook(&county).map(without_secret),
            ingest_defaults: snapshot.ingest_defaults(&county).cloned(),
            county,
        }))
    }

    async fn put_alliance(&self, request: Request<Alliance>) -> Result<Response<Alliance>, Status> {
        let who = Who::of(&request)?;
        let Replaced { before, stored } = self.store.put_alliance(request.into_inner()).await.map_err(Error::from)?;
        self.audit(&who, format!("alliance {}", stored.id), before.as_ref().map(json), Some(json(&stored))).await?;
        Ok(Response::new(stored))
    }

    async fn delete_alliance(
        &self,
        request: Request<DeleteAllianceRequest>,
    ) -> Result<Response<DeleteAllianceResponse>, Status> {
        let who = Who::of(&request)?;
        let id = request.into_inner().id;
        let before = self
            .store
            .delete_alliance(&id)
            .await
            .map_err(Error::from)?
            .ok_or_else(|| Error::NotFound(format!("no alliance {id:?}")))?;
        self.audit(&who, format!("alliance {id}"), Some(json(&before)), None).await?;
        Ok(Response::new(DeleteAllianceResponse {}))
    }

    async fn put_partnership(&self, request: Request<Partnership>) -> Result<Response<Partnership>, Status> {
        let who = Who::of(&request)?;
        let Replaced { before, stored } =
            self.store.put_partnership(request.into_inner()).await.map_err(Error::from)?;
        let target = format!("partnership {}-{}", stored.county_a, stored.county_b);
        self.audit(&who, target, before.as_ref().map(json), Some(json(&stored))).await?;
        Ok(Response::new(stored))
    }

    async fn delete_partnership(
        &self,
        request: Request<DeletePartnershipRequest>,
    ) -> Result<Response<DeletePartnershipResponse>, Status> {
        let who = Who::of(&request)?;
        let DeletePartnershipRequest { county_a, county_b } = request.into_inner();
        let before = self
            .store
            .delete_partnership(&county_a, &county_b)
            .await
            .map_err(Error::from)?
            .ok_or_else(|| Error::NotFound(format!("no partnership between {county_a} and {county_b}")))?;
        let target = format!("partnership {}-{}", before.county_a, before.county_b);
        self.audit(&who, target, Some(json(&before)), None).await?;
        Ok(Response::new(DeletePartnershipResponse {}))
    }

    async fn put_desk(&self, request: Request<Desk>) -> Result<Response<Desk>, Status> {
        let who = Who::of(&request)?;
        // Changing a desk's areas or contact keeps the key it has (the store sees to it); keys
        // change through CredentialService.
        let Replaced { before, stored } = self.store.put_desk(request.into_inner()).await.map_err(Error::from)?;
        self.audit(&who, format!("desk {}", stored.id), before.as_ref().map(json), Some(json(&stored))).await?;
        Ok(Response::new(stored))
    }

    async fn delete_desk(&self, request: Request<DeleteDeskRequest>) -> Result<Response<DeleteDeskResponse>, Status> {
        let who = Who::of(&request)?;
        let id = request.into_inner().id;
        let before = self
            .store
            .delete_desk(&id)
            .await
            .map_err(Error::from)?
            .ok_or_else(|| Error::NotFound(format!("no desk {id:?}")))?;
        self.audit(&who, format!("desk {id}"), Some(json(&before)), None).await?;
        Ok(Response::new(DeleteDeskResponse {}))
    }

    async fn put_subscription(&self, request: Request<Subscription>) -> Result<Response<Subscription>, Status> {
        let who = Who::of(&request)?;
        let Replaced { before, stored } =
            self.store.put_subscription(request.into_inner()).await.map_err(Error::from)?;
        self.audit(&who, format!("subscription {}", stored.county), before.as_ref().map(json), Some(json(&stored)))
            .await?;
        Ok(Response::new(stored))
    }

    async fn put_webhook(&self, request: Request<Webhook>) -> Result<Response<Webhook>, Status> {
        let who = Who::of(&request)?;
        let Replaced { before, stored } =
            self.store.put_webhook(request.into_inner(), &self.egress).await.map_err(Error::from)?;
        let before = before.map(|w| json(&without_secret(&w)));
        let shown = without_secret(&stored);
        self.audit(&who, format!("webhook {}", stored.county), before, Some(json(&shown))).await?;
        Ok(Response::new(shown))
    }

    async fn delete_webhook(
        &self,
        request: Request<DeleteWebhookRequest>,
    ) -> Result<Response<DeleteWebhookResponse>, Status> {
        let who = Who::of(&request)?;
        let code = request.into_inner().county;
        let county = self.counties.resolve(&code).map_err(Error::from)?.county.code.clone();
        let before = self
            .store
            .delete_webhook(&county)
            .await
            .map_err(Error::from)?
            .ok_or_else(|| Error::NotFound(format!("county {county} has no webhook")))?;
        self.audit(&who, format!("webhook {county}"), Some(json(&without_secret(&before))), None).await?;
        Ok(Response::new(DeleteWebhookResponse {}))
    }
}
