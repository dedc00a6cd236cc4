//! MP3 to AAC-LC, the audio stage of a session whose publisher sends MP3:
//! `accel::audio::AacTranscoder` against the `ffmpeg` program converting the
//! same MP3 file with the same encoder and bitrate, in the same run.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use accel::audio::{AacTranscoder, aac_bitrate};
use benches::mp3_source::bench_source;
use media::{EncodedUnit, TrackInfo};

const SECONDS: u32 = 120;
const RATE: u32 = 44_100;
const RUNS: usize = 5;

fn ours(track: &TrackInfo, units: &[EncodedUnit]) -> (Duration, usize) {
    let started = Instant::now();
    let mut transcoder = AacTranscoder::new(track).expect("the transcoder opens");
    let mut out = Vec::with_capacity(units.len() * 2);
    for unit in units {
        transcoder.push(unit, &mut out).expect("MP3 decodes");
    }
    transcoder.finish(&mut out).expect("the encoder drains");
    (started.elapsed(), out.len())
}

fn reference(mp3: &Path, out: &Path) -> Duration {
    benches::timed(
        Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-threads", "1", "-i"])
            .arg(mp3)
            .args(["-c:a", "aac", "-b:a", &aac_bitrate(RATE, 2).to_string(), "-f", "adts"])
            .arg(out),
    )
}

fn main() {
    if benches::skip_without_ffmpeg() {
        return;
    }
    let (file, track, units) = bench_source(SECONDS, RATE);
    let out = benches::ram_dir().join(format!("appliance-bench-{}.aac", std::process::id()));
    let (mut our_times, mut ref_times, mut aac_units) = (Vec::new(), Vec::new(), 0);
    for _ in 0..RUNS {
        let (elapsed, n) = ours(&track, &units);
        aac_units = n;
        our_times.push(elapsed);
        ref_times.push(reference(&file, &out));
    }
    let _ = std::fs::remove_file(&out);
    let (our, reference) = (benches::median(our_times), benches::median(ref_times));
    let ms_per_second = |d: Duration| d.as_secs_f64() * 1e3 / f64::from(SECONDS);
    println!(
        "audio transcode: {SECONDS} s of {RATE} Hz stereo MP3 ({} frames) to AAC-LC {} kb/s ({aac_units} frames), median of {RUNS}",
        units.len(),
        aac_bitrate(RATE, 2) / 1000
    );
    println!("{:<44} {:>10} {:>22}", "", "wall", "ms per second of audio");
    println!(
        "{:<44} {:>8.1}ms {:>22.2}",
        "ours (accel::audio::AacTranscoder)",
        our.as_secs_f64() * 1e3,
        ms_per_second(our)
    );
    println!(
        "{:<44} {:>8.1}ms {:>22.2}",
        "ffmpeg -c:a aac -f adts (reference)",
        reference.as_secs_f64() * 1e3,
        ms_per_second(reference)
    );
    let ratio = reference.as_secs_f64() / our.as_secs_f64();
    println!("ratio: ours is {ratio:.2}x the reference's throughput (the reference includes process start)");
    println!(
        "{}",
        serde_json::json!({
            "bench": "audio_transcode", "media_seconds": SECONDS, "ours_ms": our.as_secs_f64() * 1e3,
            "reference_ms": reference.as_secs_f64() * 1e3, "ours_ms_per_audio_second": ms_per_second(our),
            "ratio_vs_ffmpeg": ratio,
        })
    );
}
