//! The event log route: every event in the outbox, oldest first, exactly as
//! webhook endpoints receive them (a token restricted to channels: only
//! those channels' events).

use axum::Json;
use axum::extract::State;

use super::api_state::ApiState;
use super::errors::ReadErrors;
use super::pagination::{Page, SequencePageQuery};
use super::resources::EventResource;
use crate::http::access::caller::Caller;
use crate::http::problem::ApiError;
use crate::http::problem::blocking;

/// List events, oldest first (events older than the retention are pruned once delivered).
#[utoipa::path(get, path = "/events", tag = "webhooks", params(SequencePageQuery),
    responses((status = 200, description = "A page of events", body = Page<EventResource>), ReadErrors),
    security(("bearer" = [])))]
pub async fn list_events(
    State(api): State<ApiState>,
    caller: Caller,
    page: SequencePageQuery,
) -> Result<Json<Page<EventResource>>, ApiError> {
    let after = page.after();
    let store = api.store.clone();
    let limit = page.limit();
    let mut list = blocking(move || store.list_events(after, limit)).await?;
    // The cursor stays the page's last sequence, so paging goes on past filtered events.
    list.items.retain(|e| caller.may_see(&e.channel));
    Ok(Json(Page::from_state(list, |e| EventResource::new(e, &api.urls))))
}
