//! What `ffprobe` and a full `ffmpeg` decode find in a file we served.

use std::path::Path;

/// What ffprobe found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub video_frames: u64,
    pub audio_frames: u64,
    pub width: u32,
    pub height: u32,
    pub codecs: Vec<String>,
    /// Anything ffprobe and a full ffmpeg decode printed at `-v error`.
    pub errors: String,
}

/// Decodes `path` fully with ffprobe (frame counts) and ffmpeg (errors).
pub fn probe(path: &Path) -> Probe {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=codec_type,codec_name,width,height,nb_read_frames",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    let mut probe = Probe {
        video_frames: 0,
        audio_frames: 0,
        width: 0,
        height: 0,
        codecs: Vec::new(),
        errors: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    for stream in json["streams"].as_array().into_iter().flatten() {
        let frames: u64 = stream["nb_read_frames"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
        probe.codecs.push(stream["codec_name"].as_str().unwrap_or("?").to_string());
        match stream["codec_type"].as_str() {
            Some("video") => {
                probe.video_frames = frames;
                probe.width = stream["width"].as_u64().unwrap_or(0) as u32;
                probe.height = stream["height"].as_u64().unwrap_or(0) as u32;
            }
            Some("audio") => probe.audio_frames = frames,
            _ => {}
        }
    }
    let decode = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    probe.errors.push_str(&String::from_utf8_lossy(&decode.stderr));
    probe
}

/// `ffprobe -v error <args> <file>`'s output; panics unless it succeeds.
pub fn ffprobe(file: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .arg(file)
        .output()
        .expect("ffprobe runs");
    assert!(out.status.success(), "ffprobe {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ffprobe -v error -show_entries <entries> -of json <args> <file>`, parsed.
pub fn ffprobe_json(file: &Path, entries: &str, args: &[&str]) -> serde_json::Value {
    let all: Vec<&str> = args.iter().copied().chain(["-show_entries", entries, "-of", "json"]).collect();
    serde_json::from_str(&ffprobe(file, &all)).expect("ffprobe's JSON")
}
