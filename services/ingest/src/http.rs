//! The HTTP front end: `POST /v1/stories` with the canonical proto3 JSON of `Story`.

use axum::{
    Json, Router,
    body::{Body, to_bytes},
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use bashu_proto::story::v1::Story;
use serde_json::json;

use crate::{Error, FieldError, Ingest};

pub(crate) fn router(ingest: Ingest) -> Router {
    Router::new()
        .route("/v1/stories", post(submit_story))
        .route("/v1/stories/{origin}/{id}/{version}", get(story_status))
        .with_state(ingest)
}

/// What became of a submitted version: `accepted` (waiting for moderation), `approved`, `held`
/// (for review) or `rejected`, with moderation's reason and every rule's outcome.
async fn story_status(
    State(ingest): State<Ingest>,
    Path((origin, id, version)): Path<(String, String, u32)>,
) -> Response {
    match ingest.status(&origin, &id, version).await {
        Ok(Some(status)) => Json(status).into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            Json(
                json!({"error": {"code": "not_found", "message": "no such story version was accepted", "fields": []}}),
            ),
        )
            .into_response(),
        Err(error) => error_response(&error),
    }
}

async fn submit_story(State(ingest): State<Ingest>, headers: HeaderMap, body: Body) -> Response {
    match parse_and_submit(&ingest, &headers, body).await {
        Ok(response) => {
            let status = if response.duplicate { StatusCode::OK } else { StatusCode::ACCEPTED };
            (status, Json(response)).into_response()
        }
        Err(error) => error_response(&error),
    }
}

async fn parse_and_submit(
    ingest: &Ingest,
    headers: &HeaderMap,
    body: Body,
) -> crate::Result<bashu_proto::ingest::v1::SubmitStoryResponse> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return Err(Error::UnsupportedMediaType(content_type.to_owned()));
    }
    let limit = ingest.max_body_bytes();
    let bytes = to_bytes(body, limit).await.map_err(|_| Error::TooLarge { limit })?;
    let story = parse_story(&bytes)?;
    ingest.submit(story, "json").await
}

/// Parses the canonical JSON, naming the field that broke it.
fn parse_story(bytes: &[u8]) -> crate::Result<Story> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let story: Story = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let field = if path == "." { String::new() } else { path };
        Error::Malformed(FieldError::new(field, error.into_inner().to_string()))
    })?;
    deserializer.end().map_err(|e| Error::Malformed(FieldError::new("", e.to_string())))?;
    Ok(story)
}

fn error_response(error: &Error) -> Response {
    let status = match error {
        Error::Invalid(_) | Error::Malformed(_) => StatusCode::BAD_REQUEST,
        Error::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        Error::Conflict { .. } => StatusCode::CONFLICT,
        Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Error::Bus(_) | Error::Store(_) => {
            tracing::warn!(error = %error, "submission not accepted, bus unavailable");
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    let body = json!({
        "error": {
            "code": error.code(),
            "message": error.to_string(),
            "fields": error.fields(),
        }
    });
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_json_names_the_field() {
        let error = parse_story(br#"{"id":"a","sharing":{"partners":"yes"}}"#).unwrap_err();
        assert_eq!(error.fields()[0].field, "sharing.partners");
        let error = parse_story(br#"{"id":"a","headlne":"typo"}"#).unwrap_err();
        assert!(error.fields()[0].reason.contains("headlne"), "{:?}", error.fields());
        let error = parse_story(b"{\"id\":\"\xff\"}").unwrap_err();
        assert!(matches!(error, Error::Malformed(_)));
        assert!(parse_story(br#"{"id":"a"} trailing"#).is_err());
    }

    #[test]
    fn canonical_json_parses() {
        let story = parse_story(
            br#"{"id":"lc-1","version":1,"originCounty":"511083","category":"CATEGORY_POLICY",
                 "createdAt":"2026-11-28T08:00:00+08:00","sharing":{"partners":true}}"#,
        )
        .unwrap();
        assert_eq!(story.origin_county, "511083");
        assert_eq!(story.created_at.unwrap().seconds, 1_795_824_000);
        assert!(story.sharing.unwrap().partners);
    }
}
