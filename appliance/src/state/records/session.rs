//! A session: one publish of a channel, never reused, with its state, times,
//! end reason and stats; the stats a pipeline reports (at the end or as a
//! checkpoint), and the encoder slot records of a ladder that moved.

use serde::{Deserialize, Serialize};

use crate::state::clock;
use crate::state::lifecycle::{EndReason, SessionState};

/// One publish of a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub channel: String,
    pub state: SessionState,
    /// The publisher's address.
    pub peer: String,
    pub started_ms: u64,
    #[serde(default)]
    pub live_ms: Option<u64>,
    #[serde(default)]
    pub ended_ms: Option<u64>,
    #[serde(default)]
    pub end_reason: Option<EndReason>,
    #[serde(default)]
    pub error: Option<String>,
    /// Media payload bytes received from the publisher.
    #[serde(default)]
    pub bytes_in: u64,
    /// Media units (frames) received from the publisher.
    #[serde(default)]
    pub units_in: u64,
    /// Units dropped because a stage fell behind.
    #[serde(default)]
    pub dropped_units: u64,
    /// The renditions the session was packaged into.
    #[serde(default)]
    pub renditions: Vec<String>,
    /// When the stats were last checkpointed while the session was in progress.
    #[serde(default)]
    pub checkpoint_ms: Option<u64>,
}

impl Session {
    /// How long it ran (so far, for one in progress).
    pub fn duration_ms(&self) -> u64 {
        self.ended_ms.unwrap_or_else(clock::now_ms).saturating_sub(self.started_ms)
    }
}

/// An encoder slot: backend and device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EncoderSlot {
    /// `software`, `nvenc`, `qsv` or `vaapi`.
    pub backend: String,
    /// The device's id: `cpu`, `cuda:0`, `vaapi:/dev/dri/renderD128`, ...
    pub device: String,
}

impl EncoderSlot {
    pub fn new(backend: accel::Backend, device: &accel::DeviceId) -> EncoderSlot {
        EncoderSlot { backend: backend.to_string(), device: device.to_string() }
    }
}

/// A session's ladder moved to another encoder slot after an encoder or
/// device failure: the `session.encoder_moved` event's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EncoderMoved {
    /// The session (its media playlists get a discontinuity, not an ENDLIST).
    pub session: String,
    pub from: EncoderSlot,
    pub to: EncoderSlot,
    /// The failure that caused the move.
    pub reason: String,
    /// The rungs running when the move was decided (rendition names).
    pub kept: Vec<String>,
    /// Moves of this session so far, this one included.
    pub moves: u32,
}

/// What a pipeline measured by the end of a session (or so far).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionStats {
    pub bytes_in: u64,
    pub units_in: u64,
    pub dropped_units: u64,
    pub renditions: Vec<String>,
}

impl SessionStats {
    pub(crate) fn apply(self, session: &mut Session) {
        session.bytes_in = self.bytes_in;
        session.units_in = self.units_in;
        session.dropped_units = self.dropped_units;
        session.renditions = self.renditions;
    }
}

/// The stats so far of a session in progress, to checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCheckpoint {
    pub channel: String,
    pub session: String,
    pub stats: SessionStats,
}
