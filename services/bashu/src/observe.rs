//! What Kubernetes and Prometheus see of a `bashu` process: `/healthz` (alive), `/readyz` (NATS
//! connected, every stream there, this process's consumers created), `/metrics`, and the
//! request counters of the HTTP and gRPC listeners.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{
    Router,
    extract::{MatchedPath, Request},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use bashu_bus::{Bus, ConsumerSpec};
use bashu_proto::alert::v1::CountyAlertState;
use bashu_telemetry::metrics::{AlertStateLabels, ConsumerLabels, GrpcLabels, HttpLabels};
use tonic::codegen::http;

/// What the admin target adds to a scrape: the bus's consumers and the alert board.
#[derive(Clone)]
pub(crate) struct OperatorView {
    pub(crate) bus: Bus,
    pub(crate) board: bashu_alerts::AlertBoard,
}

/// `/healthz`, `/readyz` and `/metrics`.
pub(crate) fn routes(bus: Bus, consumers: Vec<ConsumerSpec>, operator_view: Option<OperatorView>) -> Router {
    let consumers = Arc::new(consumers);
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let (bus, consumers) = (bus.clone(), consumers.clone());
                async move {
                    match bus.operations().ready(&consumers).await {
                        Ok(()) => (StatusCode::OK, "ready".to_owned()),
                        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason),
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let view = operator_view.clone();
                async move {
                    if let Some(view) = view {
                        refresh(&view).await;
                    }
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        bashu_telemetry::metrics().encode(),
                    )
                }
            }),
        )
}

/// Gauges read from the bus at scrape time (only the admin target does this, so a deployment
/// reports them once).
async fn refresh(view: &OperatorView) {
    let metrics = bashu_telemetry::metrics();
    if let Ok((_, consumers)) = view.bus.operations().health().await {
        for consumer in consumers {
            let labels = ConsumerLabels { stream: consumer.stream, consumer: consumer.name };
            metrics.consumer_pending.get_or_create(&labels).set(consumer.pending as i64);
            metrics.consumer_redelivered.get_or_create(&labels).set(consumer.redelivered as i64);
        }
    }
    if let Ok(chains) = view.board.chains(true).await {
        let mut totals = std::collections::BTreeMap::<String, i64>::new();
        for name in ["SENT", "RECEIVED", "ACKNOWLEDGED", "ESCALATED", "CANCELLED", "EXPIRED"] {
            totals.insert(name.to_lowercase(), 0);
        }
        for chain in &chains {
            for (state, count) in &chain.counts {
                let name =
                    CountyAlertState::from_str_name(state).map_or_else(|| state.to_lowercase(), |s| s.short_name());
                *totals.entry(name).or_default() += i64::from(*count);
            }
        }
        for (state, count) in totals {
            metrics.alert_counties.get_or_create(&AlertStateLabels { state }).set(count);
        }
    }
}

/// Counts every routed HTTP request by method, route pattern and status.
pub(crate) async fn count_http(request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let response = next.run(request).await;
    bashu_telemetry::metrics()
        .http_requests
        .get_or_create(&HttpLabels { method, route, status: response.status().as_u16() })
        .inc();
    response.into_response()
}

/// Counts every gRPC call by method and status (a call that fails before its first message
/// carries its status in the response headers; one that started answering counts as OK).
#[derive(Clone)]
pub(crate) struct CountGrpc<S>(pub(crate) S);

/// The tower layer of [`CountGrpc`].
#[derive(Clone, Copy)]
pub(crate) struct CountGrpcLayer;

impl<S> tower::Layer<S> for CountGrpcLayer {
    type Service = CountGrpc<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CountGrpc(inner)
    }
}

impl<S, B, R> tower::Service<http::Request<B>> for CountGrpc<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<R>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().to_owned();
        let answer = self.0.call(request);
        Box::pin(async move {
            let response = answer.await?;
            let code = response
                .headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<i32>().ok())
                .map(|c| format!("{:?}", tonic::Code::from_i32(c)))
                .unwrap_or_else(|| "Ok".to_owned());
            bashu_telemetry::metrics().grpc_requests.get_or_create(&GrpcLabels { method, code }).inc();
            Ok(response)
        })
    }
}
