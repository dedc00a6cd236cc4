//! MP3 to AAC-LC, the audio stage of a session whose publisher sends MP3:
//! `accel::audio::AacTranscoder` against the `ffmpeg` program converting the
//! same MP3 file with the same encoder and bitrate, in the same run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use accel::audio::{AacTranscoder, aac_bitrate};
use bytes::Bytes;
use media::{Arrival, CodecConfig, EncodedUnit, OtherAudioConfig, Timebase, TrackInfo, TrackKind};

const SECONDS: u32 = 120;
const RATE: u32 = 44_100;
const RUNS: usize = 5;

/// A two-tone stereo MP3 (what an older encoder box or a browser-based publisher sends), made once.
fn mp3_file(dir: &Path) -> PathBuf {
    let path = dir.join(format!("bench-tone-{SECONDS}s-{RATE}.mp3"));
    if !path.exists() {
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
            .arg(format!("sine=f=440:d={SECONDS}:sample_rate={RATE}"))
            .args(["-f", "lavfi", "-i"])
            .arg(format!("sine=f=660:d={SECONDS}:sample_rate={RATE}"))
            .args(["-filter_complex", "[0][1]amerge=inputs=2", "-c:a", "libmp3lame", "-b:a", "128k"])
            .args(["-write_xing", "0", "-id3v2_version", "0", "-f", "mp3"])
            .arg(&path)
            .status()
            .expect("the ffmpeg program is needed for this benchmark");
        assert!(status.success(), "ffmpeg could not make the MP3");
    }
    path
}

/// The file's frames as ingest would deliver them (sample-counted timestamps).
fn units(mp3: &[u8]) -> (TrackInfo, Vec<EncodedUnit>) {
    let bytes = Bytes::copy_from_slice(mp3);
    let mut units = Vec::new();
    let mut pts = 0i64;
    let mut config = None;
    for frame in media::mpeg_audio::frames(mp3) {
        let (_, data) = frame.expect("whole MP3 frames");
        let start = data.as_ptr() as usize - mp3.as_ptr() as usize;
        config.get_or_insert_with(|| OtherAudioConfig::from_mp3_frame(data).expect("an MP3 header"));
        units.push(EncodedUnit {
            track: 1,
            kind: TrackKind::Audio,
            pts,
            dts: pts,
            keyframe: true,
            data: bytes.slice(start..start + data.len()),
            arrival: Arrival::now(),
        });
        pts += i64::from(media::mpeg_audio::samples_in(data).expect("an MP3 frame"));
    }
    let config = config.expect("frames");
    let track = TrackInfo {
        kind: TrackKind::Audio,
        timebase: Timebase(config.sample_rate),
        codec: CodecConfig::OtherAudio(config),
        frame_rate: None,
        bitrate: None,
    };
    (track, units)
}

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
    let file = mp3_file(&benches::target_dir());
    let mp3 = std::fs::read(&file).unwrap();
    let (track, units) = units(&mp3);
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
