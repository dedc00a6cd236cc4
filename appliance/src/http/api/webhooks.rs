//! Webhook routes: register endpoints (URL, secret, event filter), list, get
//! and delete them, and see each endpoint's deliveries with every attempt.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::api_state::ApiState;
use super::errors::{ReadErrors, WriteErrors};
use super::json_body::ApiJson;
use super::pagination::{Page, PageQuery, SequencePageQuery};
use super::resources::{CreatedWebhook, DeliveryResource, WebhookResource};
use crate::http::access::caller::Caller;
use crate::http::problem::ApiError;
use crate::http::problem::blocking;
use crate::state::AuditAction;
use crate::state::EventType;
use crate::state::NewWebhook;

/// A new endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where events are POSTed: http or https, a host name or IPv4 address.
    #[schema(
        max_length = 2048,
        pattern = r"^https?://(((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])|[A-Za-z][A-Za-z0-9-]{0,62}(\.[A-Za-z][A-Za-z0-9-]{0,62})*)(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[A-Za-z0-9._~%!$&'()*+,;=:@/-]*)?(\?[A-Za-z0-9._~%!$&'()*+,;=:@/?-]*)?$"
    )]
    pub url: String,
    /// The HMAC-SHA256 key (16 to 128 printable ASCII characters); generated when absent.
    #[serde(default)]
    #[schema(pattern = "^[!-~]{16,128}$")]
    pub secret: Option<String>,
    /// Event types to deliver; empty or absent: all.
    #[serde(default)]
    pub events: Vec<EventType>,
    #[serde(default)]
    #[schema(max_length = 256, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub description: Option<String>,
}

fn webhook_id(id: String) -> Result<String, ApiError> {
    if id.len() > 64 {
        return Err(ApiError::not_found("no such webhook"));
    }
    Ok(id)
}

/// List endpoints (never their secrets).
#[utoipa::path(get, path = "/webhooks", tag = "webhooks", params(PageQuery),
    responses((status = 200, description = "A page of endpoints", body = Page<WebhookResource>), ReadErrors),
    security(("bearer" = [])))]
pub async fn list_webhooks(
    State(api): State<ApiState>,
    _: Caller,
    page: PageQuery,
) -> Result<Json<Page<WebhookResource>>, ApiError> {
    let store = api.store.clone();
    let limit = page.limit();
    let list = blocking(move || store.list_webhooks(page.cursor.as_deref(), limit)).await?;
    Ok(Json(Page::from_state(list, WebhookResource::from)))
}

/// Register an endpoint; it receives events from now on. Its secret is returned this once.
#[utoipa::path(post, path = "/webhooks", tag = "webhooks", request_body = CreateWebhook,
    responses((status = 201, description = "Registered", body = CreatedWebhook), WriteErrors),
    security(("bearer" = [])))]
pub async fn create_webhook(
    State(api): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateWebhook>,
) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    let new = NewWebhook { url: body.url, secret: body.secret, events: body.events, description: body.description };
    let store = api.store.acting(caller.note(AuditAction::WebhookCreated, &new.url));
    let endpoint = blocking(move || store.create_webhook(new)).await?;
    tracing::info!(webhook = %endpoint.id, url = %endpoint.url, "api: webhook registered");
    let secret = endpoint.secret.clone();
    let created = CreatedWebhook { resource: WebhookResource::from(endpoint), secret };
    Ok((StatusCode::CREATED, Json(created)))
}

/// Get an endpoint.
#[utoipa::path(get, path = "/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id", max_length = 64)),
    responses((status = 200, description = "The endpoint", body = WebhookResource), ReadErrors),
    security(("bearer" = [])))]
pub async fn get_webhook(
    State(api): State<ApiState>,
    _: Caller,
    Path(id): Path<String>,
) -> Result<Json<WebhookResource>, ApiError> {
    let id = webhook_id(id)?;
    let store = api.store.clone();
    let endpoint = blocking(move || store.webhook(&id)).await?;
    endpoint.map(|e| Json(WebhookResource::from(e))).ok_or_else(|| ApiError::not_found("no such webhook"))
}

/// Delete an endpoint and its deliveries (pending ones are dropped).
#[utoipa::path(delete, path = "/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id", max_length = 64)),
    responses((status = 204, description = "Deleted"), WriteErrors),
    security(("bearer" = [])))]
pub async fn delete_webhook(
    State(api): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = webhook_id(id)?;
    let store = api.store.acting(caller.note(AuditAction::WebhookDeleted, &id));
    let endpoint = blocking(move || store.delete_webhook(&id)).await?;
    tracing::info!(webhook = %endpoint.id, "api: webhook deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// An endpoint's deliveries, oldest first, with every attempt and its result.
#[utoipa::path(get, path = "/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id", max_length = 64), SequencePageQuery),
    responses((status = 200, description = "A page of deliveries", body = Page<DeliveryResource>), ReadErrors),
    security(("bearer" = [])))]
pub async fn list_deliveries(
    State(api): State<ApiState>,
    _: Caller,
    Path(id): Path<String>,
    page: SequencePageQuery,
) -> Result<Json<Page<DeliveryResource>>, ApiError> {
    let id = webhook_id(id)?;
    let after = page.after();
    let store = api.store.clone();
    let limit = page.limit();
    let list = blocking(move || store.list_deliveries(&id, after, limit)).await?;
    Ok(Json(Page::from_state(list, DeliveryResource::from)))
}
