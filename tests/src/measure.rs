//! What FFmpeg's analysis filters measure on a video file, for tests that
//! check an effect on our output rather than assume it: a frame taken at a
//! time, a reference frame of a lavfi pattern through the `ffmpeg` program's
//! own filters, `cropdetect`'s box (bars), `idet`'s frame counts (interlace),
//! `volumedetect`'s mean volume and `ebur128`'s loudness (sound), a hash of
//! the video packets (a passthrough).

use std::path::Path;
use std::process::Command;

fn ffmpeg(args: &[&str]) -> String {
    let ran = Command::new("ffmpeg").args(["-hide_banner", "-nostats"]).args(args).output().expect("ffmpeg runs");
    let log = String::from_utf8_lossy(&ran.stderr).to_string();
    assert!(ran.status.success(), "ffmpeg {args:?}: {log}");
    log
}

/// Writes the frame of `video` at `seconds` to `out` (PNG).
pub fn frame_after(video: &Path, seconds: f64, out: &Path) {
    let (video, out) = (video.to_str().unwrap(), out.to_str().unwrap());
    ffmpeg(&["-v", "error", "-y", "-ss", &seconds.to_string(), "-i", video, "-frames:v", "1", "-f", "image2", out]);
    assert!(std::path::Path::new(out).exists(), "{video} has no frame at {seconds} s");
}

/// Writes the first frame of the lavfi `pattern` through `filters` (the
/// `ffmpeg` program's own: `transpose=clock,scale=...`) to `out` (PNG).
pub fn reference_frame(pattern: &str, filters: &str, out: &Path) {
    let out = out.to_str().unwrap();
    ffmpeg(&["-v", "error", "-y", "-f", "lavfi", "-i", pattern, "-vf", filters, "-frames:v", "1", "-f", "image2", out]);
}

/// The box `cropdetect` finds around the picture of `video` (what is not
/// black bars): (width, height, x, y), from its last report.
pub fn cropdetect(video: &Path) -> (u32, u32, u32, u32) {
    let log = ffmpeg(&[
        "-v",
        "info",
        "-i",
        video.to_str().unwrap(),
        "-vf",
        "cropdetect=limit=24:round=2:reset=0",
        "-f",
        "null",
        "-",
    ]);
    let last = log
        .lines()
        .filter_map(|l| l.split("crop=").nth(1))
        .next_back()
        .unwrap_or_else(|| panic!("no cropdetect report: {log}"));
    let n: Vec<u32> = last.trim().split(':').map(|v| v.parse().expect("a number")).collect();
    (n[0], n[1], n[2], n[3])
}

/// `idet`'s multi-frame counts for `video`: (interlaced: TFF + BFF, progressive).
pub fn idet(video: &Path) -> (u64, u64) {
    let log = ffmpeg(&["-v", "info", "-i", video.to_str().unwrap(), "-vf", "idet", "-an", "-f", "null", "-"]);
    let line =
        log.lines().find(|l| l.contains("Multi frame detection")).unwrap_or_else(|| panic!("no idet report: {log}"));
    let count = |label: &str| -> u64 {
        let rest = line.split(label).nth(1).unwrap_or_else(|| panic!("{label} in {line}"));
        rest.split_whitespace().next().unwrap().parse().expect("a count")
    };
    (count("TFF:") + count("BFF:"), count("Progressive:"))
}

/// The mean volume (dB) `volumedetect` measures on `video`'s audio after
/// `filters` (a channel picked, a band, a time window: `atrim=1:2,`), with
/// times counted from the file's first audio sample.
pub fn mean_volume(video: &Path, filters: &str) -> f64 {
    let af = format!("asetpts=PTS-STARTPTS,{filters}volumedetect");
    let log = ffmpeg(&["-v", "info", "-i", video.to_str().unwrap(), "-vn", "-af", &af, "-f", "null", "-"]);
    let value = log
        .lines()
        .filter_map(|l| l.split("mean_volume:").nth(1))
        .next_back()
        .unwrap_or_else(|| panic!("no volumedetect report: {log}"));
    value.trim().trim_end_matches("dB").trim().parse().expect("a volume in dB")
}

/// The integrated loudness (LUFS, EBU R128) `ebur128` measures on `video`'s
/// audio from `from_seconds` after its first sample to the end.
pub fn integrated_loudness(video: &Path, from_seconds: f64) -> f64 {
    let af = format!("asetpts=PTS-STARTPTS,atrim=start={from_seconds},ebur128");
    let log = ffmpeg(&["-v", "info", "-i", video.to_str().unwrap(), "-vn", "-af", &af, "-f", "null", "-"]);
    let summary = log.rsplit("Integrated loudness:").next().filter(|_| log.contains("Integrated loudness:"));
    let value = summary
        .and_then(|s| s.lines().find_map(|l| l.trim().strip_prefix("I:")))
        .unwrap_or_else(|| panic!("no ebur128 summary: {log}"));
    value.trim().trim_end_matches("LUFS").trim().parse().expect("a loudness in LUFS")
}

/// The MD5 of every video packet of `video`, in order (the bytes, not the times).
pub fn video_hash(video: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-i", video.to_str().unwrap(), "-map", "0:v", "-c", "copy"])
        .args(["-f", "hash", "-hash", "md5", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
