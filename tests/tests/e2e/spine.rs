//! The spine end to end: the real `ffmpeg` program publishes RTMP into an
//! appliance on loopback; a real HTTP client pulls LL-HLS and checks every
//! playlist rule; ffprobe decodes what was served.

use std::io::Write;
use std::time::{Duration, Instant};

use media::LatencyMode;
use support::{MediaPlaylist, Publish, TestAppliance, attributes, base, finish, have_ffmpeg, probe};
use tokio::io::AsyncWriteExt;

/// Downloads init + every complete segment (and separately init + every part) into files.
async fn download(
    app: &TestAppliance,
    path: &str,
    playlist: &MediaPlaylist,
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let base = base(path);
    let map = playlist.segments[0].map.clone().expect("EXT-X-MAP");
    let init = app.get_bytes(&format!("{base}{map}")).await;
    let segments_path = dir.join("segments.mp4");
    let parts_path = dir.join("parts.mp4");
    let mut segments = std::fs::File::create(&segments_path).unwrap();
    let mut parts = std::fs::File::create(&parts_path).unwrap();
    segments.write_all(&init).unwrap();
    parts.write_all(&init).unwrap();
    for segment in &playlist.segments {
        assert_eq!(segment.map.as_deref(), Some(map.as_str()), "one init for the whole stream");
        let uri = segment.uri.as_ref().expect("ended playlists list complete segments only");
        let bytes = app.get_bytes(&format!("{base}{uri}")).await;
        segments.write_all(&bytes).unwrap();
        let mut joined = Vec::new();
        for index in 0.. {
            let response = app.get(&format!("{base}part{}.{index}.m4s", segment.msn)).await;
            if response.status() != 200 {
                break;
            }
            joined.extend_from_slice(&response.bytes().await.unwrap());
        }
        assert_eq!(joined, bytes, "segment {} is the concatenation of its parts", segment.msn);
        parts.write_all(&joined).unwrap();
    }
    (segments_path, parts_path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_rtmp_and_serves_conformant_ll_hls() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = app.add_channel("studio", LatencyMode::UltraLow);
    let publisher = Publish { seconds: 6.0, ..Publish::default() }.start(&app.rtmp_url(&channel.stream_key));
    let started = Instant::now();

    // Multivariant playlist: codecs, resolution, bandwidth, frame rate.
    let path = app.media_playlist_path("studio", None).await;
    let first_playable = started.elapsed();
    let response = app.get("/hls/studio/index.m3u8").await;
    assert_eq!(response.headers()["content-type"], "application/vnd.apple.mpegurl");
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let text = response.text().await.unwrap();
    let inf = text.lines().find_map(|l| l.strip_prefix("#EXT-X-STREAM-INF:")).expect("a variant");
    let a = attributes(inf);
    assert_eq!(a["CODECS"], "avc1.42c01e,mp4a.40.2", "{text}");
    assert_eq!(a["RESOLUTION"], "640x360");
    assert!(a["BANDWIDTH"].parse::<u64>().unwrap() > 10_000, "{text}");
    let fps: f64 = a["FRAME-RATE"].parse().unwrap();
    assert!((fps - 30.0).abs() < 0.01, "{text}");

    // Live media playlist: every LL-HLS rule, and caching/CORS headers.
    let live = app.playlist_until(&path, |p| p.segments.len() >= 2).await;
    live.assert_ll_hls_rules();
    assert!(!live.ended);
    let response = app.get(&path).await;
    assert_eq!(response.headers()["cache-control"], "public, max-age=0, s-maxage=0");
    assert_eq!(response.headers()["access-control-allow-origin"], "*");

    // Gzip on request.
    let gz = app.http.get(app.url(&path)).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    let mut decoded = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz.bytes().await.unwrap()[..]), &mut decoded)
        .unwrap();
    assert!(decoded.starts_with("#EXTM3U"));

    // Blocking reload: ask for the part the preload hint names; it is answered once it exists.
    let now = MediaPlaylist::parse(&app.get_text(&path).await.1);
    let hint = now.preload_hint.clone().expect("preload hint");
    let (msn, part) = hint.trim_start_matches("part").trim_end_matches(".m4s").split_once('.').unwrap();
    let blocking = format!("{path}?_HLS_msn={msn}&_HLS_part={part}");
    let (status, text) = app.get_text(&blocking).await;
    assert_eq!(status, 200);
    assert!(text.contains(&format!("URI=\"{hint}\"")), "blocking response lists the awaited part {hint}:\n{text}");
    let response = app.get(&blocking).await;
    assert_eq!(response.headers()["cache-control"], "public, max-age=6", "blocking responses are cacheable per query");
    // The hinted part itself can be requested ahead of time and arrives when ready.
    let next = MediaPlaylist::parse(&app.get_text(&path).await.1).preload_hint.unwrap();
    let part_response = app.get(&format!("{}{next}", base(&path))).await;
    assert_eq!(part_response.status(), 200);
    assert_eq!(part_response.headers()["content-type"], "video/iso.segment");
    assert_eq!(part_response.headers()["cache-control"], "public, max-age=31536000, immutable");

    // Refused blocking requests.
    let live_msn = MediaPlaylist::parse(&app.get_text(&path).await.1).last_part().unwrap().0;
    for (query, want) in [
        ("_HLS_part=0".to_string(), 400),
        (format!("_HLS_msn={}", live_msn + 3), 400),
        ("_HLS_msn=abc".to_string(), 400),
        ("_HLS_msn=1&_HLS_skip=maybe".to_string(), 400),
    ] {
        let (status, body) = app.get_text(&format!("{path}?{query}")).await;
        assert_eq!(status, want, "{query}: {body}");
    }
    // Delta update is a valid playlist too.
    let (status, delta) = app.get_text(&format!("{path}?_HLS_skip=YES")).await;
    assert_eq!(status, 200);
    MediaPlaylist::parse(&delta).assert_ll_hls_rules();

    // HEAD works and carries the length.
    let head = app.http.head(app.url(&path)).send().await.unwrap();
    assert_eq!(head.status(), 200);

    // The publisher leaves: ENDLIST; then all media decodes with the exact frame count.
    let (ok, stderr) = finish(publisher).await;
    assert!(ok, "publisher failed: {stderr}");
    let ended = app.playlist_until(&path, |p| p.ended).await;
    ended.assert_ll_hls_rules();
    let dir = tempfile::tempdir().unwrap();
    let (segments, parts) = download(&app, &path, &ended, dir.path()).await;
    for file in [segments, parts] {
        let p = probe(&file);
        assert_eq!(p.errors, "", "decode errors in {file:?}");
        assert_eq!((p.width, p.height), (640, 360));
        assert_eq!(p.video_frames, 180, "6 s at 30 fps");
        // 6 s of 48 kHz AAC is 281.25 frames; the encoder's priming adds one.
        assert!((280..=283).contains(&p.audio_frames), "audio frames {}", p.audio_frames);
    }
    eprintln!("first playable multivariant after {first_playable:?}");
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_frames_come_out_with_correct_timestamps() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = app.add_channel("bframes", LatencyMode::UltraLow);
    let publish = Publish { seconds: 4.0, bframes: 2, audio: false, realtime: true, ..Publish::default() };
    let publisher = publish.start(&app.rtmp_url(&channel.stream_key));
    let path = app.media_playlist_path("bframes", None).await;
    let (ok, stderr) = finish(publisher).await;
    assert!(ok, "publisher failed: {stderr}");
    let ended = app.playlist_until(&path, |p| p.ended).await;
    ended.assert_ll_hls_rules();
    let dir = tempfile::tempdir().unwrap();
    let (segments, _) = download(&app, &path, &ended, dir.path()).await;
    let p = probe(&segments);
    assert_eq!(p.errors, "");
    assert_eq!(p.video_frames, 120);
    // Decoded in presentation order, frames are one frame apart: PTS/DTS survived the trip.
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-show_entries", "frame=pts,pict_type", "-of", "csv=p=0"])
        .arg(&segments)
        .output()
        .unwrap();
    let frames: Vec<(i64, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut fields = l.split(',');
            let pts = fields.next()?.parse().ok()?;
            Some((pts, fields.next()?.to_string()))
        })
        .collect();
    assert_eq!(frames.len(), 120);
    assert!(frames.iter().any(|(_, k)| k == "B"), "the publisher sent B-frames");
    for w in frames.windows(2) {
        let delta = w[1].0 - w[0].0;
        assert!((2900..=3100).contains(&delta), "pts step {delta} between {:?} and {:?}", w[0], w[1]);
    }
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_unknown_keys_and_a_second_publisher() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = app.add_channel("main", LatencyMode::UltraLow);
    let live = Publish { seconds: 8.0, ..Publish::default() }.start(&app.rtmp_url(&channel.stream_key));
    let path = app.media_playlist_path("main", None).await;
    let before = app.playlist_until(&path, |p| p.last_part().is_some()).await.last_part().unwrap();

    let wrong = Publish { seconds: 2.0, ..Publish::default() }.start(&app.rtmp_url("sk_not_a_real_key"));
    let (ok, stderr) = finish(wrong).await;
    assert!(!ok, "a publish with an unknown key must fail");
    assert!(!stderr.is_empty(), "ffmpeg reports the refusal");

    let second = Publish { seconds: 2.0, ..Publish::default() }.start(&app.rtmp_url(&channel.stream_key));
    let (ok, stderr) = finish(second).await;
    assert!(!ok, "a second publisher on a live channel must be refused");
    assert!(!stderr.is_empty());

    // The live publish was untouched: its playlist keeps advancing in the same session.
    let after = app.playlist_until(&path, |p| p.last_part().is_some_and(|l| l > (before.0 + 1, 0))).await;
    assert!(!after.ended);
    assert_eq!(app.media_playlist_path("main", None).await, path, "no new session was created");
    let (ok, stderr) = finish(live).await;
    assert!(ok, "live publisher failed: {stderr}");
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_leaving_ends_the_playlist_and_a_new_publish_works() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = app.add_channel("again", LatencyMode::UltraLow);
    let url = app.rtmp_url(&channel.stream_key);
    let first = Publish { seconds: 2.5, ..Publish::default() }.start(&url);
    let first_path = app.media_playlist_path("again", None).await;
    assert!(finish(first).await.0);
    app.playlist_until(&first_path, |p| p.ended).await.assert_ll_hls_rules();

    let second = Publish { seconds: 2.5, ..Publish::default() }.start(&url);
    let second_path = app.media_playlist_path("again", Some(&first_path)).await;
    assert_ne!(second_path, first_path, "each publish is a new session with its own URIs");
    let live = app.playlist_until(&second_path, |p| !p.segments.is_empty()).await;
    assert!(!live.ended);
    assert!(finish(second).await.0);
    app.playlist_until(&second_path, |p| p.ended).await;
    // The ended first session stays downloadable for a while (players finish it).
    assert!(MediaPlaylist::parse(&app.get_text(&first_path).await.1).ended);
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_rtmp_port_does_not_disturb_a_live_channel() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = app.add_channel("steady", LatencyMode::UltraLow);
    let live = Publish { seconds: 8.0, ..Publish::default() }.start(&app.rtmp_url(&channel.stream_key));
    let path = app.media_playlist_path("steady", None).await;
    let before = app.playlist_until(&path, |p| p.last_part().is_some()).await.last_part().unwrap();

    let addr = app.appliance.rtmp_addr;
    let mut attacks = Vec::new();
    for case in 0..6u8 {
        attacks.push(tokio::spawn(async move {
            let Ok(mut socket) = tokio::net::TcpStream::connect(addr).await else { return };
            let junk: Vec<u8> = match case {
                0 => (0..64 * 1024).map(|i| (i * 7 + 3) as u8).collect(),
                1 => vec![3], // half a handshake, then silence
                2 => {
                    let mut v = vec![3u8];
                    v.extend(std::iter::repeat_n(0u8, 1536 * 2));
                    v.extend([0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x14, 0, 0, 0, 0]); // a huge message header
                    v
                }
                3 => vec![0xff; 4096],
                4 => b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
                _ => {
                    let mut v = vec![3u8];
                    v.extend(std::iter::repeat_n(0xab_u8, 1536 * 2));
                    v.extend((0..20_000).map(|i| (i % 251) as u8));
                    v
                }
            };
            let _ = socket.write_all(&junk).await;
            let _ = tokio::time::timeout(Duration::from_secs(4), async {
                let mut buf = [0u8; 4096];
                loop {
                    match tokio::io::AsyncReadExt::read(&mut socket, &mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            })
            .await;
        }));
    }
    for attack in attacks {
        attack.await.unwrap();
    }
    let after = app.playlist_until(&path, |p| p.last_part().is_some_and(|l| l > (before.0 + 1, 0))).await;
    assert!(!after.ended, "the live channel kept streaming through the garbage");
    let (ok, stderr) = finish(live).await;
    assert!(ok, "the live publisher was disturbed: {stderr}");
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_only_and_audio_only_publishers_work() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let video = app.add_channel("video-only", LatencyMode::UltraLow);
    let audio = app.add_channel("audio-only", LatencyMode::UltraLow);
    let v = Publish { seconds: 3.0, audio: false, ..Publish::default() }.start(&app.rtmp_url(&video.stream_key));
    let a = Publish { seconds: 3.0, video: false, ..Publish::default() }.start(&app.rtmp_url(&audio.stream_key));
    for (name, child, codecs) in [("video-only", v, "avc1.42c01e"), ("audio-only", a, "mp4a.40.2")] {
        let path = app.media_playlist_path(name, None).await;
        let (_, master) = app.get_text(&format!("/hls/{name}/index.m3u8")).await;
        assert!(master.contains(&format!("CODECS=\"{codecs}\"")), "{name}: {master}");
        assert!(finish(child).await.0, "{name} publisher failed");
        let ended = app.playlist_until(&path, |p| p.ended).await;
        ended.assert_ll_hls_rules();
        let dir = tempfile::tempdir().unwrap();
        let (segments, _) = download(&app, &path, &ended, dir.path()).await;
        let p = probe(&segments);
        assert_eq!(p.errors, "", "{name}");
        if name == "video-only" {
            assert_eq!((p.video_frames, p.audio_frames), (90, 0));
        } else {
            assert_eq!(p.video_frames, 0);
            assert!((140..=143).contains(&p.audio_frames), "{name}: {} audio frames", p.audio_frames);
        }
    }
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_latency_mode_serves_plain_hls_segments() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = app.add_channel("relaxed", LatencyMode::Low);
    let publisher =
        Publish { seconds: 5.0, realtime: false, ..Publish::default() }.start(&app.rtmp_url(&channel.stream_key));
    let path = app.media_playlist_path("relaxed", None).await;
    assert!(finish(publisher).await.0);
    let ended = app.playlist_until(&path, |p| p.ended).await;
    let (_, text) = app.get_text(&path).await;
    assert!(!text.contains("#EXT-X-PART"), "no parts outside ultra-low mode:\n{text}");
    assert!(!text.contains("#EXT-X-PRELOAD-HINT"));
    assert_eq!(ended.target_duration, Some(2));
    let durations: Vec<f64> = ended.segments.iter().filter_map(|s| s.duration).collect();
    assert!(durations[..durations.len() - 1].iter().all(|d| (d - 2.0).abs() < 0.05), "{durations:?}");
    app.appliance.shutdown().await;
}
