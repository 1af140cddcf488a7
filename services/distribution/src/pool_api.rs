//! The shared content pool's doors: HTTP (`/v1/pool/…`) and gRPC (`bashu.pool.v1.PoolService`),
//! both with the county's token. The county is always the token's: no request field names it.

use std::{sync::Arc, time::SystemTime};

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, Path, RawQuery, State},
    http::HeaderMap,
    routing::{get, post},
};
use bashu_bus::Bus;
use bashu_pool::PoolIndex;
use bashu_proto::{
    pool::v1::{
        GetStoryRequest, GetTrendsRequest, GetTrendsResponse, ListReuseRequest, ListReuseResponse, MarkUsedRequest,
        MarkUsedResponse, PoolStory, SearchRequest, SearchResponse, SortOrder, pool_service_server::PoolService,
    },
    story::v1::{Category, StoryUse},
    time::{now, to_system_time},
};
use bashu_registry::{CountyTokens, Refusal};
use tonic::{Request, Response, Status};

use crate::error::Error;

/// The longest query string a search URL may carry, in bytes.
const MAX_QUERY_STRING: usize = 4096;
/// The largest body `POST /v1/pool/used` takes.
const MAX_BODY: usize = 16 * 1024;
/// The longest placement a reuse note carries, in characters.
const MAX_PLACEMENT: usize = 500;

/// What both doors share. Cheap to clone.
#[derive(Clone)]
pub struct PoolApi {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PoolIndex,
    bus: Bus,
    tokens: CountyTokens,
}

impl PoolApi {
    pub(crate) fn new(pool: PoolIndex, bus: Bus, tokens: CountyTokens) -> Self {
        Self { inner: Arc::new(Inner { pool, bus, tokens }) }
    }

    /// The county of an `authorization: Bearer …` value.
    async fn county(&self, authorization: Option<&str>) -> Result<String, Error> {
        let token = bashu_registry::bearer(authorization)
            .ok_or(Error::Unauthenticated("send the county's token as `authorization: Bearer <token>`"))?;
        match self.inner.tokens.authenticate(token).await {
            Ok(Ok(county)) => Ok(county),
            Ok(Err(Refusal::Malformed)) => Err(Error::Unauthenticated("not a Bashu county token")),
            Ok(Err(Refusal::Unknown)) => Err(Error::Unauthenticated("unknown or revoked token")),
            Err(error) => Err(Error::store(error)),
        }
    }

    /// Runs blocking index work off the runtime.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&PoolIndex) -> Result<T, bashu_pool::Error> + Send + 'static,
    ) -> Result<T, Error> {
        let pool = self.inner.pool.clone();
        tokio::task::spawn_blocking(move || work(&pool))
            .await
            .map_err(|e| Error::Pool(bashu_pool::Error::Index(e.to_string())))?
            .map_err(Error::from)
    }

    async fn search(&self, county: String, request: SearchRequest) -> Result<SearchResponse, Error> {
        self.blocking(move |pool| pool.search(&county, &request)).await
    }

    async fn story(&self, county: String, origin: String, id: String) -> Result<PoolStory, Error> {
        let (origin_shown, id_shown) = (origin.clone(), id.clone());
        self.blocking(move |pool| pool.story(&county, &origin, &id))
            .await?
            .ok_or_else(|| Error::NotFound(format!("no story {origin_shown}/{id_shown} in your pool")))
    }

    /// Publishes the county's reuse note, as the county would on `bashu.story.used.<county>`.
    async fn mark_used(&self, county: String, request: MarkUsedRequest) -> Result<MarkUsedResponse, Error> {
        if request.placement.chars().count() > MAX_PLACEMENT {
            return Err(Error::Invalid { field: "placement", reason: format!("at most {MAX_PLACEMENT} characters") });
        }
        let story = self.story(county.clone(), request.origin_county.clone(), request.story_id.clone()).await?;
        let newest = story.story.map(|s| s.version).unwrap_or_default();
        let version = match request.version {
            0 => newest,
            v if v <= newest => v,
            v => {
                return Err(Error::Invalid {
                    field: "version",
                    reason: format!("{v} is newer than the newest, {newest}"),
                });
            }
        };
        let used = StoryUse {
            story_id: request.story_id,
            version,
            county,
            origin_county: request.origin_county,
            used_at: Some(now()),
            placement: request.placement,
        };
        let published = self.inner.bus.publish(&used).await?;
        Ok(MarkUsedResponse { version, recorded: !published.duplicate })
    }

    async fn reuse(&self, county: String, limit: u32) -> Result<ListReuseResponse, Error> {
        if limit > bashu_pool::MAX_REUSES {
            return Err(Error::Invalid { field: "limit", reason: format!("at most {}", bashu_pool::MAX_REUSES) });
        }
        let reuses = self.blocking(move |pool| pool.reuses(&county, limit)).await?;
        Ok(ListReuseResponse { reuses })
    }

    async fn trends(&self, county: String, week_ending: Option<SystemTime>) -> Result<GetTrendsResponse, Error> {
        let end = week_ending.unwrap_or_else(SystemTime::now);
        self.blocking(move |pool| pool.trends(&county, end)).await
    }

    /// `/v1/pool/…`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/pool/search", get(http_search))
            .route("/v1/pool/stories/{origin}/{id}", get(http_story))
            .route("/v1/pool/used", post(http_used))
            .route("/v1/pool/reuse", get(http_reuse))
            .route("/v1/pool/trends", get(http_trends))
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .with_state(self.clone())
    }
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers.get("authorization").and_then(|v| v.to_str().ok())
}

fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::Invalid { field, reason: reason.into() }
}

/// An RFC 3339 time from a query parameter.
fn time(field: &'static str, value: &str) -> Result<bashu_proto::Timestamp, Error> {
    let parsed = time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map_err(|_| invalid(field, "an RFC 3339 time, like 2026-12-01T00:00:00+08:00"))?;
    Ok(bashu_proto::Timestamp { seconds: parsed.unix_timestamp(), nanos: 0 })
}

/// `GET /v1/pool/search?q=…&province=51&prefecture=5107&county=…&category=policy&from=…&to=…
/// &has_video=true&has_image=true&sort=newest&page_size=20&cursor=…`: a search from the query
/// string, every parameter checked.
fn search_request(query: &str) -> Result<SearchRequest, Error> {
    if query.len() > MAX_QUERY_STRING {
        return Err(invalid("query string", format!("at most {MAX_QUERY_STRING} bytes")));
    }
    let mut request = SearchRequest::default();
    let flag = |field: &'static str, value: &str| match value {
        "true" | "1" => Ok(true),
        "false" | "0" | "" => Ok(false),
        _ => Err(invalid(field, "true or false")),
    };
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let value = value.into_owned();
        match name.as_ref() {
            "q" => request.query = value,
            "province" => request.origin_provinces.push(value),
            "prefecture" => request.origin_prefectures.push(value),
            "county" => request.origin_counties.push(value),
            "category" => {
                let upper = value.to_ascii_uppercase();
                let name = if upper.starts_with("CATEGORY_") { upper } else { format!("CATEGORY_{upper}") };
                let category = Category::from_str_name(&name)
                    .filter(|c| *c != Category::Unspecified)
                    .ok_or_else(|| invalid("category", format!("{value:?} is not a category")))?;
                request.categories.push(category as i32);
            }
            "from" => request.from = Some(time("from", &value)?),
            "to" => request.to = Some(time("to", &value)?),
            "has_video" => request.has_video = flag("has_video", &value)?,
            "has_image" => request.has_image = flag("has_image", &value)?,
            "sort" => {
                request.sort = match value.as_str() {
                    "relevance" | "" => SortOrder::Relevance,
                    "newest" => SortOrder::Newest,
                    _ => return Err(invalid("sort", "relevance or newest")),
                } as i32
            }
            "page_size" => {
                request.page_size = value.parse().map_err(|_| invalid("page_size", "a number from 1 to 50"))?
            }
            "cursor" => request.cursor = value,
            "sharing" => request.sharing.push(value),
            other => {
                return Err(Error::Invalid { field: "query string", reason: format!("unknown parameter {other:?}") });
            }
        }
    }
    Ok(request)
}

async fn http_search(
    State(api): State<PoolApi>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<SearchResponse>, Error> {
    let county = api.county(authorization(&headers)).await?;
    let request = search_request(query.as_deref().unwrap_or_default())?;
    Ok(Json(api.search(county, request).await?))
}

async fn http_story(
    State(api): State<PoolApi>,
    headers: HeaderMap,
    Path((origin, id)): Path<(String, String)>,
) -> Result<Json<PoolStory>, Error> {
    let county = api.county(authorization(&headers)).await?;
    Ok(Json(api.story(county, origin, id).await?))
}

async fn http_used(
    State(api): State<PoolApi>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<MarkUsedResponse>, Error> {
    let county = api.county(authorization(&headers)).await?;
    let request: MarkUsedRequest = serde_json::from_slice(&body).map_err(|e| invalid("body", e.to_string()))?;
    Ok(Json(api.mark_used(county, request).await?))
}

async fn http_reuse(
    State(api): State<PoolApi>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<ListReuseResponse>, Error> {
    let county = api.county(authorization(&headers)).await?;
    let mut limit = 0;
    for (name, value) in url::form_urlencoded::parse(query.as_deref().unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "limit" => limit = value.parse().map_err(|_| invalid("limit", "a number from 1 to 500"))?,
            other => return Err(invalid("query string", format!("unknown parameter {other:?}"))),
        }
    }
    Ok(Json(api.reuse(county, limit).await?))
}

async fn http_trends(
    State(api): State<PoolApi>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<GetTrendsResponse>, Error> {
    let county = api.county(authorization(&headers)).await?;
    let mut week_ending = None;
    for (name, value) in url::form_urlencoded::parse(query.as_deref().unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "week_ending" => week_ending = to_system_time(&time("week_ending", &value)?),
            other => return Err(invalid("query string", format!("unknown parameter {other:?}"))),
        }
    }
    Ok(Json(api.trends(county, week_ending).await?))
}

fn grpc_authorization<T>(request: &Request<T>) -> Option<&str> {
    request.metadata().get("authorization").and_then(|v| v.to_str().ok())
}

#[tonic::async_trait]
impl PoolService for PoolApi {
    async fn search(&self, request: Request<SearchRequest>) -> Result<Response<SearchResponse>, Status> {
        let county = self.county(grpc_authorization(&request)).await?;
        Ok(Response::new(PoolApi::search(self, county, request.into_inner()).await?))
    }

    async fn get_story(&self, request: Request<GetStoryRequest>) -> Result<Response<PoolStory>, Status> {
        let county = self.county(grpc_authorization(&request)).await?;
        let GetStoryRequest { origin_county, story_id } = request.into_inner();
        Ok(Response::new(self.story(county, origin_county, story_id).await?))
    }

    async fn mark_used(&self, request: Request<MarkUsedRequest>) -> Result<Response<MarkUsedResponse>, Status> {
        let county = self.county(grpc_authorization(&request)).await?;
        Ok(Response::new(PoolApi::mark_used(self, county, request.into_inner()).await?))
    }

    async fn list_reuse(&self, request: Request<ListReuseRequest>) -> Result<Response<ListReuseResponse>, Status> {
        let county = self.county(grpc_authorization(&request)).await?;
        Ok(Response::new(self.reuse(county, request.into_inner().limit).await?))
    }

    async fn get_trends(&self, request: Request<GetTrendsRequest>) -> Result<Response<GetTrendsResponse>, Status> {
        let county = self.county(grpc_authorization(&request)).await?;
        let end = request.into_inner().week_ending.as_ref().and_then(to_system_time);
        Ok(Response::new(self.trends(county, end).await?))
    }
}

/// How often a rebuilding replica reports its progress.
const REPORT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// This replica's name in rebuild reports: its host name (a pod's name) or its process id, and
/// which distribution of the process it is (tests run several in one).
fn replica_name() -> String {
    static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let nth = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    let host = std::env::var("HOSTNAME").unwrap_or_default();
    let host: String = host.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').take(48).collect();
    let host = if host.is_empty() { format!("pid{}", std::process::id()) } else { host };
    format!("{host}-{nth}")
}

/// Answers operators' rebuild requests until `shutdown`: empties this replica's index, reads the
/// streams again, and reports how far it has got until it has caught up.
pub(crate) async fn serve_rebuilds(
    bus: Bus,
    follower: bashu_pool::Follower,
    shutdown: tokio_util::sync::CancellationToken,
) {
    use futures::StreamExt as _;
    let replica = replica_name();
    while !shutdown.is_cancelled() {
        let mut requests = match bus.stories().pool_rebuild_requests().await {
            Ok(requests) => requests,
            Err(error) => {
                tracing::warn!(error = %error, "cannot hear pool rebuild requests yet; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => continue,
                }
            }
        };
        loop {
            let request = tokio::select! {
                _ = shutdown.cancelled() => return,
                request = requests.next() => request,
            };
            if request.is_none() {
                break;
            }
            let session = follower.rebuild();
            tracing::info!(replica = %replica, "content pool rebuild asked for");
            let mut progress = follower.progress();
            loop {
                let now = *progress.borrow_and_update();
                let started = now.rebuilding && now.session >= session;
                let report = bashu_proto::admin::v1::PoolReplicaProgress {
                    replica: replica.clone(),
                    read: if started { now.checkpoint.feeds } else { 0 },
                    target: now.feeds_target,
                    caught_up: started && now.checkpoint.feeds >= now.feeds_target,
                };
                if let Err(error) = bus.stories().report_pool_progress(&report).await {
                    tracing::warn!(error = %error, "pool rebuild progress not reported");
                }
                if report.caught_up {
                    break;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(REPORT_EVERY) => {}
                }
            }
        }
    }
}
