//! What the benchmarks share: the recordings they read (made once by the
//! `ffmpeg` program) and their FLV tags, as an RTMP publisher would send them;
//! and the parts of the memory bench and the soak (the appliance as a child
//! process, an RTMP publisher, an LL-HLS player, /proc samples, trends).

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use media::{Arrival, LatencyMode};
use packager::{Rendition, Segmenter, SegmenterConfig, WindowConfig};

pub mod appliance_process;
pub mod cpu;
pub mod http_client;
pub mod http_load;
pub mod ll_hls_player;
pub mod media_playlist;
pub mod mp3_source;
pub mod process_stats;
pub mod rtmp_publisher;
pub mod trend;

/// Seconds of the shared recording.
pub const MEDIA_SECONDS: u32 = 60;

/// One FLV tag: 8 audio, 9 video, 18 script data.
pub struct Tag {
    pub kind: u8,
    pub timestamp: u32,
    pub data: Bytes,
}

/// Asks a child process to end (SIGTERM), as systemd or an operator would.
pub fn terminate(child: &std::process::Child) {
    let _ = rustix::process::kill_process(rustix::process::Pid::from_child(child), rustix::process::Signal::TERM);
}

/// Whether `program -version` (or `-v`) runs: the references are real programs.
pub fn have_program(program: &str, version_flag: &str) -> bool {
    Command::new(program).arg(version_flag).output().is_ok_and(|o| o.status.success())
}

/// Runs a reference command to its end and returns how long it took (process start included).
pub fn timed(command: &mut Command) -> Duration {
    let started = Instant::now();
    let status = command.status().expect("the reference program starts");
    assert!(status.success(), "the reference failed: {command:?}");
    started.elapsed()
}

/// The median of some timings.
pub fn median(mut timings: Vec<Duration>) -> Duration {
    timings.sort();
    timings[timings.len() / 2]
}

/// Says "skipped" and why when the `ffmpeg` program, every reference's base, is missing.
pub fn skip_without_ffmpeg() -> bool {
    let missing = !have_program("ffmpeg", "-version");
    if missing {
        println!("skipped: the ffmpeg program is not installed (apt install ffmpeg)");
    }
    missing
}

/// The workspace's `target/`, where the recording is cached between runs.
pub fn target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target")
}

/// A RAM disk when there is one, so references do not measure the disk.
pub fn ram_dir() -> PathBuf {
    if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() }
}

/// `MEDIA_SECONDS` of 720p30 x264 (4 Mb/s, a keyframe a second) + AAC in FLV, made once.
pub fn recording(dir: &Path) -> PathBuf {
    recording_of(dir, "720p", "1280x720", "4M")
}

/// `MEDIA_SECONDS` of 360p30 x264 (800 kb/s, a keyframe a second) + AAC in FLV,
/// made once: the soak's and the memory bench's publishers send it.
pub fn small_recording(dir: &Path) -> PathBuf {
    recording_of(dir, "360p", "640x360", "800k")
}

fn recording_of(dir: &Path, name: &str, size: &str, bitrate: &str) -> PathBuf {
    let path = dir.join(format!("bench-source-{MEDIA_SECONDS}s-{name}.flv"));
    if path.exists() {
        return path;
    }
    // Written aside and renamed, so an interrupted run never leaves half a recording.
    let partial = path.with_extension("partial.flv");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", &format!("testsrc2=size={size}:rate=30")])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &MEDIA_SECONDS.to_string(), "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency"])
        .args(["-g", "30", "-b:v", bitrate, "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-f", "flv"])
        .arg(&partial)
        .status()
        .expect("the ffmpeg program is needed for this benchmark");
    assert!(status.success(), "ffmpeg could not make the source");
    std::fs::rename(&partial, &path).expect("the recording is renamed into place");
    path
}

/// The tags of an FLV file, in order.
pub fn read_flv(path: &Path) -> Vec<Tag> {
    let file = Bytes::from(std::fs::read(path).unwrap());
    let mut pos = u32::from_be_bytes([file[5], file[6], file[7], file[8]]) as usize + 4;
    let mut tags = Vec::new();
    while pos + 11 <= file.len() {
        let kind = file[pos] & 0x1f;
        let size = u32::from_be_bytes([0, file[pos + 1], file[pos + 2], file[pos + 3]]) as usize;
        let timestamp = u32::from_be_bytes([file[pos + 7], file[pos + 4], file[pos + 5], file[pos + 6]]);
        let body = pos + 11;
        if body + size > file.len() {
            break;
        }
        tags.push(Tag { kind, timestamp, data: file.slice(body..body + size) });
        pos = body + size + 4;
    }
    tags
}

/// The segmenter settings every bench uses: 200 ms parts, 1 s segments.
pub fn segmenter_config() -> SegmenterConfig {
    SegmenterConfig { part_target: Duration::from_millis(200), segment_target: Duration::from_secs(1) }
}

/// An ultra-low-latency rendition keeping a 24-segment window.
pub fn rendition(name: &str) -> Rendition {
    Rendition::new(
        name,
        WindowConfig { mode: LatencyMode::UltraLow, window_segments: 24, segment_target: Duration::from_secs(1) },
    )
}

/// Packages `tags` into one rendition in a single pass (no playlist renders).
pub fn packaged(tags: &[Tag], name: &str) -> Arc<Rendition> {
    let rendition = Arc::new(rendition(name));
    let mut demuxer = ingest::Demuxer::default();
    let mut segmenter = Segmenter::new(segmenter_config());
    let (mut events, mut outputs) = (Vec::new(), Vec::new());
    for tag in tags {
        match tag.kind {
            9 => demuxer.push_video(tag.timestamp, &tag.data, Arrival::now(), &mut events),
            8 => demuxer.push_audio(tag.timestamp, &tag.data, Arrival::now(), &mut events),
            _ => {}
        }
        for event in events.drain(..) {
            segmenter.push(event, &mut outputs);
        }
    }
    segmenter.finish(&mut outputs);
    rendition.apply(&outputs);
    rendition
}
