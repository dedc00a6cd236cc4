//! The command line's ladder and policy arguments: `360:800,240:400:hevc,144:200@15,+source`
//! and `hardware-only|prefer-hardware|software`.

use media::{EncoderPolicy, Ladder, RenditionSpec, VideoCodec};

/// Parses `360:800,240:400,144:200` (height:kbit/s, then optional `:hevc` and `@fps`), with `+source`.
pub fn parse_ladder(text: &str) -> Result<Ladder, String> {
    let mut ladder = Ladder { rungs: Vec::new(), include_source: false };
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if item == "+source" || item == "source" {
            ladder.include_source = true;
            continue;
        }
        let (spec, fps) = match item.split_once('@') {
            Some((spec, fps)) => (spec, Some(fps.parse::<u32>().map_err(|_| format!("{item}: bad frame rate"))?)),
            None => (item, None),
        };
        let mut parts = spec.split(':');
        let height = parts
            .next()
            .unwrap_or("")
            .trim_end_matches('p')
            .parse::<u32>()
            .map_err(|_| format!("{item}: bad height"))?;
        let bitrate_kbps = parts
            .next()
            .ok_or(format!("{item}: height:kbit/s expected"))?
            .parse::<u32>()
            .map_err(|_| format!("{item}: bad bitrate"))?;
        let codec = match parts.next() {
            None | Some("h264") => VideoCodec::H264,
            Some("hevc") => VideoCodec::Hevc,
            Some(other) => return Err(format!("{item}: codec {other} (h264 or hevc)")),
        };
        ladder.rungs.push(RenditionSpec { height, bitrate_kbps, codec, max_fps: fps, when: Default::default() });
    }
    if ladder.rungs.is_empty() {
        return Err("a ladder needs at least one rung, e.g. 360:800,240:400".into());
    }
    Ok(ladder)
}

/// Parses `hardware-only`, `prefer-hardware` or `software`.
pub fn parse_policy(text: &str) -> Result<EncoderPolicy, String> {
    serde_json::from_value(serde_json::Value::String(text.to_string()))
        .map_err(|_| format!("{text:?}: expected hardware-only, prefer-hardware or software"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::transcode::rendition_names;
    use media::ChannelOutput;

    #[test]
    fn ladder_flags() {
        let l = parse_ladder("360:800, 240p:400:hevc, 144:200@15,+source").unwrap();
        assert!(l.include_source);
        let names: Vec<String> = l.rungs.iter().map(RenditionSpec::name).collect();
        assert_eq!(names, ["360p", "240p-hevc", "144p15"]);
        assert_eq!(rendition_names(&ChannelOutput::Ladder { ladder: l }), ["360p", "240p-hevc", "144p15", "source"]);
        for (bad, want) in [
            ("", "a ladder needs at least one rung, e.g. 360:800,240:400"),
            ("360", "360: height:kbit/s expected"),
            ("x:1", "x:1: bad height"),
            ("360:800:av1", "360:800:av1: codec av1 (h264 or hevc)"),
            ("360:800@x", "360:800@x: bad frame rate"),
        ] {
            assert_eq!(parse_ladder(bad).unwrap_err(), want);
        }
        assert_eq!(rendition_names(&ChannelOutput::Passthrough), ["source"]);
    }
}
