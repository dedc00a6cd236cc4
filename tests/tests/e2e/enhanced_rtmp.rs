//! Enhanced RTMP HEVC end to end: a real FFmpeg (the static 9.x build; Debian
//! 12's 5.1 cannot send it) publishes x265 in FLV with the `hvc1` FourCC
//! ExVideoTagHeader. A pass-through channel packages it as `hvc1` CMAF that
//! decodes without errors; a ladder channel decodes it and serves H.264 rungs,
//! so players without HEVC play the same publish.

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
    let tag = support::ffprobe(
        &file,
        &["-select_streams", "v:0", "-show_entries", "stream=codec_tag_string", "-of", "csv=p=0"],
    );
    assert_eq!(tag.trim(), "hvc1");
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
