//! Access to API routes: `ReadAccess` admits read and write tokens (and a
//! signed-in console session), `WriteAccess` only write tokens (403 for a read
//! token). Who the caller is comes from `access::identity`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::api_state::ApiState;
use crate::http::access::identity::authenticate;
use crate::http::problem::{ApiError, ProblemKind};
use crate::state::{ApiToken, Scope};

/// A request made with a valid token of any scope.
#[derive(Debug, Clone)]
pub struct ReadAccess(pub ApiToken);

/// A request made with a valid write token.
#[derive(Debug, Clone)]
pub struct WriteAccess(pub ApiToken);

impl FromRequestParts<ApiState> for ReadAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        authenticate(parts, &state.store, &state.console).await.map(ReadAccess)
    }
}

impl FromRequestParts<ApiState> for WriteAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let token = authenticate(parts, &state.store, &state.console).await?;
        if token.scope != Scope::Write {
            return Err(ApiError::new(ProblemKind::Forbidden, "this operation needs a token with the write scope"));
        }
        Ok(WriteAccess(token))
    }
}
