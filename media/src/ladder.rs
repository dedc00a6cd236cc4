//! What a channel outputs: the source as published (passthrough), or an ABR
//! ladder of renditions encoded on the best slot the box has, under an
//! encoder policy.

use serde::{Deserialize, Serialize};

/// Video codec of an encoded rendition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum VideoCodec {
    #[default]
    H264,
    Hevc,
}

/// One rung of a ladder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenditionSpec {
    /// Output picture height; the width follows the source's aspect ratio (even).
    pub height: u32,
    /// Target video bitrate in kbit/s (CBR with a VBV buffer suited to LL-HLS).
    pub bitrate_kbps: u32,
    #[serde(default)]
    pub codec: VideoCodec,
    /// Cap on the output frame rate; the source rate when absent or higher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_fps: Option<u32>,
    /// When the rung runs, by what the source is; none: whenever the source is at least as tall.
    #[serde(default, skip_serializing_if = "RungConditions::is_none")]
    pub when: RungConditions,
}

/// Conditions on the source for a rung to run (all that are set must hold),
/// decided at the session's first decoded frame: "1080p only for a source of
/// at least 1080 lines", "a 240p rung only for sources above 720p".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RungConditions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_height: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_height: Option<u32>,
    /// The source's declared video bitrate, at least (kbit/s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_source_kbps: Option<u32>,
}

impl RungConditions {
    pub fn is_none(&self) -> bool {
        *self == RungConditions::default()
    }

    /// Why a `width`x`height` source with a declared video bitrate of
    /// `source_kbps` does not meet these conditions; `None` when it does. A
    /// bitrate condition on a source that declares none is not met.
    pub fn unmet(&self, width: u32, height: u32, source_kbps: Option<u32>) -> Option<String> {
        let bound = |value: u32, limit: Option<u32>, what: &str, at_least: bool| {
            let limit = limit?;
            let fails = if at_least { value < limit } else { value > limit };
            let word = if at_least { "below the minimum" } else { "above the maximum" };
            fails.then(|| format!("source {what} {value} is {word} {limit}"))
        };
        bound(width, self.min_width, "width", true)
            .or_else(|| bound(width, self.max_width, "width", false))
            .or_else(|| bound(height, self.min_height, "height", true))
            .or_else(|| bound(height, self.max_height, "height", false))
            .or_else(|| match (self.min_source_kbps, source_kbps) {
                (None, _) => None,
                (Some(min), None) => Some(format!("source declares no bitrate (the minimum is {min} kbit/s)")),
                (Some(min), Some(kbps)) => bound(kbps, Some(min), "bitrate (kbit/s)", true),
            })
    }
}

impl RenditionSpec {
    /// An H.264 rung at the source's frame rate, with no conditions.
    pub fn h264(height: u32, bitrate_kbps: u32) -> RenditionSpec {
        RenditionSpec { height, bitrate_kbps, codec: VideoCodec::H264, max_fps: None, when: RungConditions::default() }
    }

    /// The rendition's name in URIs: `720p`, `720p30`, `720p-hevc`.
    pub fn name(&self) -> String {
        let fps = self.max_fps.map(|f| f.to_string()).unwrap_or_default();
        let codec = if self.codec == VideoCodec::Hevc { "-hevc" } else { "" };
        format!("{}p{fps}{codec}", self.height)
    }
}

/// An ABR ladder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ladder {
    pub rungs: Vec<RenditionSpec>,
    /// Also offer the source as published as the top rendition (no re-encode).
    #[serde(default)]
    pub include_source: bool,
}

impl Ladder {
    /// A sensible default for a source of `height` lines (2160p, 1080p, 720p and below).
    pub fn default_for(height: u32) -> Ladder {
        let rung = |height, bitrate_kbps| RenditionSpec {
            height,
            bitrate_kbps,
            codec: VideoCodec::H264,
            max_fps: None,
            when: RungConditions::default(),
        };
        let all = [
            rung(2160, 16_000),
            rung(1440, 9_000),
            rung(1080, 5_000),
            rung(720, 2_800),
            rung(480, 1_400),
            rung(360, 800),
            rung(240, 400),
        ];
        let rungs: Vec<RenditionSpec> = all.into_iter().filter(|r| r.height <= height).take(4).collect();
        Ladder { rungs, include_source: false }
    }

    /// The rungs a source of `source_height` lines can feed: never upscale.
    pub fn rungs_for_source(&self, source_height: u32) -> Vec<RenditionSpec> {
        self.rungs.iter().filter(|r| r.height <= source_height).cloned().collect()
    }
}

/// A channel's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case", tag = "kind", deny_unknown_fields)]
pub enum ChannelOutput {
    /// Repackage what the publisher sends (transmux).
    #[default]
    Passthrough,
    /// Decode once, encode every rung.
    Ladder { ladder: Ladder },
}

/// Where a channel's encoding may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum EncoderPolicy {
    /// Hardware slots only: no capacity means the session fails with the reason.
    HardwareOnly,
    /// Hardware first, else software (libx264) with an alert.
    #[default]
    PreferHardware,
    /// Software only.
    Software,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ladders_never_exceed_the_source() {
        let heights = |l: Ladder| l.rungs.iter().map(|r| r.height).collect::<Vec<_>>();
        assert_eq!(heights(Ladder::default_for(2160)), [2160, 1440, 1080, 720]);
        assert_eq!(heights(Ladder::default_for(1080)), [1080, 720, 480, 360]);
        assert_eq!(heights(Ladder::default_for(720)), [720, 480, 360, 240]);
        assert_eq!(heights(Ladder::default_for(360)), [360, 240]);
        let ladder = Ladder::default_for(1080);
        assert_eq!(ladder.rungs_for_source(600).iter().map(|r| r.height).collect::<Vec<_>>(), [480, 360]);
    }

    #[test]
    fn names_and_serde_shapes() {
        let spec = RenditionSpec {
            height: 720,
            bitrate_kbps: 2800,
            codec: VideoCodec::Hevc,
            max_fps: Some(30),
            when: RungConditions::default(),
        };
        assert_eq!(spec.name(), "720p30-hevc");
        let output = ChannelOutput::Ladder { ladder: Ladder { rungs: vec![spec], include_source: true } };
        let json = serde_json::to_string(&output).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"ladder","ladder":{"rungs":[{"height":720,"bitrate_kbps":2800,"codec":"hevc","max_fps":30}],"include_source":true}}"#
        );
        assert_eq!(serde_json::from_str::<ChannelOutput>(&json).unwrap(), output);
        assert_eq!(serde_json::to_string(&ChannelOutput::Passthrough).unwrap(), r#"{"kind":"passthrough"}"#);
        assert!(serde_json::from_str::<ChannelOutput>(r#"{"kind":"ladder","ladder":{"rungs":[],"bogus":1}}"#).is_err());
        let conditional: RenditionSpec =
            serde_json::from_str(r#"{"height":1080,"bitrate_kbps":5000,"when":{"min_height":1080}}"#).unwrap();
        assert_eq!(conditional.when, RungConditions { min_height: Some(1080), ..RungConditions::default() });
    }

    #[test]
    fn conditions_say_which_bound_a_source_misses() {
        let c = |json: &str| serde_json::from_str::<RungConditions>(json).unwrap();
        for (conditions, source, kbps, want) in [
            ("{}", (640, 360), None, None),
            (r#"{"min_height":1080}"#, (1920, 1080), None, None),
            (r#"{"min_height":1080}"#, (854, 480), None, Some("source height 480 is below the minimum 1080")),
            (r#"{"max_height":720}"#, (1920, 1080), None, Some("source height 1080 is above the maximum 720")),
            (r#"{"min_width":1280}"#, (640, 360), None, Some("source width 640 is below the minimum 1280")),
            (r#"{"max_width":640}"#, (640, 360), None, None),
            (r#"{"min_source_kbps":2000}"#, (640, 360), Some(2500), None),
            (
                r#"{"min_source_kbps":2000}"#,
                (640, 360),
                Some(800),
                Some("source bitrate (kbit/s) 800 is below the minimum 2000"),
            ),
            (
                r#"{"min_source_kbps":2000}"#,
                (640, 360),
                None,
                Some("source declares no bitrate (the minimum is 2000 kbit/s)"),
            ),
        ] {
            assert_eq!(c(conditions).unmet(source.0, source.1, kbps).as_deref(), want, "{conditions} {source:?}");
        }
    }
}
