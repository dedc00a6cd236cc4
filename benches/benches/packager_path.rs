//! The packager path (FLV tags -> units -> parts -> playlists) against the
//! `ffmpeg` program remuxing the same FLV into fMP4 HLS, in the same run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use media::{Arrival, LatencyMode, StreamEvent};
use packager::{Output, Rendition, Segmenter, SegmenterConfig, WindowConfig};

const MEDIA_SECONDS: u32 = 60;
const RUNS: usize = 5;

/// One FLV tag: 8 audio, 9 video, 18 script data.
struct Tag {
    kind: u8,
    timestamp: u32,
    data: Bytes,
}

fn source(dir: &Path) -> PathBuf {
    let path = dir.join(format!("bench-source-{MEDIA_SECONDS}s-720p.flv"));
    if path.exists() {
        return path;
    }
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &MEDIA_SECONDS.to_string(), "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency"])
        .args(["-g", "30", "-b:v", "4M", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-f", "flv"])
        .arg(&path)
        .status()
        .expect("the ffmpeg program is needed for this benchmark");
    assert!(status.success(), "ffmpeg could not make the source");
    path
}

fn read_flv(path: &Path) -> Vec<Tag> {
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

/// Our whole path once; returns (elapsed, parts, playlist bytes rendered).
fn ours(tags: &[Tag]) -> (Duration, usize, usize) {
    let started = Instant::now();
    let mut demuxer = ingest::Demuxer::default();
    let mut segmenter = Segmenter::new(SegmenterConfig {
        part_target: Duration::from_millis(200),
        segment_target: Duration::from_secs(1),
    });
    let rendition = Arc::new(Rendition::new(
        "source",
        WindowConfig { mode: LatencyMode::UltraLow, window_segments: 24, segment_target: Duration::from_secs(1) },
    ));
    let mut events: Vec<StreamEvent> = Vec::new();
    let mut outputs: Vec<Output> = Vec::new();
    let (mut parts, mut rendered) = (0, 0);
    for tag in tags {
        let arrival = Arrival::now();
        match tag.kind {
            9 => demuxer.push_video(tag.timestamp, &tag.data, arrival, &mut events),
            8 => demuxer.push_audio(tag.timestamp, &tag.data, arrival, &mut events),
            _ => continue,
        }
        for event in events.drain(..) {
            segmenter.push(event, &mut outputs);
        }
        if !outputs.is_empty() {
            parts += outputs.iter().filter(|o| matches!(o, Output::Part(_))).count();
            rendition.apply(&outputs);
            outputs.clear();
            // A player's reload after every publish: render (and gzip) the playlist.
            rendered += rendition.playlist(false, Vec::new()).text.len();
        }
    }
    segmenter.finish(&mut outputs);
    rendition.apply(&outputs);
    (started.elapsed(), parts, rendered)
}

fn reference(source: &Path, out: &Path) -> Duration {
    let _ = std::fs::remove_dir_all(out);
    std::fs::create_dir_all(out).unwrap();
    let started = Instant::now();
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(source)
        .args(["-c", "copy", "-f", "hls", "-hls_time", "1", "-hls_list_size", "24", "-hls_segment_type", "fmp4"])
        .args(["-hls_flags", "independent_segments"])
        .arg(out.join("index.m3u8"))
        .status()
        .unwrap();
    assert!(status.success());
    started.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    if Command::new("ffmpeg").arg("-version").output().is_err() {
        println!("skipped: the ffmpeg program is not installed");
        return;
    }
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target");
    let source = source(&target);
    let tags = read_flv(&source);
    let media_bytes: usize = tags.iter().map(|t| t.data.len()).sum();
    let ram = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
    let out = ram.join(format!("appliance-bench-{}", std::process::id()));

    let (mut our_times, mut ref_times) = (Vec::new(), Vec::new());
    let mut parts = 0;
    for _ in 0..RUNS {
        let (elapsed, p, _) = ours(&tags);
        parts = p;
        our_times.push(elapsed);
        ref_times.push(reference(&source, &out));
    }
    let _ = std::fs::remove_dir_all(&out);
    let (our, reference) = (median(our_times), median(ref_times));
    let units = tags.iter().filter(|t| t.kind == 8 || t.kind == 9).count();

    // Playlist rendering alone: a 24-segment LL-HLS window re-rendered after every change.
    let rendition = Rendition::new(
        "source",
        WindowConfig { mode: LatencyMode::UltraLow, window_segments: 24, segment_target: Duration::from_secs(1) },
    );
    let mut demuxer = ingest::Demuxer::default();
    let mut segmenter = Segmenter::new(SegmenterConfig {
        part_target: Duration::from_millis(200),
        segment_target: Duration::from_secs(1),
    });
    let (mut events, mut outputs) = (Vec::new(), Vec::new());
    for tag in &tags {
        match tag.kind {
            9 => demuxer.push_video(tag.timestamp, &tag.data, Arrival::now(), &mut events),
            8 => demuxer.push_audio(tag.timestamp, &tag.data, Arrival::now(), &mut events),
            _ => {}
        }
        for e in events.drain(..) {
            segmenter.push(e, &mut outputs);
        }
    }
    rendition.apply(&outputs);
    let renders = 20_000;
    let started = Instant::now();
    for i in 0..renders {
        // Vary the report so every call renders (and gzips) instead of hitting the cache.
        let report = packager::playlist::RenditionReport { uri: "x".into(), last_msn: i, last_part: None };
        std::hint::black_box(rendition.playlist(false, vec![report]));
    }
    let render_rate = renders as f64 / started.elapsed().as_secs_f64();

    let secs = |d: Duration| d.as_secs_f64();
    println!(
        "packager path, {MEDIA_SECONDS} s of 720p30 H.264 4 Mb/s + AAC ({units} units, {parts} parts, {:.1} MB), median of {RUNS}",
        media_bytes as f64 / 1e6
    );
    println!("{:<44} {:>10} {:>14} {:>12}", "", "wall", "units/s", "x real time");
    println!(
        "{:<44} {:>9.1}ms {:>14.0} {:>12.0}",
        "ours (demux+segment+CMAF+store+playlists)",
        secs(our) * 1e3,
        units as f64 / secs(our),
        MEDIA_SECONDS as f64 / secs(our)
    );
    println!(
        "{:<44} {:>9.1}ms {:>14.0} {:>12.0}",
        "ffmpeg -c copy -f hls fmp4 (reference)",
        secs(reference) * 1e3,
        units as f64 / secs(reference),
        MEDIA_SECONDS as f64 / secs(reference)
    );
    println!("ratio: ours is {:.2}x the reference's throughput", secs(reference) / secs(our));
    println!("playlist renders (24 segments, parts, gzip): {render_rate:.0}/s");
    println!(
        "{}",
        serde_json::json!({
            "bench": "packager_path", "media_seconds": MEDIA_SECONDS, "units": units, "parts": parts,
            "ours_ms": secs(our) * 1e3, "reference_ms": secs(reference) * 1e3,
            "ratio_vs_ffmpeg": secs(reference) / secs(our), "playlist_renders_per_s": render_rate,
        })
    );
}
