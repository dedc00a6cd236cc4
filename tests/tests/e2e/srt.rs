//! SRT ingest end to end: the real `ffmpeg` program as SRT caller (MPEG-TS)
//! into the appliance's one SRT listener; LL-HLS out, checked with ffprobe;
//! unknown keys, wrong modes, wrong passphrases and second callers refused
//! while the first keeps streaming.

use std::time::Duration;

use std::time::Instant;

use appliance::state::{ChannelPatch, NewChannel, OnAir};
use media::LatencyMode;
use serde_json::json;
use support::lossy_udp::LossyUdp;
use support::srt::{srt_url, srt_url_to};
use support::{Publish, TestAppliance, attributes, base, finish_within, have_ffmpeg, probe};

/// How long a refused caller may take to give up (ffmpeg's SRT connect timeout is 3 s).
const REFUSED_WITHIN: Duration = Duration::from_secs(20);

/// A short `ffmpeg` SRT caller to `url` fails (it was refused), for the reason `why`.
async fn assert_refused(url: &str, why: &str) {
    let caller = Publish { seconds: 4.0, size: "160x90", ..Publish::default() }.start(url);
    let (ok, _) = finish_within(caller, REFUSED_WITHIN).await;
    assert!(!ok, "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srt_publish_serves_ll_hls_with_video_and_audio() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = app.add_channel("srt-studio", LatencyMode::UltraLow);
    let url = srt_url(&app, &format!("#!::r={},m=publish", channel.stream_key), None);
    let publisher = Publish { seconds: 8.0, size: "320x180", ..Publish::default() }.start(&url);

    let path = app.media_playlist_path("srt-studio", None).await;
    let text = app.get_text("/hls/srt-studio/index.m3u8").await.1;
    let inf = text.lines().find_map(|l| l.strip_prefix("#EXT-X-STREAM-INF:")).expect("a variant");
    let a = attributes(inf);
    assert!(a["CODECS"].starts_with("avc1.") && a["CODECS"].ends_with(",mp4a.40.2"), "{text}");
    assert_eq!(a["RESOLUTION"], "320x180");

    // The SRT link's figures are part of the input's live figures.
    let link = support::eventually(Duration::from_secs(20), || async {
        let channel = app.get_json("/api/v1/channels/srt-studio").await;
        let srt = channel["live"]["inputs"][0]["srt"].clone();
        (srt["packets_received"].as_u64().unwrap_or(0) > 0).then_some(srt)
    })
    .await
    .expect("SRT link figures in the channel's live inputs");
    assert!(link["latency_ms"].as_u64().unwrap() >= 120, "{link}");
    // srt-tokio 0.4 does not measure the RTT: null until it does.
    assert!(link["rtt_ms"].is_null() || link["rtt_ms"].as_f64().is_some(), "{link}");
    assert!(link["receive_rate_bps"].as_u64().unwrap() > 10_000, "{link}");

    let live = app.playlist_until(&path, |p| p.segments.len() >= 2 && p.last_part().is_some()).await;
    live.assert_ll_hls_rules();
    assert!(live.segments.iter().any(|s| !s.parts.is_empty()), "LL-HLS parts");

    // The first complete segment decodes, video and audio.
    let segment = live.segments.iter().find(|s| s.uri.is_some()).expect("a complete segment");
    let base = base(&path);
    let init = app.get_bytes(&format!("{base}{}", segment.map.clone().expect("EXT-X-MAP"))).await;
    let media = app.get_bytes(&format!("{base}{}", segment.uri.clone().unwrap())).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("segment.mp4");
    std::fs::write(&file, [init, media].concat()).unwrap();
    let probed = probe(&file);
    assert!(probed.video_frames >= 10 && probed.audio_frames >= 10, "{probed:?}");
    assert_eq!((probed.width, probed.height), (320, 180));
    assert!(probed.errors.is_empty(), "{}", probed.errors);

    let (ok, _) = finish_within(publisher, Duration::from_secs(30)).await;
    assert!(ok, "the SRT caller streamed to its end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srt_callers_refused_before_media_while_the_first_streams() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = app.add_channel("srt-one", LatencyMode::UltraLow);
    assert_refused(&srt_url(&app, "#!::r=sk_not_a_key,m=publish", None), "an unknown key is refused").await;
    let play = format!("#!::r={},m=request", channel.stream_key);
    assert_refused(&srt_url(&app, &play, None), "a caller asking to play is refused").await;

    let first = Publish { seconds: 12.0, size: "160x90", ..Publish::default() }.start(&srt_url(
        &app,
        &format!("publish:{}", channel.stream_key),
        None,
    ));
    let path = app.media_playlist_path("srt-one", None).await;
    let before = app.playlist_until(&path, |p| !p.segments.is_empty()).await;
    let second = srt_url(&app, &format!("publish:{}", channel.stream_key), None);
    assert_refused(&second, "a second caller on the same key is refused").await;
    let last = before.segments.last().unwrap().msn;
    let after = app.playlist_until(&path, |p| p.segments.last().is_some_and(|s| s.msn >= last + 2)).await;
    assert!(!after.ended, "the first caller keeps streaming");
    let (ok, _) = finish_within(first, Duration::from_secs(40)).await;
    assert!(ok, "the first caller streamed to its end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srt_passphrase_is_required_and_checked() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = app.add_channel("srt-secret", LatencyMode::UltraLow);
    let patch = ChannelPatch { srt_passphrase: Some(Some("correct-horse-battery".into())), ..ChannelPatch::default() };
    app.appliance.store.update_channel("srt-secret", patch).expect("passphrase set");
    let streamid = format!("#!::r={},m=publish", channel.stream_key);
    for passphrase in [None, Some("wrong-horse-battery")] {
        assert_refused(&srt_url(&app, &streamid, passphrase), &format!("passphrase {passphrase:?} is refused")).await;
    }
    let good = Publish { seconds: 6.0, size: "160x90", ..Publish::default() }.start(&srt_url(
        &app,
        &streamid,
        Some("correct-horse-battery"),
    ));
    let path = app.media_playlist_path("srt-secret", None).await;
    app.playlist_until(&path, |p| !p.segments.is_empty()).await;
    let (ok, _) = finish_within(good, Duration::from_secs(30)).await;
    assert!(ok, "the caller with the passphrase streamed to its end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srt_passphrase_is_write_only_in_the_api() {
    let app = TestAppliance::start().await;
    let created = app.create_channel(json!({"name": "enc", "srt_passphrase": "0123456789abc"})).await;
    assert_eq!(created["srt_encrypted"], json!(true), "{created}");
    assert!(!created.to_string().contains("0123456789abc"), "the passphrase is never shown: {created}");
    let short = app.write("POST", "/api/v1/channels", Some(json!({"name": "short", "srt_passphrase": "123"}))).await;
    assert_eq!(short.status, 400, "{:?}", short.body);
    let cleared = app.write("PATCH", "/api/v1/channels/enc", Some(json!({"srt_passphrase": null}))).await;
    assert_eq!((cleared.status, &cleared.body["srt_encrypted"]), (200, &json!(false)), "{:?}", cleared.body);
    let stored = app.appliance.store.by_stream_key(created["stream_key"].as_str().unwrap()).unwrap().unwrap();
    assert_eq!(stored.srt_passphrase, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srt_recovers_two_percent_loss_and_keeps_playing() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = app.add_channel("srt-lossy", LatencyMode::UltraLow);
    let relay = LossyUdp::start(app.appliance.srt_addr.unwrap(), 50).await;
    let url = srt_url_to(relay.addr, &format!("publish:{}", channel.stream_key), None);
    let publisher = Publish { seconds: 10.0, size: "320x180", ..Publish::default() }.start(&url);

    let path = app.media_playlist_path("srt-lossy", None).await;
    let live = app.playlist_until(&path, |p| p.segments.iter().filter(|s| s.uri.is_some()).count() >= 4).await;
    live.assert_ll_hls_rules();
    let link = support::eventually(Duration::from_secs(20), || async {
        let channel = app.get_json("/api/v1/channels/srt-lossy").await;
        let srt = channel["live"]["inputs"][0]["srt"].clone();
        (srt["packets_retransmitted"].as_u64().unwrap_or(0) > 0).then_some(srt)
    })
    .await
    .expect("retransmissions in the SRT link figures");
    assert!(link["loss_reports"].as_u64().unwrap() > 0, "{link}");
    assert!(relay.dropped.load(std::sync::atomic::Ordering::Relaxed) > 10);

    // Every complete segment so far decodes without errors: SRT recovered the loss.
    let base = base(&path);
    let init = app.get_bytes(&format!("{base}{}", live.segments[0].map.clone().unwrap())).await;
    let mut file = init;
    for segment in live.segments.iter().filter(|s| s.uri.is_some()) {
        file.extend(app.get_bytes(&format!("{base}{}", segment.uri.clone().unwrap())).await);
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lossy.mp4"), &file).unwrap();
    let probed = probe(&dir.path().join("lossy.mp4"));
    assert!(probed.video_frames >= 60 && probed.audio_frames >= 60, "{probed:?}");
    assert!(probed.errors.is_empty(), "{}", probed.errors);
    let (ok, _) = finish_within(publisher, Duration::from_secs(40)).await;
    assert!(ok, "the SRT caller streamed to its end through the loss");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_srt_backup_takes_over_from_an_rtmp_primary() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start_with(|config| config.failover.switch_after_ms = 1000).await;
    let new = NewChannel { name: "mixed".into(), backup: true, ..NewChannel::default() };
    let record = app.appliance.store.create_channel(new, true).unwrap();
    let long = Publish { seconds: 60.0, size: "160x90", ..Publish::default() };
    let mut primary = long.start(&app.rtmp_url(&record.stream_key));
    let path = app.media_playlist_path("mixed", None).await;
    let backup_key = record.backup_stream_key.clone().unwrap();
    let mut backup = long.start(&srt_url(&app, &format!("#!::r={backup_key},m=publish"), None));
    let inputs = |app: &TestAppliance| {
        let entry = app.appliance.live.registry().get("mixed")?;
        Some(entry.inputs.figures(Instant::now()))
    };
    support::eventually(Duration::from_secs(30), || async {
        let (on_air, _, inputs) = inputs(&app)?;
        (on_air == Some(OnAir::Primary) && inputs.len() == 2 && inputs.iter().all(|i| i.units > 0)).then_some(())
    })
    .await
    .expect("the RTMP primary on air, the SRT backup connected and read");

    primary.start_kill().unwrap();
    let _ = primary.wait().await;
    support::eventually(Duration::from_secs(30), || async { (inputs(&app)?.0 == Some(OnAir::Backup)).then_some(()) })
        .await
        .expect("the SRT backup goes on air");
    let before = app.playlist_until(&path, |p| !p.segments.is_empty()).await.segments.last().unwrap().msn;
    let after = app.playlist_until(&path, |p| p.segments.last().is_some_and(|s| s.msn >= before + 2)).await;
    assert!(!after.ended, "the SRT backup keeps the channel live");
    let _ = backup.start_kill();
}
