//! WHIP ingest end to end: a real WebRTC publisher (FFmpeg 9's `whip`
//! muxer: ICE, DTLS-SRTP, H.264 and Opus) goes live on a channel through
//! `POST /whip/{channel}`; the channel's LL-HLS carries H.264 and AAC (Opus
//! through the audio stage) that decode without errors; a wrong key, another
//! channel's key, a second publisher and a bad offer are refused with the
//! right status; `DELETE` on the resource ends the session. The go-live
//! page in Chromium (fake camera and microphone) goes live the same way and
//! keeps the camera's resolution.

use std::time::Duration;

use media::LatencyMode;
use support::{STEP_TIMEOUT, TestAppliance, eventually, ffmpeg9, have_ffmpeg, probe};

/// POSTs `sdp` to the channel's WHIP endpoint with `key`.
async fn post_offer(app: &TestAppliance, channel: &str, key: Option<&str>, sdp: &str) -> reqwest::Response {
    let mut request = app.http.post(app.url(&format!("/whip/{channel}"))).header("content-type", "application/sdp");
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.body(sdp.to_owned()).send().await.unwrap()
}

/// Waits until `channel` has no live session (`why` says what should have ended it).
async fn no_session(app: &TestAppliance, channel: &str, why: &str) {
    eventually(STEP_TIMEOUT, || async { app.appliance.live.registry().get(channel).is_none().then_some(()) })
        .await
        .unwrap_or_else(|| panic!("{why}"));
}

/// Downloads the complete segments of `playlist` (at `path`) as one file and probes it.
async fn probe_segments(app: &TestAppliance, path: &str, playlist: &support::MediaPlaylist) -> support::Probe {
    let complete = support::MediaPlaylist {
        segments: playlist.segments.iter().filter(|s| s.uri.is_some()).cloned().collect(),
        ..playlist.clone()
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("whip.mp4");
    app.download_rendition(path, &complete, &file).await;
    probe(&file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webrtc_publisher_goes_live_over_whip_and_delete_ends_it() {
    if !have_ffmpeg() || ffmpeg9().is_none() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = app.add_channel("studio", LatencyMode::UltraLow);
    let other = app.add_channel("other", LatencyMode::UltraLow);
    let url = app.url("/whip/studio");

    // Refusals: no key, a wrong key, another channel's key, a bad offer.
    let offer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
    assert_eq!(post_offer(&app, "studio", None, offer).await.status(), 401);
    assert_eq!(post_offer(&app, "studio", Some("nope"), offer).await.status(), 401);
    let refused = post_offer(&app, "studio", Some(&other.stream_key), offer).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["content-type"], "application/problem+json");
    assert_eq!(post_offer(&app, "studio", Some(&channel.stream_key), "garbage").await.status(), 400);
    assert!(app.appliance.live.registry().get("studio").is_none(), "no session began for a refused offer");

    // A real publisher: the channel goes live with H.264 and AAC.
    let mut publisher = support::whip::whip_publish(&url, &channel.stream_key, 60.0).expect("ffmpeg9");
    let started = eventually(STEP_TIMEOUT, || async { app.appliance.live.registry().get("studio").map(|_| ()) }).await;
    if started.is_none() || tokio::time::timeout(Duration::from_secs(8), publisher.wait()).await.is_ok() {
        let mut stderr = String::new();
        use tokio::io::AsyncReadExt;
        let _ = publisher.stderr.take().unwrap().read_to_string(&mut stderr).await;
        panic!("the WHIP publisher did not go live: {stderr}");
    }
    let path = app.media_playlist_path("studio", None).await;
    let (_, master) = app.get_text("/hls/studio/index.m3u8").await;
    assert!(master.contains("avc1.42") && master.contains("mp4a.40.2"), "{master}");
    let live = app.playlist_until(&path, |p| p.segments.iter().filter(|s| s.uri.is_some()).count() >= 3).await;

    // A second publisher on the same channel is refused while the first is live.
    let second = post_offer(&app, "studio", Some(&channel.stream_key), &sample_offer()).await;
    assert_eq!(second.status(), 409, "{:?}", second.text().await);

    // What was packaged decodes: H.264 640x360 and AAC.
    let probed = probe_segments(&app, &path, &live).await;
    assert_eq!((probed.width, probed.height), (640, 360));
    assert!(probed.codecs.iter().any(|c| c == "h264") && probed.codecs.iter().any(|c| c == "aac"), "{probed:?}");
    assert!(probed.video_frames >= 60 && probed.audio_frames > 0, "{probed:?}");
    assert!(probed.errors.is_empty(), "decode errors: {}", probed.errors);

    // The publisher ends: the session ends (ENDLIST) and the channel takes a new publish.
    publisher.start_kill().unwrap();
    let _ = publisher.wait().await;
    app.playlist_until(&path, |p| p.ended).await;
    no_session(&app, "studio", "the session ended after the publisher left").await;
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_on_the_whip_resource_ends_the_session() {
    if !have_ffmpeg() || ffmpeg9().is_none() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = app.add_channel("desk", LatencyMode::UltraLow);
    // The offer a publisher would send, answered; nobody completes ICE, and DELETE ends it.
    let answer = post_offer(&app, "desk", Some(&channel.stream_key), &sample_offer()).await;
    assert_eq!(answer.status(), 201);
    assert_eq!(answer.headers()["content-type"], "application/sdp");
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/whip/desk/") && location.len() > "/whip/desk/".len() + 16, "{location}");
    let sdp = answer.text().await.unwrap();
    assert!(sdp.contains("a=ice-lite") && sdp.contains("a=candidate:") && sdp.contains("127.0.0.1"), "{sdp}");
    assert!(app.appliance.live.registry().get("desk").is_some(), "the session began with the offer");
    let deleted = app.http.delete(app.url(&location)).send().await.unwrap();
    assert_eq!(deleted.status(), 200);
    no_session(&app, "desk", "DELETE ended the session").await;
    assert_eq!(app.http.delete(app.url(&location)).send().await.unwrap().status(), 404);
    let patch = app.http.patch(app.url(&location)).body("").send().await.unwrap();
    assert_eq!(patch.status(), 405, "no trickle ICE");
    tokio::time::sleep(Duration::from_millis(10)).await;
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_goes_live_from_the_golive_page() {
    if !have_ffmpeg() {
        return;
    }
    let Some(player_dir) = support::browser_driver("player", &[]) else { return };
    let app = TestAppliance::start().await;
    let channel = app.add_channel("camera", LatencyMode::UltraLow);
    let url = app.url("");
    let args = [url.as_ref(), "camera".as_ref(), channel.stream_key.as_ref(), "14".as_ref()];
    let mut script = support::BrowserScript::start(&player_dir.join("golive.mjs"), &args);
    let live = script.next_message().await.expect("the page goes live");
    assert_eq!(live["event"], "live", "{live}");
    assert!(live["resource"].as_str().unwrap_or("").contains("/whip/camera/"), "{live}");

    // While it sends: the camera's picture is packaged at the size it was sent (the
    // page keeps the resolution), with H.264 video and the Opus sound as AAC.
    let path = app.media_playlist_path("camera", None).await;
    let (_, master) = app.get_text("/hls/camera/index.m3u8").await;
    assert!(master.contains("avc1.") && master.contains("mp4a.40.2"), "{master}");
    let playlist = app.playlist_until(&path, |p| p.segments.iter().filter(|s| s.uri.is_some()).count() >= 4).await;
    let probed = probe_segments(&app, &path, &playlist).await;
    assert_eq!((probed.width, probed.height), (1280, 720), "{probed:?}");
    assert!(probed.codecs.iter().any(|c| c == "aac") && probed.audio_frames > 0, "{probed:?}");
    assert!(probed.video_frames > 0 && probed.errors.is_empty(), "{probed:?}");

    // End on the page: DELETE on the resource ends the session.
    let ended = script.next_message().await.expect("the page reports");
    let report = script.report().await;
    assert_eq!(ended, report);
    assert_eq!(report["state"], "off-air", "{report}");
    assert_eq!(report["sending"]["video"].as_str().map(str::to_ascii_lowercase).as_deref(), Some("h264"), "{report}");
    assert_eq!(report["sending"]["audio"], "opus", "{report}");
    assert_eq!(report["sending"]["size"], "1280×720", "{report}");
    assert_eq!(report["requests"], serde_json::json!(["POST 201", "DELETE 200"]), "{report}");
    assert_eq!(report["console_errors"], serde_json::json!([]), "{report}");
    // The second page played the channel while the browser sent it.
    let player = &report["player"];
    assert!(player["played_seconds"].as_f64().unwrap_or(0.0) > 5.0, "{player}");
    assert_eq!(player["fatal_errors"], serde_json::json!([]), "{player}");
    assert_eq!(player["video_size"], serde_json::json!([1280, 720]), "{player}");
    eprintln!(
        "WHIP from Chromium: hls.js {} s behind live (p50, PDT; p95 {}), ingest to display p50 {} s, {} stalls; the page sent {}",
        player["latency_p50"],
        player["latency_p95"],
        player["ingest_to_display_p50"],
        player["stalls"],
        report["sending"]
    );
    app.playlist_until(&path, |p| p.ended).await;
    no_session(&app, "camera", "the session ended with the page's End").await;
    app.appliance.shutdown().await;
}

/// A send-only H.264 + Opus offer as a browser makes it (ICE and DTLS fields included).
fn sample_offer() -> String {
    [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "a=msid-semantic: WMS",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=ice-ufrag:8hhY",
        "a=ice-pwd:asd88fgpdd777uzjYhagZg0s",
        "a=fingerprint:sha-256 D1:2C:BE:AD:C4:F6:64:5C:25:16:11:9C:AF:E7:0F:73:79:36:4E:9C:1E:15:54:39:0C:06:8B:ED:96:86:00:39",
        "a=setup:actpass",
        "a=mid:0",
        "a=sendonly",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=ssrc:1001 cname:whiptest",
        "m=video 9 UDP/TLS/RTP/SAVPF 102",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=ice-ufrag:8hhY",
        "a=ice-pwd:asd88fgpdd777uzjYhagZg0s",
        "a=fingerprint:sha-256 D1:2C:BE:AD:C4:F6:64:5C:25:16:11:9C:AF:E7:0F:73:79:36:4E:9C:1E:15:54:39:0C:06:8B:ED:96:86:00:39",
        "a=setup:actpass",
        "a=mid:1",
        "a=sendonly",
        "a=rtcp-mux",
        "a=rtcp-rsize",
        "a=rtpmap:102 H264/90000",
        "a=rtcp-fb:102 nack",
        "a=rtcp-fb:102 nack pli",
        "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
        "a=ssrc:1002 cname:whiptest",
        "",
    ]
    .join("\r\n")
}
