//! The sound controls of a broadcast channel (resample to 48 kHz, gain, a
//! three-band equaliser, loudness to -23 LUFS with its true-peak limiter, a
//! compressor, a limiter, a fade-in) on the audio stage: `AacTranscoder` with
//! them against the `ffmpeg` program running the same filters
//! (`accel::sound::chain_text`, so the two cannot drift apart) with the same
//! encoder and bitrate, in the same run; and each without the chain, so the
//! chain's own cost is seen on both sides.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use accel::audio::{AacTranscoder, aac_bitrate};
use benches::mp3_source::bench_source;
use media::{EncodedUnit, SoundProcessing, TrackInfo};

const SECONDS: u32 = 120;
const RATE: u32 = 44_100;
const OUTPUT_RATE: u32 = 48_000;
const RUNS: usize = 5;

fn broadcast_chain() -> SoundProcessing {
    serde_json::from_value(serde_json::json!({
        "resample": {"rate": OUTPUT_RATE},
        "gain_db": -1,
        "equalizer": [
            {"type": "low-shelf", "frequency_hz": 100, "gain_db": 3},
            {"type": "peak", "frequency_hz": 2500, "gain_db": -2, "q": 1.4},
            {"type": "high-shelf", "frequency_hz": 8000, "gain_db": 2},
        ],
        "loudness": {"target_lufs": -23},
        "compressor": {},
        "limiter": {},
        "fade_in_ms": 1000,
    }))
    .expect("a valid sound section")
}

fn ours(track: &TrackInfo, units: &[EncodedUnit], sound: &SoundProcessing) -> Duration {
    let started = Instant::now();
    let mut transcoder = AacTranscoder::with_sound(track, sound).expect("the transcoder opens");
    let mut out = Vec::with_capacity(units.len() * 2);
    for unit in units {
        transcoder.push(unit, &mut out).expect("MP3 decodes");
    }
    transcoder.finish(&mut out).expect("the encoder drains");
    started.elapsed()
}

/// The `ffmpeg` program on one thread: `filters` (none: a plain transcode) and AAC-LC.
fn reference(mp3: &Path, filters: Option<&str>, out: &Path) -> Duration {
    let mut command = Command::new("ffmpeg");
    command.args(["-v", "error", "-y", "-threads", "1", "-filter_threads", "1", "-i"]).arg(mp3);
    if let Some(filters) = filters {
        command.args(["-af", filters]);
    }
    command.args(["-c:a", "aac", "-b:a", &aac_bitrate(OUTPUT_RATE, 2).to_string(), "-f", "adts"]).arg(out);
    benches::timed(&mut command)
}

fn main() {
    if benches::skip_without_ffmpeg() {
        return;
    }
    let (file, track, units) = bench_source(SECONDS, RATE);
    let sound = broadcast_chain();
    let soxr = accel::sound::has_soxr();
    let chain = accel::sound::chain_text(&sound, OUTPUT_RATE, 2, soxr).filters;
    // The chosen rate as our resampler does it (swr's settings, not soxr: see accel::audio).
    let engine: String = accel::audio::QUALITY_RESAMPLER.iter().map(|(k, v)| format!(":{k}={v}")).collect();
    let plain_filters = format!("aresample={OUTPUT_RATE}{engine}");
    let filters = format!("{plain_filters},{}", chain.join(","));
    let plain_sound = SoundProcessing { resample: sound.resample, ..SoundProcessing::default() };
    let out = benches::ram_dir().join(format!("appliance-bench-sound-{}.aac", std::process::id()));
    let mut times: [Vec<Duration>; 4] = Default::default();
    for _ in 0..RUNS {
        times[0].push(ours(&track, &units, &sound));
        times[1].push(reference(&file, Some(&filters), &out));
        times[2].push(ours(&track, &units, &plain_sound));
        times[3].push(reference(&file, Some(&plain_filters), &out));
    }
    let _ = std::fs::remove_file(&out);
    let [our, theirs, our_plain, their_plain] = times.map(benches::median);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let per_second = |d: Duration| ms(d) / f64::from(SECONDS);
    println!("sound chain: {SECONDS} s of {RATE} Hz stereo MP3 to {OUTPUT_RATE} Hz AAC-LC, median of {RUNS}");
    println!("chain: {filters}");
    println!("{:<52} {:>10} {:>22}", "", "wall", "ms per second of audio");
    for (label, d) in [
        ("ours, with the chain", our),
        ("ffmpeg -af <chain> (reference)", theirs),
        ("ours, resample only", our_plain),
        ("ffmpeg -af aresample (reference)", their_plain),
    ] {
        println!("{label:<52} {:>8.1}ms {:>22.2}", ms(d), per_second(d));
    }
    let ratio = theirs.as_secs_f64() / our.as_secs_f64();
    let (our_chain, their_chain) = (ms(our) - ms(our_plain), ms(theirs) - ms(their_plain));
    println!(
        "ratio: ours is {ratio:.2}x the reference's throughput with the chain (the reference includes process start)"
    );
    println!("the chain alone: ours {our_chain:.1} ms, the reference's {their_chain:.1} ms for {SECONDS} s");
    println!(
        "{}",
        serde_json::json!({
            "bench": "sound_chain", "media_seconds": SECONDS, "ours_ms": ms(our), "reference_ms": ms(theirs),
            "ours_plain_ms": ms(our_plain), "reference_plain_ms": ms(their_plain),
            "ours_ms_per_audio_second": per_second(our), "ratio_vs_ffmpeg": ratio,
        })
    );
}
