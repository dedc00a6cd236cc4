//! The packager path (FLV tags -> units -> parts -> playlists) against the
//! `ffmpeg` program remuxing the same FLV into fMP4 HLS, in the same run.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::{MEDIA_SECONDS, Tag, packaged, read_flv, recording, rendition, segmenter_config};
use media::{Arrival, StreamEvent};
use packager::{Output, Segmenter};

const RUNS: usize = 5;

/// Our whole path once; returns (elapsed, parts, playlist bytes rendered).
fn ours(tags: &[Tag]) -> (Duration, usize, usize) {
    let started = Instant::now();
    let mut demuxer = ingest::Demuxer::default();
    let mut segmenter = Segmenter::new(segmenter_config());
    let rendition = Arc::new(rendition("source"));
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
    benches::timed(
        Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-i"])
            .arg(source)
            .args(["-c", "copy", "-f", "hls", "-hls_time", "1", "-hls_list_size", "24", "-hls_segment_type", "fmp4"])
            .args(["-hls_flags", "independent_segments"])
            .arg(out.join("index.m3u8")),
    )
}

fn main() {
    if benches::skip_without_ffmpeg() {
        return;
    }
    let source = recording(&benches::target_dir());
    let tags = read_flv(&source);
    let media_bytes: usize = tags.iter().map(|t| t.data.len()).sum();
    let out = benches::ram_dir().join(format!("appliance-bench-{}", std::process::id()));

    let (mut our_times, mut ref_times) = (Vec::new(), Vec::new());
    let mut parts = 0;
    for _ in 0..RUNS {
        let (elapsed, p, _) = ours(&tags);
        parts = p;
        our_times.push(elapsed);
        ref_times.push(reference(&source, &out));
    }
    let _ = std::fs::remove_dir_all(&out);
    let (our, reference) = (benches::median(our_times), benches::median(ref_times));
    let units = tags.iter().filter(|t| t.kind == 8 || t.kind == 9).count();

    // Playlist rendering alone: a 24-segment LL-HLS window re-rendered after every change.
    let rendition = packaged(&tags, "source");
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
