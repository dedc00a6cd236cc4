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

/// Seconds hls.js and Shaka Player watch together in the suite.
const BOTH_SECONDS: u64 = 25;

/// hls.js and Shaka Player (which requests the preload-hinted parts) play
/// one ultra-low-latency channel at once, each in its own browser context:
/// no HTTP error, no player error, no stall.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_js_and_shaka_play_without_http_errors_or_stalls() {
    let Some(report) = play_both(BOTH_SECONDS).await else { return };
    for p in report["players"].as_array().expect("players") {
        assert_eq!(p["http_errors"], serde_json::json!([]), "{p}");
        assert_eq!(p["player_errors"], serde_json::json!([]), "{p}");
        assert_eq!(p["console_errors"], serde_json::json!([]), "{p}");
        assert_eq!(p["stalls"], 0, "{p}");
        assert_eq!(p["video_size"], serde_json::json!([640, 360]), "{p}");
        let played = p["played_seconds"].as_f64().unwrap();
        let wall = p["wall_seconds"].as_f64().unwrap();
        assert!(played >= 0.75 * wall, "playback advanced {played:.1} s in {wall:.1} s: {p}");
        assert!(p["latency_p50"].as_f64().is_some_and(|l| l > 0.0), "latency from program date-time: {p}");
    }
}

/// The long run, a command rather than a suite test:
/// `SOAK_MINUTES=10 cargo test -p tests --test player -- --ignored --nocapture soak`
/// prints both players' reports (HTTP errors, stalls, latency p50/p95).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a 10-minute soak; run it on purpose"]
async fn soak_hls_js_and_shaka() {
    let minutes: u64 = std::env::var("SOAK_MINUTES").ok().and_then(|m| m.parse().ok()).unwrap_or(10);
    let Some(report) = play_both(minutes * 60).await else { return };
    for p in report["players"].as_array().expect("players") {
        eprintln!(
            "soak {}: {} min, http errors {}, player errors {}, stalls {}, latency p50 {:.2} s p95 {:.2} s",
            p["player"],
            minutes,
            p["http_errors"].as_array().map_or(0, Vec::len),
            p["player_errors"].as_array().map_or(0, Vec::len),
            p["stalls"],
            p["latency_p50"].as_f64().unwrap_or(f64::NAN),
            p["latency_p95"].as_f64().unwrap_or(f64::NAN),
        );
    }
}

/// Publishes an ultra-low-latency channel with the real `ffmpeg` program and
/// plays it with hls.js and Shaka Player for `seconds` (tests/player/play.mjs).
async fn play_both(seconds: u64) -> Option<serde_json::Value> {
    if !have_ffmpeg() {
        return None;
    }
    let player = tests::browser_driver("player")?;
    if !player.join("node_modules/shaka-player").is_dir() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "tests/player/node_modules lacks shaka-player");
        eprintln!("skipped: tests/player/node_modules lacks shaka-player (scripts/deps.sh installs it)");
        return None;
    }
    let app = TestAppliance::start().await;
    let channel = app.add_channel("both", LatencyMode::UltraLow);
    let publisher = Publish { seconds: (seconds + 60) as f64, ..Publish::default() }
        .start(&app.rtmp_url(&channel.stream_key));
    app.media_playlist_path("both", None).await;
    let origin = app.url("");
    let args = [origin.as_str(), "both", &seconds.to_string(), "hlsjs,shaka"];
    let limit = STEP_TIMEOUT * 2 + std::time::Duration::from_secs(seconds);
    let report = tests::run_browser_script(&player.join("play.mjs"), &args, limit).await;
    drop(publisher);
    app.appliance.shutdown().await;
    Some(report)
}
