//! Channel routes: list, create, get, update, delete, start, stop and stream
//! key rotation. Stopping or deleting a channel ends its live session (the
//! publisher is disconnected, the playlists get ENDLIST).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use media::{ChannelOutput, EncoderPolicy, LatencyMode, Processing};
use serde::{Deserialize, Deserializer};
use utoipa::{IntoParams, ToSchema};

use super::api_state::ApiState;
use super::errors::{ReadErrors, WriteErrors};
use super::json_body::ApiJson;
use super::media_schemas::{ChannelOutputSchema, EncoderPolicySchema, LatencyModeSchema};
use super::pagination::{Page, PageQuery};
use super::processing_schemas::ProcessingSchema;
use super::resources::{ChannelResource, SessionResource};
use crate::http::access::caller::Caller;
use crate::http::problem::blocking;
use crate::http::problem::{ApiError, ProblemKind};
use crate::live::supervisor::Ending;
use crate::state::AuditAction;
use crate::state::{
    Channel, ChannelPatch, DvrWindow, EndReason, InputRole, NewChannel, Playback, RecordingSettings, Session, Store,
    StoreError, validate_name,
};

/// A new channel.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChannel {
    /// Used in URLs: 1 to 64 of a-z, 0-9, `-` and `_`.
    #[schema(pattern = "^[a-z0-9_-]{1,64}$")]
    pub name: String,
    #[serde(default)]
    #[schema(value_type = LatencyModeSchema, default = "ultra-low")]
    pub latency_mode: LatencyMode,
    #[serde(default, deserialize_with = "strict_output")]
    #[schema(value_type = ChannelOutputSchema)]
    pub output: ChannelOutput,
    #[serde(default)]
    #[schema(value_type = EncoderPolicySchema, default = "prefer-hardware")]
    pub encoder_policy: EncoderPolicy,
    /// What the ladder does to the picture (default: nothing); needs a ladder output.
    #[serde(default)]
    #[schema(value_type = ProcessingSchema)]
    pub processing: Processing,
    /// End sessions after this many seconds (1 to 2592000); null or absent: no limit.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 2592000)]
    pub max_session_seconds: Option<u64>,
    /// Recording of its sessions (default: off).
    #[serde(default)]
    pub recording: RecordingSettings,
    /// How far viewers can rewind a live session, in seconds (0 to 86400; 0: off; default 7200). The
    /// window's old part is read from the session's recording: it covers the renditions the channel
    /// records.
    #[serde(default)]
    #[schema(value_type = u64, minimum = 0, maximum = 86400, default = 7200)]
    pub dvr_window_seconds: DvrWindow,
    /// Start the channel at once (state `active`) instead of leaving it `idle`.
    #[serde(default)]
    pub start: bool,
    /// Give the channel a backup stream key too, for a second encoder that takes over when the
    /// primary stops delivering.
    #[serde(default)]
    pub backup_input: bool,
    /// The AES passphrase SRT callers must use (10 to 79 characters; write-only, like stream keys);
    /// absent: unencrypted SRT.
    #[serde(default)]
    pub srt_passphrase: Option<String>,
    /// `private`: its playlists and media need a signed playback token
    /// (`POST /channels/{name}/playback-tokens`); default `public`.
    #[serde(default)]
    pub playback: Playback,
}

/// Changes to a channel; absent (or null) fields stay as they are, except
/// `max_session_seconds`, where null removes the limit. They apply from the next session.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateChannel {
    #[serde(default)]
    #[schema(value_type = Option<LatencyModeSchema>)]
    pub latency_mode: Option<LatencyMode>,
    #[serde(default, deserialize_with = "strict_optional_output")]
    #[schema(value_type = Option<ChannelOutputSchema>)]
    pub output: Option<ChannelOutput>,
    #[serde(default)]
    #[schema(value_type = Option<EncoderPolicySchema>)]
    pub encoder_policy: Option<EncoderPolicy>,
    /// The processing section, replaced whole. While the channel is live a change is refused (409)
    /// unless the request has `?restart=now`, which restarts the running pipeline with it (every
    /// rendition continues after a discontinuity, with no end of stream).
    #[serde(default)]
    #[schema(value_type = Option<ProcessingSchema>)]
    pub processing: Option<Processing>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 2592000)]
    pub max_session_seconds: Option<Option<u64>>,
    /// Recording settings, replaced whole.
    #[serde(default)]
    pub recording: Option<RecordingSettings>,
    /// The DVR window in seconds (0 to 86400; 0: off).
    #[serde(default)]
    #[schema(value_type = Option<u64>, minimum = 0, maximum = 86400)]
    pub dvr_window_seconds: Option<DvrWindow>,
    /// A new SRT passphrase (write-only); null removes it (unencrypted SRT).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub srt_passphrase: Option<Option<String>>,
    /// `public` or `private`; applies at once, to the session in progress too.
    #[serde(default)]
    pub playback: Option<Playback>,
}

/// An output with no field its kind does not have (`media`'s serde lets
/// unknown fields through on the pass-through variant).
fn strict_output<'de, D: Deserializer<'de>>(de: D) -> Result<ChannelOutput, D::Error> {
    use serde::de::Error;
    let value = serde_json::Value::deserialize(de)?;
    let allowed: &[&str] = match value.get("kind").and_then(|k| k.as_str()) {
        Some("passthrough") => &["kind"],
        Some("ladder") => &["kind", "ladder"],
        _ => return Err(D::Error::custom("`kind` must be \"passthrough\" or \"ladder\"")),
    };
    if let Some(extra) = value.as_object().and_then(|o| o.keys().find(|k| !allowed.contains(&k.as_str()))) {
        return Err(D::Error::custom(format!("unknown field `{extra}`")));
    }
    serde_path_to_error::deserialize::<_, ChannelOutput>(value).map_err(|e| {
        let path = e.path().to_string();
        D::Error::custom(format!("at {path}: {}", e.into_inner()))
    })
}

fn strict_optional_output<'de, D: Deserializer<'de>>(de: D) -> Result<Option<ChannelOutput>, D::Error> {
    match Option::<serde_json::Value>::deserialize(de)? {
        None => Ok(None),
        Some(value) => strict_output(value).map(Some).map_err(serde::de::Error::custom),
    }
}

/// `Some(value)` for a field that is present, even as null.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(de: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(de).map(Some)
}

/// A channel name from the path; anything that is not a name cannot exist.
pub(super) fn channel_name(name: String) -> Result<String, ApiError> {
    validate_name(&name).map_err(|_| ApiError::not_found(format!("channel {:?} does not exist", truncated(&name))))?;
    Ok(name)
}

fn truncated(text: &str) -> String {
    text.chars().take(64).collect()
}

/// List channels by name (a token restricted to channels: only those). `stream_key` and
/// `publish_url` are shown to operators and admins only, never to a viewer.
#[utoipa::path(get, path = "/channels", tag = "channels", params(PageQuery),
    responses((status = 200, description = "A page of channels (stream keys for operators and admins only)",
        body = Page<ChannelResource>), ReadErrors),
    security(("bearer" = [])))]
pub async fn list_channels(
    State(api): State<ApiState>,
    caller: Caller,
    page: PageQuery,
) -> Result<Json<Page<ChannelResource>>, ApiError> {
    let store = api.store.clone();
    let limit = page.limit();
    let only = caller.channels.clone();
    let list = blocking(move || {
        let list = match &only {
            Some(names) => store.list_named_channels(names, page.cursor.as_deref(), limit)?,
            None => store.list_channels(page.cursor.as_deref(), limit)?,
        };
        let sessions = current_sessions(&store, &list.items)?;
        Ok((list, sessions))
    })
    .await?;
    let (list, mut sessions) = list;
    let viewers = api.viewers.counts(std::time::Instant::now());
    Ok(Json(Page::from_state(list, |c| {
        let count = viewers.get(&c.name).copied().unwrap_or(0);
        let session = sessions.remove(&c.name);
        let mut resource = api.channel_resource(c, Some(count)).for_role(caller.role);
        resource.session = session.map(|s| Box::new(SessionResource::from(s)));
        resource
    })))
}

/// Create a channel (idle unless `start` is true).
#[utoipa::path(post, path = "/channels", tag = "channels", request_body = CreateChannel,
    responses((status = 201, description = "Created", body = ChannelResource,
        headers(("location" = String, description = "The channel's URL"))), WriteErrors),
    security(("bearer" = [])))]
pub async fn create_channel(
    State(api): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateChannel>,
) -> Result<Response, ApiError> {
    if !caller.may_see(&body.name) {
        return Err(ApiError::new(ProblemKind::Forbidden, "this token may not create a channel of that name"));
    }
    let new = NewChannel {
        name: body.name,
        latency_mode: body.latency_mode,
        output: body.output,
        encoder_policy: body.encoder_policy,
        processing: body.processing,
        max_session_seconds: body.max_session_seconds,
        recording: body.recording,
        dvr_window_seconds: body.dvr_window_seconds,
        backup: body.backup_input,
        srt_passphrase: body.srt_passphrase,
        playback: body.playback,
    };
    let note = caller.note(AuditAction::ChannelCreated, &new.name);
    let note = if new.playback == Playback::Private { note.with_detail("playback private") } else { note };
    let store = api.store.acting(note);
    let start = body.start;
    let channel = blocking(move || store.create_channel(new, start)).await?;
    api.playback.set_channel(&channel);
    tracing::info!(channel = %channel.name, state = %channel.state, by = %caller.id, "api: channel created");
    let location = format!("{}/channels/{}", super::api_state::PREFIX, channel.name);
    let mut headers = HeaderMap::new();
    headers.insert(header::LOCATION, HeaderValue::from_str(&location).expect("names are URL-safe"));
    Ok((StatusCode::CREATED, headers, Json(api.channel_resource(channel, None))).into_response())
}

/// Get a channel. `stream_key` and `publish_url` are shown to operators and admins only, never to
/// a viewer.
#[utoipa::path(get, path = "/channels/{name}", tag = "channels",
    params(ChannelName),
    responses((status = 200, description = "The channel (its stream key for operators and admins only)",
        body = ChannelResource), ReadErrors),
    security(("bearer" = [])))]
pub async fn get_channel(
    State(api): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<ChannelResource>, ApiError> {
    let name = channel_name(name)?;
    let store = api.store.clone();
    let lookup = name.clone();
    let found = blocking(move || {
        let Some(channel) = store.get(&lookup)? else { return Ok(None) };
        let mut sessions = current_sessions(&store, std::slice::from_ref(&channel))?;
        Ok(Some((sessions.remove(&channel.name), channel)))
    })
    .await?;
    let (session, channel) = found.ok_or_else(|| ApiError::not_found(format!("channel {name:?} does not exist")))?;
    let mut resource = api.channel_resource(channel, None).for_role(caller.role);
    resource.session = session.map(|s| Box::new(SessionResource::from(s)));
    Ok(Json(resource))
}

/// The `{name}` path parameter of the channel routes, for the OpenAPI
/// document (the handlers read `Path<String>` and check it with `validate_name`).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ChannelName {
    /// Channel name
    #[param(pattern = "^[a-z0-9_-]{1,64}$")]
    #[allow(dead_code)]
    name: String,
}

/// The sessions in progress of `channels`, by channel name.
fn current_sessions(store: &Store, channels: &[Channel]) -> Result<HashMap<String, Session>, StoreError> {
    let mut sessions = HashMap::new();
    for channel in channels {
        if let Some(id) = &channel.current_session
            && let Some(session) = store.session(&channel.name, id)?
        {
            sessions.insert(channel.name.clone(), session);
        }
    }
    Ok(sessions)
}

/// When a change to a live channel's processing takes effect.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UpdateQuery {
    /// `now`: a processing change restarts the live session's pipeline at once (a discontinuity in
    /// every rendition, no end of stream); without it such a change is refused while the channel is live.
    #[param(value_type = Option<String>, pattern = "^now$")]
    pub restart: Option<RestartNow>,
}

/// `?restart=now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartNow;

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for UpdateQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, ApiError> {
        let mut restart = None;
        for (key, value) in form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()) {
            match (key.as_ref(), value.as_ref()) {
                ("restart", "now") => restart = Some(RestartNow),
                ("restart", _) => return Err(ApiError::field("restart", "use now")),
                (other, _) => {
                    let name: String = other.chars().take(64).collect();
                    return Err(ApiError::field(name, "unknown query parameter (use restart)"));
                }
            }
        }
        Ok(UpdateQuery { restart })
    }
}

/// Change a channel's settings (from its next session on; a processing change to a live channel
/// only with `?restart=now`, which applies it to the running pipeline at once).
#[utoipa::path(patch, path = "/channels/{name}", tag = "channels", request_body = UpdateChannel,
    params(ChannelName, UpdateQuery),
    responses((status = 200, description = "The updated channel", body = ChannelResource), WriteErrors),
    security(("bearer" = [])))]
pub async fn update_channel(
    State(api): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    query: UpdateQuery,
    ApiJson(body): ApiJson<UpdateChannel>,
) -> Result<Json<ChannelResource>, ApiError> {
    let name = channel_name(name)?;
    let restart_now = query.restart.is_some();
    let processing = body.processing.clone();
    let patch = ChannelPatch {
        latency_mode: body.latency_mode,
        output: body.output,
        encoder_policy: body.encoder_policy,
        processing: body.processing,
        restart_now,
        max_session_seconds: body.max_session_seconds,
        recording: body.recording,
        dvr_window_seconds: body.dvr_window_seconds,
        srt_passphrase: body.srt_passphrase,
        playback: body.playback,
    };
    let note = caller.note(AuditAction::ChannelUpdated, &name);
    // The audit log says when a channel's playback changed hands (public to private or back).
    let note = match body.playback {
        Some(playback) => note.with_detail(format!("playback {}", playback.as_str())),
        None => note,
    };
    let store = api.store.acting(note);
    let channel = blocking(move || store.update_channel(&name, patch)).await?;
    api.playback.set_channel(&channel);
    tracing::info!(channel = %channel.name, "api: channel updated");
    if let (true, Some(_), Some(session)) = (restart_now, processing, &channel.current_session) {
        // The record holds the new processing; the running pipeline restarts with it.
        let restarted = api.live.reprocess(&channel.name, session, channel.processing.clone()).await;
        tracing::info!(channel = %channel.name, restarted, "api: live pipeline restarted with the new processing");
    }
    Ok(Json(api.channel_resource(channel, None)))
}

/// Delete a channel, its stream key and its sessions; a live session is ended.
#[utoipa::path(delete, path = "/channels/{name}", tag = "channels",
    params(ChannelName),
    responses((status = 204, description = "Deleted"), WriteErrors),
    security(("bearer" = [])))]
pub async fn delete_channel(
    State(api): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let name = channel_name(name)?;
    let store = api.store.acting(caller.note(AuditAction::ChannelDeleted, &name));
    let target = name.clone();
    let (_, ended) = blocking(move || store.delete_channel(&target)).await?;
    api.playback.remove_channel(&name);
    if let Some(session) = ended {
        api.live.end(&name, Some(&session), Ending::End(EndReason::ChannelDeleted)).await;
    }
    tracing::info!(channel = %name, "api: channel deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Start a channel: publishes are accepted. 409 when it is already active.
#[utoipa::path(post, path = "/channels/{name}/start", tag = "channels",
    params(ChannelName),
    responses((status = 200, description = "The started channel", body = ChannelResource), WriteErrors),
    security(("bearer" = [])))]
pub async fn start_channel(
    State(api): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<ChannelResource>, ApiError> {
    let name = channel_name(name)?;
    let store = api.store.acting(caller.note(AuditAction::ChannelStarted, &name));
    let channel = blocking(move || store.start_channel(&name)).await?;
    tracing::info!(channel = %channel.name, "api: channel started");
    Ok(Json(api.channel_resource(channel, None)))
}

/// Stop a channel: publishes are refused and a live session is ended. 409 when already stopped.
#[utoipa::path(post, path = "/channels/{name}/stop", tag = "channels",
    params(ChannelName),
    responses((status = 200, description = "The stopped channel", body = ChannelResource), WriteErrors),
    security(("bearer" = [])))]
pub async fn stop_channel(
    State(api): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<ChannelResource>, ApiError> {
    let name = channel_name(name)?;
    let store = api.store.acting(caller.note(AuditAction::ChannelStopped, &name));
    let (channel, end) = blocking(move || store.stop_channel(&name)).await?;
    if let Some((session, reason)) = end {
        api.live.end(&channel.name, Some(&session), Ending::End(reason)).await;
    }
    tracing::info!(channel = %channel.name, "api: channel stopped");
    Ok(Json(api.channel_resource(channel, None)))
}

/// Which key `rotate-key` replaces.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RotateKeyQuery {
    /// `primary` (the default) or `backup`: rotating the backup key of a channel without one gives
    /// it one.
    #[param(value_type = Option<String>, pattern = "^(primary|backup)$")]
    pub input: Option<InputRole>,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for RotateKeyQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, ApiError> {
        let mut input = None;
        for (key, value) in form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()) {
            match (key.as_ref(), value.as_ref()) {
                ("input", "primary") => input = Some(InputRole::Primary),
                ("input", "backup") => input = Some(InputRole::Backup),
                ("input", _) => return Err(ApiError::field("input", "use primary or backup")),
                (other, _) => {
                    let name: String = other.chars().take(64).collect();
                    return Err(ApiError::field(name, "unknown query parameter (use input)"));
                }
            }
        }
        Ok(RotateKeyQuery { input })
    }
}

/// Replace a stream key; the old key is refused from now on (a session in progress goes on).
#[utoipa::path(post, path = "/channels/{name}/rotate-key", tag = "channels",
    params(ChannelName, RotateKeyQuery),
    responses((status = 200, description = "The channel with its new key", body = ChannelResource), WriteErrors),
    security(("bearer" = [])))]
pub async fn rotate_stream_key(
    State(api): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    query: RotateKeyQuery,
) -> Result<Json<ChannelResource>, ApiError> {
    let name = channel_name(name)?;
    let store = api.store.acting(caller.note(AuditAction::KeyRotated, &name));
    let input = query.input.unwrap_or(InputRole::Primary);
    let channel = blocking(move || match input {
        InputRole::Primary => store.rotate_stream_key(&name),
        InputRole::Backup => store.rotate_backup_key(&name),
    })
    .await?;
    tracing::info!(channel = %channel.name, %input, "api: stream key rotated");
    Ok(Json(api.channel_resource(channel, None)))
}
