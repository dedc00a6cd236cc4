//! The operator's console: the single-page web UI under `/console/` (every
//! asset embedded in the binary), and its sign-in by user name and password
//! (the built-in `admin`, whose hash is in the `admin-password` file, or a
//! user of the state file). A signed-in cookie session stands in for a
//! bearer token of its user's role on the REST API (see `http::api::auth`);
//! the UI has no other route to data. Mutations made with the cookie must
//! carry the session's CSRF token in `X-CSRF-Token`.

pub mod assets;
pub mod password;
pub mod password_workers;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use crate::http::access::console_sessions::{self as sessions, Sessions};
use crate::http::problem::{ApiError, ProblemKind};
use crate::state::{ADMIN_USER, Role, Store};
use password_workers::PasswordWorkers;

/// The console's shared state.
#[derive(Debug, Clone)]
pub struct Console {
    pub data_dir: PathBuf,
    /// Where the other users are.
    pub store: Store,
    pub sessions: Arc<Sessions>,
    /// Where sign-ins hash the password (shared with the API's password change).
    pub password_workers: Arc<PasswordWorkers>,
}

impl Console {
    /// The console of the appliance whose state is in `data_dir`; creates the
    /// admin password on first start and prints it once.
    pub fn open(
        data_dir: PathBuf,
        store: Store,
        sessions: Arc<Sessions>,
        password_workers: Arc<PasswordWorkers>,
    ) -> Console {
        match password::ensure(&data_dir) {
            Ok(Some(initial)) => {
                tracing::warn!(password = %initial, "console: created the admin account; sign in as admin with this password (shown once; change it with `appliance admin set-password`)");
                println!("console admin password (shown once): {initial}");
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "console: cannot create the admin password; set one with `appliance admin set-password`")
            }
        }
        Console { data_dir, store, sessions, password_workers }
    }
}

/// Security headers of every console page and asset.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    media-src 'self' blob:; worker-src 'self' blob:; connect-src 'self'; font-src 'self'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn router(console: Console) -> Router {
    Router::new()
        .route("/console", get(|| async { Redirect::permanent("/console/") }))
        .route("/console/", get(index))
        .route("/console/assets/{name}", get(asset))
        .route("/console/api/session", get(whoami).post(sign_in).delete(sign_out))
        .with_state(console)
}

fn secure(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

async fn index() -> Response {
    let page = assets::get("index.html").expect("the console page is embedded");
    let mut response = secure((page.content_type_header(), page.bytes).into_response());
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Assets by exact name from the embedded map: no file system, so no traversal.
async fn asset(Path(name): Path<String>) -> Response {
    match assets::get(&name) {
        Some(asset) => {
            let mut response = secure((asset.content_type_header(), asset.bytes).into_response());
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
        None => secure(ApiError::not_found("no such console asset").into_response()),
    }
}

fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(sessions::cookie_value)
}

fn csrf_body(user: &str, role: Role, csrf: &str) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "user": user, "role": role, "csrf_token": csrf }))
}

/// The signed-in session's CSRF token (so a reloaded page can go on), or 401.
async fn whoami(State(console): State<Console>, headers: HeaderMap) -> Response {
    match session_id(&headers).and_then(|id| console.sessions.get(id)) {
        Some(signed_in) => no_store(csrf_body(&signed_in.user, signed_in.role, &signed_in.csrf).into_response()),
        None => ApiError::new(ProblemKind::Unauthorized, "not signed in").into_response(),
    }
}

fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    /// The user name; `admin` when absent (the console before users).
    #[serde(default = "admin_name")]
    user: String,
    password: String,
}

fn admin_name() -> String {
    ADMIN_USER.to_string()
}

/// The role of `user` if `password` is theirs and they are not disabled
/// (blocking: an argon2id check, and a read of the state file).
fn check_password(data_dir: &std::path::Path, store: &Store, user: &str, password: &str) -> Option<Role> {
    if user == ADMIN_USER {
        return password::verify(data_dir, password).then_some(Role::Admin);
    }
    match store.user(user) {
        Ok(Some(found)) if !found.disabled => password::matches(&found.password_hash, password).then_some(found.role),
        Ok(_) => {
            password::waste_a_check(password);
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "console: cannot read the users");
            None
        }
    }
}

/// The client's address (all clients share one limit where the server was not started with connect info).
fn client(extensions: &Extensions) -> IpAddr {
    crate::http::client_address::of(extensions).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// A 429 problem for a sign-in that may not start now.
fn try_later(kind: ProblemKind, detail: String, retry: Duration) -> Response {
    let mut response = ApiError::new(kind, detail).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry.as_secs().max(1)));
    response
}

/// Sign in: `{"user": "...", "password": "..."}` as JSON (a cross-site form
/// cannot send that; `user` defaults to `admin`). A wrong password, an
/// unknown user and a disabled one get the same answer. The attempt is charged to the failure budgets before the
/// password is hashed, on the password workers; when they are all busy it
/// gets 429 at once and its charge back.
async fn sign_in(State(console): State<Console>, extensions: Extensions, headers: HeaderMap, body: Bytes) -> Response {
    let client = client(&extensions);
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return ApiError::new(ProblemKind::UnsupportedMediaType, "send {\"password\": ...} as application/json")
            .into_response();
    }
    let Ok(form) = serde_json::from_slice::<SignIn>(&body) else {
        return ApiError::field("password", "send {\"user\": \"...\", \"password\": \"...\"}").into_response();
    };
    if form.password.chars().count() > password::MAX_CHARS || form.user.len() > 64 {
        // Longer than any password can be set: wrong, and not worth hashing.
        return ApiError::field("password", "wrong user name or password").into_response();
    }
    let user = form.user.clone();
    if let Err(retry) = console.sessions.begin_attempt(client, &user) {
        tracing::debug!(%client, "console: sign-in refused, too many failed attempts");
        let detail = format!("too many failed sign-ins; try again in {} s", retry.as_secs().max(1));
        return try_later(ProblemKind::TooManyAttempts, detail, retry);
    }
    let (data_dir, store) = (console.data_dir.clone(), console.store.clone());
    let check = move || check_password(&data_dir, &store, &form.user, &form.password);
    let verifying = match console.password_workers.try_run(check) {
        Ok(verifying) => verifying,
        Err(_) => {
            console.sessions.not_run(client, &user);
            let detail = "the appliance is checking too many sign-ins at once; try again in 1 s".to_string();
            return try_later(ProblemKind::TooManyRequests, detail, Duration::from_secs(1));
        }
    };
    let Some(role) = verifying.await.ok().flatten() else {
        tracing::warn!(%client, user = %truncated(&user), "console: failed sign-in");
        return ApiError::field("password", "wrong user name or password").into_response();
    };
    console.sessions.succeeded(client, &user);
    // A new id at every sign-in, and any session the browser had is dropped: no fixation.
    if let Some(old) = session_id(&headers) {
        console.sessions.remove(old);
    }
    let (id, csrf) = console.sessions.create(&user, role);
    tracing::info!(%client, %user, role = role.as_str(), "console: signed in");
    // Over HTTPS the browser must never send it back over plain HTTP.
    let secure = if over_tls(&extensions) { "; Secure" } else { "" };
    let cookie = format!(
        "{}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        sessions::COOKIE,
        sessions::LIFETIME.as_secs()
    );
    let mut response = no_store(csrf_body(&user, role, &csrf).into_response());
    response.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("cookie is ASCII"));
    response
}

/// A user name as logged (at most 64 characters of what was sent).
fn truncated(text: &str) -> String {
    text.chars().take(64).collect()
}

/// Whether the request came over TLS (HTTPS).
fn over_tls(extensions: &Extensions) -> bool {
    extensions.get::<crate::http::server::connection::OverTls>().is_some_and(|t| t.0)
}

/// Sign out: needs the CSRF token like every other mutation.
async fn sign_out(State(console): State<Console>, extensions: Extensions, headers: HeaderMap) -> Response {
    let Some(id) = session_id(&headers) else {
        return ApiError::new(ProblemKind::Unauthorized, "not signed in").into_response();
    };
    let Some(signed_in) = console.sessions.get(id) else {
        return ApiError::new(ProblemKind::Unauthorized, "not signed in").into_response();
    };
    let presented = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
    if !sessions::csrf_matches(&signed_in, presented) {
        return ApiError::new(ProblemKind::Forbidden, "missing or wrong X-CSRF-Token").into_response();
    }
    console.sessions.remove(id);
    let secure = if over_tls(&extensions) { "; Secure" } else { "" };
    let cookie = format!("{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}", sessions::COOKIE);
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("cookie is ASCII"));
    response
}
