//! The health route: the one route that needs no token.

use axum::Json;
use axum::extract::State;

use super::api_state::ApiState;
use super::errors::LimitErrors;
use super::resources::Health;

/// Whether the appliance answers (no token needed).
#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "The appliance is up", body = Health), LimitErrors))]
pub async fn health(State(api): State<ApiState>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_seconds: api.started.elapsed().as_secs(),
    })
}
