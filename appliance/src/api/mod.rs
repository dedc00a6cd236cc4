//! The REST API under `/api/v1`: channels (CRUD, start, stop, stream key
//! rotation), their sessions, API tokens, webhook endpoints with their
//! deliveries, the event log, encoders and health, with the OpenAPI 3
//! document generated from the same handlers and types. Every route but
//! `/api/v1/health` needs a bearer token; read tokens may only GET. Every
//! route is rate limited per client (`rate_limit`).

pub mod auth;
pub mod channels;
pub mod encoders;
pub mod events;
pub mod health;
pub mod json_body;
pub mod media_schemas;
pub mod openapi;
pub mod pagination;
pub mod problem;
pub mod rate_limit;
pub mod resources;
pub mod sessions;
pub mod system;
pub mod tokens;
pub mod webhooks;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use utoipa::IntoResponses;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::live_session::LiveFigures;
use crate::session_supervisor::SessionSupervisor;
use crate::state::{Channel, Session, Store, StoreError};
use crate::transcode::Transcoder;
use problem::{ApiError, Problem};
use resources::{ChannelResource, PublicUrls, SessionResource};

/// The prefix of every API route.
pub const PREFIX: &str = "/api/v1";

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct ApiState {
    pub store: Store,
    pub supervisor: Arc<SessionSupervisor>,
    pub transcoder: Arc<Transcoder>,
    pub urls: Arc<PublicUrls>,
    pub started: Instant,
    /// The OpenAPI document, rendered once.
    pub openapi_json: Arc<String>,
    /// Signed-in console sessions (they stand in for a write token).
    pub console: Arc<crate::console::Sessions>,
    /// The data directory (the system route reports its disk).
    pub data_dir: Arc<std::path::PathBuf>,
    /// Players per channel (the live figures' viewers).
    pub viewers: Arc<crate::viewers::Viewers>,
    /// Request budgets per client, and failed authentications per address.
    pub limits: Arc<rate_limit::RateLimits>,
}

impl ApiState {
    pub fn new(
        store: Store,
        supervisor: Arc<SessionSupervisor>,
        transcoder: Arc<Transcoder>,
        urls: PublicUrls,
    ) -> ApiState {
        let limits = Arc::new(rate_limit::RateLimits::default());
        ApiState {
            store,
            supervisor,
            transcoder,
            urls: Arc::new(urls),
            started: Instant::now(),
            openapi_json: Arc::new(String::new()),
            console: Arc::new(crate::console::Sessions::new(limits.failures())),
            data_dir: Arc::new(std::path::PathBuf::from(".")),
            viewers: Arc::default(),
            limits,
        }
    }

    /// Applies `config`'s rate limits. The console's sign-in shares the
    /// failed-authentication limit, so its sessions are renewed too: call
    /// before anything signs in.
    pub fn limit_rates(&mut self, config: &crate::config::ApiConfig) {
        let limits = Arc::new(rate_limit::RateLimits::new(config));
        self.console = Arc::new(crate::console::Sessions::new(limits.failures()));
        self.limits = limits;
    }
}

impl ApiState {
    /// The live figures of `channel`'s session in progress if it is `session`
    /// (`viewers`: the channel's, when already counted).
    pub fn live(&self, channel: &str, session: &str, viewers: Option<u32>) -> Option<LiveFigures> {
        let live = self.supervisor.live(channel).filter(|l| l.session == session)?;
        let now = Instant::now();
        let viewers = viewers.unwrap_or_else(|| self.viewers.count(channel, now));
        Some(live.figures(viewers, now))
    }

    /// A channel as the API shows it, with its session's live figures.
    pub fn channel_resource(&self, channel: Channel, viewers: Option<u32>) -> ChannelResource {
        let live = channel.current_session.as_deref().and_then(|s| self.live(&channel.name, s, viewers));
        let mut resource = ChannelResource::full(channel, &self.urls);
        resource.live = live;
        resource
    }

    /// A session as the API shows it, with its live figures while in progress.
    pub fn session_resource(&self, session: Session) -> SessionResource {
        let live = if session.state.is_final() { None } else { self.live(&session.channel, &session.id, None) };
        let mut resource = SessionResource::from(session);
        resource.live = live;
        resource
    }
}

/// Runs a blocking store operation off the runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) => {
            tracing::error!(error = %e, "api: state task failed");
            Err(ApiError::new(problem::ProblemKind::Internal, "the state operation failed; see the appliance log"))
        }
    }
}

/// Problem responses of read routes.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum ReadErrors {
    /// A path or query parameter is not valid.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// No valid bearer token.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// No such resource.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// Too many requests from this token, console session or address, or too many failed
    /// authentications from this address; wait `Retry-After` seconds.
    #[response(status = 429, content_type = "application/problem+json",
        headers(("Retry-After" = u64, description = "Seconds to wait before retrying")))]
    TooManyRequests(Problem),
    /// The state database is busy; retry.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

/// The problem response of the route that needs no token.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum LimitErrors {
    /// Too many requests from this address (or too many failed authentications from it); wait
    /// `Retry-After` seconds.
    #[response(status = 429, content_type = "application/problem+json",
        headers(("Retry-After" = u64, description = "Seconds to wait before retrying")))]
    TooManyRequests(Problem),
}

/// Problem responses of write routes.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum WriteErrors {
    /// The body, a field, or a path parameter is not valid; `field` names it.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// No valid bearer token.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// The token has the read scope only.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// No such resource.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// Conflicts with the resource's state (duplicate name, already active, ...).
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Problem),
    /// The body is larger than 64 KiB.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// The body is not `application/json`.
    #[response(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Problem),
    /// Too many requests from this token, console session or address, or too many failed
    /// authentications from this address; wait `Retry-After` seconds.
    #[response(status = 429, content_type = "application/problem+json",
        headers(("Retry-After" = u64, description = "Seconds to wait before retrying")))]
    TooManyRequests(Problem),
    /// The data disk is full; nothing was changed. Retry once there is room.
    #[response(status = 507, content_type = "application/problem+json")]
    InsufficientStorage(Problem),
    /// The state database is busy; retry.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

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
        .routes(routes!(sessions::list_sessions))
        .routes(routes!(sessions::get_session))
        .routes(routes!(tokens::list_tokens, tokens::create_token))
        .routes(routes!(tokens::revoke_token))
        .routes(routes!(webhooks::list_webhooks, webhooks::create_webhook))
        .routes(routes!(webhooks::get_webhook, webhooks::delete_webhook))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(events::list_events))
        .routes(routes!(encoders::encoders))
        .routes(routes!(system::system));
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
    routes
        .route(PREFIX, axum::routing::any(unknown))
        .route(&format!("{PREFIX}/{{*rest}}"), axum::routing::any(unknown))
        .route_layer(axum::middleware::map_response(problem::as_problem))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), rate_limit::limit))
        .with_state(state)
}
