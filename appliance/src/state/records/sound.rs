//! The checks of a channel's sound controls (`processing.sound`): each value
//! in the range FFmpeg's filter for it takes, named by its field path.

use std::ops::RangeInclusive;

use media::sound::{Layout, SoundProcessing};

use crate::state::error::StoreError;

/// Output rates a channel may choose (AAC has each; below 8 kHz speech is lost).
pub const SOUND_RATES: [u32; 9] = [8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000];
/// Most equaliser bands.
pub const MAX_EQ_BANDS: usize = 8;
pub const GAIN_DB: RangeInclusive<f64> = -30.0..=30.0;
pub const FADE_IN_MS: RangeInclusive<u32> = 0..=10_000;
pub const FADE_OUT_MS: RangeInclusive<u32> = 0..=10_000;
pub const EQ_FREQUENCY_HZ: RangeInclusive<u32> = 20..=20_000;
pub const EQ_GAIN_DB: RangeInclusive<f64> = -24.0..=24.0;
pub const EQ_Q: RangeInclusive<f64> = 0.1..=10.0;
pub const TARGET_LUFS: RangeInclusive<f64> = -40.0..=-5.0;
pub const TRUE_PEAK_DB: RangeInclusive<f64> = -9.0..=0.0;
/// `acompressor`'s threshold (linear 1/1024..1), ratio, times and makeup (linear 1..64).
pub const COMPRESSOR_THRESHOLD_DB: RangeInclusive<f64> = -60.0..=0.0;
pub const COMPRESSOR_RATIO: RangeInclusive<f64> = 1.0..=20.0;
pub const COMPRESSOR_ATTACK_MS: RangeInclusive<f64> = 0.01..=2000.0;
pub const COMPRESSOR_RELEASE_MS: RangeInclusive<f64> = 0.01..=9000.0;
pub const COMPRESSOR_MAKEUP_DB: RangeInclusive<f64> = 0.0..=36.0;
/// `alimiter`'s limit (linear 1/16..1) and times.
pub const LIMITER_THRESHOLD_DB: RangeInclusive<f64> = -24.0..=0.0;
pub const LIMITER_ATTACK_MS: RangeInclusive<f64> = 0.1..=80.0;
pub const LIMITER_RELEASE_MS: RangeInclusive<f64> = 1.0..=8000.0;

/// `value` within `range`, or the error for `field` (under `processing.sound.`).
fn within<T: PartialOrd + std::fmt::Display>(
    field: &str,
    value: T,
    range: &RangeInclusive<T>,
) -> Result<(), StoreError> {
    if range.contains(&value) {
        return Ok(());
    }
    Err(StoreError::invalid(
        format!("processing.sound.{field}"),
        format!("{value} is outside {}..={}", range.start(), range.end()),
    ))
}

/// Every sound control in its range; karaoke needs a stereo output.
pub(crate) fn validate_sound(sound: &SoundProcessing) -> Result<(), StoreError> {
    if let Some(resample) = &sound.resample {
        if !SOUND_RATES.contains(&resample.rate) {
            return Err(StoreError::invalid(
                "processing.sound.resample.rate",
                format!("{} Hz is not one of {SOUND_RATES:?}", resample.rate),
            ));
        }
        if sound.karaoke && resample.layout == Layout::Mono {
            return Err(StoreError::invalid(
                "processing.sound.karaoke",
                "karaoke needs a stereo output (resample.layout is mono)",
            ));
        }
    }
    within("gain_db", sound.gain_db, &GAIN_DB)?;
    within("fade_in_ms", sound.fade_in_ms, &FADE_IN_MS)?;
    within("fade_out_ms", sound.fade_out_ms, &FADE_OUT_MS)?;
    if sound.equalizer.len() > MAX_EQ_BANDS {
        return Err(StoreError::invalid(
            "processing.sound.equalizer",
            format!("{} bands, at most {MAX_EQ_BANDS}", sound.equalizer.len()),
        ));
    }
    for (i, band) in sound.equalizer.iter().enumerate() {
        within(&format!("equalizer[{i}].frequency_hz"), band.frequency_hz, &EQ_FREQUENCY_HZ)?;
        within(&format!("equalizer[{i}].gain_db"), band.gain_db, &EQ_GAIN_DB)?;
        within(&format!("equalizer[{i}].q"), band.q, &EQ_Q)?;
    }
    if let Some(loudness) = &sound.loudness {
        within("loudness.target_lufs", loudness.target_lufs, &TARGET_LUFS)?;
        within("loudness.true_peak_db", loudness.true_peak_db, &TRUE_PEAK_DB)?;
    }
    if let Some(c) = &sound.compressor {
        within("compressor.threshold_db", c.threshold_db, &COMPRESSOR_THRESHOLD_DB)?;
        within("compressor.ratio", c.ratio, &COMPRESSOR_RATIO)?;
        within("compressor.attack_ms", c.attack_ms, &COMPRESSOR_ATTACK_MS)?;
        within("compressor.release_ms", c.release_ms, &COMPRESSOR_RELEASE_MS)?;
        within("compressor.makeup_db", c.makeup_db, &COMPRESSOR_MAKEUP_DB)?;
    }
    if let Some(l) = &sound.limiter {
        within("limiter.threshold_db", l.threshold_db, &LIMITER_THRESHOLD_DB)?;
        within("limiter.attack_ms", l.attack_ms, &LIMITER_ATTACK_MS)?;
        within("limiter.release_ms", l.release_ms, &LIMITER_RELEASE_MS)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(json: &str) -> String {
        let sound: SoundProcessing = serde_json::from_str(json).unwrap();
        validate_sound(&sound).map_err(|e| e.to_string()).err().unwrap_or_default()
    }

    #[test]
    fn every_field_is_checked_by_its_range() {
        let full = r#"{"resample":{"rate":44100},"karaoke":true,"gain_db":-3.5,"fade_in_ms":1000,
            "equalizer":[{"type":"low-shelf","frequency_hz":120,"gain_db":4},{"type":"peak","frequency_hz":3000,"gain_db":-2,"q":2}],
            "loudness":{"target_lufs":-14},"compressor":{},"limiter":{"threshold_db":-2}}"#;
        assert_eq!(error(full), "");
        assert_eq!(error("{}"), "");
        for (json, want) in [
            (
                r#"{"resample":{"rate":96000}}"#,
                "processing.sound.resample.rate: 96000 Hz is not one of [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000]",
            ),
            (
                r#"{"resample":{"layout":"mono"},"karaoke":true}"#,
                "processing.sound.karaoke: karaoke needs a stereo output (resample.layout is mono)",
            ),
            (r#"{"gain_db":31}"#, "processing.sound.gain_db: 31 is outside -30..=30"),
            (r#"{"fade_in_ms":10001}"#, "processing.sound.fade_in_ms: 10001 is outside 0..=10000"),
            (r#"{"fade_out_ms":20000}"#, "processing.sound.fade_out_ms: 20000 is outside 0..=10000"),
            (
                r#"{"equalizer":[{"type":"peak","frequency_hz":10,"gain_db":1}]}"#,
                "processing.sound.equalizer[0].frequency_hz: 10 is outside 20..=20000",
            ),
            (
                r#"{"equalizer":[{"type":"peak","frequency_hz":100,"gain_db":1},{"type":"peak","frequency_hz":100,"gain_db":25}]}"#,
                "processing.sound.equalizer[1].gain_db: 25 is outside -24..=24",
            ),
            (
                r#"{"equalizer":[{"type":"high-shelf","frequency_hz":100,"gain_db":1,"q":0}]}"#,
                "processing.sound.equalizer[0].q: 0 is outside 0.1..=10",
            ),
            (r#"{"loudness":{"target_lufs":-3}}"#, "processing.sound.loudness.target_lufs: -3 is outside -40..=-5"),
            (r#"{"loudness":{"true_peak_db":1}}"#, "processing.sound.loudness.true_peak_db: 1 is outside -9..=0"),
            (
                r#"{"compressor":{"threshold_db":-70}}"#,
                "processing.sound.compressor.threshold_db: -70 is outside -60..=0",
            ),
            (r#"{"compressor":{"ratio":0.5}}"#, "processing.sound.compressor.ratio: 0.5 is outside 1..=20"),
            (
                r#"{"compressor":{"attack_ms":3000}}"#,
                "processing.sound.compressor.attack_ms: 3000 is outside 0.01..=2000",
            ),
            (r#"{"compressor":{"release_ms":0}}"#, "processing.sound.compressor.release_ms: 0 is outside 0.01..=9000"),
            (r#"{"compressor":{"makeup_db":40}}"#, "processing.sound.compressor.makeup_db: 40 is outside 0..=36"),
            (r#"{"limiter":{"threshold_db":-30}}"#, "processing.sound.limiter.threshold_db: -30 is outside -24..=0"),
            (r#"{"limiter":{"attack_ms":100}}"#, "processing.sound.limiter.attack_ms: 100 is outside 0.1..=80"),
            (r#"{"limiter":{"release_ms":0.5}}"#, "processing.sound.limiter.release_ms: 0.5 is outside 1..=8000"),
        ] {
            assert_eq!(error(json), want, "{json}");
        }
        let nine =
            format!(r#"{{"equalizer":[{}]}}"#, [r#"{"type":"peak","frequency_hz":100,"gain_db":1}"#; 9].join(","));
        assert_eq!(error(&nine), "processing.sound.equalizer: 9 bands, at most 8");
    }
}
