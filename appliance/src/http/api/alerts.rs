//! The alerts route: the alerts raised and not cleared now. Their history
//! (raised and cleared) is the event log's `alert.*` events.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::api_state::ApiState;
use super::errors::ReadErrors;
use crate::alerts::ActiveAlert;
use crate::http::access::caller::Caller;

/// The alerts raised now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActiveAlertList {
    /// Oldest first.
    pub items: Vec<ActiveAlert>,
}

/// List the alerts raised and not cleared (the history is in `GET /events`).
#[utoipa::path(get, path = "/alerts", tag = "health",
    responses((status = 200, description = "The active alerts", body = ActiveAlertList), ReadErrors),
    security(("bearer" = [])))]
pub async fn list_alerts(State(api): State<ApiState>, _: Caller) -> Json<ActiveAlertList> {
    Json(ActiveAlertList { items: api.alerts.list() })
}
