//! Restream cost: the CPU the appliance spends per restream destination of a
//! live pass-through channel (FLV mux and RTMP send of the source as made,
//! `accel::stream_out` on its own thread), against the `ffmpeg` program doing
//! the same (`-c copy -f flv` to an RTMP destination), in the same run.
//!
//! Each side is measured twice on `CHANNELS` real-time publishes of the shared
//! 720p30 4 Mb/s recording: once without a destination and once with one per
//! channel (an `ffmpeg -listen 1 ... -f null` sink each, not counted), so the
//! difference is what sending on costs. Ours: the appliance in this process
//! (its ingest and packaging are in both runs). The reference: one `ffmpeg`
//! listener per channel taking the publish with `-c copy -f null -`, then
//! with `-c copy -f flv rtmp://sink` instead.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Child;
use std::time::Duration;

use appliance::state::records::restream::NewRestream;
use appliance::{Appliance, Config};
use benches::cpu::{copy_publisher, cpu_until_exit, own_cpu_seconds, rtmp_listener, wait_all};
use benches::{recording, target_dir};
use media::LatencyMode;

const CHANNELS: usize = 4;
const SECONDS: u32 = 20;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// An `ffmpeg` RTMP listener that takes one publish and throws it away.
fn sink(port: u16) -> Child {
    let output = ["-c", "copy", "-f", "null", "-"].map(OsStr::new);
    rtmp_listener(&format!("rtmp://127.0.0.1:{port}/live/sink"), &output)
}

fn stop(children: Vec<Child>) {
    for mut child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Ours: CPU seconds of this process over the publishes, and the destinations that were live mid-run.
fn ours(source: &Path, restream: bool) -> (f64, usize) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut config = Config { data_dir: data.path().to_path_buf(), ..Config::default() };
    config.rtmp.listen = "127.0.0.1:0".into();
    config.http.listen = "127.0.0.1:0".into();
    let appliance = runtime.block_on(Appliance::start(&config)).expect("the appliance starts");
    let mut sinks = Vec::new();
    let keys: Vec<String> = (0..CHANNELS)
        .map(|i| {
            let name = format!("restream-{i}");
            let channel = appliance.store.add(&name, LatencyMode::Low).unwrap();
            if restream {
                let port = free_port();
                sinks.push(sink(port));
                let new = NewRestream {
                    url: format!("rtmp://127.0.0.1:{port}/live"),
                    key: Some("sink".into()),
                    ..NewRestream::default()
                };
                appliance.store.add_restream(&name, new).unwrap();
            }
            channel.stream_key
        })
        .collect();
    // Let the sinks bind; probing their ports would take the one connection each accepts.
    std::thread::sleep(Duration::from_millis(1500));
    let before = own_cpu_seconds();
    let publishers: Vec<Child> = keys
        .iter()
        .map(|key| copy_publisher(source, &format!("rtmp://{}/live/{key}", appliance.rtmp_addr), SECONDS))
        .collect();
    std::thread::sleep(Duration::from_secs(SECONDS as u64 / 2));
    let live = (0..CHANNELS)
        .filter(|i| {
            let entry = appliance.live.registry().get(&format!("restream-{i}"));
            entry.is_some_and(|e| {
                e.outputs().iter().any(|o| o.link.as_ref().is_some_and(|l| l.bytes > 0 && l.attempts == 1))
            })
        })
        .count();
    let finished = wait_all(publishers);
    let cpu = own_cpu_seconds() - before;
    assert_eq!(finished, CHANNELS, "every publisher ran to its end");
    runtime.block_on(appliance.shutdown());
    stop(sinks);
    (cpu, live)
}

/// The reference: one `ffmpeg` listener per channel, copying to a sink or to nothing.
fn reference(source: &Path, restream: bool) -> f64 {
    let mut sinks = Vec::new();
    let ports: Vec<u16> = (0..CHANNELS).map(|_| free_port()).collect();
    let mut listeners: Vec<Child> = ports
        .iter()
        .map(|port| {
            let url = format!("rtmp://127.0.0.1:{port}/live/ref");
            if restream {
                let sink_port = free_port();
                sinks.push(sink(sink_port));
                let to = format!("rtmp://127.0.0.1:{sink_port}/live/sink");
                rtmp_listener(&url, &["-c", "copy", "-f", "flv", &to].map(OsStr::new))
            } else {
                rtmp_listener(&url, &["-c", "copy", "-f", "null", "-"].map(OsStr::new))
            }
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let publishers: Vec<Child> = ports
        .iter()
        .map(|port| copy_publisher(source, &format!("rtmp://127.0.0.1:{port}/live/ref"), SECONDS))
        .collect();
    let cpu = cpu_until_exit(&mut listeners, Duration::from_secs(SECONDS as u64 + 30));
    wait_all(publishers);
    stop(sinks);
    cpu
}

fn main() {
    if benches::skip_without_ffmpeg() {
        return;
    }
    let source = recording(&target_dir());
    let (ours_without, _) = ours(&source, false);
    let (ours_with, live) = ours(&source, true);
    let reference_without = reference(&source, false);
    let reference_with = reference(&source, true);
    let per_channel = |cpu: f64| cpu / (CHANNELS as f64 * SECONDS as f64) * 100.0;
    let (ours_cost, reference_cost) = (ours_with - ours_without, reference_with - reference_without);
    println!(
        "restream: {CHANNELS} pass-through channels of 720p30 4 Mb/s + AAC for {SECONDS} s, one RTMP destination each ({live} of {CHANNELS} sending mid-run)"
    );
    println!("{:<58} {:>10} {:>10} {:>22}", "", "without", "with", "% core / destination");
    println!(
        "{:<58} {:>10.2} {:>10.2} {:>22.3}",
        "ours (appliance: ingest + LL-HLS, + restream output)",
        ours_without,
        ours_with,
        per_channel(ours_cost)
    );
    println!(
        "{:<58} {:>10.2} {:>10.2} {:>22.3}",
        "ffmpeg -listen 1 -c copy, -f null vs -f flv rtmp:// (ref)",
        reference_without,
        reference_with,
        per_channel(reference_cost)
    );
    let ratio = reference_cost / ours_cost.max(1e-6);
    println!("ratio: a destination costs ours {ratio:.2}x less CPU than the reference's -f flv output");
    println!(
        "{}",
        serde_json::json!({
            "bench": "restream", "channels": CHANNELS, "seconds": SECONDS, "sending_mid_run": live,
            "ours_cpu_s": {"without": ours_without, "with": ours_with},
            "reference_cpu_s": {"without": reference_without, "with": reference_with},
            "ours_core_pct_per_destination": per_channel(ours_cost),
            "reference_core_pct_per_destination": per_channel(reference_cost),
            "ratio_vs_ffmpeg": ratio,
        })
    );
}
