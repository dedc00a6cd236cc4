//! Pictures compared with the real `ffmpeg` program: a video frame taken out
//! of a file at its presentation time, and the PSNR of two pictures.

use std::path::Path;
use std::process::Command;

/// Writes the frame of `video`'s first video stream whose presentation time
/// is `pts` (in the stream's timebase, as stored: `-copyts`), scaled to
/// `width`x`height`, to `out` (PNG). Panics when there is no such frame.
pub fn frame_at(video: &Path, pts: i64, width: u32, height: u32, out: &Path) {
    let filter = format!("select='eq(pts\\,{pts})',scale={width}:{height}:flags=bicubic");
    let ran = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-copyts", "-i"])
        .arg(video)
        .args(["-map", "0:v:0", "-vf", &filter, "-frames:v", "1", "-f", "image2"])
        .arg(out)
        .output()
        .expect("ffmpeg runs");
    assert!(ran.status.success(), "ffmpeg extracting pts {pts}: {}", String::from_utf8_lossy(&ran.stderr));
    assert!(out.exists(), "{} has no frame at pts {pts}", video.display());
}

/// The PSNR (dB) between two pictures of the same size, over Y, U and V as
/// video is measured: both in limited-range 4:2:0 (a JPEG's full range
/// converted), so the chroma subsampling that both already have is not
/// counted again through an RGB round trip.
pub fn psnr(a: &Path, b: &Path) -> f64 {
    let ran = Command::new("ffmpeg")
        .args(["-v", "info", "-nostats", "-i"])
        .arg(a)
        .arg("-i")
        .arg(b)
        .args([
            "-lavfi",
            "[0:v]scale=out_range=tv,format=yuv420p[a];[1:v]scale=out_range=tv,format=yuv420p[b];[a][b]psnr",
            "-f",
            "null",
            "-",
        ])
        .output()
        .expect("ffmpeg runs");
    let log = String::from_utf8_lossy(&ran.stderr);
    assert!(ran.status.success(), "ffmpeg psnr: {log}");
    let average = log
        .lines()
        .filter_map(|l| l.split("average:").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .next_back()
        .unwrap_or_else(|| panic!("no PSNR in ffmpeg's log: {log}"));
    if average == "inf" { f64::INFINITY } else { average.parse().expect("a PSNR figure") }
}
