//! OpenAPI schemas of a channel's processing section (`media::processing`)
//! and of a rung's conditions (`media::RungConditions`). Like
//! `media_schemas`, they mirror the serde shapes of `media`, which has no
//! OpenAPI dependency; the test below round-trips real values through them.

#![allow(dead_code)] // Only the schemas are used; the types describe the wire format.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::state::records::{MAX_CROP, MAX_SHARPEN_PERCENT};

/// What the ladder does to the picture and sound of a channel. Applied from the next session; a
/// change while the channel is live is refused (409) unless the request asks `?restart=now`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Processing)]
pub struct ProcessingSchema {
    #[serde(default)]
    pub picture: PictureSchema,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sound: Option<super::sound_schemas::SoundSchema>,
}

/// Picture controls, applied once before the ladder's split, in this order: deinterlace, deblock,
/// denoise, crop, rotate, flip, mirror, sharpen; then each rung is scaled to the output aspect.
/// Picture processing needs a ladder output.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
#[schema(as = PictureProcessing)]
pub struct PictureSchema {
    pub deinterlace: DeinterlaceSchema,
    /// Deblocking, for sources encoded at too low a bitrate.
    pub deblock: bool,
    pub denoise: DenoiseSchema,
    pub crop: CropSchema,
    pub rotate: RotationSchema,
    /// Upside down (vertical flip).
    pub flip: bool,
    /// Left and right swapped (horizontal mirror).
    pub mirror: bool,
    /// Unsharp mask amount in percent (0: off; 100 = FFmpeg `unsharp` amount 1.0).
    #[schema(minimum = 0, maximum = 500)]
    pub sharpen_percent: u32,
    /// Output display aspect ratio `W:H` (e.g. `16:9`); absent: the cropped, rotated source's.
    #[schema(pattern = "^[0-9]{1,3}:[0-9]{1,3}$", example = "16:9")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aspect: Option<String>,
    pub scaling: ScalingSchema,
    /// A rung's own scaling mode, by rendition name (e.g. `{"720p": "fill"}`); the others use `scaling`.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub rung_scaling: std::collections::BTreeMap<String, ScalingSchema>,
    /// Colour of `fit`'s bars.
    #[schema(pattern = "^#[0-9a-fA-F]{6}$", default = "#000000")]
    pub bar_color: BarColorSchema,
}

/// A colour `#rrggbb`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
pub struct BarColorSchema(pub String);

impl Default for BarColorSchema {
    fn default() -> Self {
        BarColorSchema("#000000".into())
    }
}

/// Deinterlacing: `auto` when the decoded frames are flagged interlaced.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[schema(as = Deinterlace)]
pub enum DeinterlaceSchema {
    #[default]
    Off,
    Auto,
    On,
}

/// Denoising strength (FFmpeg `hqdn3d` on the CPU, the device's denoiser where it has one).
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[schema(as = Denoise)]
pub enum DenoiseSchema {
    #[default]
    Off,
    Light,
    Medium,
    Strong,
}

/// Clockwise rotation; `source` follows the source's display matrix (as phones send).
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[schema(as = Rotation)]
pub enum RotationSchema {
    #[default]
    #[serde(rename = "none")]
    None,
    #[serde(rename = "90")]
    Clockwise90,
    #[serde(rename = "180")]
    Half,
    #[serde(rename = "270")]
    Clockwise270,
    #[serde(rename = "source")]
    FollowSource,
}

/// Pixels removed from each side.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
#[schema(as = Crop)]
pub struct CropSchema {
    #[schema(maximum = 4096)]
    pub top: u32,
    #[schema(maximum = 4096)]
    pub bottom: u32,
    #[schema(maximum = 4096)]
    pub left: u32,
    #[schema(maximum = 4096)]
    pub right: u32,
}

/// How a rung shows a picture of another aspect: `fit` (all of it, with bars), `fill` (the whole
/// frame, cropping what overflows), `stretch` (distorted).
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[schema(as = ScalingMode)]
pub enum ScalingSchema {
    #[default]
    Fit,
    Fill,
    Stretch,
}

/// Conditions on the source for a rung to run (all that are set must hold), decided at the
/// session's first frame; the rungs kept and dropped, and why, are in the session's figures.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RungConditions)]
pub struct RungConditionsSchema {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 8192)]
    pub min_width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 8192)]
    pub max_width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 8192)]
    pub min_height: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 8192)]
    pub max_height: Option<u32>,
    /// The source's declared video bitrate, at least (kbit/s); a source declaring none does not meet it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 1000000)]
    pub min_source_kbps: Option<u32>,
}

const _: () = assert!(MAX_CROP == 4096 && MAX_SHARPEN_PERCENT == 500, "update the schema bounds");

#[cfg(test)]
mod tests {
    use media::{Processing, RungConditions};

    use super::*;

    fn round_trip<Real, Mirror>(json: &str)
    where
        Real: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
        Mirror: Serialize + serde::de::DeserializeOwned,
    {
        let real: Real = serde_json::from_str(json).unwrap();
        let value = serde_json::to_value(&real).unwrap();
        let mirror: Mirror = serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{value}: {e}"));
        let back: Real = serde_json::from_value(serde_json::to_value(&mirror).unwrap()).unwrap();
        assert_eq!(back, real, "{json}");
    }

    /// Real values serialise to JSON the mirrors read, and back.
    #[test]
    fn mirrors_read_what_media_writes() {
        round_trip::<Processing, ProcessingSchema>("{}");
        round_trip::<Processing, ProcessingSchema>(
            r##"{"picture":{"deinterlace":"auto","deblock":true,"denoise":"strong","crop":{"top":1,"bottom":2,"left":3,"right":4},"rotate":"source","flip":true,"mirror":true,"sharpen_percent":40,"aspect":"4:3","scaling":"stretch","rung_scaling":{"360p":"fill"},"bar_color":"#ffffff"},"sound":{"gain_db":-3.0,"fade_in_ms":500,"karaoke":true}}"##,
        );
        for rotate in ["none", "90", "180", "270"] {
            round_trip::<Processing, ProcessingSchema>(&format!(r#"{{"picture":{{"rotate":"{rotate}"}}}}"#));
        }
        for (mode, denoise) in [("fit", "light"), ("fill", "medium")] {
            round_trip::<Processing, ProcessingSchema>(&format!(
                r#"{{"picture":{{"scaling":"{mode}","denoise":"{denoise}","deinterlace":"on"}}}}"#
            ));
        }
        round_trip::<RungConditions, RungConditionsSchema>(
            r#"{"min_width":1,"max_width":2,"min_height":3,"max_height":4,"min_source_kbps":5}"#,
        );
    }
}
