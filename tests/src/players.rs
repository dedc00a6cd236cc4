//! Real players watching a live channel for a while, shared by the suite
//! (short runs with assertions, `tests/e2e/player.rs`) and the `players`
//! command (long runs that print what they measured): hls.js and Shaka
//! Player side by side, and the watch page once per latency mode.

use std::time::Duration;

use media::LatencyMode;

use crate::{MediaPlaylist, Publish, STEP_TIMEOUT, TestAppliance, browser_driver, eventually, have_ffmpeg};

/// Publishes an ultra-low-latency channel with the real `ffmpeg` program and
/// plays it with hls.js and Shaka Player for `seconds` (tests/player/play.mjs);
/// `None` when a tool is missing (skipped loudly).
pub async fn play_hls_js_and_shaka(seconds: u64) -> Option<serde_json::Value> {
    if !have_ffmpeg() {
        return None;
    }
    let player = browser_driver("player", &["shaka-player"])?;
    let app = TestAppliance::start().await;
    let channel = app.add_channel("both", LatencyMode::UltraLow);
    let publisher =
        Publish { seconds: (seconds + 60) as f64, ..Publish::default() }.start(&app.rtmp_url(&channel.stream_key));
    // Viewers join a running stream: the first seconds of a brand-new one are
    // another case (hls.js can stall once at its first segment's end there).
    let path = app.media_playlist_path("both", None).await;
    app.playlist_until(&path, |p| p.segments.iter().filter(|s| s.duration.is_some()).count() >= 3).await;
    let origin = app.url("");
    let args = [origin.as_str(), "both", &seconds.to_string(), "hlsjs,shaka"];
    let limit = STEP_TIMEOUT * 2 + Duration::from_secs(seconds);
    let report = crate::run_browser_script(&player.join("play.mjs"), &args, limit).await;
    drop(publisher);
    app.appliance.shutdown().await;
    Some(report)
}

/// Publishes one channel per latency mode and plays each on the watch page
/// (hls.js tuned for the mode) at once for `minutes` (tests/player/players.mjs);
/// returns the report (per player: stalls, latency behind the live edge and
/// ingest to display), `None` when a tool is missing (skipped loudly).
pub async fn watch_every_latency_mode(minutes: f64) -> Option<serde_json::Value> {
    if !have_ffmpeg() {
        return None;
    }
    let player = browser_driver("player", &[])?;
    let app = TestAppliance::start().await;
    let modes = [
        ("mode-ultra-low", LatencyMode::UltraLow),
        ("mode-low", LatencyMode::Low),
        ("mode-normal", LatencyMode::Normal),
    ];
    let mut publishers = Vec::new();
    for (name, mode) in modes {
        let channel = app.add_channel(name, mode);
        let seconds = minutes * 60.0 + 120.0;
        publishers.push(Publish { seconds, ..Publish::default() }.start(&app.rtmp_url(&channel.stream_key)));
    }
    // hls.js starts three target durations behind the edge: wait until that much is there.
    for (name, _) in modes {
        let path = app.media_playlist_path(name, None).await;
        eventually(STEP_TIMEOUT * 2, || async {
            let (_, text) = app.get_text(&path).await;
            (MediaPlaylist::parse(&text).segments.iter().filter(|s| s.duration.is_some()).count() >= 4).then_some(())
        })
        .await
        .expect("four segments");
    }
    let seconds = ((minutes * 60.0) as u64).to_string();
    let urls: Vec<String> = modes.iter().map(|(name, _)| app.url(&format!("/watch/{name}"))).collect();
    let args: Vec<&str> = std::iter::once(seconds.as_str()).chain(urls.iter().map(String::as_str)).collect();
    let limit = STEP_TIMEOUT * 3 + Duration::from_secs_f64(minutes * 60.0);
    let report = crate::run_browser_script(&player.join("players.mjs"), &args, limit).await;
    drop(publishers);
    app.appliance.shutdown().await;
    Some(report)
}
