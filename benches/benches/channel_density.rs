//! Channel density: the CPU the appliance spends per live pass-through
//! channel (RTMP ingest, FLV demux, CMAF/LL-HLS packaging, session
//! supervision), against the `ffmpeg` program doing the same work per channel
//! (an RTMP listener remuxing into fMP4 HLS on a RAM disk), in the same run.
//!
//! `CHANNELS` real publishers (the `ffmpeg` program replaying the shared 720p30
//! 4 Mb/s recording in real time with `-c copy`) push to the appliance running
//! in this process, then to as many reference processes. Only the receiving
//! side's CPU is counted: ours is this process's (getrusage), the reference's
//! is the sum over its processes (/proc/<pid>/stat, sampled until they exit).

use std::ffi::OsStr;
use std::path::Path;
use std::process::Child;
use std::time::Duration;

use appliance::{Appliance, Config};
use benches::cpu::{copy_publisher, cpu_until_exit, own_cpu_seconds, rtmp_listener, wait_all};
use benches::{recording, target_dir};
use media::LatencyMode;

const CHANNELS: usize = 8;
const SECONDS: u32 = 20;

fn publisher(source: &Path, url: &str) -> Child {
    copy_publisher(source, url, SECONDS)
}

/// Ours: the appliance in this process; returns (CPU seconds, channels that went live).
fn ours(source: &Path) -> (f64, usize) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut config = Config { data_dir: data.path().to_path_buf(), ..Config::default() };
    config.rtmp.listen = "127.0.0.1:0".into();
    config.http.listen = "127.0.0.1:0".into();
    let appliance = runtime.block_on(Appliance::start(&config)).expect("the appliance starts");
    let keys: Vec<String> = (0..CHANNELS)
        .map(|i| appliance.store.add(&format!("density-{i}"), LatencyMode::UltraLow).unwrap().stream_key)
        .collect();
    let before = own_cpu_seconds();
    let publishers: Vec<Child> =
        keys.iter().map(|key| publisher(source, &format!("rtmp://{}/live/{key}", appliance.rtmp_addr))).collect();
    // Sample while live: every channel must be packaging, or the number means nothing.
    std::thread::sleep(Duration::from_secs(SECONDS as u64 / 2));
    let live = (0..CHANNELS)
        .filter(|i| {
            let stream = appliance.origin.current(&format!("density-{i}"));
            stream.is_some_and(|s| s.renditions.iter().all(|r| r.progress().last_part.is_some()))
        })
        .count();
    let finished = wait_all(publishers);
    let cpu = own_cpu_seconds() - before;
    assert_eq!(finished, CHANNELS, "every publisher ran to its end");
    runtime.block_on(appliance.shutdown());
    (cpu, live)
}

/// The reference: one `ffmpeg` RTMP listener per channel remuxing to fMP4 HLS.
fn reference(source: &Path, out: &Path) -> f64 {
    let base_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut listeners: Vec<Child> = (0..CHANNELS)
        .map(|i| {
            let dir = out.join(format!("ch{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            let playlist = dir.join("index.m3u8");
            let output: Vec<&OsStr> = ["-c", "copy", "-f", "hls", "-hls_time", "1", "-hls_list_size", "24"]
                .into_iter()
                .chain(["-hls_segment_type", "fmp4", "-hls_flags", "independent_segments+delete_segments"])
                .map(OsStr::new)
                .chain([playlist.as_os_str()])
                .collect();
            rtmp_listener(&format!("rtmp://127.0.0.1:{}/live/ref", base_port + i as u16 + 1), &output)
        })
        .collect();
    // Let the listeners bind; probing their ports would take the one connection each accepts.
    std::thread::sleep(Duration::from_millis(1500));
    let publishers: Vec<Child> = (0..CHANNELS)
        .map(|i| publisher(source, &format!("rtmp://127.0.0.1:{}/live/ref", base_port + i as u16 + 1)))
        .collect();
    let cpu = cpu_until_exit(&mut listeners, Duration::from_secs(SECONDS as u64 + 30));
    wait_all(publishers);
    cpu
}

fn main() {
    if benches::skip_without_ffmpeg() {
        return;
    }
    let source = recording(&target_dir());
    let out = tempfile::Builder::new().prefix("appliance-density-").tempdir_in(benches::ram_dir()).unwrap();
    let (our_cpu, live) = ours(&source);
    let reference_cpu = reference(&source, out.path());
    let per_channel = |cpu: f64| cpu / (CHANNELS as f64 * SECONDS as f64) * 100.0;
    let (ours_pct, reference_pct) = (per_channel(our_cpu), per_channel(reference_cpu));
    println!(
        "channel density: {CHANNELS} pass-through channels of 720p30 4 Mb/s + AAC for {SECONDS} s each ({live} of {CHANNELS} packaging LL-HLS parts mid-run)"
    );
    println!("{:<52} {:>12} {:>22}", "", "CPU s", "% of a core / channel");
    println!("{:<52} {:>12.2} {:>22.2}", "ours (appliance: RTMP + LL-HLS, one process)", our_cpu, ours_pct);
    println!(
        "{:<52} {:>12.2} {:>22.2}",
        "ffmpeg -listen 1 -c copy -f hls fmp4 (reference)", reference_cpu, reference_pct
    );
    let ratio = reference_cpu / our_cpu;
    println!("ratio: ours uses {ratio:.2}x less CPU per channel than the reference");
    println!("at this rate one core carries about {:.0} such channels (ingest and packaging only)", 100.0 / ours_pct);
    println!(
        "{}",
        serde_json::json!({
            "bench": "channel_density", "channels": CHANNELS, "seconds": SECONDS, "live_mid_run": live,
            "ours_cpu_s": our_cpu, "reference_cpu_s": reference_cpu, "ours_core_pct_per_channel": ours_pct,
            "reference_core_pct_per_channel": reference_pct, "ratio_vs_ffmpeg": ratio,
        })
    );
}
