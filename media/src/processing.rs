//! What a channel does to the picture before its ladder encodes it: geometry
//! (crop, rotation, flip, mirror, output aspect and how each rung fills it)
//! and quality (deinterlace, deblock, denoise, sharpen); the sound section is
//! `sound::SoundProcessing`. Every field has a
//! default that leaves the picture as it was, so records written before
//! processing existed read back unchanged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::sound::SoundProcessing;

/// A channel's processing section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Processing {
    #[serde(default)]
    pub picture: PictureProcessing,
    #[serde(default, skip_serializing_if = "SoundProcessing::is_identity")]
    pub sound: SoundProcessing,
}

impl Processing {
    /// Whether anything is done to the source.
    pub fn is_identity(&self) -> bool {
        self.picture == PictureProcessing::default() && self.sound.is_identity()
    }
}

/// The picture controls, applied once to the decoded source before it is
/// split into rungs, in this order: deinterlace, deblock, denoise, crop,
/// rotate, flip, mirror, sharpen; then each rung is scaled to the output aspect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PictureProcessing {
    pub deinterlace: Deinterlace,
    /// Deblocking for sources encoded at too low a bitrate.
    pub deblock: bool,
    pub denoise: Denoise,
    /// Pixels removed from each side of the source.
    pub crop: Crop,
    pub rotate: Rotation,
    /// Upside down (vertical flip).
    pub flip: bool,
    /// Left and right swapped (horizontal mirror).
    pub mirror: bool,
    /// Unsharp mask amount in percent (0: off; 100 = FFmpeg `unsharp` amount 1.0).
    pub sharpen_percent: u32,
    /// Output display aspect ratio `W:H` (e.g. `16:9`); none: the (cropped, rotated) source's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aspect: Option<String>,
    /// How a rung fills the output aspect when the picture's differs.
    pub scaling: ScalingMode,
    /// A rung's own scaling mode, by rendition name (`{"720p": "fill"}`); the others use `scaling`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rung_scaling: BTreeMap<String, ScalingMode>,
    /// The colour of `fit`'s bars, `#rrggbb`.
    pub bar_color: BarColor,
}

impl PictureProcessing {
    /// The scaling mode of the rung named `rendition`.
    pub fn scaling_for(&self, rendition: &str) -> ScalingMode {
        self.rung_scaling.get(rendition).copied().unwrap_or(self.scaling)
    }
}

/// Deinterlacing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Deinterlace {
    /// Never.
    #[default]
    Off,
    /// When the decoded frames are flagged interlaced (re-decided when that changes).
    Auto,
    /// Always.
    On,
}

/// Temporal-spatial denoising strength.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Denoise {
    #[default]
    Off,
    Light,
    Medium,
    Strong,
}

/// Rotation of the picture, clockwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Rotation {
    #[default]
    #[serde(rename = "none")]
    None,
    #[serde(rename = "90")]
    Clockwise90,
    #[serde(rename = "180")]
    Half,
    #[serde(rename = "270")]
    Clockwise270,
    /// The rotation the source's display matrix asks for (phones send one).
    #[serde(rename = "source")]
    FollowSource,
}

/// Pixels removed from each side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Crop {
    pub top: u32,
    pub bottom: u32,
    pub left: u32,
    pub right: u32,
}

impl Crop {
    pub fn is_none(&self) -> bool {
        *self == Crop::default()
    }
}

/// How a rung of one aspect ratio shows a picture of another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ScalingMode {
    /// All of the picture, with bars (letterbox or pillarbox) of `bar_color`.
    #[default]
    Fit,
    /// The whole frame, cropping what overflows.
    Fill,
    /// The whole picture into the whole frame, distorted.
    Stretch,
}

/// A colour `#rrggbb` (the bars of `fit`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BarColor(pub String);

impl Default for BarColor {
    fn default() -> Self {
        BarColor("#000000".into())
    }
}

impl BarColor {
    /// The colour as FFmpeg writes it (`0xrrggbb`), when it is `#rrggbb`.
    pub fn to_ffmpeg(&self) -> Option<String> {
        let hex = self.0.strip_prefix('#')?;
        (hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| format!("0x{hex}"))
    }
}

/// `W:H` with both in 1..=100 (e.g. `16:9`, `4:3`, `1:1`), reduced or not.
pub fn parse_aspect(text: &str) -> Option<(u32, u32)> {
    let (w, h) = text.split_once(':')?;
    let parse = |s: &str| s.parse::<u32>().ok().filter(|v| (1..=100).contains(v));
    Some((parse(w)?, parse(h)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_fields_are_the_identity() {
        let empty: Processing = serde_json::from_str("{}").unwrap();
        assert!(empty.is_identity());
        let picture: Processing = serde_json::from_str(r#"{"picture":{},"sound":{}}"#).unwrap();
        assert!(picture.is_identity());
        let sound: Processing = serde_json::from_str(r#"{"sound":{"gain_db":6}}"#).unwrap();
        assert!(!sound.is_identity() && sound.picture == PictureProcessing::default());
        assert_eq!(
            serde_json::to_string(&Processing::default()).unwrap(),
            r##"{"picture":{"deinterlace":"off","deblock":false,"denoise":"off","crop":{"top":0,"bottom":0,"left":0,"right":0},"rotate":"none","flip":false,"mirror":false,"sharpen_percent":0,"scaling":"fit","bar_color":"#000000"}}"##
        );
    }

    #[test]
    fn shapes_round_trip_and_unknown_fields_are_refused() {
        let json = r##"{"picture":{"deinterlace":"auto","rotate":"source","crop":{"left":8},"aspect":"16:9","scaling":"fill","bar_color":"#102030"}}"##;
        let p: Processing = serde_json::from_str(json).unwrap();
        assert_eq!(p.picture.rotate, Rotation::FollowSource);
        assert_eq!(p.picture.crop, Crop { left: 8, ..Crop::default() });
        assert_eq!(p.picture.bar_color.to_ffmpeg().as_deref(), Some("0x102030"));
        let mixed: PictureProcessing =
            serde_json::from_str(r#"{"scaling":"fit","rung_scaling":{"720p":"stretch"}}"#).unwrap();
        assert_eq!((mixed.scaling_for("720p"), mixed.scaling_for("360p")), (ScalingMode::Stretch, ScalingMode::Fit));
        assert_eq!(serde_json::from_str::<Processing>(&serde_json::to_string(&p).unwrap()).unwrap(), p);
        assert!(serde_json::from_str::<Processing>(r#"{"picture":{"rotation":"90"}}"#).is_err());
        assert!(serde_json::from_str::<Processing>(r#"{"picture":{"rotate":"45"}}"#).is_err());
    }

    #[test]
    fn aspects_and_colours() {
        assert_eq!(parse_aspect("16:9"), Some((16, 9)));
        for bad in ["16/9", "0:1", "16:", "a:b", "101:1", ""] {
            assert_eq!(parse_aspect(bad), None, "{bad}");
        }
        for bad in ["000000", "#00000", "#gg0000", "#0000000"] {
            assert_eq!(BarColor(bad.into()).to_ffmpeg(), None, "{bad}");
        }
    }
}
