//! Track descriptions: what a stream carries, announced before its first unit.

use crate::codec::CodecConfig;
use crate::timebase::Timebase;

/// Whether a track carries pictures or sound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TrackKind {
    Video,
    Audio,
}

/// One elementary stream of a publish or rendition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInfo {
    pub kind: TrackKind,
    /// Clock of this track's `pts`/`dts`; also the fMP4 timescale.
    pub timebase: Timebase,
    pub codec: CodecConfig,
    /// Nominal frame rate (numerator, denominator) when the source declared one.
    pub frame_rate: Option<(u32, u32)>,
    /// Nominal bitrate in bits per second when the source declared one.
    pub bitrate: Option<u32>,
}

impl TrackInfo {
    /// Picture size for video tracks.
    pub fn resolution(&self) -> Option<(u32, u32)> {
        match &self.codec {
            CodecConfig::Avc(avc) => Some((avc.width, avc.height)),
            CodecConfig::Hevc(hevc) => Some((hevc.width, hevc.height)),
            CodecConfig::Av1(av1) => Some((av1.width, av1.height)),
            CodecConfig::Aac(_) | CodecConfig::OtherAudio(_) => None,
        }
    }
}
