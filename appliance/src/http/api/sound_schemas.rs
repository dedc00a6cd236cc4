//! OpenAPI schemas of a channel's sound controls (`media::sound`), mirroring
//! its serde shapes (`media` has no OpenAPI dependency); the ranges are the
//! ones `state::records::sound` checks, and the test below round-trips real
//! values through the mirrors.

#![allow(dead_code)] // Only the schemas are used; the types describe the wire format.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Sound controls, applied to the decoded audio in this order: resample, karaoke, gain, equaliser,
/// loudness, compressor, limiter, fade-in; then encoded to AAC once for every rendition. On a
/// passthrough channel only the audio is then transcoded (the video still passes through). None of
/// them adds a lookahead: loudness follows the source's measured loudness (EBU R128 momentary, then
/// short-term) with a gain, so it converges within about a second of the session's start.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
#[schema(as = SoundProcessing)]
pub struct SoundSchema {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resample: Option<ResampleSchema>,
    /// Remove centre-panned sound (the vocals of most mixes) from a stereo source.
    pub karaoke: bool,
    /// A fixed gain in dB.
    #[schema(minimum = -30, maximum = 30)]
    pub gain_db: f64,
    /// Shelves and peaks, applied in order (at most 8).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 8)]
    pub equalizer: Vec<EqBandSchema>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loudness: Option<LoudnessSchema>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compressor: Option<CompressorSchema>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limiter: Option<LimiterSchema>,
    /// A linear fade-in at the start of each session, in milliseconds.
    #[schema(minimum = 0, maximum = 10000)]
    pub fade_in_ms: u32,
    /// When the operator stops the channel (`POST /channels/{name}/stop`), a linear fade-out over
    /// this many milliseconds before the stream ends (ENDLIST); the stop answers after it.
    #[schema(minimum = 0, maximum = 10000)]
    pub fade_out_ms: u32,
}

/// Output rate and layout (absent: the source's rate where AAC has it, mono or stereo as the
/// source), resampled with a 64-tap filter.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
#[schema(as = Resample)]
pub struct ResampleSchema {
    /// One of 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000.
    #[schema(default = 48000)]
    pub rate: u32,
    pub layout: LayoutSchema,
}

impl Default for ResampleSchema {
    fn default() -> Self {
        ResampleSchema { rate: 48_000, layout: LayoutSchema::Stereo }
    }
}

/// `mono` mixes every channel down to one.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[schema(as = SoundLayout)]
pub enum LayoutSchema {
    #[default]
    Stereo,
    Mono,
}

/// One equaliser band: `low-shelf`/`high-shelf` raise or lower what is below/above the frequency,
/// `peak` a bell around it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = EqBand)]
pub struct EqBandSchema {
    #[serde(rename = "type")]
    pub kind: EqKindSchema,
    #[schema(minimum = 20, maximum = 20000)]
    pub frequency_hz: u32,
    #[schema(minimum = -24, maximum = 24)]
    pub gain_db: f64,
    /// Quality factor (bandwidth of a peak, slope of a shelf); default 0.707.
    #[serde(default = "default_q")]
    #[schema(minimum = 0.1, maximum = 10)]
    pub q: f64,
}

fn default_q() -> f64 {
    std::f64::consts::FRAC_1_SQRT_2
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[schema(as = EqKind)]
pub enum EqKindSchema {
    LowShelf,
    HighShelf,
    Peak,
}

/// Loudness normalisation to a target: -23 LUFS (EBU R128, the default) or -14 LUFS (streaming),
/// then a true-peak limiter (4x oversampled).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
#[schema(as = Loudness)]
pub struct LoudnessSchema {
    #[schema(minimum = -40, maximum = -5, default = -23)]
    pub target_lufs: f64,
    #[schema(minimum = -9, maximum = 0, default = -1)]
    pub true_peak_db: f64,
}

impl Default for LoudnessSchema {
    fn default() -> Self {
        LoudnessSchema { target_lufs: -23.0, true_peak_db: -1.0 }
    }
}

/// A compressor (FFmpeg `acompressor`): above the threshold the level rises `ratio` times slower.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
#[schema(as = Compressor)]
pub struct CompressorSchema {
    #[schema(minimum = -60, maximum = 0, default = -18)]
    pub threshold_db: f64,
    #[schema(minimum = 1, maximum = 20, default = 4)]
    pub ratio: f64,
    #[schema(minimum = 0.01, maximum = 2000, default = 20)]
    pub attack_ms: f64,
    #[schema(minimum = 0.01, maximum = 9000, default = 250)]
    pub release_ms: f64,
    #[schema(minimum = 0, maximum = 36, default = 0)]
    pub makeup_db: f64,
}

impl Default for CompressorSchema {
    fn default() -> Self {
        CompressorSchema { threshold_db: -18.0, ratio: 4.0, attack_ms: 20.0, release_ms: 250.0, makeup_db: 0.0 }
    }
}

/// A limiter (FFmpeg `alimiter`, sample peak): the output never exceeds the threshold.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
#[schema(as = Limiter)]
pub struct LimiterSchema {
    #[schema(minimum = -24, maximum = 0, default = -1)]
    pub threshold_db: f64,
    #[schema(minimum = 0.1, maximum = 80, default = 5)]
    pub attack_ms: f64,
    #[schema(minimum = 1, maximum = 8000, default = 50)]
    pub release_ms: f64,
}

impl Default for LimiterSchema {
    fn default() -> Self {
        LimiterSchema { threshold_db: -1.0, attack_ms: 5.0, release_ms: 50.0 }
    }
}

#[cfg(test)]
mod tests {
    use media::SoundProcessing;

    use super::*;

    /// Real values serialise to JSON the mirror reads, and back.
    #[test]
    fn the_mirror_reads_what_media_writes() {
        for json in [
            "{}",
            r#"{"resample":{"rate":44100,"layout":"mono"},"gain_db":-3.5,"fade_in_ms":500,"fade_out_ms":2000,"equalizer":[{"type":"low-shelf","frequency_hz":100,"gain_db":3},{"type":"high-shelf","frequency_hz":8000,"gain_db":-2,"q":1.5},{"type":"peak","frequency_hz":1000,"gain_db":1}],"loudness":{"target_lufs":-14},"compressor":{"ratio":2},"limiter":{}}"#,
            r#"{"karaoke":true}"#,
        ] {
            let real: SoundProcessing = serde_json::from_str(json).unwrap();
            let value = serde_json::to_value(&real).unwrap();
            let mirror: SoundSchema = serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{value}: {e}"));
            let back: SoundProcessing = serde_json::from_value(serde_json::to_value(&mirror).unwrap()).unwrap();
            assert_eq!(back, real, "{json}");
        }
    }
}
