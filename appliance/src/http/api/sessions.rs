//! Session routes: a channel's sessions, newest first, and one session with
//! its state, times, end reason and stats.

use axum::Json;
use axum::extract::{Path, State};

use super::api_state::ApiState;
use super::channels::ChannelName;
use super::errors::ReadErrors;
use super::pagination::{Page, PageQuery};
use super::resources::SessionResource;
use crate::http::access::caller::Caller;
use crate::http::problem::ApiError;
use crate::http::problem::blocking;
use crate::state::validate_name;

/// List a channel's sessions, newest first.
#[utoipa::path(get, path = "/channels/{name}/sessions", tag = "sessions",
    params(ChannelName, PageQuery),
    responses((status = 200, description = "A page of sessions", body = Page<SessionResource>), ReadErrors),
    security(("bearer" = [])))]
pub async fn list_sessions(
    State(api): State<ApiState>,
    _: Caller,
    Path(name): Path<String>,
    page: PageQuery,
) -> Result<Json<Page<SessionResource>>, ApiError> {
    if validate_name(&name).is_err() {
        return Err(ApiError::not_found("no such channel"));
    }
    let store = api.store.clone();
    let limit = page.limit();
    let list = blocking(move || store.list_sessions(&name, page.cursor.as_deref(), limit)).await?;
    Ok(Json(Page::from_state(list, |s| api.session_resource(s))))
}

/// Get one session of a channel.
#[utoipa::path(get, path = "/channels/{name}/sessions/{id}", tag = "sessions",
    params(
        ChannelName,
        ("id" = String, Path, description = "Session id", max_length = 64),
    ),
    responses((status = 200, description = "The session", body = SessionResource), ReadErrors),
    security(("bearer" = [])))]
pub async fn get_session(
    State(api): State<ApiState>,
    _: Caller,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<SessionResource>, ApiError> {
    if validate_name(&name).is_err() || id.len() > 64 {
        return Err(ApiError::not_found("no such session"));
    }
    let store = api.store.clone();
    let session = blocking(move || store.session(&name, &id)).await?;
    session.map(|s| Json(api.session_resource(s))).ok_or_else(|| ApiError::not_found("no such session"))
}
