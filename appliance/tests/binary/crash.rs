//! Session stats checkpointed while live. The real appliance binary runs as a
//! child process with a checkpoint every second, the real `ffmpeg` publishes
//! to it, and the process is killed with SIGKILL: no clean shutdown, the
//! redb file left as a crash leaves it. Restarted on the same data directory,
//! the session is ended with `appliance-restart` and keeps its stats up to
//! the last checkpoint: close to what was published, and it ends at that
//! checkpoint rather than at the restart.

use std::path::Path;

use appliance::state::Scope;
use serde_json::Value;
use support::{STEP_TIMEOUT, ServeProcess, TestAppliance, eventually, finish_within, have_ffmpeg, publish};

use crate::APPLIANCE;

/// Units a second of the test publish: 30 video frames and 46.875 AAC frames (48 kHz, 1024 samples).
const UNITS_PER_SECOND: f64 = 30.0 + 48_000.0 / 1024.0;

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
    // `appliance serve` with a checkpoint every second, on loopback ports the OS picks.
    let dir = data.path().to_path_buf();
    let mut server = tokio::task::spawn_blocking(move || {
        ServeProcess::start(Path::new(APPLIANCE), &dir, &[("APPLIANCE_SESSIONS_CHECKPOINT_SECONDS", "1")], false)
    })
    .await
    .unwrap();
    let (rtmp, http_addr) = (server.rtmp, server.http);
    let publisher = publish(&format!("rtmp://{rtmp}/live/{key}"), 30.0);
    let http = reqwest::Client::builder().timeout(STEP_TIMEOUT).build().unwrap();
    let newest = || async {
        let url = format!("http://{http_addr}/api/v1/channels/crashy/sessions?limit=1");
        let page: Value = http.get(url).bearer_auth(&token).send().await.ok()?.json().await.ok()?;
        page["items"].get(0).cloned()
    };
    // Live, with a few seconds of media checkpointed.
    let checkpointed = eventually(STEP_TIMEOUT, || async {
        newest().await.filter(|s| s["state"] == "live" && s["units_in"].as_u64() >= Some(3 * 77))
    })
    .await
    .expect("the live session's stats were checkpointed");
    assert!(checkpointed["bytes_in"].as_u64().unwrap() > 0, "{checkpointed}");
    assert_eq!(checkpointed["renditions"], serde_json::json!(["source"]));
    // Crash some way past that checkpoint (half a second of media more has
    // arrived): what came after the last one is lost, and no more. The
    // figures of the instant, just before the crash:
    let past = checkpointed["units_in"].as_u64().unwrap() + (UNITS_PER_SECOND / 2.0) as u64;
    let last = eventually(STEP_TIMEOUT, || async {
        newest().await.filter(|s| s["live"]["input"]["units"].as_u64().is_some_and(|units| units >= past))
    })
    .await
    .expect("media kept arriving after the checkpoint");
    let (units, bytes) =
        (last["live"]["input"]["units"].as_u64().unwrap(), last["live"]["input"]["bytes"].as_u64().unwrap());
    let ran_ms = last["duration_ms"].as_u64().unwrap();

    server.kill();
    let (ok, _) = finish_within(publisher, STEP_TIMEOUT).await;
    assert!(!ok, "the publisher lost its connection with the process");

    let app = TestAppliance::start_in(data, |_| {}).await;
    let id = last["id"].as_str().unwrap();
    let ended = app.get_json(&format!("/api/v1/channels/crashy/sessions/{id}")).await;
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
