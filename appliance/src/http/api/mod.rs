//! The REST API under `/api/v1`: channels (CRUD, start, stop, stream key
//! rotation, playback tokens of private channels and their signing keys), their sessions and recordings, API tokens, webhook endpoints with their
//! deliveries, console users, the event log, the audit log, encoders and health, with the OpenAPI 3
//! document generated from the same handlers and types, and the console's
//! admin password. Every route but `/api/v1/health` needs a bearer token
//! (or a console session, or the control socket: see `access::identity`)
//! of the role `access::route_roles` names for the route (`auth`). Every route is rate limited per client
//! (`rate_limit`), except on the control socket.

pub mod alerts;
pub mod api_state;
pub mod audit;
pub mod auth;
pub mod channels;
pub mod console_password;
pub mod encoders;
pub mod errors;
pub mod event_stream;
pub mod events;
pub mod health;
pub mod json_body;
pub mod media_schemas;
pub mod openapi;
pub mod pagination;
pub mod password_jobs;
pub mod playback;
pub mod processing_schemas;
pub mod recordings;
pub mod resources;
pub mod restreams;
pub mod sessions;
pub mod sound_schemas;
pub mod system;
pub mod tokens;
pub mod users;
pub mod webhooks;

use std::sync::Arc;

use axum::Router;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::access::rate_limit::{self, Gate};
use crate::http::problem::{self, ApiError};
pub use api_state::{ApiState, PREFIX};

/// The API's routes with their OpenAPI document.
pub fn openapi_router() -> OpenApiRouter<ApiState> {
    let v1 = OpenApiRouter::new()
        .routes(routes!(health::health))
        .routes(routes!(openapi::openapi_json))
        .routes(routes!(channels::list_channels, channels::create_channel))
        .routes(routes!(channels::get_channel, channels::update_channel, channels::delete_channel))
        .routes(routes!(channels::start_channel))
        .routes(routes!(channels::stop_channel))
        .routes(routes!(channels::rotate_stream_key))
        .routes(routes!(playback::create_playback_token))
        .routes(routes!(playback::list_playback_keys))
        .routes(routes!(playback::rotate_playback_key))
        .routes(routes!(restreams::list_restreams, restreams::create_restream))
        .routes(routes!(restreams::update_restream, restreams::delete_restream))
        .routes(routes!(sessions::list_sessions))
        .routes(routes!(sessions::get_session))
        .routes(routes!(recordings::list_recordings))
        .routes(routes!(recordings::get_recording, recordings::delete_recording))
        .routes(routes!(recordings::lock_recording, recordings::unlock_recording))
        .routes(routes!(recordings::recording_usage))
        .routes(routes!(tokens::list_tokens, tokens::create_token))
        .routes(routes!(tokens::revoke_token))
        .routes(routes!(webhooks::list_webhooks, webhooks::create_webhook))
        .routes(routes!(webhooks::get_webhook, webhooks::delete_webhook))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(events::list_events))
        .routes(routes!(event_stream::stream_events))
        .routes(routes!(alerts::list_alerts))
        .routes(routes!(encoders::encoders))
        .routes(routes!(system::system))
        .routes(routes!(console_password::set_console_password))
        .routes(routes!(users::list_users, users::create_user))
        .routes(routes!(users::update_user))
        .routes(routes!(users::reset_password))
        .routes(routes!(audit::list_audit));
    OpenApiRouter::with_openapi(openapi::base_document()).nest(PREFIX, v1)
}

/// The OpenAPI document of the API.
pub fn document() -> utoipa::openapi::OpenApi {
    openapi_router().split_for_parts().1
}

/// The API's axum router, to merge into the appliance's HTTP app.
pub fn router(mut state: ApiState) -> Router {
    let (routes, document) = openapi_router().split_for_parts();
    state.openapi_json = Arc::new(document.to_pretty_json().expect("the OpenAPI document serialises"));
    // Unknown API paths answer problem+json too (unsupported methods get theirs from `as_problem`).
    let unknown = || async { ApiError::not_found("no API route has this path") };
    let gate = Gate { limits: state.limits.clone(), store: state.store.clone(), console: state.console.clone() };
    routes
        .route(PREFIX, axum::routing::any(unknown))
        .route(&format!("{PREFIX}/{{*rest}}"), axum::routing::any(unknown))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::authorize))
        .route_layer(axum::middleware::map_response(problem::as_problem))
        .route_layer(axum::middleware::from_fn_with_state(gate, rate_limit::limit))
        .with_state(state)
}
