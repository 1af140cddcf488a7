//! The HTTP front end: `POST /v1/alerts` (signed CAP XML), `POST /v1/alerts/validate`,
//! `POST /v1/alerts/{key}/acknowledgements`, `GET /v1/alerts/{key}`.

use axum::{
    Json, Router,
    body::{Body, to_bytes},
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;

use crate::{Alerts, Callers, DESK_HEADER, Error, SIGNATURE_HEADER, Submission, TIMESTAMP_HEADER};

#[derive(Clone)]
struct Front {
    alerts: Alerts,
    callers: Callers,
}

pub(crate) fn router(alerts: Alerts, callers: Callers) -> Router {
    let signed = Router::new()
        .route("/v1/alerts", post(issue))
        .route("/v1/alerts/validate", post(validate))
        .with_state(alerts.clone());
    let by_token = Router::new()
        .route("/v1/alerts/{alert_key}", get(status))
        .route("/v1/alerts/{alert_key}/acknowledgements", post(acknowledge))
        .with_state(Front { alerts, callers });
    signed.merge(by_token)
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok())
}

async fn body_bytes(alerts: &Alerts, body: Body) -> Result<axum::body::Bytes, Error> {
    let limit = alerts.inner.config.max_document_bytes;
    to_bytes(body, limit).await.map_err(|_| Error::TooLarge { limit })
}

/// The media types a CAP document may be sent as; a `charset` parameter is allowed.
const XML_TYPES: [&str; 3] = ["application/cap+xml", "application/xml", "text/xml"];

/// Refuses a body not declared as XML: a JSON, form or untyped body is a client's mistake, named
/// before anything is read or checked.
fn declared_xml(headers: &HeaderMap) -> Result<(), Error> {
    let declared = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media_type = declared.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if XML_TYPES.contains(&media_type.as_str()) {
        return Ok(());
    }
    let said = if declared.is_empty() { "no Content-Type".to_owned() } else { format!("Content-Type {declared}") };
    Err(Error::UnsupportedMediaType(format!("{said}; send CAP 1.2 as {}", XML_TYPES.join(", "))))
}

fn missing(name: &str) -> Error {
    Error::Unauthenticated(format!("the {name} header is missing or not text"))
}

/// The signing time and the signature from a submission's headers (HTTP or NATS alike).
pub(crate) fn signing<'a>(header: impl Fn(&str) -> Option<&'a str>) -> Result<(i64, Vec<u8>), Error> {
    let timestamp = header(TIMESTAMP_HEADER)
        .ok_or_else(|| missing(TIMESTAMP_HEADER))?
        .parse::<i64>()
        .map_err(|_| Error::Unauthenticated(format!("{TIMESTAMP_HEADER} must be Unix seconds")))?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(header(SIGNATURE_HEADER).ok_or_else(|| missing(SIGNATURE_HEADER))?)
        .map_err(|_| Error::Unauthenticated(format!("{SIGNATURE_HEADER} is not base64")))?;
    Ok((timestamp, signature))
}

async fn issue(State(alerts): State<Alerts>, headers: HeaderMap, body: Body) -> Response {
    let result = async {
        declared_xml(&headers)?;
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let desk_id = header(DESK_HEADER).ok_or_else(|| missing(DESK_HEADER))?;
        let (timestamp, signature) = signing(header)?;
        let cap_xml = body_bytes(&alerts, body).await?;
        alerts.submit(Submission { desk_id, timestamp, signature: &signature, cap_xml: &cap_xml }, None).await
    }
    .await;
    match result {
        Ok(accepted) => {
            let status = if accepted.duplicate { StatusCode::OK } else { StatusCode::ACCEPTED };
            (status, Json(accepted)).into_response()
        }
        Err(error) => error_response(&error),
    }
}

async fn validate(State(alerts): State<Alerts>, headers: HeaderMap, body: Body) -> Response {
    if let Err(error) = declared_xml(&headers) {
        return error_response(&error);
    }
    match body_bytes(&alerts, body).await {
        Ok(cap_xml) => Json(alerts.validate(&cap_xml)).into_response(),
        Err(error) => error_response(&error),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AcknowledgeBody {
    county: String,
    acknowledged_by: String,
    #[serde(default)]
    note: String,
}

async fn acknowledge(
    State(Front { alerts, callers }): State<Front>,
    Path(alert_key): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let acting = callers.identify(authorization(&headers)).await?;
        let bytes = body_bytes(&alerts, body).await?;
        let body: AcknowledgeBody = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Invalid(vec![crate::cap::Problem { path: "body".into(), reason: e.to_string() }]))?;
        acting.may_acknowledge(&alerts.county_code(&body.county)?, |desk| alerts.desk_areas(desk))?;
        let recorder = acting.recorder("POST /v1/alerts/{key}/acknowledgements");
        alerts.acknowledge(&alert_key, &body.county, &body.acknowledged_by, &body.note, recorder).await
    }
    .await;
    match result {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({"acknowledged": true}))).into_response(),
        Err(error) => error_response(&error),
    }
}

async fn status(
    State(Front { alerts, callers }): State<Front>,
    Path(alert_key): Path<String>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let acting = callers.identify(authorization(&headers)).await?;
        let chain = alerts.status(&alert_key).await?;
        acting.may_read(&chain)?;
        Ok::<_, Error>(chain)
    };
    match result.await {
        Ok(chain) => Json(chain).into_response(),
        Err(error) => error_response(&error),
    }
}

/// The HTTP status an error is answered with (the NATS intake reports the same).
pub(crate) fn status_of(error: &Error) -> StatusCode {
    match error {
        Error::Invalid(_) => StatusCode::BAD_REQUEST,
        Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::Conflict(_) | Error::ChainCancelled(_) => StatusCode::CONFLICT,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Error::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        Error::Bus(_) | Error::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn error_response(error: &Error) -> Response {
    let status = status_of(error);
    let body = json!({"error": {"code": error.code(), "message": error.to_string(), "problems": error.problems()}});
    (status, Json(body)).into_response()
}
