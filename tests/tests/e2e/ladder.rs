//! The ABR ladder end to end: the real `ffmpeg` program publishes 640x360 over
//! RTMP, the appliance transcodes it (libx264) into 360p/240p/144p LL-HLS, and
//! ffprobe checks each variant's size, codec, bitrate and that keyframes sit on
//! the same timestamps in every rung; hls.js in Chromium switches between them.
//! A `hardware-only` channel on a box without hardware is refused with the
//! probe's reason while another channel keeps serving. An encoder failure
//! injected mid-session moves the ladder: every rung gets a discontinuity and
//! goes on, with no ENDLIST until the publisher leaves. A ladder that
//! includes the source lists and plays it beside the rungs.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use accel::pipeline::Fault;
use appliance::live::events::{LiveEvent, SessionEvent};
use appliance::state::NewChannel;
use appliance::state::lifecycle::{EndReason, SessionState};
use media::{ChannelOutput, EncoderPolicy, Ladder, LatencyMode, RenditionSpec, VideoCodec};
use support::{
    MediaPlaylist, Publish, STEP_TIMEOUT, TestAppliance, attributes, eventually, finish, have_ffmpeg, probe,
};
use tokio::io::AsyncBufReadExt;

/// The ladder under test: (height, kbit/s).
const RUNGS: [(u32, u32); 3] = [(360, 800), (240, 400), (144, 200)];

/// Width of a rung of a 640x360 source: the aspect ratio kept, even.
fn width_of(height: u32) -> u32 {
    match height {
        360 => 640,
        240 => 426,
        144 => 256,
        other => panic!("no rung of {other} lines"),
    }
}

fn ladder_channel(app: &TestAppliance, name: &str, policy: EncoderPolicy) -> appliance::state::Channel {
    ladder_channel_of(app, name, &RUNGS, false, policy)
}

/// A ladder channel of H.264 `rungs` (height, kbit/s), with the source when `include_source`.
fn ladder_channel_of(
    app: &TestAppliance,
    name: &str,
    rungs: &[(u32, u32)],
    include_source: bool,
    policy: EncoderPolicy,
) -> appliance::state::Channel {
    app.add_ladder_channel(name, LatencyMode::UltraLow, rungs, include_source, policy)
}

/// The variants of a multivariant playlist: attributes and URI.
fn variants(text: &str) -> Vec<(HashMap<String, String>, String)> {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let attrs = l.strip_prefix("#EXT-X-STREAM-INF:")?;
            Some((attributes(attrs), lines.get(i + 1)?.to_string()))
        })
        .collect()
}

/// What ffprobe says about a rendition file: (codec, width, height, bit_rate, keyframe pts in 90 kHz ticks, frames).
fn ffprobe_video(file: &Path) -> (String, u32, u32, f64, Vec<i64>, usize) {
    let json = support::ffprobe_json(
        file,
        "stream=codec_name,width,height:packet=pts,flags,size",
        &["-select_streams", "v:0"],
    );
    let stream = &json["streams"][0];
    let packets = json["packets"].as_array().expect("packets");
    let pts: Vec<i64> = packets.iter().map(|p| p["pts"].as_i64().unwrap()).collect();
    let keys: Vec<i64> = packets
        .iter()
        .filter(|p| p["flags"].as_str().is_some_and(|f| f.starts_with('K')))
        .map(|p| p["pts"].as_i64().unwrap())
        .collect();
    let bytes: u64 = packets.iter().map(|p| p["size"].as_str().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)).sum();
    let seconds = (pts.iter().max().unwrap() - pts.iter().min().unwrap()) as f64 / 90_000.0 + 1.0 / 30.0;
    (
        stream["codec_name"].as_str().unwrap_or("?").to_string(),
        stream["width"].as_u64().unwrap_or(0) as u32,
        stream["height"].as_u64().unwrap_or(0) as u32,
        bytes as f64 * 8.0 / seconds,
        keys,
        packets.len(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_rung_ladder_as_ll_hls_with_aligned_keyframes() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = ladder_channel(&app, "abr", EncoderPolicy::Software);
    let publisher = Publish { seconds: 7.0, ..Publish::default() }.start(&app.rtmp_url(&channel.stream_key));
    app.media_playlist_path("abr", None).await;

    // The multivariant playlist lists every rung with its attributes.
    let (status, master) = app.get_text("/hls/abr/index.m3u8").await;
    assert_eq!(status, 200);
    let listed = variants(&master);
    assert_eq!(listed.len(), 3, "{master}");
    for ((attrs, uri), (height, kbps)) in listed.iter().zip(RUNGS) {
        assert!(uri.ends_with(&format!("/{height}p/index.m3u8")), "{uri}");
        let width = width_of(height);
        assert_eq!(attrs["RESOLUTION"], format!("{width}x{height}"), "{master}");
        let codecs = &attrs["CODECS"];
        assert!(codecs.starts_with("avc1.") && codecs.ends_with(",mp4a.40.2"), "{codecs}");
        let bandwidth: u64 = attrs["BANDWIDTH"].parse().unwrap();
        assert!(bandwidth >= kbps as u64 * 1000, "BANDWIDTH {bandwidth} below the {kbps} kbit/s rung: {master}");
        assert!(
            bandwidth <= (kbps as u64 * 1000 + 96_000) * 3,
            "BANDWIDTH {bandwidth} far above {kbps} kbit/s: {master}"
        );
        assert!((attrs["FRAME-RATE"].parse::<f64>().unwrap() - 30.0).abs() < 0.01, "{master}");
    }

    // Live media playlists: LL-HLS rules, and reports for both siblings.
    let paths: Vec<String> = listed.iter().map(|(_, uri)| format!("/hls/abr/{uri}")).collect();
    for path in &paths {
        let live = app.playlist_until(path, |p| p.segments.len() >= 2 && p.rendition_reports.len() == 2).await;
        live.assert_ll_hls_rules();
        for report in &live.rendition_reports {
            let a = attributes(report);
            assert!(
                a["URI"].starts_with("../") && a.contains_key("LAST-MSN") && a.contains_key("LAST-PART"),
                "{report}"
            );
        }
    }

    let (ok, stderr) = finish(publisher).await;
    assert!(ok, "publisher failed: {stderr}");
    let dir = tempfile::tempdir().unwrap();
    let mut keyframes = BTreeMap::new();
    let mut durations = Vec::new();
    for (path, (height, kbps)) in paths.iter().zip(RUNGS) {
        let ended = app.playlist_until(path, |p| p.ended).await;
        durations
            .push(ended.segments.iter().map(|s| (s.duration.unwrap() * 1000.0).round() as i64).collect::<Vec<_>>());
        let file = dir.path().join(format!("{height}p.mp4"));
        app.download_rendition(path, &ended, &file).await;
        let (codec, w, h, bps, keys, frames) = ffprobe_video(&file);
        assert_eq!(codec, "h264");
        assert_eq!((w, h), (width_of(height), height));
        let target = kbps as f64 * 1000.0;
        assert!(bps > 0.4 * target && bps < 1.6 * target, "{height}p: {bps:.0} bit/s for a {target} bit/s rung");
        assert!(frames > 150, "{height}p: {frames} frames of a 7 s publish");
        assert!(keys.len() >= 5, "{height}p: keyframes {keys:?}");
        keyframes.insert(height, keys);
    }
    let first = keyframes.values().next().unwrap().clone();
    for (height, keys) in &keyframes {
        assert_eq!(keys, &first, "{height}p keyframes differ from 360p's");
    }
    // Keyframes one second apart: every rung is cut into the same segments.
    for pair in first.windows(2) {
        let gap = pair[1] - pair[0];
        assert!((85_000..=95_000).contains(&gap), "keyframes {gap} ticks apart: {first:?}");
    }
    assert!(durations.iter().all(|d| *d == durations[0]), "segment durations differ: {durations:?}");
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hardware_only_without_hardware_is_refused_with_the_probe_reason() {
    if !have_ffmpeg() {
        return;
    }
    let report = tokio::task::spawn_blocking(accel::probe::probe).await.unwrap();
    if report.backends.iter().any(|b| b.backend.is_hardware() && b.is_available()) {
        eprintln!("skipped: this box has a hardware encoder, so hardware-only is not refused here");
        return;
    }
    let app = TestAppliance::start().await;
    let plain = app.add_channel("plain", LatencyMode::UltraLow);
    let hw = ladder_channel(&app, "gpu-only", EncoderPolicy::HardwareOnly);
    let live = Publish { seconds: 8.0, ..Publish::default() }.start(&app.rtmp_url(&plain.stream_key));
    let path = app.media_playlist_path("plain", None).await;
    let before = app.playlist_until(&path, |p| p.last_part().is_some()).await.last_part().unwrap();

    let refused = Publish { seconds: 2.0, ..Publish::default() }.start(&app.rtmp_url(&hw.stream_key));
    let (ok, stderr) = finish(refused).await;
    assert!(!ok, "a hardware-only ladder without hardware must be refused");
    assert!(!stderr.is_empty(), "ffmpeg reports the refusal");

    // The session failed with the probe's reason, word for word.
    let want = format!("hardware-only: no hardware encoder on this box ({})", report.unavailable_reasons().join("; "));
    let sessions = eventually(STEP_TIMEOUT, || async {
        let page = app.appliance.store.list_sessions("gpu-only", None, 10).ok()?;
        page.items.first().and_then(|s| s.error.clone()).map(|e| (e, page.items.len()))
    })
    .await
    .expect("the refused session is recorded with its error");
    assert_eq!(sessions.0, want);
    assert!(want.contains("libcuda.so.1") || want.contains("nvenc"), "{want}");
    assert_eq!(app.get_text("/hls/gpu-only/index.m3u8").await.0, 404, "nothing is served for the refused channel");

    // The other channel kept serving, in the same session.
    let after = app.playlist_until(&path, |p| p.last_part().is_some_and(|l| l > (before.0 + 1, 0))).await;
    assert!(!after.ended);
    let (ok, stderr) = finish(live).await;
    assert!(ok, "the other channel's publisher failed: {stderr}");
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_js_plays_the_ladder_and_switches_levels_without_errors() {
    const WATCH_SECONDS: u64 = 12;
    if !have_ffmpeg() {
        return;
    }
    let Some(player) = support::browser_driver("player", &[]) else { return };
    let app = TestAppliance::start().await;
    let channel = ladder_channel(&app, "abr-player", EncoderPolicy::Software);
    let publisher = Publish { seconds: (WATCH_SECONDS + 16) as f64, ..Publish::default() }
        .start(&app.rtmp_url(&channel.stream_key));
    app.media_playlist_path("abr-player", None).await;
    let url = app.url("/?channel=abr-player");
    let args = [url.as_str(), &WATCH_SECONDS.to_string(), "", "switch-levels"];
    let limit = STEP_TIMEOUT + Duration::from_secs(WATCH_SECONDS);
    let report = support::run_browser_script(&player.join("player.mjs"), &args, limit).await;
    assert_eq!(report["fatal_errors"], serde_json::json!([]), "{report}");
    assert_eq!(report["console_errors"], serde_json::json!([]), "{report}");
    assert_eq!(report["levels"].as_array().map(Vec::len), Some(3), "hls.js sees the three rungs: {report}");
    let switched: Vec<i64> = report["levels_switched"].as_array().unwrap().iter().filter_map(|v| v.as_i64()).collect();
    let distinct: std::collections::BTreeSet<i64> = switched.iter().copied().collect();
    assert!(distinct.len() >= 2, "hls.js switched between levels: {report}");
    let played = report["played_seconds"].as_f64().unwrap();
    let wall = report["wall_seconds"].as_f64().unwrap();
    assert!(played >= 0.6 * wall, "playback advanced {played:.1} s in {wall:.1} s: {report}");
    drop(publisher);
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hevc_rung_is_packaged_as_hvc1() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let rung = RenditionSpec {
        height: 144,
        bitrate_kbps: 200,
        codec: VideoCodec::Hevc,
        max_fps: None,
        when: Default::default(),
    };
    let new = NewChannel {
        name: "hevc".to_string(),
        latency_mode: LatencyMode::UltraLow,
        output: ChannelOutput::Ladder { ladder: Ladder { rungs: vec![rung], include_source: false } },
        encoder_policy: EncoderPolicy::Software,
        ..NewChannel::default()
    };
    let channel = app.appliance.store.create_channel(new, true).expect("channel created");
    let publisher = Publish { seconds: 3.0, ..Publish::default() }.start(&app.rtmp_url(&channel.stream_key));
    let path = app.media_playlist_path("hevc", None).await;
    assert!(path.ends_with("/144p-hevc/index.m3u8"), "{path}");
    let (_, master) = app.get_text("/hls/hevc/index.m3u8").await;
    let (attrs, _) = variants(&master).into_iter().next().expect("a variant");
    assert!(attrs["CODECS"].starts_with("hvc1.1.6.L"), "{master}");
    assert_eq!(attrs["RESOLUTION"], "256x144");
    let (ok, stderr) = finish(publisher).await;
    assert!(ok, "publisher failed: {stderr}");
    let (_dir, file) = app.download_ended_rendition(&path, "hevc.mp4").await;
    let (codec, w, h, _, keys, frames) = ffprobe_video(&file);
    assert_eq!((codec.as_str(), w, h), ("hevc", 256, 144));
    assert!(frames > 60 && keys.len() >= 2, "{frames} frames, keyframes {keys:?}");
    let tag = support::ffprobe(
        &file,
        &["-select_streams", "v:0", "-show_entries", "stream=codec_tag_string", "-of", "csv=p=0"],
    );
    assert_eq!(tag.trim(), "hvc1");
    let decode = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&file)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(decode.stderr.is_empty(), "decode errors: {}", String::from_utf8_lossy(&decode.stderr));
    app.appliance.shutdown().await;
}

/// Complete segments listed in a playlist.
fn complete(p: &MediaPlaylist) -> usize {
    p.segments.iter().filter(|s| s.duration.is_some()).count()
}

/// ffprobe's `profile` of the first video stream.
fn ffprobe_profile(file: &Path) -> String {
    support::ffprobe(file, &["-select_streams", "v:0", "-show_entries", "stream=profile", "-of", "csv=p=0"])
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encoder_failure_moves_the_ladder_with_a_discontinuity_not_an_endlist() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = ladder_channel_of(&app, "failover", &[(240, 400), (144, 200)], false, EncoderPolicy::Software);
    let publisher = Publish { seconds: 14.0, ..Publish::default() }.start(&app.rtmp_url(&channel.stream_key));
    let first_path = app.media_playlist_path("failover", None).await;
    let (_, master) = app.get_text("/hls/failover/index.m3u8").await;
    let paths: Vec<String> = variants(&master).iter().map(|(_, uri)| format!("/hls/failover/{uri}")).collect();
    assert_eq!(paths.len(), 2, "{master}");
    for path in &paths {
        app.playlist_until(path, |p| complete(p) >= 2).await;
    }

    let mut events = app.appliance.live.registry().subscribe();
    assert!(app.appliance.live.inject_fault("failover", Fault::Encoder).await, "a ladder runs on the channel");

    // Every rung: a discontinuity, then at least two more complete segments, no ENDLIST meanwhile.
    let dir = tempfile::tempdir().unwrap();
    for (index, path) in paths.iter().enumerate() {
        let moved = app
            .playlist_until(path, |p| {
                assert!(!p.ended, "ENDLIST while the publisher is still on: {path}");
                let Some(at) = p.segments.iter().position(|s| s.discontinuity) else { return false };
                p.segments[at..].iter().filter(|s| s.duration.is_some()).count() >= 2 && at > 0
            })
            .await;
        moved.assert_ll_hls_rules();
        assert_eq!(moved.segments.iter().filter(|s| s.discontinuity).count(), 1, "one move, one discontinuity");
        let at = moved.segments.iter().position(|s| s.discontinuity).unwrap();
        let (before, after) = (&moved.segments[at - 1], &moved.segments[at]);
        assert!(after.msn == before.msn + 1, "the media sequence goes on across the move");
        let map = after.map.clone().expect("EXT-X-MAP after the discontinuity");
        // The same encoder settings give the same init; a new one would be listed with a new EXT-X-MAP.
        eprintln!("{path}: map {:?} before, {map} after the discontinuity", before.map);

        // The segments after the discontinuity decode without errors (with the init then in effect).
        let base = &path[..path.rfind('/').unwrap() + 1];
        let file = dir.path().join(format!("after-{index}.mp4"));
        let mut out = std::fs::File::create(&file).unwrap();
        out.write_all(&app.get_bytes(&format!("{base}{map}")).await).unwrap();
        for segment in moved.segments[at..].iter().filter(|s| s.duration.is_some()) {
            assert_eq!(segment.map.as_deref(), Some(map.as_str()));
            out.write_all(&app.get_bytes(&format!("{base}{}", segment.uri.as_ref().unwrap())).await).unwrap();
        }
        drop(out);
        let found = probe(&file);
        assert!(found.errors.is_empty(), "{path}: decode errors after the move: {}", found.errors);
        assert!(found.video_frames >= 50, "{path}: {found:?}");
        assert!(found.audio_frames > 0, "{path}: audio goes on after the move: {found:?}");
        let height = [240, 144][index];
        assert_eq!((found.width, found.height), (width_of(height), height), "{path}");
        let (_, _, _, _, keys, _) = ffprobe_video(&file);
        assert!(keys.len() >= 2, "{path}: keyframes {keys:?}");
    }
    // It keeps advancing, in the same session.
    let last = app.playlist_until(&paths[0], |p| !p.ended).await.last_part().unwrap();
    app.playlist_until(&paths[0], |p| p.last_part().is_some_and(|l| l > last)).await;
    assert_eq!(app.media_playlist_path("failover", None).await, first_path, "still the same session");

    // Reported: one move, from the CPU slot to the CPU slot, with the failure.
    let moves = encoder_moves(&mut events);
    assert_eq!(moves.len(), 1, "{moves:?}");
    let LiveEvent { channel, session, event: SessionEvent::EncoderMoved { from, to, error, .. } } = &moves[0] else {
        unreachable!("only moves are kept")
    };
    assert_eq!((channel.as_str(), session.as_str()), ("failover", first_path.split('/').nth(3).unwrap()));
    assert_eq!((from.as_str(), to.as_str()), ("cpu", "cpu"));
    assert!(error.contains("injected encoder failure"), "{moves:?}");

    // ENDLIST once the publisher leaves, and the session ended normally.
    let (ok, stderr) = finish(publisher).await;
    assert!(ok, "publisher failed: {stderr}");
    for path in &paths {
        app.playlist_until(path, |p| p.ended).await;
    }
    let session = eventually(STEP_TIMEOUT, || async {
        let page = app.appliance.store.list_sessions("failover", None, 10).ok()?;
        page.items.into_iter().next().filter(|s| s.ended_ms.is_some())
    })
    .await
    .expect("the session is recorded as over");
    assert_eq!(
        (session.state, session.end_reason, session.error),
        (SessionState::Ended, Some(EndReason::PublisherLeft), None)
    );
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ladder_with_the_source_lists_and_plays_it_beside_the_rungs() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = ladder_channel_of(&app, "with-source", &[(240, 400), (144, 200)], true, EncoderPolicy::Software);
    let publisher = Publish { seconds: 5.0, ..Publish::default() }.start(&app.rtmp_url(&channel.stream_key));
    app.media_playlist_path("with-source", None).await;

    // The multivariant playlist: both rungs, then the source as published.
    let (_, master) = app.get_text("/hls/with-source/index.m3u8").await;
    let listed = variants(&master);
    let names: Vec<&str> = listed.iter().map(|(_, uri)| uri.rsplit('/').nth(1).unwrap()).collect();
    assert_eq!(names, ["240p", "144p", "source"], "{master}");
    for ((attrs, _), name) in listed.iter().zip(&names) {
        let resolution = match *name {
            "240p" => "426x240",
            "144p" => "256x144",
            _ => "640x360",
        };
        assert_eq!(attrs["RESOLUTION"], resolution, "{master}");
        assert!(attrs["CODECS"].starts_with("avc1.") && attrs["CODECS"].ends_with(",mp4a.40.2"), "{master}");
        assert!((attrs["FRAME-RATE"].parse::<f64>().unwrap() - 30.0).abs() < 0.01, "{master}");
    }
    // The publisher's x264 `ultrafast` makes Constrained Baseline (avc1.42C0..); the rungs are re-encoded High (avc1.64..).
    let source_codecs = listed[2].0["CODECS"].to_ascii_lowercase();
    assert!(source_codecs.starts_with("avc1.42c0"), "the source as published: {master}");
    assert!(listed[..2].iter().all(|(a, _)| a["CODECS"].starts_with("avc1.64")), "rungs re-encoded: {master}");

    // Every media playlist reports its two siblings.
    let paths: Vec<String> = listed.iter().map(|(_, uri)| format!("/hls/with-source/{uri}")).collect();
    for path in &paths {
        let live = app.playlist_until(path, |p| p.segments.len() >= 2 && p.rendition_reports.len() == 2).await;
        live.assert_ll_hls_rules();
        for report in &live.rendition_reports {
            let uri = &attributes(report)["URI"];
            assert!(uri.starts_with("../") && !path.contains(&uri[2..]), "{path}: {report}");
        }
    }

    let (ok, stderr) = finish(publisher).await;
    assert!(ok, "publisher failed: {stderr}");
    let dir = tempfile::tempdir().unwrap();
    for (path, name) in paths.iter().zip(&names) {
        let ended = app.playlist_until(path, |p| p.ended).await;
        let file = dir.path().join(format!("{name}.mp4"));
        app.download_rendition(path, &ended, &file).await;
        let found = probe(&file);
        assert!(found.errors.is_empty(), "{name}: decode errors: {}", found.errors);
        assert_eq!(found.codecs, ["h264", "aac"], "{name}");
        assert!(found.video_frames >= 120 && found.audio_frames > 0, "{name}: {found:?}");
        let size = format!("{}x{}", found.width, found.height);
        let profile = ffprobe_profile(&file);
        if *name == "source" {
            assert_eq!((size.as_str(), profile.as_str()), ("640x360", "Constrained Baseline"), "passed through");
        } else {
            assert_eq!(profile, "High", "{name} re-encoded");
        }
    }
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_js_keeps_playing_across_a_ladder_move() {
    const WATCH_SECONDS: u64 = 10;
    if !have_ffmpeg() {
        return;
    }
    let Some(player) = support::browser_driver("player", &[]) else { return };
    let app = TestAppliance::start().await;
    let channel = ladder_channel_of(&app, "failover-player", &[(240, 400), (144, 200)], false, EncoderPolicy::Software);
    let publisher = Publish { seconds: (WATCH_SECONDS + 20) as f64, ..Publish::default() }
        .start(&app.rtmp_url(&channel.stream_key));
    app.media_playlist_path("failover-player", None).await;
    let mut player = tokio::process::Command::new("node")
        .arg(player.join("player.mjs"))
        .arg(app.url("/?channel=failover-player"))
        .arg(WATCH_SECONDS.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    // Once hls.js plays, the encoder fails under it.
    let mut lines = tokio::io::BufReader::new(player.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(STEP_TIMEOUT, lines.next_line()).await.expect("hls.js starts playing in time");
    assert_eq!(first.unwrap().as_deref(), Some(r#"{"playing":true}"#));
    let mut events = app.appliance.live.registry().subscribe();
    assert!(app.appliance.live.inject_fault("failover-player", Fault::Encoder).await);
    let report = tokio::time::timeout(STEP_TIMEOUT + Duration::from_secs(WATCH_SECONDS), lines.next_line())
        .await
        .expect("player finishes in time")
        .unwrap()
        .unwrap_or_default();
    let status = player.wait().await.unwrap();
    assert!(status.success(), "player failed: {report}");
    let report: serde_json::Value = serde_json::from_str(&report).expect("player report");
    eprintln!("player report: {report}");
    assert_eq!(encoder_moves(&mut events).len(), 1, "the ladder moved while hls.js played");
    assert_eq!(report["fatal_errors"], serde_json::json!([]), "{report}");
    assert_eq!(report["console_errors"], serde_json::json!([]), "{report}");
    let played = report["played_seconds"].as_f64().unwrap();
    let wall = report["wall_seconds"].as_f64().unwrap();
    assert!(played >= 0.6 * wall, "playback advanced {played:.1} s in {wall:.1} s across the move: {report}");
    drop(publisher);
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_60_fps_source_is_counted_at_60_fps_and_refused_when_it_does_not_fit() {
    if !have_ffmpeg() {
        return;
    }
    // A CPU budget of 5 MPix/s: a 240p rung of a nominal 30 fps source (3.8 with its decode) fits,
    // the same rung of the real 640x360 60 fps source (6.1 + 3.5 of decode) does not.
    let app = TestAppliance::start_with(|config| {
        let calibration = r#"{"devices":{"cpu":{"sessions":16,"mpix_per_sec":5.0}}}"#;
        std::fs::write(config.data_dir.join(accel::slots::CALIBRATION_FILE), calibration).unwrap();
    })
    .await;
    let channel = ladder_channel_of(&app, "sixty", &[(240, 400)], false, EncoderPolicy::Software);
    let publisher = Publish { seconds: 6.0, fps: 60, ..Publish::default() }.start(&app.rtmp_url(&channel.stream_key));
    let session = eventually(STEP_TIMEOUT, || async {
        let page = app.appliance.store.list_sessions("sixty", None, 10).ok()?;
        page.items.into_iter().next().filter(|s| s.error.is_some())
    })
    .await
    .expect("the session fails once the source's rate is known");
    assert_eq!(session.state, SessionState::Error);
    assert_eq!(
        session.error.as_deref(),
        Some(
            "the source is 640x360 at 60 fps, more than its nominal lease: \
             software: CPU budget: cpu has 5.0 of 5.0 MPix/s free, the ladder needs 9.6"
        )
    );
    let (ok, _) = finish(publisher).await;
    assert!(!ok, "the publisher is disconnected");
    let usage = app.appliance.live.transcoder().ready().await.1.usage();
    let cpu = usage.iter().find(|u| u.id == accel::DeviceId::cpu()).expect("the CPU is a slot");
    assert_eq!(cpu.used, accel::Load::default(), "the lease was given back");
    app.appliance.shutdown().await;
}

/// The ladder moves reported on `events` so far.
fn encoder_moves(events: &mut tokio::sync::broadcast::Receiver<LiveEvent>) -> Vec<LiveEvent> {
    let mut moves = Vec::new();
    while let Ok(event) = events.try_recv() {
        if matches!(event.event, SessionEvent::EncoderMoved { .. }) {
            moves.push(event);
        }
    }
    moves
}
