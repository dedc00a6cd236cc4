//! Enhanced RTMP HEVC and AV1 end to end: a real FFmpeg (the static 9.x
//! build; Debian 12's 5.1 cannot send them) publishes x265 or SVT-AV1 in FLV
//! with the `hvc1`/`av01` FourCC ExVideoTagHeader. A pass-through channel
//! packages them as `hvc1`/`av01` CMAF that decodes without errors (and AV1
//! plays in hls.js: Chromium decodes AV1, not HEVC); a ladder channel decodes
//! them and serves H.264 rungs, so any player plays the same publish.

use appliance::live::events::SessionEvent;
use media::{EncoderPolicy, LatencyMode};
use support::{Publish, PublishVideo, TestAppliance, attributes, ffmpeg9, finish, have_ffmpeg, probe};

/// The first variant's attributes of a multivariant playlist.
fn first_variant(master: &str) -> std::collections::HashMap<String, String> {
    let line = master.lines().find_map(|l| l.strip_prefix("#EXT-X-STREAM-INF:")).expect("a variant");
    attributes(line)
}

fn hevc_publish(seconds: f64) -> Publish {
    Publish { seconds, size: "320x180", video_codec: PublishVideo::Hevc, ..Publish::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hevc_over_enhanced_rtmp_is_packaged_as_hvc1() {
    if !have_ffmpeg() || ffmpeg9().is_none() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = app.add_channel("hevc-in", LatencyMode::UltraLow);
    let publisher = hevc_publish(4.0).start(&app.rtmp_url(&channel.stream_key));
    let path = app.media_playlist_path("hevc-in", None).await;
    let (_, master) = app.get_text("/hls/hevc-in/index.m3u8").await;
    let attrs = first_variant(&master);
    assert!(attrs["CODECS"].starts_with("hvc1.1."), "{master}");
    assert!(attrs["CODECS"].contains("mp4a.40.2"), "audio rides along: {master}");
    assert_eq!(attrs["RESOLUTION"], "320x180");

    let (ok, stderr) = finish(publisher).await;
    assert!(ok, "publisher failed: {stderr}");
    let (_dir, file) = app.download_ended_rendition(&path, "hevc.mp4").await;
    let probed = probe(&file);
    assert_eq!((probed.width, probed.height), (320, 180));
    assert!(probed.codecs.iter().any(|c| c == "hevc"), "{:?}", probed.codecs);
    // 4 s at 30 fps; the first GOP may start after the first frames were sent.
    assert!(probed.video_frames >= 90, "{} frames", probed.video_frames);
    assert!(probed.errors.is_empty(), "decode errors: {}", probed.errors);
    assert_eq!(sample_entry(&file), "hvc1");
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hevc_publish_feeds_an_h264_ladder() {
    if !have_ffmpeg() || ffmpeg9().is_none() {
        return;
    }
    let app = TestAppliance::start().await;
    let mut events = app.appliance.live.registry().subscribe();
    let channel =
        app.add_ladder_channel("hevc-abr", LatencyMode::UltraLow, &[(144, 200)], false, EncoderPolicy::Software);
    let publisher = hevc_publish(4.0).start(&app.rtmp_url(&channel.stream_key));
    let path = app.media_playlist_path("hevc-abr", None).await;
    let (_, master) = app.get_text("/hls/hevc-abr/index.m3u8").await;
    let attrs = first_variant(&master);
    assert!(attrs["CODECS"].starts_with("avc1."), "{master}");
    assert_eq!(attrs["RESOLUTION"], "256x144");

    let (ok, stderr) = finish(publisher).await;
    assert!(ok, "publisher failed: {stderr}");
    let (_dir, file) = app.download_ended_rendition(&path, "rung.mp4").await;
    let probed = probe(&file);
    assert_eq!((probed.width, probed.height), (256, 144));
    assert!(probed.codecs.iter().any(|c| c == "h264"), "{:?}", probed.codecs);
    assert!(probed.video_frames >= 90, "{} frames", probed.video_frames);
    assert!(probed.errors.is_empty(), "decode errors: {}", probed.errors);
    // The session ended as the publisher left, not as a processing failure.
    while let Ok(event) = events.try_recv() {
        assert!(!matches!(event.event, SessionEvent::ProcessingFailed { .. }), "the ladder failed: {event:?}");
    }
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn av1_over_enhanced_rtmp_is_packaged_as_av01_and_plays_in_hls_js() {
    if !have_ffmpeg() || ffmpeg9().is_none() {
        return;
    }
    let Some(player) = support::browser_driver("player", &[]) else { return };
    let app = TestAppliance::start().await;
    let channel = app.add_channel("av1-in", LatencyMode::UltraLow);
    let publish = Publish { seconds: 30.0, size: "320x180", video_codec: PublishVideo::Av1, ..Publish::default() };
    let publisher = publish.start(&app.rtmp_url(&channel.stream_key));
    let path = app.media_playlist_path("av1-in", None).await;
    let (_, master) = app.get_text("/hls/av1-in/index.m3u8").await;
    let attrs = first_variant(&master);
    assert!(attrs["CODECS"].starts_with("av01.0."), "{master}");
    assert!(attrs["CODECS"].ends_with(".08,mp4a.40.2"), "{master}");
    assert_eq!(attrs["RESOLUTION"], "320x180");

    // hls.js in Chromium (which decodes AV1) plays it.
    let seconds = 8;
    let args = [app.url("").as_str().to_owned(), "av1-in".to_owned(), seconds.to_string(), "hlsjs".to_owned()];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let limit = support::STEP_TIMEOUT * 2 + std::time::Duration::from_secs(seconds);
    let report = support::run_browser_script(&player.join("play.mjs"), &args, limit).await;
    let p = &report["players"][0];
    assert_eq!(p["player_errors"], serde_json::json!([]), "{p}");
    assert_eq!(p["http_errors"], serde_json::json!([]), "{p}");
    assert_eq!(p["video_size"], serde_json::json!([320, 180]), "{p}");
    let (played, wall) = (p["played_seconds"].as_f64().unwrap(), p["wall_seconds"].as_f64().unwrap());
    assert!(played >= 0.75 * wall, "playback advanced {played:.1} s in {wall:.1} s: {p}");

    // What was packaged decodes without an error.
    drop(publisher);
    let (_dir, file) = app.download_ended_rendition(&path, "av1.mp4").await;
    let probed = probe(&file);
    assert!(probed.codecs.iter().any(|c| c == "av1"), "{:?}", probed.codecs);
    assert_eq!((probed.width, probed.height), (320, 180));
    assert!(probed.errors.is_empty(), "decode errors: {}", probed.errors);
    assert_eq!(sample_entry(&file), "av01");
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_av1_publish_feeds_an_h264_ladder() {
    if !have_ffmpeg() || ffmpeg9().is_none() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel =
        app.add_ladder_channel("av1-abr", LatencyMode::UltraLow, &[(144, 200)], false, EncoderPolicy::Software);
    let publish = Publish { seconds: 4.0, size: "320x180", video_codec: PublishVideo::Av1, ..Publish::default() };
    let publisher = publish.start(&app.rtmp_url(&channel.stream_key));
    let path = app.media_playlist_path("av1-abr", None).await;
    let (ok, stderr) = finish(publisher).await;
    assert!(ok, "publisher failed: {stderr}");
    let (_dir, file) = app.download_ended_rendition(&path, "rung.mp4").await;
    let probed = probe(&file);
    assert_eq!((probed.width, probed.height), (256, 144));
    assert!(probed.codecs.iter().any(|c| c == "h264"), "{:?}", probed.codecs);
    assert!(probed.video_frames >= 90, "{} frames", probed.video_frames);
    assert!(probed.errors.is_empty(), "decode errors: {}", probed.errors);
    app.appliance.shutdown().await;
}

/// The video sample entry's FourCC in an MP4 (`hvc1`, `av01`), as ffprobe reads it.
fn sample_entry(file: &std::path::Path) -> String {
    let args = ["-select_streams", "v:0", "-show_entries", "stream=codec_tag_string", "-of", "csv=p=0"];
    support::ffprobe(file, &args).trim().to_owned()
}
