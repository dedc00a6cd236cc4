//! The one table of zero-latency encoder settings, per backend and codec.
//! Every encoder the pipeline opens, and every `ffmpeg` command the bench runs
//! for comparison, takes its settings from here.
//!
//! | backend  | encoder                 | zero-latency settings |
//! | -------- | ----------------------- | --------------------- |
//! | software | libx264                 | `preset=veryfast tune=zerolatency` (no B-frames, no lookahead, sliced threads), `forced-idr=1`, `x264-params=scenecut=0:open-gop=0:rc-lookahead=0:sync-lookahead=0` |
//! | software | libx265                 | `preset=veryfast tune=zerolatency`, `forced-idr=1`, `x265-params=bframes=0:rc-lookahead=0:scenecut=0:open-gop=0:frame-threads=1` |
//! | nvenc    | h264_nvenc / hevc_nvenc | `preset=p3 tune=ull zerolatency=1 delay=0 rc=cbr rc-lookahead=0 b_ref_mode=disabled no-scenecut=1 forced-idr=1` |
//! | qsv      | h264_qsv / hevc_qsv     | `preset=veryfast async_depth=1 look_ahead=0 adaptive_i=0 adaptive_b=0 forced_idr=1` |
//! | vaapi    | h264_vaapi / hevc_vaapi | `rc_mode=CBR async_depth=1` |
//!
//! Common to all: `bf=0` (no B-frames, so dts = pts and no reorder delay),
//! CBR with `b = maxrate = bitrate` and a one-second VBV buffer (`bufsize =
//! bitrate`: a segment's worth, so parts stay near the nominal rate), a GOP
//! ceiling far above the keyframe cadence so that the only keyframes are the
//! ones the pipeline forces on the same timestamps in every rung, closed GOPs,
//! and global headers (parameter sets in the codec's extradata, for `avcC`/`hvcC`).

use media::VideoCodec;

use crate::device::Backend;

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderEntry {
    pub backend: Backend,
    pub codec: VideoCodec,
    /// FFmpeg's encoder name.
    pub encoder: &'static str,
    /// Private options set on every open.
    pub options: &'static [(&'static str, &'static str)],
}

/// The table (see the module documentation for the same in words).
pub const ENCODERS: [EncoderEntry; 8] = [
    EncoderEntry {
        backend: Backend::Software,
        codec: VideoCodec::H264,
        encoder: "libx264",
        options: &[
            ("preset", "veryfast"),
            ("tune", "zerolatency"),
            ("forced-idr", "1"),
            ("x264-params", "scenecut=0:open-gop=0:rc-lookahead=0:sync-lookahead=0"),
        ],
    },
    EncoderEntry {
        backend: Backend::Software,
        codec: VideoCodec::Hevc,
        encoder: "libx265",
        options: &[
            ("preset", "veryfast"),
            ("tune", "zerolatency"),
            ("forced-idr", "1"),
            ("x265-params", "bframes=0:rc-lookahead=0:scenecut=0:open-gop=0:frame-threads=1:log-level=error"),
        ],
    },
    EncoderEntry { backend: Backend::Nvenc, codec: VideoCodec::H264, encoder: "h264_nvenc", options: NVENC_OPTIONS },
    EncoderEntry { backend: Backend::Nvenc, codec: VideoCodec::Hevc, encoder: "hevc_nvenc", options: NVENC_OPTIONS },
    EncoderEntry {
        backend: Backend::Qsv,
        codec: VideoCodec::H264,
        encoder: "h264_qsv",
        options: &[
            ("preset", "veryfast"),
            ("async_depth", "1"),
            ("look_ahead", "0"),
            ("adaptive_i", "0"),
            ("adaptive_b", "0"),
            ("forced_idr", "1"),
        ],
    },
    EncoderEntry {
        backend: Backend::Qsv,
        codec: VideoCodec::Hevc,
        encoder: "hevc_qsv",
        options: &[("preset", "veryfast"), ("async_depth", "1"), ("forced_idr", "1")],
    },
    EncoderEntry {
        backend: Backend::Vaapi,
        codec: VideoCodec::H264,
        encoder: "h264_vaapi",
        options: &[("rc_mode", "CBR"), ("async_depth", "1")],
    },
    EncoderEntry {
        backend: Backend::Vaapi,
        codec: VideoCodec::Hevc,
        encoder: "hevc_vaapi",
        options: &[("rc_mode", "CBR"), ("async_depth", "1")],
    },
];

/// NVENC's low-latency settings (the same for H.264 and HEVC): a fast preset
/// of the P1-P7 scale, the ultra-low-latency tune, no reordering delay.
const NVENC_OPTIONS: &[(&str, &str)] = &[
    ("preset", "p3"),
    ("tune", "ull"),
    ("zerolatency", "1"),
    ("delay", "0"),
    ("rc", "cbr"),
    ("rc-lookahead", "0"),
    ("b_ref_mode", "disabled"),
    ("no-scenecut", "1"),
    ("forced-idr", "1"),
];

/// The VBV buffer in seconds of the target bitrate.
pub const VBV_SECONDS: f64 = 1.0;
/// The encoder's own GOP ceiling, in multiples of the forced keyframe cadence.
pub const GOP_CEILING_FACTOR: u32 = 4;
/// AAC-LC bitrate when audio has to be re-encoded.
pub const AAC_BITRATE: usize = 128_000;

/// The row for a backend and codec.
pub fn entry(backend: Backend, codec: VideoCodec) -> &'static EncoderEntry {
    ENCODERS
        .iter()
        .find(|e| e.backend == backend && e.codec == codec)
        .expect("the table covers every backend and codec")
}

/// Everything an encoder of one rung is opened with.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderSettings {
    pub encoder: &'static str,
    /// Private options: the table's, with `preset` replaced when overridden.
    pub options: Vec<(&'static str, String)>,
    pub bitrate: usize,
    pub max_bitrate: usize,
    pub buffer_size: usize,
    /// The encoder's own GOP ceiling in frames.
    pub gop_frames: u32,
}

impl EncoderSettings {
    /// Settings for one rung: `fps` is the rung's output rate and `keyframe_seconds` the forced cadence.
    pub fn for_rung(
        backend: Backend,
        codec: VideoCodec,
        bitrate_kbps: u32,
        fps: f64,
        keyframe_seconds: f64,
        preset: Option<&str>,
    ) -> EncoderSettings {
        let e = entry(backend, codec);
        let options = e
            .options
            .iter()
            .map(|(k, v)| (*k, if *k == "preset" { preset.unwrap_or(v).to_string() } else { v.to_string() }))
            .collect();
        let bitrate = bitrate_kbps as usize * 1000;
        let gop = (fps * keyframe_seconds).round().max(1.0) as u32 * GOP_CEILING_FACTOR;
        EncoderSettings {
            encoder: e.encoder,
            options,
            bitrate,
            max_bitrate: bitrate,
            buffer_size: (bitrate as f64 * VBV_SECONDS) as usize,
            gop_frames: gop,
        }
    }

    /// The same settings as `ffmpeg` program arguments (after `-c:v`), for the bench's reference run.
    pub fn ffmpeg_args(&self) -> Vec<String> {
        let mut args = vec![
            "-c:v".to_string(),
            self.encoder.to_string(),
            "-b:v".into(),
            self.bitrate.to_string(),
            "-maxrate".into(),
            self.max_bitrate.to_string(),
            "-bufsize".into(),
            self.buffer_size.to_string(),
            "-g".into(),
            self.gop_frames.to_string(),
            "-bf".into(),
            "0".into(),
        ];
        for (k, v) in &self.options {
            args.push(format!("-{k}"));
            args.push(v.clone());
        }
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_backend_and_codec_has_zero_latency_settings() {
        for backend in Backend::ALL {
            for codec in [VideoCodec::H264, VideoCodec::Hevc] {
                let e = entry(backend, codec);
                let has = |k: &str, v: &str| e.options.iter().any(|(key, value)| *key == k && value.contains(v));
                let zero_latency = match backend {
                    Backend::Software => has("tune", "zerolatency"),
                    Backend::Nvenc => has("zerolatency", "1") && has("tune", "ull") && has("rc-lookahead", "0"),
                    Backend::Qsv => has("async_depth", "1"),
                    Backend::Vaapi => has("async_depth", "1") && has("rc_mode", "CBR"),
                };
                assert!(zero_latency, "{} lacks its low-delay settings", e.encoder);
            }
        }
    }

    #[test]
    fn rung_settings_and_ffmpeg_arguments() {
        let s = EncoderSettings::for_rung(Backend::Software, VideoCodec::H264, 800, 30.0, 1.0, Some("ultrafast"));
        assert_eq!((s.bitrate, s.max_bitrate, s.buffer_size, s.gop_frames), (800_000, 800_000, 800_000, 120));
        assert_eq!(s.options[0], ("preset", "ultrafast".to_string()));
        let args = s.ffmpeg_args().join(" ");
        assert_eq!(
            args,
            "-c:v libx264 -b:v 800000 -maxrate 800000 -bufsize 800000 -g 120 -bf 0 -preset ultrafast \
             -tune zerolatency -forced-idr 1 -x264-params scenecut=0:open-gop=0:rc-lookahead=0:sync-lookahead=0"
        );
        let nv = EncoderSettings::for_rung(Backend::Nvenc, VideoCodec::Hevc, 5000, 60.0, 2.0, None);
        assert_eq!(nv.encoder, "hevc_nvenc");
        assert_eq!(nv.gop_frames, 480);
        assert!(nv.options.contains(&("preset", "p3".to_string())));
    }
}
