//! A picture-processing chain on a ladder: deinterlace (`bwdif`) and denoise
//! (`hqdn3d`, medium) once, then a 720p + 360p x264 ladder, from a 720p30
//! H.264 file. Ours (`accel::pipeline` with the channel's processing) against
//! the `ffmpeg` program running the same filters, split, scalers and encoder
//! settings (`accel::options`) on the same file, in the same run; the ratio
//! is the program's time over ours (above 1: we are faster).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use accel::device::{Backend, DeviceId};
use accel::options::EncoderSettings;
use accel::pipeline::{Outputs, Pipeline, PipelineConfig, PipelineEvent};
use media::{PictureProcessing, RenditionSpec, StreamEvent, VideoCodec, unit_channel};

const SECONDS: u32 = 4;
const RUNS: usize = 3;
/// The ladder: (height, kbit/s).
const RUNGS: [(u32, u32); 2] = [(720, 2800), (360, 800)];
/// The chain, as the channel sets it and as the `ffmpeg` program's filters (what `accel` builds on the CPU).
const PICTURE: &str = r#"{"deinterlace":"on","denoise":"medium"}"#;
const FFMPEG_CHAIN: &str = "bwdif=mode=send_frame:parity=auto:deint=all,hqdn3d=4:3:6:4.5";

fn rungs() -> Vec<RenditionSpec> {
    RUNGS.iter().map(|&(height, bitrate_kbps)| RenditionSpec::h264(height, bitrate_kbps)).collect()
}

/// A 720p30 test pattern, H.264 with a keyframe a second, made once.
fn source_file(dir: &Path) -> PathBuf {
    let path = dir.join(format!("bench-720p30-{SECONDS}s.mp4"));
    if !path.exists() {
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
            .arg(format!("testsrc2=size=1280x720:rate=30:duration={SECONDS}"))
            .args(["-c:v", "libx264", "-preset", "veryfast", "-g", "30", "-pix_fmt", "yuv420p", "-an"])
            .arg(&path)
            .status()
            .expect("the ffmpeg program is needed for this benchmark");
        assert!(status.success(), "ffmpeg could not make the source");
    }
    path
}

fn ours(source: &accel::source::Source, picture: &PictureProcessing) -> Duration {
    let config = PipelineConfig {
        label: "bench-picture".into(),
        backend: Backend::Software,
        device: DeviceId::cpu(),
        rungs: rungs(),
        picture: picture.clone(),
        keyframe_interval: Duration::from_secs(1),
        preset: None,
        fail_after_frames: None,
        faults: Default::default(),
    };
    let started = Instant::now();
    let (mut input, input_rx) = unit_channel(source.events.len() + 16);
    let (outputs, renditions) = Outputs::for_rungs(&config.rungs, 1 << 16).unwrap();
    let consumers: Vec<_> = renditions
        .into_iter()
        .map(|r| {
            std::thread::spawn(move || {
                let mut stream = r.stream;
                while stream.blocking_recv().is_some() {}
            })
        })
        .collect();
    let mut pipeline = Pipeline::start(config, input_rx, outputs).expect("the pipeline starts");
    for event in &source.events {
        match event {
            StreamEvent::Tracks(t) => input.blocking_send_tracks(t.clone()).unwrap(),
            StreamEvent::Unit(u) => {
                input.send_unit(u.clone()).unwrap();
            }
        }
    }
    drop(input);
    while let Some(event) = pipeline.blocking_next_event() {
        match event {
            PipelineEvent::Finished => break,
            PipelineEvent::Failed { error, .. } => panic!("the ladder failed: {error}"),
            _ => {}
        }
    }
    pipeline.join();
    for c in consumers {
        c.join().unwrap();
    }
    started.elapsed()
}

fn reference(file: &Path) -> Duration {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostats", "-loglevel", "error", "-y", "-i"]).arg(file);
    let labels: String = (0..RUNGS.len()).map(|i| format!("[s{i}]")).collect();
    let mut graph = format!("[0:v]{FFMPEG_CHAIN},split={}{labels}", RUNGS.len());
    for (i, (height, _)) in RUNGS.iter().enumerate() {
        let (w, h) = accel::pipeline::rung_size(1280, 720, *height);
        graph.push_str(&format!(";[s{i}]scale=w={w}:h={h}:flags=bicubic,format=yuv420p[o{i}]"));
    }
    cmd.args(["-filter_complex", &graph]);
    for (i, (_, kbps)) in RUNGS.iter().enumerate() {
        let settings = EncoderSettings::for_rung(Backend::Software, VideoCodec::H264, *kbps, 30.0, 1.0, None);
        cmd.args(["-map", &format!("[o{i}]")]).args(settings.ffmpeg_args());
        cmd.args(["-force_key_frames", "expr:gte(t,n_forced*1)", "-an", "-f", "null", "-"]);
    }
    benches::timed(&mut cmd)
}

fn main() {
    if benches::skip_without_ffmpeg() {
        return;
    }
    let file = source_file(&benches::target_dir());
    let source = accel::source::from_file(&file, f64::from(SECONDS)).expect("the source reads");
    let picture: PictureProcessing = serde_json::from_str(PICTURE).unwrap();
    let (mut our_times, mut ref_times, mut plain_times) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        our_times.push(ours(&source, &picture));
        ref_times.push(reference(&file));
        plain_times.push(ours(&source, &PictureProcessing::default()));
    }
    let (our, reference, plain) =
        (benches::median(our_times), benches::median(ref_times), benches::median(plain_times));
    let per_second = |d: Duration| d.as_secs_f64() / f64::from(SECONDS);
    println!("picture chain: {SECONDS} s of 720p30, {FFMPEG_CHAIN} then 720p 2800k + 360p 800k x264, median of {RUNS}");
    println!("{:<52} {:>9} {:>24}", "", "wall", "s per second of video");
    for (label, d) in [
        ("ours (accel::pipeline, deinterlace + denoise)", our),
        ("the ffmpeg program, same filters and ladder", reference),
        ("ours without processing (the chain's cost)", plain),
    ] {
        println!("{label:<52} {:>8.2}s {:>24.3}", d.as_secs_f64(), per_second(d));
    }
    println!(
        "ratio (program / ours): {:.2}; the chain adds {:.0}% to our ladder",
        reference.as_secs_f64() / our.as_secs_f64(),
        (our.as_secs_f64() / plain.as_secs_f64() - 1.0) * 100.0
    );
}
