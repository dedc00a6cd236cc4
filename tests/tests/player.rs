//! Player behaviour: hls.js in Debian's headless Chromium (low-latency mode)
//! plays a live channel published by the real `ffmpeg` program, with the
//! latency measured from EXT-X-PROGRAM-DATE-TIME reported.

use std::path::Path;

use media::LatencyMode;
use tests::{Publish, STEP_TIMEOUT, TestAppliance, have_ffmpeg};

/// Seconds the player watches.
const WATCH_SECONDS: u32 = 15;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_js_plays_ultra_low_latency_without_errors() {
    if !have_ffmpeg() {
        return;
    }
    let Some(player) = tests::browser_driver("player") else { return };
    let app = TestAppliance::start().await;
    let channel = app.add_channel("player", LatencyMode::UltraLow);
    let publisher = Publish { seconds: (WATCH_SECONDS + 15) as f64, ..Publish::default() }
        .start(&app.rtmp_url(&channel.stream_key));
    app.media_playlist_path("player", None).await;

    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = artifacts.join("player.png");
    let url = app.url("/?channel=player");
    let args = [url.as_str(), &WATCH_SECONDS.to_string(), &screenshot.to_string_lossy()];
    let limit = STEP_TIMEOUT + std::time::Duration::from_secs(WATCH_SECONDS as u64);
    let report = tests::run_browser_script(&player.join("player.mjs"), &args, limit).await;

    assert_eq!(report["fatal_errors"], serde_json::json!([]), "{report}");
    assert_eq!(report["console_errors"], serde_json::json!([]), "{report}");
    assert_eq!(report["low_latency_mode"], true);
    assert_eq!(report["video_size"], serde_json::json!([640, 360]));
    let played = report["played_seconds"].as_f64().unwrap();
    let wall = report["wall_seconds"].as_f64().unwrap();
    assert!(played >= 0.75 * wall, "playback advanced {played:.1} s in {wall:.1} s: {report}");
    assert!(
        report["latency_p50"].as_f64().is_some_and(|l| l > 0.0),
        "hls.js measured a latency from program date-time: {report}"
    );
    assert!(screenshot.exists());
    drop(publisher);
    app.appliance.shutdown().await;
}
