//! API token routes (admin): list, create (the token text is in the
//! response, once) with a role (or a legacy scope) and optionally restricted
//! to channels, and revoke. A token cannot revoke itself.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::api_state::ApiState;
use super::errors::WriteErrors;
use super::json_body::ApiJson;
use super::pagination::{Page, PageQuery};
use super::resources::{CreatedToken, TokenResource};
use crate::http::access::caller::Caller;
use crate::http::problem::blocking;
use crate::http::problem::{ApiError, ProblemKind};
use crate::state::AuditAction;
use crate::state::{Role, Scope, TokenGrant};

/// A new token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// What the token is for (shown in lists).
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9 ._:@/+-]{0,63}$")]
    pub name: String,
    /// What the token may do. Give `role` or (legacy) `scope`: `read` is `viewer`, `write` is `admin`.
    #[serde(default)]
    pub role: Option<Role>,
    /// Legacy: `read` (viewer) or `write` (admin); with `role`, they must agree.
    #[serde(default)]
    pub scope: Option<Scope>,
    /// Restricts the token to these channels (viewer or operator only): another channel's routes
    /// answer 404 as if it did not exist, lists show only these, appliance-wide routes 403.
    #[serde(default)]
    #[schema(max_items = 64, min_items = 1, value_type = Option<Vec<String>>, pattern = "^[a-z0-9_-]{1,64}$")]
    pub channels: Option<Vec<String>>,
}

impl CreateToken {
    /// The grant the body asks for.
    fn grant(&self) -> Result<TokenGrant, ApiError> {
        let role = match (self.role, self.scope) {
            (Some(role), None) => role,
            (None, Some(scope)) => scope.role(),
            (Some(role), Some(scope)) if scope.role() == role => role,
            (Some(_), Some(_)) => return Err(ApiError::field("scope", "contradicts `role`; send `role` alone")),
            (None, None) => return Err(ApiError::field("role", "give the token a role: viewer, operator or admin")),
        };
        Ok(TokenGrant { role, channels: self.channels.clone() })
    }
}

/// List tokens (never their secrets).
#[utoipa::path(get, path = "/tokens", tag = "tokens", params(PageQuery),
    responses((status = 200, description = "A page of tokens", body = Page<TokenResource>), WriteErrors),
    security(("bearer" = [])))]
pub async fn list_tokens(
    State(api): State<ApiState>,
    _: Caller,
    page: PageQuery,
) -> Result<Json<Page<TokenResource>>, ApiError> {
    let store = api.store.clone();
    let limit = page.limit();
    let list = blocking(move || store.list_tokens(page.cursor.as_deref(), limit)).await?;
    Ok(Json(Page::from_state(list, TokenResource::from)))
}

/// Create a token; its text is returned this once.
#[utoipa::path(post, path = "/tokens", tag = "tokens", request_body = CreateToken,
    responses((status = 201, description = "Created; keep `token`, it is not shown again", body = CreatedToken), WriteErrors),
    security(("bearer" = [])))]
pub async fn create_token(
    State(api): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let grant = body.grant()?;
    let store = api.store.acting(
        caller.note(AuditAction::TokenCreated, &body.name).with_detail(format!("role {}", grant.role.as_str())),
    );
    let (token, text) = blocking(move || store.create_token(&body.name, grant)).await?;
    tracing::info!(token = %token.id, role = token.role().as_str(), by = %caller.id, "api: token created");
    let created = CreatedToken { resource: TokenResource::from(token), token: text };
    Ok((StatusCode::CREATED, Json(created)))
}

/// Revoke a token at once.
#[utoipa::path(delete, path = "/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "Token id", max_length = 64)),
    responses((status = 204, description = "Revoked"), WriteErrors),
    security(("bearer" = [])))]
pub async fn revoke_token(
    State(api): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if id == caller.id {
        return Err(ApiError::new(ProblemKind::Conflict, "a token cannot revoke itself; use another admin token"));
    }
    if id.len() > 64 {
        return Err(ApiError::not_found("no such token"));
    }
    let store = api.store.acting(caller.note(AuditAction::TokenRevoked, &id));
    let token = blocking(move || store.revoke_token(&id)).await?;
    tracing::info!(token = %token.id, by = %caller.id, "api: token revoked");
    Ok(StatusCode::NO_CONTENT)
}
