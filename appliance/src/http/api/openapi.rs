//! The OpenAPI 3 document: its base (info, the bearer security scheme, tags)
//! and the route that serves the whole document, generated from the handlers
//! and types, at `/api/v1/openapi.json`.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::api_state::ApiState;
use super::errors::ReadErrors;
use crate::http::access::caller::Caller;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Appliance API",
        description = "Control plane of the live transcoding appliance: channels, sessions, API tokens, \
            webhooks. Authenticate with `Authorization: Bearer <token>`. Every token has a role: `viewer` \
            reads, `operator` also changes channels, sessions, recordings and restreams, `admin` also \
            manages tokens, webhooks and the console; tokens made with the legacy `scope` map `read` to \
            viewer and `write` to admin. Below a route's role the answer is 403. A token restricted to \
            channels gets 404 for other channels (as if they did not exist), sees only its channels in \
            lists and the event feed, and 403 on routes about the whole appliance. \
            Errors are RFC 9457 problem details. Lists are paginated with `limit` and `cursor`. \
            Requests are rate limited per token, console session or (without one) client address: \
            every response carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`; \
            over the limit the answer is 429 with `Retry-After`. On the appliance itself the same API \
            is served on the owner-only Unix socket `<data_dir>/appliance.sock` to the local \
            administrator, without a token and without rate limits (what the `appliance` CLI uses).",
    ),
    modifiers(&BearerScheme),
    components(schemas(crate::http::problem::Problem)),
    tags(
        (name = "channels", description = "Channels: settings, lifecycle, stream keys"),
        (name = "sessions", description = "Sessions: one per publish"),
        (name = "recordings", description = "Recorded sessions (catchup), locks, retention and disk usage"),
        (name = "tokens", description = "API tokens"),
        (name = "playback", description = "Private channels: signed playback tokens and their signing keys"),
        (name = "webhooks", description = "Webhook endpoints, deliveries and the event log"),
        (name = "encoders", description = "Encoder devices and slot usage"),
        (name = "console", description = "The operator console's admin account"),
        (name = "users", description = "Console users and their roles (admin only)"),
        (name = "audit", description = "Who changed what and when (admin only)"),
        (name = "health", description = "Liveness"),
    )
)]
struct BaseDocument;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token (`appliance token create`, or POST /api/v1/tokens)"))
                    .build(),
            ),
        );
    }
}

/// The document's base; the routes add their paths and schemas.
pub fn base_document() -> utoipa::openapi::OpenApi {
    let mut doc = BaseDocument::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "health",
    responses((status = 200, description = "The OpenAPI 3 document of this API", body = Object), ReadErrors),
    security(("bearer" = [])))]
pub async fn openapi_json(State(api): State<ApiState>, _: Caller) -> Response {
    let mut response = api.openapi_json.as_str().to_string().into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
