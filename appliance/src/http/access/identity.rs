//! Who a request is: the local administrator (a connection on the control
//! socket), a bearer token (checked against the store), a signed-in console
//! session (its cookie), or nobody. Missing or invalid tokens get 401 with
//! `WWW-Authenticate: Bearer` (the API's authorization layer turns an
//! identity into a `Caller` and checks it against `route_roles`). Tokens are
//! checked against the store on every request, so a revocation takes effect at once.
//!
//! The control socket (`<data_dir>/appliance.sock`, owner-only) is how the
//! `appliance` CLI reaches the running server: whoever can open it can
//! already read and write the state file, so the file permission is the
//! credential (as with docker.sock). Its connections act as an admin, send
//! no token and are never rate limited.
//!
//! A signed-in console session (its cookie) stands in for a token of its user's role when
//! no `Authorization` header is sent; every method but GET and HEAD then needs
//! the session's CSRF token in `X-CSRF-Token` (403 without it).
//!
//! Who a request is (`identify`) is resolved once: the rate limiter needs it
//! before the handler runs, and leaves it in the request for the extractors.

use axum::http::request::Parts;
use axum::http::{Method, header};

use super::caller::Caller;
use super::console_sessions::{Sessions, SignedIn, cookie_value, csrf_matches};
use crate::http::problem::{ApiError, ProblemKind, blocking};
use crate::state::{ApiToken, Role, Store};

/// Longest `Authorization` header value considered.
const MAX_TOKEN_LEN: usize = 256;

/// Who a request says it is.
#[derive(Debug, Clone)]
pub enum Identity {
    /// A connection on the control socket: the local administrator.
    Local,
    /// An `Authorization` header: its valid token, or why it is refused.
    Bearer(Result<ApiToken, ApiError>),
    /// A signed-in console session's cookie (and no `Authorization` header).
    Console { id: String, signed_in: SignedIn },
    /// No credentials.
    Anonymous,
}

/// Marks every request of `router` as the local administrator's: only for
/// the router served on the owner-only control socket.
pub fn local_administrator(router: axum::Router) -> axum::Router {
    router.layer(axum::Extension(Identity::Local))
}

/// Who the request is (resolved once per request; see the module's note).
pub async fn identify(parts: &Parts, store: &Store, console: &Sessions) -> Identity {
    if let Some(known) = parts.extensions.get::<Identity>() {
        return known.clone();
    }
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        return Identity::Bearer(bearer(value, store).await);
    }
    let id = parts.headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(cookie_value);
    match id.and_then(|id| Some((id, console.get(id)?))) {
        Some((id, signed_in)) => Identity::Console { id: id.to_string(), signed_in },
        None => Identity::Anonymous,
    }
}

fn unauthorized(detail: &str) -> ApiError {
    ApiError::new(ProblemKind::Unauthorized, detail)
}

/// The token an `Authorization` header names, if it is valid.
async fn bearer(value: &axum::http::HeaderValue, store: &Store) -> Result<ApiToken, ApiError> {
    let value = value.to_str().map_err(|_| unauthorized("the Authorization header is not text"))?;
    if value.len() > MAX_TOKEN_LEN {
        return Err(unauthorized("the token is not valid"));
    }
    let (scheme, text) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || text.trim().is_empty() {
        return Err(unauthorized("use the Bearer scheme: `Authorization: Bearer <token>`"));
    }
    let text = text.trim().to_string();
    let store = store.clone();
    let token = blocking(move || store.authenticate(&text)).await?;
    token.ok_or_else(|| unauthorized("the token is not valid (revoked or mistyped)"))
}

/// Who a request acts as: its bearer token, or its console session's user.
pub async fn authenticate(parts: &Parts, store: &Store, console: &Sessions) -> Result<Caller, ApiError> {
    match identify(parts, store, console).await {
        Identity::Local => Ok(Caller { id: "local".into(), role: Role::Admin, channels: None }),
        Identity::Bearer(token) => token.map(|t| Caller::from(&t)),
        Identity::Console { signed_in, .. } => console_caller(parts, &signed_in),
        Identity::Anonymous => Err(unauthorized("send an API token as `Authorization: Bearer <token>`")),
    }
}

/// A signed-in console session as its user (`user:<name>`) with the role it
/// signed in with; every method but GET and HEAD must carry the session's CSRF token.
fn console_caller(parts: &Parts, signed_in: &SignedIn) -> Result<Caller, ApiError> {
    if parts.method != Method::GET && parts.method != Method::HEAD {
        let presented = parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
        if !csrf_matches(signed_in, presented) {
            return Err(ApiError::new(
                ProblemKind::Forbidden,
                "a console session must send its X-CSRF-Token on every change",
            ));
        }
    }
    Ok(Caller { id: format!("user:{}", signed_in.user), role: signed_in.role, channels: None })
}
