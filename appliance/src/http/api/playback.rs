//! Playback of private channels: tokens for an integrator's app (or the
//! console's preview), and the signing keys: their list and their rotation
//! with an overlap window (admin).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::api_state::ApiState;
use super::channels::{ChannelName, channel_name};
use super::errors::{ReadErrors, WriteErrors};
use super::json_body::ApiJson;
use super::resources::PlaybackKeyResource;
use crate::config::MAX_KEY_OVERLAP_SECONDS;
use crate::http::access::caller::Caller;
use crate::http::problem::{ApiError, ProblemKind, blocking};
use crate::playback::token::{Claims, PARAM, parse_network};
use crate::state::{AuditAction, Playback, clock::rfc3339};

/// Default lifetime of a playback token.
pub const DEFAULT_TTL_SECONDS: u64 = 3600;
/// Longest lifetime of a playback token (7 days).
pub const MAX_TTL_SECONDS: u64 = 7 * 86_400;

/// What a playback token grants.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePlaybackToken {
    /// Seconds it plays for (1 to 604800; default 3600).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 604800, default = 3600)]
    pub ttl_seconds: Option<u64>,
    /// The viewers' network (CIDR such as `203.0.113.0/24` or `2001:db8::/48`, or one address);
    /// absent: any address.
    #[serde(default)]
    #[schema(max_length = 64)]
    pub network: Option<String>,
}

/// A playback token and the URLs that carry it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PlaybackTokenResource {
    /// Add as the `token` query parameter of the channel's playlist URLs.
    pub token: String,
    pub channel: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// The viewers' network it is limited to, if any.
    pub network: Option<String>,
    /// The key that signed it.
    pub key_id: String,
    /// Whether the channel is private now (a public channel ignores the token).
    pub playback: Playback,
    /// The multivariant playlist URL with the token.
    pub playback_url: String,
    /// The DVR multivariant playlist URL with the token, when the channel has a DVR window.
    pub dvr_url: Option<String>,
}

/// Make a playback token for a channel: an HMAC over the channel, an expiry and optionally the
/// viewers' network, carried in the playlist URL's `token` query parameter and then in every URI the
/// origin hands out. A token restricted to channels signs for those channels only.
#[utoipa::path(post, path = "/channels/{name}/playback-tokens", tag = "playback",
    params(ChannelName), request_body = CreatePlaybackToken,
    responses((status = 201, description = "A token for the channel", body = PlaybackTokenResource), WriteErrors),
    security(("bearer" = [])))]
pub async fn create_playback_token(
    State(api): State<ApiState>,
    _: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<CreatePlaybackToken>,
) -> Result<(StatusCode, Json<PlaybackTokenResource>), ApiError> {
    let name = channel_name(name)?;
    let ttl = body.ttl_seconds.unwrap_or(DEFAULT_TTL_SECONDS);
    if !(1..=MAX_TTL_SECONDS).contains(&ttl) {
        return Err(ApiError::field("ttl_seconds", format!("{ttl} is outside 1..={MAX_TTL_SECONDS}")));
    }
    let network = match body.network.as_deref() {
        None => None,
        Some(text) => Some(
            parse_network(text.trim())
                .filter(|_| text.len() <= 64)
                .ok_or_else(|| ApiError::field("network", "not a CIDR network or an address"))?,
        ),
    };
    let store = api.store.clone();
    let lookup = name.clone();
    let channel = blocking(move || store.get(&lookup))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("channel {name:?} does not exist")))?;
    let expires = clock_seconds() + ttl;
    let claims = Claims { channel: channel.name.clone(), expires, network };
    let (token, key_id) = match api.playback.sign(&claims) {
        Some(signed) => signed,
        None => {
            // No key yet (an API state built without loading them): make the first one.
            let store = api.store.clone();
            let keys = blocking(move || store.ensure_playback_key()).await?;
            api.playback.set_keys(&keys);
            api.playback.sign(&claims).ok_or_else(|| ApiError::new(ProblemKind::Internal, "no signing key"))?
        }
    };
    let resource = api.channel_resource(channel, None);
    let with_token = |url: &str| format!("{url}?{PARAM}={token}");
    let created = PlaybackTokenResource {
        playback_url: with_token(&resource.playback_url),
        dvr_url: resource.dvr_url.as_deref().map(with_token),
        token: token.clone(),
        channel: resource.name,
        expires_at: rfc3339(expires * 1000),
        network: network.map(|n| n.to_string()),
        key_id,
        playback: resource.playback,
    };
    Ok((StatusCode::CREATED, Json(created)))
}

fn clock_seconds() -> u64 {
    crate::state::clock::now_ms() / 1000
}

/// The signing keys.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PlaybackKeys {
    /// Oldest first; the one with no `retired_at` signs new tokens.
    pub items: Vec<PlaybackKeyResource>,
}

/// List the keys that sign playback tokens (never their secrets).
#[utoipa::path(get, path = "/playback-keys", tag = "playback",
    responses((status = 200, description = "The signing keys", body = PlaybackKeys), ReadErrors),
    security(("bearer" = [])))]
pub async fn list_playback_keys(State(api): State<ApiState>, _: Caller) -> Result<Json<PlaybackKeys>, ApiError> {
    let store = api.store.clone();
    let keys = blocking(move || store.ensure_playback_key()).await?;
    Ok(Json(PlaybackKeys { items: keys.iter().map(PlaybackKeyResource::from).collect() }))
}

/// A rotation of the signing key.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotatePlaybackKey {
    /// How long the older keys keep verifying the tokens they signed (0 to 2592000 seconds; 0: they
    /// are refused at once); default `playback.key_overlap_seconds`. A key already retiring sooner
    /// keeps its earlier end.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 2592000)]
    pub overlap_seconds: Option<u64>,
}

/// The rotation's outcome.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RotatedPlaybackKey {
    /// The new key: it signs every token from now on.
    pub key: PlaybackKeyResource,
    /// The older keys still verifying, with the end of their window.
    pub retiring: Vec<PlaybackKeyResource>,
}

/// Rotate the playback signing key: a new key signs from now on, the older ones keep verifying for
/// the overlap window.
#[utoipa::path(post, path = "/playback-keys/rotate", tag = "playback", request_body = RotatePlaybackKey,
    responses((status = 201, description = "Rotated", body = RotatedPlaybackKey), WriteErrors),
    security(("bearer" = [])))]
pub async fn rotate_playback_key(
    State(api): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<RotatePlaybackKey>,
) -> Result<(StatusCode, Json<RotatedPlaybackKey>), ApiError> {
    let overlap = body.overlap_seconds.unwrap_or(api.playback_key_overlap_seconds);
    if overlap > MAX_KEY_OVERLAP_SECONDS {
        return Err(ApiError::field("overlap_seconds", format!("{overlap} is outside 0..={MAX_KEY_OVERLAP_SECONDS}")));
    }
    let note =
        caller.note(AuditAction::PlaybackKeyRotated, "playback-keys").with_detail(format!("overlap {overlap} s"));
    let store = api.store.acting(note);
    let (key, retiring, keys) = blocking(move || {
        let (key, retiring) = store.rotate_playback_key(overlap * 1000)?;
        Ok((key, retiring, store.playback_keys()?))
    })
    .await?;
    api.playback.set_keys(&keys);
    tracing::info!(key = %key.id, overlap, by = %caller.id, "api: playback signing key rotated");
    let rotated = RotatedPlaybackKey {
        key: PlaybackKeyResource::from(&key),
        retiring: retiring.iter().map(PlaybackKeyResource::from).collect(),
    };
    Ok((StatusCode::CREATED, Json(rotated)))
}
