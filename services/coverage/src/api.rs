//! The doors: HTTP under `/v1/coverage/…` and gRPC `bashu.coverage.v1.CoverageService`. A
//! county's token acts as that county only (no request field names the acting county); a staff
//! token (viewer or operator) reads every plan and settles, and changes nothing.

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, Path, RawQuery, State},
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use bashu_coverage_core::Error as Refusal;
use bashu_proto::{
    coverage::v1::{
        Answer, AnswerInvitationRequest, ChangeStateRequest, ChannelPackage, ConsentWeightsRequest,
        GetChannelPackageRequest, GetPlanRequest, ListPlansRequest, ListPlansResponse, PlanState, PlanView,
        ProposePlanRequest, ProposeWeightsRequest, SettleRequest, Settlement, SubscribeChannelRequest,
        TakePhaseRequest, Weights,
        coverage_service_server::{CoverageService, CoverageServiceServer},
    },
    registry::v1::StaffRole,
};
use bashu_registry::bearer;
use tonic::{Request, Status};

use crate::{Coverage, Error, plans::Caller};

/// The largest body a coverage request takes.
const MAX_BODY: usize = 64 * 1024;

/// Both doors. Cheap to clone.
#[derive(Clone)]
pub struct CoverageApi {
    coverage: Coverage,
}

impl CoverageApi {
    pub(crate) fn new(coverage: Coverage) -> Self {
        Self { coverage }
    }

    /// Who an `authorization: Bearer …` value belongs to: a county, or a viewer or operator.
    async fn caller(&self, authorization: Option<&str>) -> Result<Caller, Error> {
        const NEEDED: &str =
            "send a county token, or a viewer's or operator's token, as `authorization: Bearer <token>`";
        let token = bearer(authorization).ok_or(Error::Unauthenticated(NEEDED))?;
        let inner = &self.coverage.inner;
        if let Ok(county) = inner.tokens.authenticate(token).await.map_err(Refusal::store)? {
            return Ok(Caller::County(county));
        }
        match inner.staff.authenticate(token).await.map_err(Refusal::store)? {
            Ok(staff) if matches!(staff.role, StaffRole::Viewer | StaffRole::Operator) => Ok(Caller::Staff(staff)),
            Ok(staff) => Err(Refusal::Forbidden(format!(
                "{} is a {}: coverage plans are for counties, viewers and operators",
                staff.name,
                staff.role.as_str_name()
            ))
            .into()),
            Err(_) => Err(Error::Unauthenticated("unknown or revoked token")),
        }
    }

    /// `/v1/coverage/…`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/coverage/plans", post(http_propose).get(http_list))
            .route("/v1/coverage/plans/{plan}", get(http_plan))
            .route("/v1/coverage/plans/{plan}/answer", post(http_answer))
            .route("/v1/coverage/plans/{plan}/phases/{phase}/claim", post(http_claim))
            .route("/v1/coverage/plans/{plan}/state", post(http_state))
            .route("/v1/coverage/plans/{plan}/weights", post(http_weights))
            .route("/v1/coverage/plans/{plan}/weights/consent", post(http_consent))
            .route("/v1/coverage/plans/{plan}/settlement", get(http_settlement))
            .route("/v1/coverage/plans/{plan}/channel", post(http_channel))
            .route("/v1/coverage/plans/{plan}/channel.ninjs", get(http_channel_package))
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .with_state(self.clone())
    }

    /// `bashu.coverage.v1.CoverageService`.
    pub fn grpc_service(&self) -> CoverageServiceServer<CoverageApi> {
        CoverageServiceServer::new(self.clone())
    }
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
}

/// A JSON body in the proto3 JSON mapping (camelCase), or a 400 naming what is wrong.
fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    if body.is_empty() {
        return Err(Refusal::invalid("body", "a JSON object is required").into());
    }
    serde_json::from_slice(body).map_err(|e| Refusal::invalid("body", e.to_string()).into())
}

/// An enum value from a short name (`accepted`) or its full proto name (`ANSWER_ACCEPTED`).
fn named<T>(field: &str, value: &str, prefix: &str, parse: impl Fn(&str) -> Option<T>) -> Result<T, Error> {
    let upper = value.to_ascii_uppercase();
    let full = if upper.starts_with(prefix) { upper } else { format!("{prefix}{upper}") };
    parse(&full).ok_or_else(|| Refusal::invalid(field, format!("{value:?} is not one of the allowed values")).into())
}

/// `{"<field>": "<value>"}`: the one string a small request carries.
fn one_string(body: &[u8], field: &'static str) -> Result<String, Error> {
    optional_string(body, field)?.ok_or_else(|| Refusal::invalid(field, "required, a string").into())
}

/// `{"<field>": "<value>"}`, `{}` or no body at all: a string a request may carry.
fn optional_string(body: &[u8], field: &'static str) -> Result<Option<String>, Error> {
    match only_field(body, field)? {
        None => Ok(None),
        Some(serde_json::Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(Refusal::invalid(field, "a string").into()),
    }
}

/// The value of the one field a small request's JSON object may carry (None: `{}` or no body);
/// any other field is refused by name.
fn only_field(body: &[u8], field: &'static str) -> Result<Option<serde_json::Value>, Error> {
    if body.is_empty() {
        return Ok(None);
    }
    let value: serde_json::Value = json_body(body)?;
    let serde_json::Value::Object(mut map) = value else {
        return Err(Refusal::invalid("body", "a JSON object").into());
    };
    if let Some(other) = map.keys().find(|k| k.as_str() != field) {
        return Err(Refusal::invalid(other.clone(), "unknown field").into());
    }
    Ok(map.remove(field))
}

/// The query string's pairs, percent-decoded.
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect()
}

async fn http_propose(
    State(api): State<CoverageApi>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<PlanView>, Error> {
    let caller = api.caller(authorization(&headers)).await?;
    let request: ProposePlanRequest = json_body(&body)?;
    Ok(Json(api.coverage.propose(&caller, request).await?))
}

async fn http_list(
    State(api): State<CoverageApi>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<ListPlansResponse>, Error> {
    let caller = api.caller(authorization(&headers)).await?;
    let mut state = PlanState::Unspecified;
    for (name, value) in query_pairs(query.as_deref()) {
        match name.as_str() {
            "state" => state = named("state", &value, "PLAN_STATE_", PlanState::from_str_name)?,
            other => return Err(Refusal::invalid("query string", format!("unknown parameter {other:?}")).into()),
        }
    }
    Ok(Json(ListPlansResponse { plans: api.coverage.list(&caller, state).await? }))
}

async fn http_plan(
    State(api): State<CoverageApi>,
    headers: HeaderMap,
    Path(plan): Path<String>,
) -> Result<Json<PlanView>, Error> {
    let caller = api.caller(authorization(&headers)).await?;
    Ok(Json(api.coverage.view(&caller, &plan).await?))
}

async fn http_answer(
    State(api): State<CoverageApi>,
    headers: HeaderMap,
    Path(plan): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<PlanView>, Error> {
    let caller = api.caller(authorization(&headers)).await?;
    let answer = named("answer", &one_string(&body, "answer")?, "ANSWER_", Answer::from_str_name)?;
    Ok(Json(api.coverage.answer(&caller, &plan, answer).await?))
}

async fn http_claim(
    State(api): State<CoverageApi>,
    headers: HeaderMap,
    Path((plan, phase)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<PlanView>, Error> {
    let caller = api.caller(authorization(&headers)).await?;
    let assign_to = optional_string(&body, "assignTo")?.unwrap_or_default();
    Ok(Json(api.coverage.take_phase(&caller, &plan, &phase, &assign_to).await?))
}

async fn http_state(
    State(api): State<CoverageApi>,
    headers: HeaderMap,
    Path(plan): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<PlanView>, Error> {
    let caller = api.caller(authorization(&headers)).await?;
    let state = named("state", &one_string(&body, "state")?, "PLAN_STATE_", PlanState::from_str_name)?;
    Ok(Json(api.coverage.change_state(&caller, &plan, state).await?))
}

async fn http_weights(
    State(api): State<CoverageApi>,
    headers: HeaderMap,
    Path(plan): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<PlanView>, Error> {
    let caller = api.caller(authorization(&headers)).await?;
    let weights: Weights = json_body(&body)?;
    Ok(Json(api.coverage.propose_weights(&caller, &plan, weights).await?))
}

async fn http_consent(
    State(api): State<CoverageApi>,
    headers: HeaderMap,
    Path(plan): Path<String>,
) -> Result<Json<PlanView>, Error> {
    let caller = api.caller(authorization(&headers)).await?;
    Ok(Json(api.coverage.consent_weights(&caller, &plan).await?))
}

/// `POST /v1/coverage/plans/{plan}/channel` with `{"subscribe": true}` (or `false`).
async fn http_channel(
    State(api): State<CoverageApi>,
    headers: HeaderMap,
    Path(plan): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<PlanView>, Error> {
    let caller = api.caller(authorization(&headers)).await?;
    let subscribe = only_field(&body, "subscribe")?
        .and_then(|value| value.as_bool())
        .ok_or_else(|| Refusal::invalid("subscribe", "required: true or false"))?;
    Ok(Json(api.coverage.subscribe_channel(&caller, &plan, subscribe).await?))
}

/// `GET /v1/coverage/plans/{plan}/channel.ninjs`: the channel as one ninjs package.
async fn http_channel_package(
    State(api): State<CoverageApi>,
    headers: HeaderMap,
    Path(plan): Path<String>,
) -> Result<Json<serde_json::Value>, Error> {
    let caller = api.caller(authorization(&headers)).await?;
    Ok(Json(api.coverage.channel_package(&caller, &plan).await?))
}

/// `GET /v1/coverage/plans/{plan}/settlement?pool=100000[&format=csv]`.
async fn http_settlement(
    State(api): State<CoverageApi>,
    headers: HeaderMap,
    Path(plan): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, Error> {
    let caller = api.caller(authorization(&headers)).await?;
    let (mut pool, mut csv) = (None, false);
    for (name, value) in query_pairs(query.as_deref()) {
        match name.as_str() {
            "pool" => pool = Some(value.parse::<i64>().map_err(|_| Refusal::invalid("pool", "a whole number"))?),
            "format" => {
                csv = match value.as_str() {
                    "csv" => true,
                    "json" => false,
                    _ => return Err(Refusal::invalid("format", "json or csv").into()),
                }
            }
            other => return Err(Refusal::invalid("query string", format!("unknown parameter {other:?}")).into()),
        }
    }
    let pool = pool.ok_or_else(|| Refusal::invalid("pool", "required: the amount to divide"))?;
    let settlement = api.coverage.settle(&caller, &plan, pool).await?;
    Ok(if csv {
        ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], bashu_coverage_core::settlement_csv(&settlement))
            .into_response()
    } else {
        Json(settlement).into_response()
    })
}

fn grpc_authorization<T>(request: &Request<T>) -> Option<&str> {
    request.metadata().get("authorization").and_then(|v| v.to_str().ok())
}

#[tonic::async_trait]
impl CoverageService for CoverageApi {
    async fn propose_plan(&self, request: Request<ProposePlanRequest>) -> Result<tonic::Response<PlanView>, Status> {
        let caller = self.caller(grpc_authorization(&request)).await?;
        Ok(tonic::Response::new(self.coverage.propose(&caller, request.into_inner()).await?))
    }

    async fn get_plan(&self, request: Request<GetPlanRequest>) -> Result<tonic::Response<PlanView>, Status> {
        let caller = self.caller(grpc_authorization(&request)).await?;
        Ok(tonic::Response::new(self.coverage.view(&caller, &request.into_inner().plan_id).await?))
    }

    async fn list_plans(
        &self,
        request: Request<ListPlansRequest>,
    ) -> Result<tonic::Response<ListPlansResponse>, Status> {
        let caller = self.caller(grpc_authorization(&request)).await?;
        let state = request.into_inner().state();
        Ok(tonic::Response::new(ListPlansResponse { plans: self.coverage.list(&caller, state).await? }))
    }

    async fn answer_invitation(
        &self,
        request: Request<AnswerInvitationRequest>,
    ) -> Result<tonic::Response<PlanView>, Status> {
        let caller = self.caller(grpc_authorization(&request)).await?;
        let request = request.into_inner();
        Ok(tonic::Response::new(self.coverage.answer(&caller, &request.plan_id, request.answer()).await?))
    }

    async fn take_phase(&self, request: Request<TakePhaseRequest>) -> Result<tonic::Response<PlanView>, Status> {
        let caller = self.caller(grpc_authorization(&request)).await?;
        let r = request.into_inner();
        Ok(tonic::Response::new(self.coverage.take_phase(&caller, &r.plan_id, &r.phase, &r.assign_to).await?))
    }

    async fn change_state(&self, request: Request<ChangeStateRequest>) -> Result<tonic::Response<PlanView>, Status> {
        let caller = self.caller(grpc_authorization(&request)).await?;
        let r = request.into_inner();
        Ok(tonic::Response::new(self.coverage.change_state(&caller, &r.plan_id, r.state()).await?))
    }

    async fn propose_weights(
        &self,
        request: Request<ProposeWeightsRequest>,
    ) -> Result<tonic::Response<PlanView>, Status> {
        let caller = self.caller(grpc_authorization(&request)).await?;
        let r = request.into_inner();
        let weights = r.weights.ok_or_else(|| Error::from(Refusal::invalid("weights", "required")))?;
        Ok(tonic::Response::new(self.coverage.propose_weights(&caller, &r.plan_id, weights).await?))
    }

    async fn consent_weights(
        &self,
        request: Request<ConsentWeightsRequest>,
    ) -> Result<tonic::Response<PlanView>, Status> {
        let caller = self.caller(grpc_authorization(&request)).await?;
        Ok(tonic::Response::new(self.coverage.consent_weights(&caller, &request.into_inner().plan_id).await?))
    }

    async fn subscribe_channel(
        &self,
        request: Request<SubscribeChannelRequest>,
    ) -> Result<tonic::Response<PlanView>, Status> {
        let caller = self.caller(grpc_authorization(&request)).await?;
        let r = request.into_inner();
        Ok(tonic::Response::new(self.coverage.subscribe_channel(&caller, &r.plan_id, r.subscribe).await?))
    }

    async fn get_channel_package(
        &self,
        request: Request<GetChannelPackageRequest>,
    ) -> Result<tonic::Response<ChannelPackage>, Status> {
        let caller = self.caller(grpc_authorization(&request)).await?;
        let package = self.coverage.channel_package(&caller, &request.into_inner().plan_id).await?;
        Ok(tonic::Response::new(ChannelPackage { ninjs_json: package.to_string() }))
    }

    async fn settle(&self, request: Request<SettleRequest>) -> Result<tonic::Response<Settlement>, Status> {
        let caller = self.caller(grpc_authorization(&request)).await?;
        let r = request.into_inner();
        Ok(tonic::Response::new(self.coverage.settle(&caller, &r.plan_id, r.pool).await?))
    }
}
