//! Restream routes: a channel's destinations (other platforms or servers
//! that get a rendition of every session), added, listed with their live
//! connection state, changed and removed. A destination's key is
//! write-only: responses say whether one is set, never what it is.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::api_state::ApiState;
use super::channels::channel_name;
use super::errors::{ReadErrors, WriteErrors};
use super::json_body::ApiJson;
use crate::http::access::caller::Caller;
use crate::http::problem::{ApiError, blocking};
use crate::live::link::LinkFigures;
use crate::state::AuditAction;
use crate::state::clock::rfc3339;
use crate::state::records::restream::{NewRestream, RestreamDestination, RestreamPatch};

/// A destination as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RestreamResource {
    pub id: String,
    pub channel: String,
    /// Where the stream goes, without its key (secret SRT options masked).
    pub url: String,
    /// Whether a key is set (it is never shown).
    pub key_set: bool,
    /// `source` or a ladder rung's name.
    pub rendition: String,
    pub enabled: bool,
    pub description: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The connection in the session in progress, when the channel is live.
    pub link: Option<LinkFigures>,
}

impl RestreamResource {
    fn new(destination: RestreamDestination, link: Option<LinkFigures>) -> RestreamResource {
        RestreamResource {
            url: destination.shown_url(),
            key_set: destination.key.is_some(),
            id: destination.id,
            channel: destination.channel,
            rendition: destination.rendition,
            enabled: destination.enabled,
            description: destination.description,
            created_at: rfc3339(destination.created_ms),
            link,
        }
    }
}

/// A new destination.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRestream {
    /// `rtmp://host[:port]/app`, `rtmps://...` or `srt://host:port[?options]`, without the stream key.
    #[schema(
        max_length = 1024,
        pattern = r"^(rtmps?|srt)://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%!$&'()*+,;=:@/-]*)?(\?[A-Za-z0-9._~%!$&'()*+,;=:@/?-]*)?$"
    )]
    pub url: String,
    /// The stream key at the destination (appended to an RTMP URL's path; an SRT `streamid`). Write-only.
    #[serde(default)]
    #[schema(pattern = r##"^[!-"$-%'-.0-9:->@-~]{1,512}$"##)]
    pub key: Option<String>,
    /// `source` (default) or the name of a ladder rung.
    #[serde(default)]
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{0,31}$")]
    pub rendition: Option<String>,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    #[schema(max_length = 256, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub description: Option<String>,
}

/// A change; absent fields stay. An empty `key` removes the key. Applies from the channel's next session.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRestream {
    #[serde(default)]
    #[schema(
        max_length = 1024,
        pattern = r"^(rtmps?|srt)://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%!$&'()*+,;=:@/-]*)?(\?[A-Za-z0-9._~%!$&'()*+,;=:@/?-]*)?$"
    )]
    pub url: Option<String>,
    #[serde(default)]
    #[schema(pattern = r##"^([!-"$-%'-.0-9:->@-~]{1,512})?$"##)]
    pub key: Option<String>,
    #[serde(default)]
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{0,31}$")]
    pub rendition: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    #[schema(max_length = 256, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub description: Option<String>,
}

fn destination_id(id: String) -> Result<String, ApiError> {
    if id.len() > 64 {
        return Err(ApiError::not_found("no such restream destination"));
    }
    Ok(id)
}

/// The live connections of the channel's session in progress, by destination id.
fn links(api: &ApiState, channel: &str) -> Vec<LinkFigures> {
    let Some(entry) = api.live.registry().get(channel) else { return Vec::new() };
    entry.outputs().into_iter().filter_map(|o| o.link).collect()
}

/// List a channel's destinations with their connection in the session in progress.
#[utoipa::path(get, path = "/channels/{name}/restreams", tag = "restreams",
    params(super::channels::ChannelName),
    responses((status = 200, description = "The destinations", body = Vec<RestreamResource>), ReadErrors),
    security(("bearer" = [])))]
pub async fn list_restreams(
    State(api): State<ApiState>,
    _: Caller,
    Path(name): Path<String>,
) -> Result<Json<Vec<RestreamResource>>, ApiError> {
    let name = channel_name(name)?;
    let store = api.store.clone();
    let channel = name.clone();
    let (exists, destinations) =
        blocking(move || Ok((store.get(&channel)?.is_some(), store.restreams(&channel)?))).await?;
    if !exists {
        return Err(ApiError::not_found(format!("channel {name:?} does not exist")));
    }
    let links = links(&api, &name);
    let resources = destinations
        .into_iter()
        .map(|d| {
            let link = links.iter().find(|l| l.destination == d.id).cloned();
            RestreamResource::new(d, link)
        })
        .collect();
    Ok(Json(resources))
}

/// Add a destination; the channel's next session sends to it (a session in progress does not).
#[utoipa::path(post, path = "/channels/{name}/restreams", tag = "restreams",
    params(super::channels::ChannelName), request_body = CreateRestream,
    responses((status = 201, description = "Added", body = RestreamResource), WriteErrors),
    security(("bearer" = [])))]
pub async fn create_restream(
    State(api): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<CreateRestream>,
) -> Result<(StatusCode, Json<RestreamResource>), ApiError> {
    let name = channel_name(name)?;
    let new = NewRestream {
        url: body.url,
        key: body.key,
        rendition: body.rendition,
        enabled: body.enabled,
        description: body.description,
    };
    let store = api.store.acting(caller.note(AuditAction::RestreamCreated, &name));
    let destination = blocking(move || store.add_restream(&name, new)).await?;
    tracing::info!(channel = %destination.channel, destination = %destination.id, url = %destination.shown_url(), "api: restream destination added");
    Ok((StatusCode::CREATED, Json(RestreamResource::new(destination, None))))
}

/// Change a destination (from the channel's next session).
#[utoipa::path(patch, path = "/channels/{name}/restreams/{id}", tag = "restreams",
    params(super::channels::ChannelName, ("id" = String, Path, description = "Destination id", max_length = 64)),
    request_body = UpdateRestream,
    responses((status = 200, description = "Changed", body = RestreamResource), WriteErrors),
    security(("bearer" = [])))]
pub async fn update_restream(
    State(api): State<ApiState>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<UpdateRestream>,
) -> Result<Json<RestreamResource>, ApiError> {
    let (name, id) = (channel_name(name)?, destination_id(id)?);
    let patch = RestreamPatch {
        url: body.url,
        key: body.key,
        rendition: body.rendition,
        enabled: body.enabled,
        description: body.description,
    };
    let store = api.store.acting(caller.note(AuditAction::RestreamUpdated, format!("{name}/{id}")));
    let channel = name.clone();
    let destination = blocking(move || store.update_restream(&channel, &id, patch)).await?;
    tracing::info!(channel = %name, destination = %destination.id, "api: restream destination changed");
    let link = links(&api, &name).into_iter().find(|l| l.destination == destination.id);
    Ok(Json(RestreamResource::new(destination, link)))
}

/// Remove a destination (a session in progress keeps sending to it until it ends).
#[utoipa::path(delete, path = "/channels/{name}/restreams/{id}", tag = "restreams",
    params(super::channels::ChannelName, ("id" = String, Path, description = "Destination id", max_length = 64)),
    responses((status = 204, description = "Removed"), WriteErrors),
    security(("bearer" = [])))]
pub async fn delete_restream(
    State(api): State<ApiState>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (name, id) = (channel_name(name)?, destination_id(id)?);
    let store = api.store.acting(caller.note(AuditAction::RestreamDeleted, format!("{name}/{id}")));
    let removed = blocking(move || store.delete_restream(&name, &id)).await?;
    tracing::info!(channel = %removed.channel, destination = %removed.id, "api: restream destination removed");
    Ok(StatusCode::NO_CONTENT)
}
