//! Player behaviour: hls.js in Debian's headless Chromium (low-latency mode)
//! plays a live channel published by the real `ffmpeg` program, with the
//! latency measured from EXT-X-PROGRAM-DATE-TIME reported.

use media::LatencyMode;
use support::{Publish, STEP_TIMEOUT, TestAppliance, have_ffmpeg};

/// Seconds the player watches.
const WATCH_SECONDS: u32 = 15;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_js_plays_ultra_low_latency_without_errors() {
    if !have_ffmpeg() {
        return;
    }
    let Some(player) = support::browser_driver("player", &[]) else { return };
    let app = TestAppliance::start().await;
    let channel = app.add_channel("player", LatencyMode::UltraLow);
    let publisher = Publish { seconds: (WATCH_SECONDS + 15) as f64, ..Publish::default() }
        .start(&app.rtmp_url(&channel.stream_key));
    app.media_playlist_path("player", None).await;

    let artifacts = support::artifacts_dir("");
    let screenshot = artifacts.join("player.png");
    let url = app.url("/?channel=player");
    let args = [url.as_str(), &WATCH_SECONDS.to_string(), &screenshot.to_string_lossy()];
    let limit = STEP_TIMEOUT + std::time::Duration::from_secs(WATCH_SECONDS as u64);
    let report = support::run_browser_script(&player.join("player.mjs"), &args, limit).await;

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
    let Some(report) = support::players::play_hls_js_and_shaka(BOTH_SECONDS).await else { return };
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

/// Runs tests/player/watch.mjs on `channel` (published by the caller) for `seconds`.
async fn watch_page(app: &TestAppliance, channel: &str, seconds: u64) -> Option<serde_json::Value> {
    let player = support::browser_driver("player", &[])?;
    app.media_playlist_path(channel, None).await;
    let artifacts = support::artifacts_dir("");
    let screenshot = artifacts.join(format!("watch-{channel}.png"));
    let origin = app.url("");
    let args = [origin.as_str(), channel, &seconds.to_string(), &screenshot.to_string_lossy()];
    let limit = STEP_TIMEOUT * 3 + std::time::Duration::from_secs(seconds);
    Some(support::run_browser_script(&player.join("watch.mjs"), &args, limit).await)
}

/// What every watch page run must show: no error anywhere, playback
/// advancing, the rate within 0.8-1.2, the latency on the page, the embed playing.
fn assert_watch_page_plays(report: &serde_json::Value) {
    for errors in ["fatal_errors", "http_errors", "console_errors"] {
        assert_eq!(report[errors], serde_json::json!([]), "{errors}: {report}");
    }
    let played = report["played_seconds"].as_f64().unwrap();
    let wall = report["wall_seconds"].as_f64().unwrap();
    assert!(played >= 0.75 * wall, "playback advanced {played:.1} s in {wall:.1} s: {report}");
    let rate = &report["playback_rate"];
    let (slowest, fastest) = (rate[0].as_f64().unwrap(), rate[1].as_f64().unwrap());
    assert!((0.8..=1.2).contains(&slowest) && (0.8..=1.2).contains(&fastest), "playback rate {rate}: {report}");
    let shown = report["shown_latency"].as_str().unwrap();
    assert!(shown.ends_with(" s") && shown.trim_end_matches(" s").parse::<f64>().is_ok(), "latency shown: {shown:?}");
    assert_eq!(report["title_shown"], true);
    assert_eq!(report["embed"], serde_json::json!({ "playing": true, "title_shown": false }), "{report}");
}

/// The viewers' page on an ultra-low-latency channel: it recognises the
/// mode from the playlist, starts at its target latency (a second behind the
/// live edge, at least PART-HOLD-BACK) and holds it with the playback rate;
/// a single rendition has no quality menu; the console's iframe snippet plays it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_page_holds_the_ultra_low_target_and_embeds() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = app.add_channel("watch", LatencyMode::UltraLow);
    let publisher = Publish { seconds: 80.0, ..Publish::default() }.start(&app.rtmp_url(&channel.stream_key));
    let Some(report) = watch_page(&app, "watch", 20).await else { return };
    assert_watch_page_plays(&report);
    assert_eq!(report["page"]["mode"], "ultra-low", "{report}");
    let target = report["page"]["target"].as_f64().unwrap();
    assert!(target >= 1.0, "{report}");
    assert_eq!(report["quality_menu"], serde_json::Value::Null, "one rendition, no menu: {report}");
    // Held near the target: within one second above it (hls.js adds a second per stall).
    let p50 = report["latency_p50"].as_f64().unwrap();
    assert!(p50 >= target - 0.5 && p50 <= target + 1.0, "latency p50 {p50:.2} s, target {target:.2} s: {report}");
    drop(publisher);
    app.appliance.shutdown().await;
}

/// A low-latency channel (2 s segments, no parts): three target durations behind the edge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_page_plays_low_latency_three_segments_behind() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = app.add_channel("watch-low", LatencyMode::Low);
    let publisher = Publish { seconds: 80.0, ..Publish::default() }.start(&app.rtmp_url(&channel.stream_key));
    let Some(report) = watch_page(&app, "watch-low", 15).await else { return };
    assert_watch_page_plays(&report);
    assert_eq!(report["page"]["mode"], "low", "{report}");
    assert_eq!(report["page"]["target"], 6.0, "{report}");
    drop(publisher);
    app.appliance.shutdown().await;
}

/// A ladder gets a quality menu: Auto, then each rung.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_page_offers_a_ladder_as_a_quality_menu() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = app.add_ladder_channel(
        "watch-abr",
        LatencyMode::UltraLow,
        &[(240, 400), (144, 200)],
        false,
        media::EncoderPolicy::Software,
    );
    let publisher = Publish { seconds: 80.0, ..Publish::default() }.start(&app.rtmp_url(&channel.stream_key));
    let Some(report) = watch_page(&app, "watch-abr", 10).await else { return };
    assert_watch_page_plays(&report);
    let menu: Vec<&str> =
        report["quality_menu"].as_array().expect("a quality menu").iter().filter_map(|o| o.as_str()).collect();
    assert_eq!(menu.len(), 3, "{menu:?}");
    assert!(menu[0].starts_with("Auto"), "{menu:?}");
    assert!(menu[1].starts_with("240p") && menu[2].starts_with("144p"), "{menu:?}");
    drop(publisher);
    app.appliance.shutdown().await;
}
