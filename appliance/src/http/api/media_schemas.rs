//! OpenAPI schemas of the `media` vocabulary the API exposes (latency mode,
//! output, ladder, encoder policy). `media` has no OpenAPI dependency, so
//! these mirror its serde shapes; the unit test below round-trips real
//! values through them so the two cannot drift apart silently.

#![allow(dead_code)] // Only the schemas are used; the types describe the wire format.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::processing_schemas::RungConditionsSchema;
use crate::state::records::{MAX_RUNGS, MAX_SESSION_SECONDS};

/// How a channel trades latency for buffer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[schema(as = LatencyMode)]
pub enum LatencyModeSchema {
    /// LL-HLS: parts of about 200 ms, blocking reload, preload hints.
    UltraLow,
    /// HLS with 2 s segments.
    Low,
    /// HLS with 6 s segments.
    Normal,
}

/// Video codec of an encoded rendition.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = VideoCodec)]
pub enum VideoCodecSchema {
    #[default]
    H264,
    Hevc,
}

/// One rung of a ladder. Two rungs must not share a rendition name (height, fps cap and codec).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RenditionSpec)]
pub struct RenditionSpecSchema {
    /// Output picture height (even); the width follows the source's aspect ratio.
    #[schema(minimum = 64, maximum = 4320, multiple_of = 2)]
    pub height: u32,
    /// Target video bitrate in kbit/s.
    #[schema(minimum = 64, maximum = 200000)]
    pub bitrate_kbps: u32,
    #[serde(default)]
    pub codec: VideoCodecSchema,
    /// Cap on the output frame rate.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 240)]
    pub max_fps: Option<u32>,
    /// When the rung runs, by what the source is; absent: whenever the source is at least as tall.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<RungConditionsSchema>,
}

/// An ABR ladder.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Ladder)]
pub struct LadderSchema {
    #[schema(min_items = 1, max_items = 8)]
    pub rungs: Vec<RenditionSpecSchema>,
    /// Also offer the source as published as the top rendition.
    #[serde(default)]
    pub include_source: bool,
}

/// Repackage the source as published.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PassthroughOutput {
    pub kind: PassthroughKind,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PassthroughKind {
    Passthrough,
}

/// Decode once and encode every rung of the ladder.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LadderOutput {
    pub kind: LadderKind,
    pub ladder: LadderSchema,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LadderKind {
    Ladder,
}

/// What a channel outputs.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
#[schema(as = ChannelOutput)]
pub enum ChannelOutputSchema {
    Passthrough(PassthroughOutput),
    Ladder(LadderOutput),
}

/// Where a channel's encoding may run.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[schema(as = EncoderPolicy)]
pub enum EncoderPolicySchema {
    /// Hardware slots only: no capacity means the session fails with the reason.
    HardwareOnly,
    /// Hardware first, else software (libx264).
    PreferHardware,
    /// Software only.
    Software,
}

const _: () = assert!(MAX_RUNGS == 8 && MAX_SESSION_SECONDS == 2_592_000, "update the schema bounds");

#[cfg(test)]
mod tests {
    use super::*;
    use media::{ChannelOutput, EncoderPolicy, Ladder, LatencyMode, RenditionSpec, VideoCodec};

    /// Real values serialise to JSON the mirror reads, and back.
    #[test]
    fn mirrors_read_what_media_writes() {
        fn round_trip<
            Real: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
            Mirror: Serialize + serde::de::DeserializeOwned,
        >(
            real: Real,
        ) {
            let json = serde_json::to_value(&real).unwrap();
            let mirror: Mirror = serde_json::from_value(json.clone()).unwrap_or_else(|e| panic!("{json}: {e}"));
            let back: Real = serde_json::from_value(serde_json::to_value(&mirror).unwrap()).unwrap();
            assert_eq!(back, real, "{json}");
        }
        for mode in LatencyMode::ALL {
            round_trip::<_, LatencyModeSchema>(mode);
        }
        for policy in [EncoderPolicy::HardwareOnly, EncoderPolicy::PreferHardware, EncoderPolicy::Software] {
            round_trip::<_, EncoderPolicySchema>(policy);
        }
        round_trip::<_, ChannelOutputSchema>(ChannelOutput::Passthrough);
        let when = media::RungConditions { min_height: Some(720), ..Default::default() };
        let rung = RenditionSpec { height: 720, bitrate_kbps: 2800, codec: VideoCodec::Hevc, max_fps: Some(30), when };
        let plain = RenditionSpec {
            height: 360,
            bitrate_kbps: 800,
            codec: VideoCodec::H264,
            max_fps: None,
            when: Default::default(),
        };
        round_trip::<_, ChannelOutputSchema>(ChannelOutput::Ladder {
            ladder: Ladder { rungs: vec![rung, plain], include_source: true },
        });
    }
}
