//! The real `ffmpeg` program as the publisher: a lavfi test pattern and tone,
//! x264 and AAC (or another codec), sent over RTMP in real time or at once.
//! What Debian 12's FFmpeg 5.1 cannot send (Enhanced RTMP HEVC) comes from a
//! static FFmpeg 9 build (`ffmpeg9`, installed by `scripts/deps.sh`).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::STEP_TIMEOUT;

/// How the test publisher encodes.
#[derive(Debug, Clone)]
pub struct Publish {
    pub seconds: f64,
    pub video: bool,
    pub audio: bool,
    /// x264 B-frames (0 keeps `-tune zerolatency`).
    pub bframes: u32,
    /// Send in real time (`-re`); otherwise as fast as ffmpeg can.
    pub realtime: bool,
    pub size: &'static str,
    pub fps: u32,
    /// The audio encoder (AAC unless a test asks for another).
    pub audio_codec: PublishAudio,
    /// The video encoder (x264 unless a test asks for another).
    pub video_codec: PublishVideo,
    /// A lavfi video source instead of `testsrc2` at `size` and `fps` (e.g. a still pattern).
    pub pattern: Option<String>,
    /// More video output options (filters, x264 flags, a declared bitrate).
    pub video_args: Vec<String>,
    /// A lavfi audio source instead of the 440 Hz mono tone (e.g. a stereo mix).
    pub audio_pattern: Option<String>,
}

/// Video codecs the test publisher can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PublishVideo {
    #[default]
    H264,
    /// x265 over Enhanced RTMP (FourCC `hvc1`): needs [`ffmpeg9`].
    Hevc,
    /// SVT-AV1 (fastest preset, low-delay prediction) over Enhanced RTMP (FourCC `av01`): needs [`ffmpeg9`].
    Av1,
}

/// The static FFmpeg 9 build (`target/tools/ffmpeg9`, or `$FFMPEG9`), if it runs;
/// otherwise [`crate::skip`]s.
pub fn ffmpeg9() -> Option<PathBuf> {
    let path = std::env::var_os("FFMPEG9")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/tools/ffmpeg9"));
    let runs = std::process::Command::new(&path).arg("-version").output().is_ok_and(|o| o.status.success());
    if !runs {
        crate::skip("the static FFmpeg 9 is not installed (scripts/deps.sh links it as target/tools/ffmpeg9)");
    }
    runs.then_some(path)
}

/// Audio codecs the test publisher can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PublishAudio {
    /// FFmpeg's AAC-LC at 48 kHz, 96 kbit/s.
    #[default]
    Aac,
    /// libmp3lame at 44.1 kHz, 128 kbit/s (FLV sound format 2).
    Mp3,
    /// G.711 A-law, 8 kHz mono (FLV sound format 7).
    G711ALaw,
}

impl PublishAudio {
    fn args(self) -> &'static [&'static str] {
        match self {
            PublishAudio::Aac => &["-c:a", "aac", "-b:a", "96k"],
            PublishAudio::Mp3 => &["-c:a", "libmp3lame", "-b:a", "128k", "-ar", "44100"],
            PublishAudio::G711ALaw => &["-c:a", "pcm_alaw", "-ar", "8000", "-ac", "1"],
        }
    }
}

impl Default for Publish {
    fn default() -> Self {
        Self {
            seconds: 4.0,
            video: true,
            audio: true,
            bframes: 0,
            realtime: true,
            size: "640x360",
            fps: 30,
            audio_codec: PublishAudio::Aac,
            video_codec: PublishVideo::H264,
            pattern: None,
            video_args: Vec::new(),
            audio_pattern: None,
        }
    }
}

impl Publish {
    /// Starts the real `ffmpeg` program publishing to `url`.
    pub fn start(&self, url: &str) -> Child {
        let program = match self.video_codec {
            PublishVideo::H264 => PathBuf::from("ffmpeg"),
            PublishVideo::Hevc | PublishVideo::Av1 => {
                ffmpeg9().expect("HEVC and AV1 publishes need the static FFmpeg 9 (check ffmpeg9() first)")
            }
        };
        let mut c = Command::new(program);
        c.args(["-hide_banner", "-nostats", "-loglevel", "error"]);
        if self.realtime {
            c.arg("-re");
        }
        let mut maps = Vec::new();
        if self.video {
            let pattern = format!("testsrc2=size={}:rate={}", self.size, self.fps);
            c.args(["-f", "lavfi", "-i", self.pattern.as_deref().unwrap_or(&pattern)]);
            maps.push(maps.len());
        }
        if self.audio {
            let tone = "sine=frequency=440:sample_rate=48000";
            c.args(["-f", "lavfi", "-i", self.audio_pattern.as_deref().unwrap_or(tone)]);
            maps.push(maps.len());
        }
        for input in maps {
            c.args(["-map", &input.to_string()]);
        }
        c.args(["-t", &self.seconds.to_string()]);
        if self.video {
            let gop = self.fps.to_string();
            match self.video_codec {
                PublishVideo::H264 => {
                    c.args(["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]);
                    c.args(["-g", &gop, "-keyint_min", &gop, "-sc_threshold", "0"]);
                    if self.bframes == 0 {
                        c.args(["-tune", "zerolatency"]);
                    } else {
                        c.args(["-bf", &self.bframes.to_string()]);
                    }
                }
                PublishVideo::Hevc => {
                    c.args(["-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]);
                    let params =
                        format!("keyint={gop}:min-keyint={gop}:scenecut=0:bframes={}:log-level=error", self.bframes);
                    c.args(["-x265-params", &params]);
                }
                PublishVideo::Av1 => {
                    c.args(["-c:v", "libsvtav1", "-preset", "12", "-pix_fmt", "yuv420p", "-g", &gop]);
                    // Low delay (no hidden reordered frames), as a live encoder is set.
                    c.args(["-svtav1-params", "pred-struct=1:scd=0"]);
                }
            }
            c.args(&self.video_args);
        }
        if self.audio {
            c.args(self.audio_codec.args());
        }
        // SRT callers send MPEG-TS; RTMP carries FLV.
        let format = if url.starts_with("srt://") { "mpegts" } else { "flv" };
        if format == "flv" && self.video_codec != PublishVideo::H264 {
            // As OBS does: the connect command lists the codecs (`fourCcList`) and hears ours back.
            c.args(["-rtmp_enhanced_codecs", "hvc1,av01"]);
        }
        c.args(["-f", format, url])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        c.spawn().expect("ffmpeg starts")
    }
}

/// Starts the default publish (360p30 test pattern and AAC tone, real time) of `seconds` to `url`.
pub fn publish(url: &str, seconds: f64) -> Child {
    Publish { seconds, ..Publish::default() }.start(url)
}

/// Waits for a publisher to exit; returns (success, stderr).
pub async fn finish(child: Child) -> (bool, String) {
    let output = tokio::time::timeout(STEP_TIMEOUT, child.wait_with_output())
        .await
        .expect("publisher exits in time")
        .expect("publisher output");
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// Waits at most `limit` for a publisher to exit; returns whether it succeeded and how long it took.
pub async fn finish_within(mut child: Child, limit: Duration) -> (bool, Duration) {
    let started = tokio::time::Instant::now();
    let status = tokio::time::timeout(limit, child.wait()).await.expect("publisher exits in time").expect("status");
    (status.success(), started.elapsed())
}
