//! Bearer-token authentication of API requests: `ReadAccess` admits read and
//! write tokens, `WriteAccess` only write tokens (403 for a read token).
//! Missing or invalid tokens get 401 with `WWW-Authenticate: Bearer`. Tokens
//! are checked against the store on every request, so a revocation (from the
//! API or the CLI in another process) takes effect at once.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::ApiState;
use super::problem::{ApiError, ProblemKind};
use crate::state::{ApiToken, Scope};

/// Longest `Authorization` header value considered.
const MAX_TOKEN_LEN: usize = 256;

/// A request made with a valid token of any scope.
#[derive(Debug, Clone)]
pub struct ReadAccess(pub ApiToken);

/// A request made with a valid write token.
#[derive(Debug, Clone)]
pub struct WriteAccess(pub ApiToken);

async fn authenticate(parts: &Parts, state: &ApiState) -> Result<ApiToken, ApiError> {
    let unauthorized = |detail: &str| ApiError::new(ProblemKind::Unauthorized, detail);
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Err(unauthorized("send an API token as `Authorization: Bearer <token>`"));
    };
    let value = value.to_str().map_err(|_| unauthorized("the Authorization header is not text"))?;
    if value.len() > MAX_TOKEN_LEN {
        return Err(unauthorized("the token is not valid"));
    }
    let (scheme, text) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || text.trim().is_empty() {
        return Err(unauthorized("use the Bearer scheme: `Authorization: Bearer <token>`"));
    }
    let text = text.trim().to_string();
    let store = state.store.clone();
    let token = super::blocking(move || store.authenticate(&text)).await?;
    token.ok_or_else(|| unauthorized("the token is not valid (revoked or mistyped)"))
}

impl FromRequestParts<ApiState> for ReadAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        authenticate(parts, state).await.map(ReadAccess)
    }
}

impl FromRequestParts<ApiState> for WriteAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let token = authenticate(parts, state).await?;
        if token.scope != Scope::Write {
            return Err(ApiError::new(ProblemKind::Forbidden, "this operation needs a token with the write scope"));
        }
        Ok(WriteAccess(token))
    }
}
