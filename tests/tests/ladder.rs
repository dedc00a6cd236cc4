//! The ABR ladder end to end: the real `ffmpeg` program publishes 640x360 over
//! RTMP, the appliance transcodes it (libx264) into 360p/240p/144p LL-HLS, and
//! ffprobe checks each variant's size, codec, bitrate and that keyframes sit on
//! the same timestamps in every rung; hls.js in Chromium switches between them.
//! A `hardware-only` channel on a box without hardware is refused with the
//! probe's reason while another channel keeps serving.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use appliance::state::NewChannel;
use media::{ChannelOutput, EncoderPolicy, Ladder, LatencyMode, RenditionSpec, VideoCodec};
use tests::{MediaPlaylist, Publish, STEP_TIMEOUT, TestAppliance, attributes, finish, have_ffmpeg, poll};

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
    let rungs = RUNGS
        .iter()
        .map(|&(height, bitrate_kbps)| RenditionSpec { height, bitrate_kbps, codec: VideoCodec::H264, max_fps: None })
        .collect();
    let new = NewChannel {
        name: name.to_string(),
        latency_mode: LatencyMode::UltraLow,
        output: ChannelOutput::Ladder { ladder: Ladder { rungs, include_source: false } },
        encoder_policy: policy,
        ..NewChannel::default()
    };
    app.appliance.store.create_channel(new, true).expect("ladder channel created")
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

async fn playlist_until(app: &TestAppliance, path: &str, done: impl Fn(&MediaPlaylist) -> bool) -> MediaPlaylist {
    poll(STEP_TIMEOUT, || async {
        let (status, text) = app.get_text(path).await;
        let playlist = (status == 200).then(|| MediaPlaylist::parse(&text))?;
        done(&playlist).then_some(playlist)
    })
    .await
    .unwrap_or_else(|| panic!("playlist {path} never reached the expected state"))
}

/// Init + every complete segment of a rendition, concatenated into `file`.
async fn download(app: &TestAppliance, path: &str, playlist: &MediaPlaylist, file: &Path) {
    let base = &path[..path.rfind('/').unwrap() + 1];
    let mut out = std::fs::File::create(file).unwrap();
    let map = playlist.segments[0].map.clone().expect("EXT-X-MAP");
    out.write_all(&app.get_bytes(&format!("{base}{map}")).await).unwrap();
    for segment in &playlist.segments {
        assert_eq!(segment.map.as_deref(), Some(map.as_str()), "one init for the whole session");
        let uri = segment.uri.as_ref().expect("complete segment");
        out.write_all(&app.get_bytes(&format!("{base}{uri}")).await).unwrap();
    }
}

/// What ffprobe says about a rendition file: (codec, width, height, bit_rate, keyframe pts in 90 kHz ticks, frames).
fn ffprobe_video(file: &Path) -> (String, u32, u32, f64, Vec<i64>, usize) {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .arg("stream=codec_name,width,height:packet=pts,flags,size")
        .args(["-of", "json"])
        .arg(file)
        .output()
        .expect("ffprobe runs");
    assert!(out.status.success(), "ffprobe: {}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
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
        let live = playlist_until(&app, path, |p| p.segments.len() >= 2 && p.rendition_reports.len() == 2).await;
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
        let ended = playlist_until(&app, path, |p| p.ended).await;
        durations
            .push(ended.segments.iter().map(|s| (s.duration.unwrap() * 1000.0).round() as i64).collect::<Vec<_>>());
        let file = dir.path().join(format!("{height}p.mp4"));
        download(&app, path, &ended, &file).await;
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
    let before = playlist_until(&app, &path, |p| p.last_part().is_some()).await.last_part().unwrap();

    let refused = Publish { seconds: 2.0, ..Publish::default() }.start(&app.rtmp_url(&hw.stream_key));
    let (ok, stderr) = finish(refused).await;
    assert!(!ok, "a hardware-only ladder without hardware must be refused");
    assert!(!stderr.is_empty(), "ffmpeg reports the refusal");

    // The session failed with the probe's reason, word for word.
    let want = format!("hardware-only: no hardware encoder on this box ({})", report.unavailable_reasons().join("; "));
    let sessions = poll(STEP_TIMEOUT, || async {
        let page = app.appliance.store.list_sessions("gpu-only", None, 10).ok()?;
        page.items.first().and_then(|s| s.error.clone()).map(|e| (e, page.items.len()))
    })
    .await
    .expect("the refused session is recorded with its error");
    assert_eq!(sessions.0, want);
    assert!(want.contains("libcuda.so.1") || want.contains("nvenc"), "{want}");
    assert_eq!(app.get_text("/hls/gpu-only/index.m3u8").await.0, 404, "nothing is served for the refused channel");

    // The other channel kept serving, in the same session.
    let after = playlist_until(&app, &path, |p| p.last_part().is_some_and(|l| l > (before.0 + 1, 0))).await;
    assert!(!after.ended);
    let (ok, stderr) = finish(live).await;
    assert!(ok, "the other channel's publisher failed: {stderr}");
    app.appliance.shutdown().await;
}

fn player_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("player")
}

fn have_player() -> bool {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let ok = Path::new(&chromium).exists() && player_dir().join("node_modules/playwright-core").is_dir();
    if !ok {
        eprintln!("skipped: Chromium or tests/player/node_modules is missing (scripts/test.sh installs both)");
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_js_plays_the_ladder_and_switches_levels_without_errors() {
    const WATCH_SECONDS: u64 = 12;
    if !have_ffmpeg() || !have_player() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = ladder_channel(&app, "abr-player", EncoderPolicy::Software);
    let publisher = Publish { seconds: (WATCH_SECONDS + 16) as f64, ..Publish::default() }
        .start(&app.rtmp_url(&channel.stream_key));
    app.media_playlist_path("abr-player", None).await;
    let run = tokio::process::Command::new("node")
        .arg(player_dir().join("player.mjs"))
        .arg(app.url("/?channel=abr-player"))
        .arg(WATCH_SECONDS.to_string())
        .arg("")
        .arg("switch-levels")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(STEP_TIMEOUT + Duration::from_secs(WATCH_SECONDS), run)
        .await
        .expect("player finishes in time")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "player failed: {}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("player report");
    eprintln!("player report: {report}");
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
    let rung = RenditionSpec { height: 144, bitrate_kbps: 200, codec: VideoCodec::Hevc, max_fps: None };
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
    let ended = playlist_until(&app, &path, |p| p.ended).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hevc.mp4");
    download(&app, &path, &ended, &file).await;
    let (codec, w, h, _, keys, frames) = ffprobe_video(&file);
    assert_eq!((codec.as_str(), w, h), ("hevc", 256, 144));
    assert!(frames > 60 && keys.len() >= 2, "{frames} frames, keyframes {keys:?}");
    let tag = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "stream=codec_tag_string", "-of", "csv=p=0"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&tag.stdout).trim(), "hvc1");
    let decode = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&file)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(decode.stderr.is_empty(), "decode errors: {}", String::from_utf8_lossy(&decode.stderr));
    app.appliance.shutdown().await;
}
