//! What a channel does to the sound before it is encoded to AAC: resampling,
//! karaoke, a fixed gain, an equaliser, loudness normalisation, a compressor,
//! a limiter and a fade-in. Every field has a default that leaves the sound as
//! it was, so records written before sound processing existed read back
//! unchanged; `is_identity` sends AAC on untouched.

use serde::{Deserialize, Serialize};

/// The sound controls, applied to the decoded audio in this order: resample,
/// karaoke, gain, equaliser, loudness, compressor, limiter, fade-in (and the
/// fade-out when the operator stops the channel); then
/// encoded to AAC once for every rendition (on a passthrough channel too:
/// then only the audio is transcoded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SoundProcessing {
    /// Output rate and layout; none: the source's rate where AAC has it (else
    /// 48 kHz), mono stays mono and anything else becomes stereo.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resample: Option<Resample>,
    /// Remove what is panned to the centre of a stereo source (the vocals of
    /// most mixes): left minus right, and right minus left.
    pub karaoke: bool,
    /// A fixed gain in dB.
    pub gain_db: f64,
    /// Shelves and peaks, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub equalizer: Vec<EqBand>,
    /// Loudness normalisation to a target (EBU R128); none: off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loudness: Option<Loudness>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compressor: Option<Compressor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limiter: Option<Limiter>,
    /// A linear fade-in over this many milliseconds at the start of each session.
    pub fade_in_ms: u32,
    /// When the operator stops the channel, a linear fade-out over this many
    /// milliseconds before the stream ends (ENDLIST); 0: it ends at once.
    pub fade_out_ms: u32,
}

// The values come from JSON, which has no NaN, and the API refuses
// non-finite ones: equality is reflexive.
impl Eq for SoundProcessing {}

impl SoundProcessing {
    /// Whether the sound is left as it is (AAC passes through untouched).
    pub fn is_identity(&self) -> bool {
        *self == SoundProcessing::default()
    }
}

/// Output sample rate and channel layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Resample {
    /// Hz; one AAC has (8000 to 48000).
    pub rate: u32,
    pub layout: Layout,
}

impl Default for Resample {
    fn default() -> Self {
        Resample { rate: 48_000, layout: Layout::Stereo }
    }
}

/// Output channel layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    #[default]
    Stereo,
    /// Every channel mixed down to one.
    Mono,
}

/// One equaliser band.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EqBand {
    #[serde(rename = "type")]
    pub kind: EqKind,
    pub frequency_hz: u32,
    pub gain_db: f64,
    /// Quality factor (bandwidth of a peak, slope of a shelf).
    #[serde(default = "EqBand::default_q")]
    pub q: f64,
}

impl EqBand {
    fn default_q() -> f64 {
        std::f64::consts::FRAC_1_SQRT_2
    }
}

/// The shape of an equaliser band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EqKind {
    /// Everything below the frequency raised or lowered.
    LowShelf,
    /// Everything above the frequency raised or lowered.
    HighShelf,
    /// A bell around the frequency.
    Peak,
}

/// Loudness normalisation: a gain that follows the measured loudness of the
/// source toward `target_lufs`, then a true-peak limiter.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Loudness {
    /// -23 LUFS: EBU R128 (broadcast); -14 LUFS: the streaming platforms' level.
    pub target_lufs: f64,
    /// The highest true peak (dBTP) the output may reach.
    pub true_peak_db: f64,
}

impl Default for Loudness {
    fn default() -> Self {
        Loudness { target_lufs: -23.0, true_peak_db: -1.0 }
    }
}

/// A compressor: above `threshold_db`, the level rises `ratio` times slower.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Compressor {
    pub threshold_db: f64,
    pub ratio: f64,
    pub attack_ms: f64,
    pub release_ms: f64,
    /// Gain after compression.
    pub makeup_db: f64,
}

impl Default for Compressor {
    fn default() -> Self {
        Compressor { threshold_db: -18.0, ratio: 4.0, attack_ms: 20.0, release_ms: 250.0, makeup_db: 0.0 }
    }
}

/// A (sample-peak) limiter: the output never exceeds `threshold_db`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limiter {
    pub threshold_db: f64,
    pub attack_ms: f64,
    pub release_ms: f64,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter { threshold_db: -1.0, attack_ms: 5.0, release_ms: 50.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_fields_are_the_identity_and_sections_take_their_defaults() {
        let empty: SoundProcessing = serde_json::from_str("{}").unwrap();
        assert!(empty.is_identity());
        assert_eq!(
            serde_json::to_string(&empty).unwrap(),
            r#"{"karaoke":false,"gain_db":0.0,"fade_in_ms":0,"fade_out_ms":0}"#
        );
        let json = r#"{"loudness":{},"resample":{"layout":"mono"},"equalizer":[{"type":"low-shelf","frequency_hz":100,"gain_db":3.0}],"compressor":{"ratio":2.0},"limiter":{}}"#;
        let sound: SoundProcessing = serde_json::from_str(json).unwrap();
        assert!(!sound.is_identity());
        assert_eq!(sound.loudness, Some(Loudness { target_lufs: -23.0, true_peak_db: -1.0 }));
        assert_eq!(sound.resample, Some(Resample { rate: 48_000, layout: Layout::Mono }));
        assert_eq!(sound.equalizer[0].q, std::f64::consts::FRAC_1_SQRT_2);
        assert_eq!(sound.compressor.unwrap().threshold_db, -18.0);
        assert_eq!(sound.limiter, Some(Limiter::default()));
        let again: SoundProcessing = serde_json::from_str(&serde_json::to_string(&sound).unwrap()).unwrap();
        assert_eq!(again, sound);
    }

    #[test]
    fn unknown_fields_and_shapes_are_refused() {
        for bad in [
            r#"{"volume":3}"#,
            r#"{"loudness":{"target":-23}}"#,
            r#"{"equalizer":[{"type":"notch","frequency_hz":100,"gain_db":3}]}"#,
            r#"{"equalizer":[{"type":"peak","gain_db":3}]}"#,
            r#"{"resample":{"layout":"5.1"}}"#,
        ] {
            assert!(serde_json::from_str::<SoundProcessing>(bad).is_err(), "{bad}");
        }
    }
}
