//! Signing in to the board. The login form posts a staff token; once it checks out, the browser
//! keeps it in an `HttpOnly`, `SameSite=Strict` cookie scoped to `/board`, so it is never in a
//! URL, never readable by the page's script, and sent only by the board's own requests. Every
//! request checks the token again, so a revoked token stops working at once, and the live stream
//! checks it again every half minute.

use axum::{
    Json,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use bashu_registry::{Caller, StaffTokens};
use serde::Deserialize;
use serde_json::json;
use tracing::{info, warn};

/// The cookie that carries the token.
const COOKIE: &str = "bashu_board";
/// Where the cookie is sent.
const COOKIE_PATH: &str = "/board";
/// A shift and a half: a projector left on overnight signs in again the next day.
const COOKIE_MAX_AGE: time::Duration = time::Duration::hours(12);
/// Longer than any token Bashu issues or accepts.
const MAX_TOKEN_BYTES: usize = 512;

/// Why a board request was refused; answered as JSON like every Bashu HTTP error.
#[derive(Debug)]
pub(crate) enum Refused {
    /// No token, or one that is not a live staff token.
    Unauthenticated(&'static str),
    /// The request itself is malformed.
    Invalid { field: &'static str, reason: String },
    /// The token store could not be read.
    Unavailable,
    /// Too many pages are open on this process.
    Busy,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let (status, code, message, problems) = match self {
            Refused::Unauthenticated(message) => {
                (StatusCode::UNAUTHORIZED, "unauthenticated", message.to_owned(), json!([]))
            }
            Refused::Invalid { field, reason } => (
                StatusCode::BAD_REQUEST,
                "invalid",
                format!("{field}: {reason}"),
                json!([{ "field": field, "reason": reason }]),
            ),
            Refused::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the staff token store cannot be read".into(),
                json!([]),
            ),
            Refused::Busy => {
                (StatusCode::SERVICE_UNAVAILABLE, "busy", "too many boards are open on this process".into(), json!([]))
            }
        };
        let body = json!({ "error": { "code": code, "message": message, "problems": problems } });
        (status, [(axum::http::header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
    }
}

/// The token in a request's cookie, if it carries one that decodes.
fn token_of(jar: &CookieJar) -> Option<String> {
    let value = jar.get(COOKIE)?.value();
    let bytes = URL_SAFE_NO_PAD.decode(value).ok()?;
    String::from_utf8(bytes).ok().filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_BYTES)
}

/// Checks a token: any live staff token may read the board (viewer or higher).
pub(crate) async fn check(staff: &StaffTokens, token: &str) -> Result<Caller, Refused> {
    match staff.authenticate(token).await {
        Ok(Ok(caller)) => Ok(caller),
        Ok(Err(_)) => Err(Refused::Unauthenticated("the token is not a live staff token")),
        Err(error) => {
            warn!(error = %error, "duty board: staff tokens unreadable");
            Err(Refused::Unavailable)
        }
    }
}

/// The signed-in caller of a request and their token (for re-checks on the live stream).
pub(crate) async fn signed_in(staff: &StaffTokens, jar: &CookieJar) -> Result<(Caller, String), Refused> {
    let token = token_of(jar).ok_or(Refused::Unauthenticated("sign in with a staff token"))?;
    Ok((check(staff, &token).await?, token))
}

/// What the login form posts.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Login {
    token: String,
}

/// Who is signed in, as the page shows it.
pub(crate) fn describe(caller: &Caller) -> serde_json::Value {
    let role = caller.role.short_name();
    json!({ "name": caller.name, "role": role, "desk": caller.desk_id })
}

/// `POST /board/session`: checks the token and sets the cookie.
pub(crate) async fn sign_in(
    staff: &StaffTokens,
    headers: &HeaderMap,
    jar: CookieJar,
    body: &[u8],
) -> Result<(CookieJar, Json<serde_json::Value>), Refused> {
    let login: Login = serde_json::from_slice(body)
        .map_err(|e| Refused::Invalid { field: "body", reason: format!("expected {{\"token\": \"…\"}}: {e}") })?;
    let token = login.token.trim();
    if token.is_empty() {
        return Err(Refused::Invalid { field: "token", reason: "empty".into() });
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Refused::Invalid { field: "token", reason: format!("longer than {MAX_TOKEN_BYTES} bytes") });
    }
    let caller = match check(staff, token).await {
        Ok(caller) => caller,
        Err(refused) => {
            warn!("duty board: sign-in refused");
            return Err(refused);
        }
    };
    info!(staff = %caller.name, "duty board: signed in");
    // Behind a TLS-terminating proxy the cookie is marked Secure, so it never travels in clear.
    let behind_tls = headers.get("x-forwarded-proto").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let cookie = Cookie::build((COOKIE, URL_SAFE_NO_PAD.encode(token)))
        .path(COOKIE_PATH)
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(behind_tls)
        .max_age(COOKIE_MAX_AGE)
        .build();
    Ok((jar.add(cookie), Json(describe(&caller))))
}

/// `DELETE /board/session`: forgets the cookie.
pub(crate) fn sign_out(jar: CookieJar) -> (CookieJar, StatusCode) {
    (jar.remove(Cookie::build(COOKIE).path(COOKIE_PATH)), StatusCode::NO_CONTENT)
}
