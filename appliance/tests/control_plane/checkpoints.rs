//! Session stats checkpointed while live. The real appliance binary runs as a
//! child process with a checkpoint every second, the real `ffmpeg` publishes
//! to it, and the process is killed with SIGKILL: no clean shutdown, the
//! redb file left as a crash leaves it. Restarted on the same data directory,
//! the session is ended with `appliance-restart` and keeps its stats up to
//! the last checkpoint: close to what was published, and it ends at that
//! checkpoint rather than at the restart.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use appliance::state::Scope;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::support::{Harness, STEP, finish, have_ffmpeg, poll, publish};

/// Units a second of the test publish: 30 video frames and 46.875 AAC frames (48 kHz, 1024 samples).
const UNITS_PER_SECOND: f64 = 30.0 + 48_000.0 / 1024.0;

/// `appliance serve` on `data` with loopback ports chosen by the OS and a
/// checkpoint every second; returns it with its RTMP and HTTP addresses.
async fn serve(data: &Path) -> (Child, SocketAddr, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_appliance"))
        .arg("serve")
        .env("APPLIANCE_DATA_DIR", data)
        .env("APPLIANCE_RTMP_LISTEN", "127.0.0.1:0")
        .env("APPLIANCE_HTTP_LISTEN", "127.0.0.1:0")
        .env("APPLIANCE_SESSIONS_CHECKPOINT_SECONDS", "1")
        .env("APPLIANCE_LOG_FORMAT", "text")
        .env("RUST_LOG", "info")
        .env_remove("APPLIANCE_CONFIG")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the appliance starts");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let address = |line: &str, field: &str| -> Option<SocketAddr> {
        let start = line.find(field)? + field.len();
        line[start..].split_whitespace().next()?.parse().ok()
    };
    let (mut rtmp, mut http) = (None, None);
    let found = tokio::time::timeout(STEP, async {
        while let Ok(Some(line)) = lines.next_line().await {
            rtmp = rtmp.or_else(|| address(&line, "rtmp_addr="));
            http = http.or_else(|| address(&line, "http_addr="));
            if let (Some(rtmp), Some(http)) = (rtmp, http) {
                return Some((rtmp, http));
            }
        }
        None
    })
    .await;
    let (rtmp, http) = found.ok().flatten().expect("the appliance logs its addresses");
    // Keep reading its log, so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, rtmp, http)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_keeps_the_live_sessions_stats_up_to_the_last_checkpoint() {
    if !have_ffmpeg() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let (key, token) = {
        let store = appliance::state::Store::open(data.path()).unwrap();
        let channel = store.add("crashy", media::LatencyMode::UltraLow).unwrap();
        (channel.stream_key, store.create_token("checkpoint-test", Scope::Read).unwrap().1)
    };
    let (mut server, rtmp, http_addr) = serve(data.path()).await;
    let publisher = publish(&format!("rtmp://{rtmp}/live/{key}"), 30.0);
    let http = reqwest::Client::builder().timeout(STEP).build().unwrap();
    let newest = || async {
        let url = format!("http://{http_addr}/api/v1/channels/crashy/sessions?limit=1");
        let page: Value = http.get(url).bearer_auth(&token).send().await.ok()?.json().await.ok()?;
        page["items"].get(0).cloned()
    };
    // Live, with a few seconds of media checkpointed.
    let checkpointed = poll(STEP, || async {
        newest().await.filter(|s| s["state"] == "live" && s["units_in"].as_u64() >= Some(3 * 77))
    })
    .await
    .expect("the live session's stats were checkpointed");
    assert!(checkpointed["bytes_in"].as_u64().unwrap() > 0, "{checkpointed}");
    assert_eq!(checkpointed["renditions"], serde_json::json!(["source"]));
    // Crash half-way between two checkpoints: what came after the last one is
    // lost, and no more. The figures of the instant, just before the crash:
    tokio::time::sleep(Duration::from_millis(500)).await;
    let last = newest().await.expect("the session");
    let (units, bytes) =
        (last["live"]["input"]["units"].as_u64().unwrap(), last["live"]["input"]["bytes"].as_u64().unwrap());
    let ran_ms = last["duration_ms"].as_u64().unwrap();

    server.start_kill().expect("SIGKILL");
    server.wait().await.expect("the appliance died");
    let (ok, _) = finish(publisher, STEP).await;
    assert!(!ok, "the publisher lost its connection with the process");

    let app = Harness::start_in(data, |_| {}).await;
    let id = last["id"].as_str().unwrap();
    let ended = app.get(&format!("/api/v1/channels/crashy/sessions/{id}")).await;
    assert_eq!((ended["state"].as_str(), ended["end_reason"].as_str()), (Some("ended"), Some("appliance-restart")));
    let (units_in, bytes_in) = (ended["units_in"].as_u64().unwrap(), ended["bytes_in"].as_u64().unwrap());
    let duration_ms = ended["duration_ms"].as_u64().unwrap();
    eprintln!(
        "before the crash: {units} units, {bytes} bytes, {ran_ms} ms; recovered: {units_in} units, {bytes_in} bytes, {duration_ms} ms"
    );
    // At least what had been checkpointed when polled, and within about a
    // checkpoint interval (one second, plus slack for a busy machine) of the
    // figures an instant before the kill.
    assert!(units_in >= checkpointed["units_in"].as_u64().unwrap(), "{ended}");
    let second = UNITS_PER_SECOND as u64;
    assert!((units.saturating_sub(2 * second)..=units + second).contains(&units_in), "{units_in} vs {units}: {ended}");
    let (per_unit, per_unit_before) = (bytes_in as f64 / units_in as f64, bytes as f64 / units as f64);
    assert!(
        (per_unit / per_unit_before - 1.0).abs() < 0.2,
        "{bytes_in} bytes in {units_in} units vs {bytes} in {units}"
    );
    assert!(ended["dropped_units"].is_u64(), "{ended}");
    // It ended at its last checkpoint, not at the restart, and what it holds
    // is what a real-time publish of that long sends.
    assert!((ran_ms.saturating_sub(2500)..=ran_ms + 1000).contains(&duration_ms), "{duration_ms} vs {ran_ms} ms");
    let rate = units_in as f64 / (duration_ms as f64 / 1000.0);
    assert!((0.7 * UNITS_PER_SECOND..=1.1 * UNITS_PER_SECOND).contains(&rate), "{rate:.1} units/s");
    app.appliance.shutdown().await;
}
