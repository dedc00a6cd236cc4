//! Thumbnail cost per pass-through channel: the CPU that keeping a live
//! channel's latest picture costs (`live::thumbnails`: the first keyframe
//! of each 5 s of media decoded alone, scaled to 320 wide, JPEG), against
//! the `ffmpeg` program doing the same job the way an operator would script
//! it (`-skip_frame nokey -i ... -vf fps=1/5,scale=320:-2 -f image2`), on the
//! same 720p30 4 Mb/s recording (a keyframe a second), in the same run.
//!
//! Ours runs the thumbnail output's own loop on this thread over the
//! recording's video units, queued beforehand as the session would hand
//! them over (every unit reaches it; only the keyframes due are decoded);
//! the reference reads the file itself. Figures: CPU seconds per media
//! second (a share of one core per channel); ours the mean of ten passes.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use appliance::live::thumbnails::{self, LatestThumbnails, ThumbnailSettings};
use benches::cpu::{cpu_until_exit, own_cpu_seconds};
use benches::{MEDIA_SECONDS, recording, target_dir};
use media::{StreamEvent, TrackKind};

const INTERVAL: Duration = Duration::from_secs(5);
const WIDTH: u32 = 320;
/// Runs of each side; the figures are the median.
const RUNS: usize = 3;
/// Passes of ours over the recording in one run: one pass costs a few clock
/// ticks of CPU time, too few to measure alone.
const PASSES: u32 = 10;

/// Ours: CPU seconds of one pass over the recording's video (the mean of
/// `PASSES`), and the thumbnails' sizes.
fn ours(events: &[StreamEvent]) -> (f64, (u32, u32)) {
    let mut cpu = 0.0;
    let mut size = (0, 0);
    for _ in 0..PASSES {
        let (pass, made) = one_pass(events);
        cpu += pass;
        size = made;
    }
    (cpu / f64::from(PASSES), size)
}

fn one_pass(events: &[StreamEvent]) -> (f64, (u32, u32)) {
    let latest = Arc::new(LatestThumbnails::new(ThumbnailSettings { interval: INTERVAL, width: WIDTH }));
    let (mut sender, receiver) = media::unit_channel(events.len() + 1);
    for event in events {
        match event {
            StreamEvent::Tracks(tracks) => {
                let video: Vec<_> = tracks.iter().filter(|t| t.kind == TrackKind::Video).cloned().collect();
                sender.announce(Arc::from(video)).unwrap();
            }
            StreamEvent::Unit(unit) if unit.kind == TrackKind::Video => {
                // As the output's feed carries it: re-indexed among the video tracks.
                let unit = media::EncodedUnit { track: 0, ..unit.clone() };
                assert!(sender.send_unit(unit).unwrap(), "the queue holds the whole recording");
            }
            StreamEvent::Unit(_) => {}
        }
    }
    drop(sender);
    let before = own_cpu_seconds();
    // The session would have removed it at its end; run() itself keeps it.
    thumbnails::run(&latest, "bench", "session", "source", receiver, None);
    let cpu = own_cpu_seconds() - before;
    let picture = latest.get("bench").expect("thumbnails were made");
    (cpu, (picture.thumbnail.width, picture.thumbnail.height))
}

/// The reference: CPU seconds of the `ffmpeg` program, and how many pictures it wrote.
fn reference(source: &std::path::Path) -> (f64, usize) {
    let out = tempfile::Builder::new().prefix("appliance-thumbs-ref-").tempdir_in(benches::ram_dir()).unwrap();
    let child = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-skip_frame", "nokey", "-i"])
        .arg(source)
        .args([
            "-t",
            &MEDIA_SECONDS.to_string(),
            "-an",
            "-vf",
            &format!("fps=1/{},scale={WIDTH}:-2", INTERVAL.as_secs()),
        ])
        .args(["-f", "image2"])
        .arg(out.path().join("%04d.jpg"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("ffmpeg starts");
    let cpu = cpu_until_exit(&mut [child], Duration::from_secs(120));
    let pictures = std::fs::read_dir(out.path()).unwrap().count();
    (cpu, pictures)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    if benches::skip_without_ffmpeg() {
        return;
    }
    let source = recording(&target_dir());
    let events = accel::source::from_file(&source, MEDIA_SECONDS as f64).expect("the recording reads").events;
    let keyframes =
        events.iter().filter(|e| matches!(e, StreamEvent::Unit(u) if u.kind == TrackKind::Video && u.keyframe)).count();
    let mut our_runs = Vec::new();
    let mut reference_runs = Vec::new();
    let mut size = (0, 0);
    let mut pictures = 0;
    for _ in 0..RUNS {
        let (cpu, made) = ours(&events);
        our_runs.push(cpu);
        size = made;
        let (cpu, written) = reference(&source);
        reference_runs.push(cpu);
        pictures = written;
    }
    let (ours_cpu, reference_cpu) = (median(our_runs), median(reference_runs));
    let seconds = f64::from(MEDIA_SECONDS);
    let pct = |cpu: f64| cpu / seconds * 100.0;
    println!(
        "thumbnail cost: one pass-through channel of 720p30 4 Mb/s ({MEDIA_SECONDS} s, {keyframes} keyframes), a {}x{} JPEG every {} s",
        size.0,
        size.1,
        INTERVAL.as_secs()
    );
    println!("{:<66} {:>8} {:>14}", "", "CPU s", "% core/channel");
    println!("{:<66} {:>8.3} {:>14.3}", "ours (a keyframe due decoded alone, swscale, mjpeg)", ours_cpu, pct(ours_cpu));
    println!(
        "{:<66} {:>8.3} {:>14.3}",
        format!("ffmpeg -skip_frame nokey, fps=1/5, scale (reference; {pictures} pictures)"),
        reference_cpu,
        pct(reference_cpu)
    );
    let ratio = reference_cpu / ours_cpu;
    println!("ratio: ours uses {ratio:.2}x less CPU per channel than the reference");
    println!(
        "{}",
        serde_json::json!({
            "bench": "thumbnail_cost", "media_seconds": MEDIA_SECONDS, "keyframes": keyframes,
            "ours_cpu_s": ours_cpu, "reference_cpu_s": reference_cpu, "ours_percent_core": pct(ours_cpu),
            "reference_percent_core": pct(reference_cpu), "ratio_vs_ffmpeg": ratio,
        })
    );
}
