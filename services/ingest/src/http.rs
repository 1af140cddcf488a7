//! The HTTP front end. Every route but the published schemas needs a county's bearer token.
//! Errors are `{"error": {"code", "message", "fields": [{"field", "reason"}]}}`.

use axum::{
    Json, Router,
    body::{Body, Bytes, to_bytes},
    extract::{DefaultBodyLimit, Multipart, Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use bashu_proto::{ingest::v1::SubmitStoryResponse, registry::v1::IngestDefaults, story::v1::Story};
use serde_json::{Value, json};

use crate::{Error, FieldError, Ingest, Result, feeds::FeedSource, media};

pub(crate) fn router(ingest: Ingest) -> Router {
    let media_limit = ingest.largest_media() + 64 * 1024;
    Router::new()
        .route("/v1/stories", post(submit_story))
        .route("/v1/stories/ninjs", post(submit_ninjs))
        .route("/v1/stories/batch", post(submit_batch))
        .route("/v1/stories/mapped/{mapping}", post(submit_mapped))
        .route("/v1/stories/{origin}/{id}/{version}", get(story_status))
        .route("/v1/mappings", post(register_mapping))
        .route("/v1/mappings/{mapping}/dry-run", post(dry_run_mapping))
        .route("/v1/ingest-defaults", get(get_ingest_defaults).put(put_ingest_defaults))
        .route("/v1/feeds", get(list_feeds))
        .route("/v1/feeds/{name}", put(put_feed).delete(delete_feed))
        .route("/v1/media", post(upload_media).layer(DefaultBodyLimit::max(media_limit)))
        .route("/v1/media/{sha256}", get(fetch_media))
        .route("/v1/schemas/{file}", get(schema))
        .with_state(ingest)
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
}

fn media_type(headers: &HeaderMap) -> String {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

async fn body(ingest: &Ingest, body: Body) -> Result<Bytes> {
    let limit = ingest.max_body_bytes();
    to_bytes(body, limit).await.map_err(|_| Error::TooLarge { limit })
}

fn parse_json(bytes: &[u8]) -> Result<Value> {
    serde_json::from_slice(bytes).map_err(|e| Error::Malformed(FieldError::new("", e.to_string())))
}

fn accepted(response: SubmitStoryResponse) -> Response {
    let status = if response.duplicate { StatusCode::OK } else { StatusCode::ACCEPTED };
    (status, Json(response)).into_response()
}

/// One story as `county`: the answer of its single item.
async fn submit_one(ingest: &Ingest, county: &str, story: Story, format: &str) -> Result<Response> {
    let answer = ingest.submit_as(county, vec![story], format).await?.pop().expect("one answer per story");
    answer.map(accepted)
}

async fn submit_story(State(ingest): State<Ingest>, headers: HeaderMap, request: Body) -> Result<Response> {
    let county = ingest.authenticate(authorization(&headers)).await?;
    let bytes = body(&ingest, request).await?;
    match media_type(&headers).as_str() {
        "application/json" => submit_one(&ingest, &county, parse_story(&bytes)?, "json").await,
        "application/ninjs+json" => submit_one(&ingest, &county, parse_ninjs(&bytes, &county)?, "ninjs").await,
        other => Err(Error::UnsupportedMediaType(other.to_owned())),
    }
}

async fn submit_ninjs(State(ingest): State<Ingest>, headers: HeaderMap, request: Body) -> Result<Response> {
    let county = ingest.authenticate(authorization(&headers)).await?;
    let story = parse_ninjs(&body(&ingest, request).await?, &county)?;
    submit_one(&ingest, &county, story, "ninjs").await
}

/// `{"stories": [<Story>, …]}` → `{"results": [{"status": 202, …} | {"status": 400, "error": …}]}`.
async fn submit_batch(State(ingest): State<Ingest>, headers: HeaderMap, request: Body) -> Result<Response> {
    let county = ingest.authenticate(authorization(&headers)).await?;
    let bytes = body(&ingest, request).await?;
    let items = match parse_json(&bytes)?.get_mut("stories").map(Value::take) {
        Some(Value::Array(items)) => items,
        _ => return Err(Error::Malformed(FieldError::new("stories", "a list of stories"))),
    };
    // Each item parses on its own, so one broken item does not hide the others' answers.
    let parsed: Vec<Result<Story>> = items.iter().map(|item| parse_story(item.to_string().as_bytes())).collect();
    let stories = parsed.iter().filter_map(|p| p.as_ref().ok().cloned()).collect();
    let mut submitted = ingest.submit_as(&county, stories, "json").await?.into_iter();
    let results: Vec<Value> = parsed
        .into_iter()
        .enumerate()
        .map(|(i, parsed)| {
            let answer = parsed.and_then(|_| submitted.next().expect("one answer per parsed story"));
            match answer {
                Ok(response) => json!({"status": if response.duplicate { 200 } else { 202 }, "result": response}),
                Err(error) => {
                    let error = prefix_fields(error, i);
                    json!({"status": status_of(&error).as_u16(), "error": error_body(&error)["error"]})
                }
            }
        })
        .collect();
    Ok(Json(json!({"results": results})).into_response())
}

fn prefix_fields(error: Error, index: usize) -> Error {
    let prefix = |f: FieldError| {
        let field =
            if f.field.is_empty() { format!("stories[{index}]") } else { format!("stories[{index}].{}", f.field) };
        FieldError { field, reason: f.reason }
    };
    match error {
        Error::Invalid(fields) => Error::Invalid(fields.into_iter().map(prefix).collect()),
        Error::Malformed(field) => Error::Malformed(prefix(field)),
        other => other,
    }
}

async fn submit_mapped(
    State(ingest): State<Ingest>,
    Path(name): Path<String>,
    headers: HeaderMap,
    request: Body,
) -> Result<Response> {
    let county = ingest.authenticate(authorization(&headers)).await?;
    let mapping = ingest.mapping(&name).await?;
    let story = mapping.to_story(&parse_json(&body(&ingest, request).await?)?).map_err(Error::Invalid)?;
    submit_one(&ingest, &county, story, &format!("mapping:{name}")).await
}

/// Applies a mapping to a sample and answers the story it would make, submitting nothing.
async fn dry_run_mapping(
    State(ingest): State<Ingest>,
    Path(name): Path<String>,
    headers: HeaderMap,
    request: Body,
) -> Result<Response> {
    ingest.authenticate(authorization(&headers)).await?;
    let mapping = ingest.mapping(&name).await?;
    let story = mapping.to_story(&parse_json(&body(&ingest, request).await?)?).map_err(Error::Invalid)?;
    Ok(Json(json!({"story": story})).into_response())
}

async fn register_mapping(State(ingest): State<Ingest>, headers: HeaderMap, request: Body) -> Result<Response> {
    let county = ingest.authenticate(authorization(&headers)).await?;
    let name = ingest.register_mapping(&county, &body(&ingest, request).await?).await?;
    Ok((StatusCode::CREATED, Json(json!({"name": name}))).into_response())
}

/// What became of a submitted version: `accepted` (waiting for moderation), `approved`, `held`
/// (for review) or `rejected`, with moderation's reason and every rule's outcome.
async fn story_status(
    State(ingest): State<Ingest>,
    Path((origin, id, version)): Path<(String, String, u32)>,
    headers: HeaderMap,
) -> Result<Response> {
    let county = ingest.authenticate(authorization(&headers)).await?;
    // Another county's story answers exactly as one never submitted: the answer must not tell a
    // county which ids exist elsewhere.
    let answer = ingest
        .status(&origin, &id, version)
        .await?
        .filter(|answer| answer["originCounty"] == county.as_str())
        .ok_or_else(|| Error::NotFound("your county submitted no such story version".into()))?;
    Ok(Json(answer).into_response())
}

async fn get_ingest_defaults(State(ingest): State<Ingest>, headers: HeaderMap) -> Result<Response> {
    let county = ingest.authenticate(authorization(&headers)).await?;
    Ok(Json(ingest.ingest_defaults(&county)).into_response())
}

/// `{"category": "CATEGORY_…", "sharing": {…}}` in proto3 JSON; `{}` clears the defaults.
async fn put_ingest_defaults(State(ingest): State<Ingest>, headers: HeaderMap, request: Body) -> Result<Response> {
    let county = ingest.authenticate(authorization(&headers)).await?;
    let bytes = body(&ingest, request).await?;
    let defaults = parse_strict::<IngestDefaults>(&bytes)?;
    Ok(Json(ingest.put_ingest_defaults(&county, defaults).await?).into_response())
}

async fn list_feeds(State(ingest): State<Ingest>, headers: HeaderMap) -> Result<Response> {
    let county = ingest.authenticate(authorization(&headers)).await?;
    let feeds: Vec<Value> = ingest
        .feeds(Some(&county))
        .await?
        .into_iter()
        .map(|feed| json!({"name": feed.name, "source": feed.source, "state": feed.state}))
        .collect();
    Ok(Json(json!({"feeds": feeds})).into_response())
}

async fn put_feed(
    State(ingest): State<Ingest>,
    Path(name): Path<String>,
    headers: HeaderMap,
    request: Body,
) -> Result<Response> {
    let county = ingest.authenticate(authorization(&headers)).await?;
    let bytes = body(&ingest, request).await?;
    let source: FeedSource = parse_strict(&bytes)?;
    ingest.put_feed(&county, &name, source).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn delete_feed(State(ingest): State<Ingest>, Path(name): Path<String>, headers: HeaderMap) -> Result<Response> {
    let county = ingest.authenticate(authorization(&headers)).await?;
    ingest.delete_feed(&county, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `multipart/form-data` with one part named `file` that has its own content type.
async fn upload_media(State(ingest): State<Ingest>, headers: HeaderMap, mut form: Multipart) -> Result<Response> {
    let county = ingest.authenticate(authorization(&headers)).await?;
    ingest.admit_upload(&county)?;
    let malformed = |reason: String| Error::Malformed(FieldError::new("file", reason));
    while let Some(mut field) = form.next_field().await.map_err(|e| malformed(e.to_string()))? {
        if field.name() != Some("file") {
            continue;
        }
        let media_type = field.content_type().unwrap_or("").to_ascii_lowercase();
        let limit = ingest
            .media_limit(&media_type)
            .ok_or_else(|| Error::UnsupportedMediaType(format!("{media_type} (media: see ingest.media_limits)")))?;
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(|e| malformed(e.to_string()))? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > limit {
                return Err(Error::TooLarge { limit });
            }
        }
        let stored = media::store(ingest.media_objects(), &media_type, bytes, &county).await?;
        return Ok((StatusCode::CREATED, Json(stored)).into_response());
    }
    Err(malformed("a part named `file` is required".into()))
}

async fn fetch_media(State(ingest): State<Ingest>, Path(sha256): Path<String>, headers: HeaderMap) -> Result<Response> {
    ingest.authenticate(authorization(&headers)).await?;
    let (media_type, bytes) = media::fetch(ingest.media_objects(), &sha256).await?;
    let content_type =
        HeaderValue::from_str(&media_type).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    Ok(([(header::CONTENT_TYPE, content_type)], bytes).into_response())
}

/// The published schemas: the Bashu ninjs profile and the official ones it builds on.
async fn schema(Path(file): Path<String>) -> Result<Response> {
    let text = match file.as_str() {
        "bashu-ninjs-profile_1.0.json" => bashu_ninjs::PROFILE_SCHEMA,
        "ninjs-schema_3.2.json" => bashu_ninjs::OFFICIAL_SCHEMA,
        "GeoJSON.json" => bashu_ninjs::GEOJSON_SCHEMA,
        _ => return Err(Error::NotFound(format!("no schema {file}"))),
    };
    Ok(([(header::CONTENT_TYPE, "application/schema+json")], text).into_response())
}

/// Parses the canonical JSON, naming the field that broke it.
pub(crate) fn parse_story(bytes: &[u8]) -> Result<Story> {
    parse_strict(bytes)
}

/// Parses a JSON body, naming the field that does not parse (unknown fields included).
fn parse_strict<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let field = if path == "." { String::new() } else { path };
        Error::Malformed(FieldError::new(field, error.into_inner().to_string()))
    })?;
    deserializer.end().map_err(|e| Error::Malformed(FieldError::new("", e.to_string())))?;
    Ok(value)
}

/// Parses and maps a ninjs document; schema problems are named by JSON Pointer.
fn parse_ninjs(bytes: &[u8], county: &str) -> Result<Story> {
    let document = parse_json(bytes)?;
    bashu_ninjs::story_from_ninjs(&document, county).map_err(|problems| {
        Error::Invalid(problems.into_iter().map(|p| FieldError::new(format!("ninjs:{}", p.path), p.reason)).collect())
    })
}

fn status_of(error: &Error) -> StatusCode {
    match error {
        Error::Invalid(_) | Error::InvalidRequest(_) | Error::Malformed(_) => StatusCode::BAD_REQUEST,
        Error::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        Error::Conflict { .. } => StatusCode::CONFLICT,
        Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::RateLimited { .. } | Error::TooManyItems => StatusCode::TOO_MANY_REQUESTS,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Bus(_) | Error::Store(_) => {
            tracing::warn!(error = %error, "submission not accepted, bus unavailable");
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

fn error_body(error: &Error) -> Value {
    json!({"error": {"code": error.code(), "message": error.to_string(), "fields": error.fields()}})
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let mut response = (status_of(&self), Json(error_body(&self))).into_response();
        if let Error::RateLimited { retry_after } = &self {
            let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Error::Unauthenticated(_) = &self {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
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

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 500, ..Default::default() })]
        #[test]
        fn canonical_json_parses_or_fails_cleanly(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
                                                  text in r#"\{("[a-zA-Z]{1,12}":("[^"]{0,8}"|[0-9]{1,12}|true|null|\[\]|\{\}),?){0,6}\}"#) {
            let _ = parse_story(&bytes);
            let _ = parse_story(text.as_bytes());
        }
    }
}
