//! Encoded units (one access unit each) and the events that carry them between stages.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;

use crate::track::{TrackInfo, TrackKind};

/// When the bytes of a unit reached the appliance; used for
/// `EXT-X-PROGRAM-DATE-TIME` (wall clock) and latency measurement (monotonic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    pub instant: Instant,
    pub wall: SystemTime,
}

impl Arrival {
    pub fn now() -> Self {
        Self { instant: Instant::now(), wall: SystemTime::now() }
    }
}

/// One access unit: a video frame (length-prefixed NAL units, avcC style)
/// or audio (one raw AAC frame; for other audio codecs, what one FLV tag
/// carried: MP3 frames, G.711 bytes or an Opus packet), with its timing in the
/// track's timebase.
#[derive(Debug, Clone)]
pub struct EncodedUnit {
    /// Index of the track in the last `StreamEvent::Tracks` announcement.
    pub track: usize,
    pub kind: TrackKind,
    /// Presentation time in the track's timebase.
    pub pts: i64,
    /// Decode time in the track's timebase; non-decreasing within a track.
    pub dts: i64,
    /// A sync sample a decoder can start from (IDR for video; every audio frame).
    pub keyframe: bool,
    pub data: Bytes,
    pub arrival: Arrival,
}

/// What flows through a unit channel: a (re)announcement of the tracks, then units.
#[derive(Debug, Clone)]
pub enum StreamEvent {
    /// The track set; sent before the first unit and again whenever a codec
    /// configuration changes (the packager starts a new init segment). The
    /// same set sent again after units says the producer restarted (a
    /// transcode moved to another encoder slot): the packager starts a
    /// discontinuity with the same init.
    Tracks(Arc<[TrackInfo]>),
    Unit(EncodedUnit),
}
