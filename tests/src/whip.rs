//! WHIP publishers: the static FFmpeg 9's `whip` muxer (H.264 baseline and
//! Opus, as browsers send), pointed at a channel's WHIP endpoint.

use std::process::Stdio;

use tokio::process::{Child, Command};

/// Starts FFmpeg 9 publishing a 640x360 test pattern and a tone to `url` with `key` as
/// the bearer token for `seconds` (None: the static FFmpeg 9 is missing, skipped loudly).
pub fn whip_publish(url: &str, key: &str, seconds: f64) -> Option<Child> {
    let ffmpeg9 = crate::ffmpeg9()?;
    let mut c = Command::new(ffmpeg9);
    c.args(["-hide_banner", "-nostats", "-loglevel", "error", "-re"]);
    c.args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"]);
    c.args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]);
    c.args(["-map", "0", "-map", "1", "-t", &seconds.to_string()]);
    c.args(["-c:v", "libx264", "-profile:v", "baseline", "-preset", "ultrafast", "-tune", "zerolatency"]);
    c.args(["-pix_fmt", "yuv420p", "-g", "30", "-keyint_min", "30", "-sc_threshold", "0", "-b:v", "800k"]);
    c.args(["-c:a", "libopus", "-ar", "48000", "-ac", "2", "-b:a", "64k"]);
    c.args(["-f", "whip", "-whip_flags", "dtls_active", "-authorization", key, url]);
    c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).kill_on_drop(true);
    Some(c.spawn().expect("ffmpeg9 starts"))
}
