//! Recording routes: a channel's recordings (newest first) and one
//! recording (by its session id) with size, duration, renditions and state;
//! lock and unlock; delete; and the disk usage with the retention in force.
//! The recordings on disk are the source of truth (`crate::recordings`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::api_state::ApiState;
use super::audit::record_after_change;
use super::channels::ChannelName;
use super::errors::{ReadErrors, WriteErrors};
use crate::http::access::caller::Caller;
use crate::http::problem::{ApiError, ProblemKind};
use crate::recordings::retention::disk_space;
use crate::recordings::scrubbing;
use crate::recordings::{Recording, RecordingError, Recordings};
use crate::state::clock::rfc3339;
use crate::state::{AuditAction, AuditNote};
use crate::state::{RecordRenditions, RecordingState, validate_name};

/// One rendition of a recording.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecordedRendition {
    pub name: String,
    pub segments: usize,
    pub duration_seconds: f64,
    pub bytes: u64,
    /// Places where playback crosses an `EXT-X-DISCONTINUITY` (new tracks, an encoder move, a gap).
    pub discontinuities: usize,
    /// RFC 6381 codec strings.
    pub codecs: Vec<String>,
    /// `WIDTHxHEIGHT` of its video.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
}

/// A recorded session.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecordingResource {
    pub channel: String,
    /// The session's id (as in `/channels/{name}/sessions/{id}`).
    pub session: String,
    pub state: RecordingState,
    /// A locked recording is never deleted by retention (nor by DELETE until unlocked).
    pub locked: bool,
    #[schema(format = DateTime)]
    pub started_at: String,
    #[schema(format = DateTime)]
    pub ended_at: Option<String>,
    /// Seconds of media of the top rendition.
    pub duration_seconds: f64,
    /// Bytes on disk, every file of the recording.
    pub bytes: u64,
    /// Top rendition first.
    pub renditions: Vec<RecordedRendition>,
    /// The catchup's multivariant playlist (HLS VOD), once the recording is finished.
    pub playback_url: Option<String>,
    /// One MP4 of it (faststart; `?start=&duration=` seconds for a range, cut
    /// on keyframes; `&rendition=` another than the top one), once finished.
    pub export_url: Option<String>,
    /// Its WebVTT scrubbing track (cues pointing into JPEG sprite sheets of
    /// its thumbnails), once finished, when it has thumbnails.
    pub scrubbing_url: Option<String>,
    /// Why recording stopped for a while (a full disk), if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
}

/// A channel's recordings, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecordingList {
    pub items: Vec<RecordingResource>,
}

/// A channel's recording settings as retention applies them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChannelRetention {
    pub channel: String,
    pub enabled: bool,
    pub renditions: RecordRenditions,
    /// Days its recordings are kept after they end; null: until the quota needs room.
    pub retain_days: Option<u32>,
}

/// Disk usage of the recordings and the retention in force.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecordingUsage {
    pub recordings_bytes: u64,
    pub recordings: usize,
    pub locked: usize,
    /// The data partition.
    pub disk_total_bytes: u64,
    pub disk_available_bytes: u64,
    /// Percent of the data partition retention keeps free.
    pub keep_free_percent: f64,
    /// Cap on all recordings together; null: none besides the free share.
    pub max_bytes: Option<u64>,
    pub channels: Vec<ChannelRetention>,
}

impl RecordingResource {
    fn new(recording: Recording, api: &ApiState) -> RecordingResource {
        let meta = &recording.meta;
        let urls = &api.urls;
        let renditions = recording
            .renditions
            .iter()
            .map(|r| {
                let described = meta.renditions.iter().find(|m| m.name == r.name);
                RecordedRendition {
                    name: r.name.clone(),
                    segments: r.segments,
                    duration_seconds: r.duration_seconds,
                    bytes: r.bytes,
                    discontinuities: r.discontinuities,
                    codecs: described.map(|m| m.codecs.clone()).unwrap_or_default(),
                    resolution: described.and_then(|m| m.resolution).map(|(w, h)| format!("{w}x{h}")),
                }
            })
            .collect();
        let finished = meta.state.is_finished();
        let url = |file: &str| {
            format!("http://{}:{}/hls/{}/recordings/{}/{file}", urls.host, urls.http_port, meta.channel, meta.session)
        };
        let has_thumbnails = api.recordings.as_ref().is_some_and(|r| {
            let dir = r.catalog().layout().session_dir(&meta.channel, &meta.session);
            dir.join(scrubbing::THUMBNAILS_DIR).join(scrubbing::TILES_FILE).exists()
        });
        RecordingResource {
            playback_url: finished.then(|| url("master.m3u8")),
            export_url: finished.then(|| url("export.mp4")),
            scrubbing_url: (finished && has_thumbnails).then(|| url("thumbnails.vtt")),
            channel: meta.channel.clone(),
            session: meta.session.clone(),
            state: meta.state,
            locked: recording.locked,
            started_at: rfc3339(meta.started_ms),
            ended_at: meta.ended_ms.map(rfc3339),
            duration_seconds: recording.duration_seconds(),
            bytes: recording.bytes,
            renditions,
            last_failure: meta.last_failure.clone(),
        }
    }
}

impl From<RecordingError> for ApiError {
    fn from(e: RecordingError) -> ApiError {
        match e {
            RecordingError::NotFound { .. } => ApiError::not_found("no such recording"),
            RecordingError::Locked(_) | RecordingError::InProgress(_) => {
                ApiError::new(ProblemKind::Conflict, e.to_string())
            }
            RecordingError::Io(_) => {
                tracing::error!(error = %e, "api: recordings failure");
                ApiError::new(ProblemKind::Internal, "the recordings could not be read; see the appliance log")
            }
        }
    }
}

/// Runs a blocking operation on the recordings off the runtime.
async fn on_disk<T: Send + 'static>(
    api: &ApiState,
    f: impl FnOnce(&Recordings) -> Result<T, RecordingError> + Send + 'static,
) -> Result<T, ApiError> {
    let Some(recordings) = api.recordings.clone() else {
        return Err(ApiError::new(ProblemKind::Unavailable, "recordings are not available"));
    };
    match tokio::task::spawn_blocking(move || f(&recordings)).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) => {
            tracing::error!(error = %e, "api: recordings task failed");
            Err(ApiError::new(ProblemKind::Internal, "the recordings operation failed; see the appliance log"))
        }
    }
}

/// List a channel's recordings, newest first.
#[utoipa::path(get, path = "/channels/{name}/recordings", tag = "recordings",
    params(ChannelName),
    responses((status = 200, description = "The channel's recordings", body = RecordingList), ReadErrors),
    security(("bearer" = [])))]
pub async fn list_recordings(
    State(api): State<ApiState>,
    _: Caller,
    Path(name): Path<String>,
) -> Result<Json<RecordingList>, ApiError> {
    if validate_name(&name).is_err() {
        return Err(ApiError::not_found("no such channel"));
    }
    let list = on_disk(&api, move |r| r.catalog().list(&name)).await?;
    Ok(Json(RecordingList { items: list.into_iter().map(|r| RecordingResource::new(r, &api)).collect() }))
}

/// Get the recording of one session of a channel.
#[utoipa::path(get, path = "/channels/{name}/recordings/{session}", tag = "recordings",
    params(ChannelName, ("session" = String, Path, description = "Session id", max_length = 64)),
    responses((status = 200, description = "The recording", body = RecordingResource), ReadErrors),
    security(("bearer" = [])))]
pub async fn get_recording(
    State(api): State<ApiState>,
    _: Caller,
    Path((name, session)): Path<(String, String)>,
) -> Result<Json<RecordingResource>, ApiError> {
    let recording = on_disk(&api, move |r| r.catalog().get(&name, &session)).await?;
    Ok(Json(RecordingResource::new(recording, &api)))
}

/// Delete a finished, unlocked recording (`recording.deleted` with reason `api`).
#[utoipa::path(delete, path = "/channels/{name}/recordings/{session}", tag = "recordings",
    params(ChannelName, ("session" = String, Path, description = "Session id", max_length = 64)),
    responses((status = 204, description = "Deleted"), WriteErrors),
    security(("bearer" = [])))]
pub async fn delete_recording(
    State(api): State<ApiState>,
    caller: Caller,
    Path((name, session)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let note = caller.note(AuditAction::RecordingDeleted, format!("{name}/{session}"));
    on_disk(&api, move |r| {
        let recording = r.catalog().delete(&name, &session)?;
        tracing::info!(channel = %name, %session, bytes = recording.bytes, "api: recording deleted");
        let _ = r.notifier().deleted(&recording, "api");
        Ok(())
    })
    .await?;
    // Recordings are files, not state-file records: the entry follows the change.
    record_after_change(&api, note).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Lock a recording: retention never deletes it, nor does DELETE until it is unlocked.
#[utoipa::path(put, path = "/channels/{name}/recordings/{session}/lock", tag = "recordings",
    params(ChannelName, ("session" = String, Path, description = "Session id", max_length = 64)),
    responses((status = 200, description = "The recording, locked", body = RecordingResource), WriteErrors),
    security(("bearer" = [])))]
pub async fn lock_recording(
    State(api): State<ApiState>,
    caller: Caller,
    Path((name, session)): Path<(String, String)>,
) -> Result<Json<RecordingResource>, ApiError> {
    let note = caller.note(AuditAction::RecordingLocked, format!("{name}/{session}"));
    set_locked(api, name, session, true, note).await
}

/// Unlock a recording.
#[utoipa::path(delete, path = "/channels/{name}/recordings/{session}/lock", tag = "recordings",
    params(ChannelName, ("session" = String, Path, description = "Session id", max_length = 64)),
    responses((status = 200, description = "The recording, unlocked", body = RecordingResource), WriteErrors),
    security(("bearer" = [])))]
pub async fn unlock_recording(
    State(api): State<ApiState>,
    caller: Caller,
    Path((name, session)): Path<(String, String)>,
) -> Result<Json<RecordingResource>, ApiError> {
    let note = caller.note(AuditAction::RecordingUnlocked, format!("{name}/{session}"));
    set_locked(api, name, session, false, note).await
}

async fn set_locked(
    api: ApiState,
    name: String,
    session: String,
    locked: bool,
    note: AuditNote,
) -> Result<Json<RecordingResource>, ApiError> {
    let recording = on_disk(&api, move |r| r.catalog().set_locked(&name, &session, locked)).await?;
    // Recordings are files, not state-file records: the entry follows the change.
    record_after_change(&api, note).await;
    tracing::info!(channel = %recording.meta.channel, session = %recording.meta.session, locked, "api: recording lock changed");
    Ok(Json(RecordingResource::new(recording, &api)))
}

/// Disk usage of the recordings, and the retention in force (the quota and each channel's days).
#[utoipa::path(get, path = "/recordings/usage", tag = "recordings",
    responses((status = 200, description = "Usage and retention", body = RecordingUsage), ReadErrors),
    security(("bearer" = [])))]
pub async fn recording_usage(State(api): State<ApiState>, _: Caller) -> Result<Json<RecordingUsage>, ApiError> {
    let store = api.store.clone();
    let channels = crate::http::problem::blocking(move || store.list()).await?;
    let usage = on_disk(&api, move |r| {
        let all = r.catalog().all()?;
        std::fs::create_dir_all(r.catalog().layout().root())?;
        let disk = disk_space(r.catalog().layout().root())?;
        let quota = r.quota();
        Ok(RecordingUsage {
            recordings_bytes: all.iter().map(|r| r.bytes).sum(),
            recordings: all.len(),
            locked: all.iter().filter(|r| r.locked).count(),
            disk_total_bytes: disk.total,
            disk_available_bytes: disk.available,
            keep_free_percent: quota.keep_free_percent,
            max_bytes: quota.max_bytes,
            channels: channels
                .into_iter()
                .map(|c| ChannelRetention {
                    channel: c.name,
                    enabled: c.recording.enabled,
                    renditions: c.recording.renditions,
                    retain_days: c.recording.retain_days,
                })
                .collect(),
        })
    })
    .await?;
    Ok(Json(usage))
}
