//! The encoders route: what the `accel` probe found (every backend on every
//! device, available or with the precise reason it is not) and each usable
//! device's slot capacity and current use.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::api_state::ApiState;
use super::errors::ReadErrors;
use crate::http::access::caller::Caller;
use crate::http::problem::{ApiError, ProblemKind};

/// How long a request waits for the first probe (run once at start-up).
const PROBE_WAIT: Duration = Duration::from_secs(20);

/// One backend on one device.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EncoderDevice {
    /// Stable id: `cpu`, `cuda:0`, `vaapi:/dev/dri/renderD128`, ...
    pub id: String,
    /// `software`, `nvenc`, `qsv` or `vaapi`.
    pub backend: String,
    /// What the device calls itself (GPU model, render node, CPU).
    pub name: String,
    pub hardware: bool,
    pub available: bool,
    /// Why it cannot be used (when not available).
    pub unavailable_reason: Option<String>,
    /// Codecs it encodes (`h264`, `hevc`).
    pub codecs: Vec<String>,
    /// Slot capacity: simultaneous ladders, and megapixels per second (null when not available).
    pub capacity: Option<SlotLoad>,
    /// What the sessions placed on it use now.
    pub in_use: Option<SlotLoad>,
    /// False after a device failure, until the next probe.
    pub healthy: bool,
}

/// An amount of encoder capacity.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct SlotLoad {
    pub sessions: u32,
    pub mpix_per_sec: f64,
}

/// What the appliance can encode on.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Encoders {
    /// libavcodec's version.
    pub libavcodec: String,
    pub cpu_cores: u32,
    pub devices: Vec<EncoderDevice>,
    /// Sessions in progress (all channels, pass-through included).
    pub sessions_in_progress: u32,
}

fn codec_name(codec: &media::VideoCodec) -> String {
    serde_json::to_value(codec).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn load(l: accel::scheduler::Load) -> SlotLoad {
    let mpix = if l.mpix_per_sec.is_finite() { l.mpix_per_sec } else { 0.0 };
    SlotLoad { sessions: l.sessions, mpix_per_sec: mpix }
}

/// Encoder devices and slot usage.
#[utoipa::path(get, path = "/encoders", tag = "encoders",
    responses((status = 200, description = "Devices and their usage", body = Encoders), ReadErrors),
    security(("bearer" = [])))]
pub async fn encoders(State(api): State<ApiState>, _: Caller) -> Result<Json<Encoders>, ApiError> {
    let ready = tokio::time::timeout(PROBE_WAIT, api.live.transcoder().ready()).await;
    let Ok((report, pool)) = ready else {
        return Err(ApiError::new(ProblemKind::Unavailable, "the encoder probe is still running"));
    };
    let usage = pool.usage();
    let devices = report
        .backends
        .iter()
        .map(|b| {
            let slot = usage.iter().find(|u| u.id == b.device && u.backend == b.backend);
            let unavailable_reason = match &b.status {
                accel::probe::ProbeStatus::Unavailable { reason } => Some(reason.to_string()),
                accel::probe::ProbeStatus::Available { .. } => None,
            };
            EncoderDevice {
                id: b.device.as_str().to_string(),
                backend: b.backend.as_str().to_string(),
                name: b.name.clone(),
                hardware: b.backend.is_hardware(),
                available: b.is_available(),
                unavailable_reason,
                codecs: b.encoders().iter().map(codec_name).collect(),
                capacity: slot.map(|s| load(s.capacity)),
                in_use: slot.map(|s| load(s.used)),
                healthy: slot.is_none_or(|s| s.healthy),
            }
        })
        .collect();
    Ok(Json(Encoders {
        libavcodec: report.libavcodec.clone(),
        cpu_cores: report.cpu_cores as u32,
        devices,
        sessions_in_progress: api.live.registry().len() as u32,
    }))
}
