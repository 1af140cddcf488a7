//! The duty board: a live web page, served under `/board/` on the admin target's HTTP listener,
//! where desks and operators see every alert's county states and the stories crossing the
//! border. The page is three static files compiled into the binary; its data comes over one
//! server-sent-event stream fed from the bus.

mod live;
mod session;
mod view;

use std::{convert::Infallible, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    body::{Body, to_bytes},
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{
        IntoResponse, Redirect, Response,
        sse::{Event, Sse},
    },
    routing::get,
};
use axum_extra::extract::cookie::CookieJar;
use bashu_bus::Bus;
use bashu_registry::{Counties, StaffTokens};
use serde_json::json;
use tokio::sync::{Semaphore, broadcast::error::RecvError, mpsc};
use tokio_util::sync::CancellationToken;

use crate::{
    live::{ChainChange, Live},
    session::Refused,
};

/// Pages one process streams to at once; more are refused with 503 rather than starve the rest.
const MAX_OPEN_BOARDS: usize = 256;
/// How often an open page is told the server's time: the page counts "time since issue" by the
/// server's clock, and a page that hears nothing for three ticks knows its connection is gone.
const TICK: Duration = Duration::from_secs(5);
/// How often an open page's token is checked again, so revoking it closes the page.
const RECHECK: Duration = Duration::from_secs(30);
/// Plans the coverage view shows at most (the newest).
const MAX_PLANS_SHOWN: usize = 50;
/// The login form's body: a token and some JSON around it.
const MAX_LOGIN_BYTES: usize = 4096;

/// The page, its stylesheet and script: no build step, nothing fetched from elsewhere.
const INDEX_HTML: &str = include_str!("../assets/index.html");
const BOARD_CSS: &str = include_str!("../assets/board.css");
const BOARD_JS: &str = include_str!("../assets/board.js");
const POOL_JS: &str = include_str!("../assets/pool.js");
const COVERAGE_JS: &str = include_str!("../assets/coverage.js");

/// The duty board's routes and the live state they share.
#[derive(Clone)]
pub struct Board {
    inner: Arc<Inner>,
}

struct Inner {
    live: Arc<Live>,
    /// Joint coverage plans, read for the coverage view.
    plans: bashu_coverage_core::PlanStore,
    /// Every plan, followed into memory: a page asking every few seconds lists none from the bucket.
    plan_index: bashu_coverage_core::PlanIndex,
    /// How long before its due time a phase with nothing delivered shows as due soon.
    due_soon_warning_seconds: i64,
    staff: StaffTokens,
    counties_json: String,
    open_boards: Arc<Semaphore>,
    shutdown: CancellationToken,
}

impl Board {
    /// Starts following the alert state and the story ledger on `bus` until `shutdown`; pages
    /// sign in with staff tokens checked against `staff`.
    pub async fn start(
        bus: Bus,
        counties: &Counties,
        staff: StaffTokens,
        due_soon_warning_seconds: i64,
        shutdown: CancellationToken,
    ) -> Result<Self, bashu_bus::Error> {
        let plans = bashu_coverage_core::PlanStore::open(&bus).await?;
        let plan_index = bashu_coverage_core::PlanIndex::default();
        tokio::spawn({
            let (plans, index, shutdown) = (plans.clone(), plan_index.clone(), shutdown.clone());
            async move { plans.follow_plans(index, shutdown).await }
        });
        // The board only counts the queue; claims are not its business, so the claim time is moot.
        let review = bashu_moderation_core::ReviewQueue::new(bus.stories().moderation_bucket().await?);
        let entries: Vec<view::CountyEntry> = counties.all().iter().map(view::CountyEntry::from).collect();
        let counties_json = serde_json::to_string(&entries).unwrap_or_else(|_| "[]".into());
        Ok(Self {
            inner: Arc::new(Inner {
                live: Live::start(bus, review, shutdown.clone()),
                plans,
                plan_index,
                due_soon_warning_seconds,
                staff,
                counties_json,
                open_boards: Arc::new(Semaphore::new(MAX_OPEN_BOARDS)),
                shutdown,
            }),
        })
    }

    /// `/board/` and what the page calls: `session` (sign in, out, who), `counties`, `events`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/board", get(|| async { Redirect::permanent("/board/") }))
            .route("/board/", get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }))
            .route("/board/board.css", get(|| async { asset("text/css; charset=utf-8", BOARD_CSS) }))
            .route("/board/board.js", get(|| async { asset("text/javascript; charset=utf-8", BOARD_JS) }))
            .route("/board/pool.js", get(|| async { asset("text/javascript; charset=utf-8", POOL_JS) }))
            .route("/board/coverage.js", get(|| async { asset("text/javascript; charset=utf-8", COVERAGE_JS) }))
            .route("/board/coverage", get(coverage))
            .route("/board/session", get(who).post(sign_in).delete(sign_out))
            .route("/board/counties", get(counties))
            .route("/board/events", get(events))
            .layer(axum::middleware::map_response(harden))
            .with_state(self.clone())
    }
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// Every board response: only our own origin may supply script, style and data, and the page
/// may not be framed by another site.
async fn harden(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

async fn who(State(board): State<Board>, jar: CookieJar) -> Result<Response, Refused> {
    let (caller, _) = session::signed_in(&board.inner.staff, &jar).await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(session::describe(&caller))).into_response())
}

async fn sign_in(State(board): State<Board>, headers: HeaderMap, jar: CookieJar, body: Body) -> Response {
    let body = match to_bytes(body, MAX_LOGIN_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            let reason = format!("larger than {MAX_LOGIN_BYTES} bytes");
            return (StatusCode::PAYLOAD_TOO_LARGE, Refused::Invalid { field: "body", reason }).into_response();
        }
    };
    match session::sign_in(&board.inner.staff, &headers, jar, &body).await {
        Ok(signed_in) => ([(header::CACHE_CONTROL, "no-store")], signed_in).into_response(),
        Err(refused) => refused.into_response(),
    }
}

async fn sign_out(jar: CookieJar) -> impl IntoResponse {
    session::sign_out(jar)
}

async fn counties(State(board): State<Board>, jar: CookieJar) -> Result<Response, Refused> {
    session::signed_in(&board.inner.staff, &jar).await?;
    let headers = [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "private, max-age=3600")];
    Ok((headers, board.inner.counties_json.clone()).into_response())
}

/// `GET /board/coverage`: the proposed and active joint coverage plans with their phases, the
/// newest first (the page asks again every few seconds while the view is open).
async fn coverage(State(board): State<Board>, jar: CookieJar) -> Result<Response, Refused> {
    session::signed_in(&board.inner.staff, &jar).await?;
    let inner = &board.inner;
    let mut plans = inner.plans.plans_in(&inner.plan_index).await.map_err(|_| Refused::Unavailable)?;
    plans.retain(|p| {
        use bashu_proto::coverage::v1::PlanState;
        matches!(p.state(), PlanState::Proposed | PlanState::Active)
    });
    plans.sort_by_key(|p| std::cmp::Reverse(p.created_at.map(|t| (t.seconds, t.nanos))));
    let now = bashu_proto::time::now();
    let mut shown = Vec::with_capacity(plans.len());
    for plan in plans.into_iter().take(MAX_PLANS_SHOWN) {
        let contributions = inner.plans.contributions(&plan.id).await.map_err(|_| Refused::Unavailable)?;
        let chain = bashu_coverage_core::chain_of(&plan, &contributions, now, inner.due_soon_warning_seconds);
        let view = bashu_proto::coverage::v1::PlanView { plan: Some(plan), chain };
        shown.extend(view::PlanView::new(&view));
    }
    Ok(Json(json!({ "now_ms": now_ms(), "plans": shown })).into_response())
}

/// `GET /board/events`: the live stream. First `snapshot` (every chain worth showing, the
/// stories view, the server's time), then `chain` and `removed` as the tracker changes chains,
/// `stories` when the stories view changes, `tick` every few seconds, and `signed-out` (then the
/// end) when the token stops being valid.
async fn events(
    State(board): State<Board>,
    jar: CookieJar,
) -> Result<Sse<impl futures::Stream<Item = Result<Event, Infallible>>>, Refused> {
    let (_, token) = session::signed_in(&board.inner.staff, &jar).await?;
    let permit = board.inner.open_boards.clone().try_acquire_owned().map_err(|_| Refused::Busy)?;
    let (sender, receiver) = mpsc::channel(64);
    tokio::spawn(async move {
        feed(&board, &token, &sender).await;
        drop(permit);
    });
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|event| (Ok(event), receiver))
    });
    Ok(Sse::new(stream))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis() as i64
}

fn event(name: &str, data: &serde_json::Value) -> Event {
    Event::default().event(name).data(data.to_string())
}

/// Feeds one open page until it goes away, its token stops being valid, or the process stops.
async fn feed(board: &Board, token: &str, sender: &mpsc::Sender<Event>) {
    let live = &board.inner.live;
    let mut stories = live.stories();
    let snapshot = |chains: Vec<Arc<view::ChainView>>, stories: &view::StoriesView| {
        let chains: Vec<&view::ChainView> = chains.iter().map(|c| &**c).collect();
        event("snapshot", &json!({ "now_ms": now_ms(), "chains": chains, "stories": stories }))
    };
    // A page that stops reading must not keep this task (and the process's shutdown) waiting.
    let deliver = async |event: Event| -> bool {
        tokio::select! {
            _ = board.inner.shutdown.cancelled() => false,
            sent = sender.send(event) => sent.is_ok(),
        }
    };
    let (chains, mut changes) = live.snapshot().await;
    let first = snapshot(chains, &stories.borrow_and_update());
    if !deliver(first).await {
        return;
    }
    let mut tick = tokio::time::interval(TICK);
    let mut recheck = tokio::time::interval_at(tokio::time::Instant::now() + RECHECK, RECHECK);
    loop {
        let next = tokio::select! {
            _ = board.inner.shutdown.cancelled() => return,
            _ = sender.closed() => return,
            change = changes.recv() => match change {
                Ok(ChainChange::Updated(chain)) => event("chain", &json!(&*chain)),
                Ok(ChainChange::Removed(key)) => event("removed", &json!({ "key": key })),
                // A page too slow for the changes starts again from a snapshot.
                Err(RecvError::Lagged(_)) => {
                    let (chains, resubscribed) = live.snapshot().await;
                    changes = resubscribed;
                    snapshot(chains, &stories.borrow_and_update())
                }
                Err(RecvError::Closed) => return,
            },
            Ok(()) = stories.changed() => event("stories", &json!(&**stories.borrow_and_update())),
            _ = tick.tick() => event("tick", &json!({ "now_ms": now_ms() })),
            _ = recheck.tick() => match session::check(&board.inner.staff, token).await {
                Err(Refused::Unauthenticated(reason)) => {
                    deliver(event("signed-out", &json!({ "reason": reason }))).await;
                    return;
                }
                // A store that cannot be read now is no reason to close a duty officer's board.
                _ => continue,
            },
        };
        if !deliver(next).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page must work with no network but loopback: nothing it loads may come from
    /// elsewhere, so no asset names another host.
    #[test]
    fn the_page_loads_nothing_from_another_host() {
        for (name, text) in [
            ("index.html", INDEX_HTML),
            ("board.css", BOARD_CSS),
            ("board.js", BOARD_JS),
            ("pool.js", POOL_JS),
            ("coverage.js", COVERAGE_JS),
        ] {
            for needle in ["http://", "https://", "//cdn", "@import", "url(http"] {
                assert!(!text.contains(needle), "{name} contains {needle:?}");
            }
        }
        assert!(INDEX_HTML.contains(r#"src="board.js""#) && INDEX_HTML.contains(r#"href="board.css""#));
    }
}
