//! Recording cost: the CPU and the bytes written per media second that
//! recording a live pass-through channel costs the appliance (its recorder
//! writes the packager's own segments with a synced, checksummed index),
//! against the `ffmpeg` program receiving the same stream and writing it to
//! disk with `-c copy -f hls -hls_segment_type fmp4`, in the same run, on the
//! same file system (the workspace's `target/`, a real disk).
//!
//! Three runs of `CHANNELS` real-time publishers (the `ffmpeg` program
//! replaying the shared 720p30 4 Mb/s recording with `-c copy`): the
//! appliance in this process with recording off, then on (the difference is
//! the recorder's own cost), then one reference process per channel. Only the
//! receiving side's CPU is counted (getrusage for ours, /proc for the
//! reference's processes).

use std::ffi::OsStr;
use std::path::Path;
use std::process::Child;
use std::time::Duration;

use appliance::state::{NewChannel, RecordingSettings};
use appliance::{Appliance, Config};
use benches::cpu::{copy_publisher, cpu_until_exit, own_cpu_seconds, rtmp_listener, wait_all};
use benches::{recording, target_dir};
use media::LatencyMode;

const CHANNELS: usize = 4;
const SECONDS: u32 = 20;

/// Bytes of the files under `dir`.
fn bytes_under(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => bytes_under(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// Ours: the appliance in this process, every channel recording or none;
/// returns (CPU seconds, bytes of recordings written).
fn ours(source: &Path, record: bool) -> (f64, u64) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let data = tempfile::Builder::new().prefix("appliance-recording-").tempdir_in(target_dir()).unwrap();
    let mut config = Config { data_dir: data.path().to_path_buf(), ..Config::default() };
    config.rtmp.listen = "127.0.0.1:0".into();
    config.http.listen = "127.0.0.1:0".into();
    config.recording.keep_free_percent = 0;
    let appliance = runtime.block_on(Appliance::start(&config)).expect("the appliance starts");
    let keys: Vec<String> = (0..CHANNELS)
        .map(|i| {
            let new = NewChannel {
                name: format!("rec-{i}"),
                latency_mode: LatencyMode::Low,
                recording: RecordingSettings { enabled: record, ..RecordingSettings::default() },
                ..NewChannel::default()
            };
            appliance.store.create_channel(new, true).unwrap().stream_key
        })
        .collect();
    let before = own_cpu_seconds();
    let publishers: Vec<Child> = keys
        .iter()
        .map(|key| copy_publisher(source, &format!("rtmp://{}/live/{key}", appliance.rtmp_addr), SECONDS))
        .collect();
    let finished = wait_all(publishers);
    assert_eq!(finished, CHANNELS, "every publisher ran to its end");
    // The recorders finish their last segment once the sessions have ended.
    runtime.block_on(appliance.shutdown());
    let cpu = own_cpu_seconds() - before;
    let written = bytes_under(&data.path().join("recordings"));
    if record {
        let recorded = appliance::recordings::Catalog::new(appliance::recordings::Layout::new(data.path()));
        let ready = (0..CHANNELS).filter(|i| recorded.list(&format!("rec-{i}")).is_ok_and(|l| l.len() == 1)).count();
        assert_eq!(ready, CHANNELS, "every channel was recorded");
    }
    (cpu, written)
}

/// The reference: one `ffmpeg` RTMP listener per channel writing fMP4 HLS to
/// disk (every segment kept, as a recording); returns (CPU seconds, bytes written).
fn reference(source: &Path, out: &Path) -> (f64, u64) {
    let base_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listeners: Vec<Child> = (0..CHANNELS)
        .map(|i| {
            let dir = out.join(format!("ch{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            let playlist = dir.join("index.m3u8");
            let output: Vec<&OsStr> = ["-c", "copy", "-f", "hls", "-hls_time", "2", "-hls_list_size", "0"]
                .into_iter()
                .chain(["-hls_segment_type", "fmp4", "-hls_flags", "independent_segments"])
                .map(OsStr::new)
                .chain([playlist.as_os_str()])
                .collect();
            rtmp_listener(&format!("rtmp://127.0.0.1:{}/live/ref", base_port + i as u16 + 1), &output)
        })
        .collect();
    // Let the listeners bind; probing their ports would take the one connection each accepts.
    std::thread::sleep(Duration::from_millis(1500));
    let publishers: Vec<Child> = (0..CHANNELS)
        .map(|i| copy_publisher(source, &format!("rtmp://127.0.0.1:{}/live/ref", base_port + i as u16 + 1), SECONDS))
        .collect();
    let limit = Duration::from_secs(SECONDS as u64 + 30);
    let mut listeners = listeners;
    let cpu = cpu_until_exit(&mut listeners, limit);
    wait_all(publishers);
    (cpu, bytes_under(out))
}

fn main() {
    if benches::skip_without_ffmpeg() {
        return;
    }
    let source = recording(&target_dir());
    let (live_cpu, _) = ours(&source, false);
    let (recording_cpu, our_bytes) = ours(&source, true);
    let out = tempfile::Builder::new().prefix("appliance-recording-ref-").tempdir_in(target_dir()).unwrap();
    let (reference_cpu, reference_bytes) = reference(&source, out.path());
    let media_seconds = (CHANNELS as f64) * SECONDS as f64;
    let pct = |cpu: f64| cpu / media_seconds * 100.0;
    let recorder_cpu = (recording_cpu - live_cpu).max(0.0);
    println!("recording cost: {CHANNELS} pass-through channels of 720p30 4 Mb/s + AAC for {SECONDS} s each, to disk");
    println!("{:<58} {:>8} {:>14} {:>16}", "", "CPU s", "% core/channel", "bytes/media s");
    println!("{:<58} {:>8.2} {:>14.2} {:>16}", "ours, live only (RTMP + LL-HLS)", live_cpu, pct(live_cpu), "-");
    let per_second = |bytes: u64| (bytes as f64 / media_seconds) as u64;
    println!(
        "{:<58} {:>8.2} {:>14.2} {:>16}",
        "ours, live + recording (segments, synced index)",
        recording_cpu,
        pct(recording_cpu),
        per_second(our_bytes)
    );
    println!("{:<58} {:>8.2} {:>14.2} {:>16}", "  of which the recorder", recorder_cpu, pct(recorder_cpu), "");
    println!(
        "{:<58} {:>8.2} {:>14.2} {:>16}",
        "ffmpeg -listen 1 -c copy -f hls fmp4 to disk (reference)",
        reference_cpu,
        pct(reference_cpu),
        per_second(reference_bytes)
    );
    let ratio = reference_cpu / recording_cpu;
    println!("ratio: ours (live LL-HLS and recording) uses {ratio:.2}x less CPU per channel than the reference");
    println!(
        "{}",
        serde_json::json!({
            "bench": "recording_cost", "channels": CHANNELS, "seconds": SECONDS,
            "ours_live_cpu_s": live_cpu, "ours_recording_cpu_s": recording_cpu, "recorder_cpu_s": recorder_cpu,
            "reference_cpu_s": reference_cpu, "ours_bytes_per_media_second": per_second(our_bytes),
            "reference_bytes_per_media_second": per_second(reference_bytes), "ratio_vs_ffmpeg": ratio,
        })
    );
}
