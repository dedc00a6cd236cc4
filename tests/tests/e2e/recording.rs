//! Recording and catchup, end to end: the real `ffmpeg` program publishes to
//! channels with recording on; when the publish ends the session is a VOD
//! asset served from disk (`/hls/{channel}/recordings/{session}/master.m3u8`)
//! whose segments are the very bytes the live origin served, that ffprobe
//! decodes with the expected frame count and hls.js in Chromium plays to its
//! end. The appliance binary killed with SIGKILL mid-recording and restarted
//! keeps a playable recording up to the kill (minus at most one segment).
//! Retention with a tiny quota deletes the oldest unlocked recording first
//! and never a locked one. A full data disk stops the recording (not the
//! live channel) with `recording.failed`; it resumes once there is room,
//! across a discontinuity, with nothing written before damaged.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use appliance::recordings::retention::Quota;
use appliance::recordings::{Catalog, Layout, Recording};
use appliance::state::{EventType, RecordingState, Scope, Snapshot, Store};
use media::{ChannelOutput, Ladder, RenditionSpec};
use support::{MediaPlaylist, Publish, STEP_TIMEOUT, TestAppliance, eventually, finish, have_ffmpeg, probe};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Frames a second of the test publish.
const FPS: f64 = 30.0;
/// Low latency mode: 2 s segments, the most a recording can lose at its end.
const SEGMENT_SECONDS: f64 = 2.0;

/// An in-process appliance whose retention never runs by itself and keeps no share of the disk free.
async fn appliance() -> TestAppliance {
    TestAppliance::start_with(|config| {
        config.recording.keep_free_percent = 0;
        config.recording.sweep_seconds = 3600;
    })
    .await
}

use support::recorded_channel as recorded;

/// Publishes `seconds` of the test pattern to `key` and waits for the publisher to finish.
async fn publish(app: &TestAppliance, key: &str, seconds: f64) {
    let publisher = Publish { seconds, ..Publish::default() }.start(&app.rtmp_url(key));
    let (ok, stderr) = finish(publisher).await;
    assert!(ok, "publisher failed: {stderr}");
}

/// Waits until `channel` has `count` finished recordings; returns them, newest first.
async fn finished_recordings(catalog: &Catalog, channel: &str, count: usize) -> Vec<Recording> {
    eventually(STEP_TIMEOUT, || async {
        let list = catalog.list(channel).ok()?;
        (list.len() >= count && list.iter().all(|r| r.meta.state.is_finished())).then_some(list)
    })
    .await
    .unwrap_or_else(|| panic!("{channel} never had {count} finished recordings"))
}

/// The variant URIs of a multivariant playlist.
fn variant_uris(text: &str) -> Vec<String> {
    text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).map(String::from).collect()
}

/// Downloads a catchup rendition (init and every segment) into one file; returns its playlist.
async fn download_catchup(app: &TestAppliance, playlist_path: &str, file: &Path) -> MediaPlaylist {
    let response = app.get(playlist_path).await;
    assert_eq!(response.status().as_u16(), 200, "GET {playlist_path}");
    let cache = response.headers()["cache-control"].to_str().unwrap().to_string();
    assert!(cache.contains("immutable"), "a finished recording's playlist is immutable: {cache}");
    let text = response.text().await.unwrap();
    assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD\n"), "{text}");
    let playlist = MediaPlaylist::parse(&text);
    assert!(playlist.ended, "ENDLIST: {text}");
    assert!(playlist.part_target.is_none() && playlist.preload_hint.is_none(), "no LL-HLS in a VOD: {text}");
    assert!(!playlist.segments.is_empty());
    let target = playlist.target_duration.expect("EXT-X-TARGETDURATION") as f64;
    for segment in &playlist.segments {
        assert!(segment.program_date_time.is_some(), "segment {:?} without PDT", segment.uri);
        let duration = segment.duration.expect("EXTINF");
        assert!(duration.round() <= target, "EXTINF {duration} rounds above TARGETDURATION {target}");
        assert!(segment.parts.is_empty());
    }
    app.download_rendition(playlist_path, &playlist, file).await;
    playlist
}

fn expect_frames(rendition: &str, frames: u64, seconds: f64) {
    let expected = seconds * FPS;
    let slack = SEGMENT_SECONDS * FPS;
    assert!(
        (frames as f64 - expected).abs() <= slack,
        "{rendition}: {frames} frames decoded, {expected} expected (within one segment, {slack})"
    );
}

/// hls.js in Chromium plays `path` from its start to its end.
async fn hls_js_plays_to_the_end(app: &TestAppliance, path: &str, seconds: f64) {
    let Some(player) = support::browser_driver("player", &[]) else { return };
    let limit = (seconds * 3.0 + 20.0) as u64;
    let origin = app.url("");
    let args = [origin.as_str(), path, &limit.to_string()];
    let report =
        support::run_browser_script(&player.join("catchup.mjs"), &args, Duration::from_secs(limit) + STEP_TIMEOUT)
            .await;
    for errors in ["fatal_errors", "http_errors", "console_errors"] {
        assert_eq!(report[errors], serde_json::json!([]), "{errors}: {report}");
    }
    assert_eq!(report["ended"], true, "played to the end: {report}");
    assert_eq!(report["playlist_type"], "VOD", "{report}");
    let duration = report["duration"].as_f64().unwrap();
    assert!((duration - seconds).abs() <= SEGMENT_SECONDS, "duration {duration} for {seconds} s recorded: {report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passthrough_recording_is_the_packagers_segments_and_plays_as_vod() {
    if !have_ffmpeg() {
        return;
    }
    let app = appliance().await;
    let channel = app.appliance.store.create_channel(recorded("rec", ChannelOutput::Passthrough), true).unwrap();
    publish(&app, &channel.stream_key, 8.0).await;
    let catalog = app.appliance.recordings.catalog();
    let recording = finished_recordings(catalog, "rec", 1).await.remove(0);
    assert_eq!(recording.meta.state, RecordingState::Ready);
    assert_eq!(recording.rendition_names(), ["source"]);
    let session = recording.meta.session.clone();

    // `recording.ready` is in the outbox, for webhooks.
    let ready = eventually(STEP_TIMEOUT, || async {
        let events = app.appliance.store.list_events(None, 100).ok()?.items;
        events.into_iter().find(|e| e.kind == EventType::RecordingReady)
    })
    .await
    .expect("recording.ready");
    let Snapshot::Recording(notice) = &ready.snapshot else { panic!("a recording notice: {ready:?}") };
    assert_eq!((notice.session.as_str(), notice.state), (session.as_str(), RecordingState::Ready));

    let base = format!("/hls/rec/recordings/{session}");
    let (status, master) = app.get_text(&format!("{base}/master.m3u8")).await;
    assert_eq!(status, 200, "{master}");
    assert!(master.contains("RESOLUTION=640x360") && master.contains("avc1."), "{master}");
    assert_eq!(variant_uris(&master), ["source/index.m3u8"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("source.mp4");
    let playlist = download_catchup(&app, &format!("{base}/source/index.m3u8"), &file).await;
    let recorded_seconds: f64 = playlist.segments.iter().filter_map(|s| s.duration).sum();
    let probed = probe(&file);
    assert_eq!(probed.errors, "", "the catchup decodes without error");
    assert_eq!((probed.width, probed.height), (640, 360));
    assert!(probed.audio_frames > 0, "audio recorded too");
    expect_frames("source", probed.video_frames, 8.0);
    expect_frames("source (its own playlist)", probed.video_frames, recorded_seconds);

    // The same bytes as the live origin served (it keeps the ended stream a while).
    let first = playlist.segments[0].uri.clone().unwrap();
    let catchup_segment = app.get_bytes(&format!("{base}/source/{first}")).await;
    let live = app.get_bytes(&format!("/hls/rec/{session}/source/{first}")).await;
    assert_eq!(catchup_segment, live, "{first}: the recorder wrote the packager's own segment");

    // Served from disk with ranges, immutable like media.
    let ranged = app.http.get(app.url(&format!("{base}/source/{first}"))).header("Range", "bytes=0-99").send().await;
    let ranged = ranged.unwrap();
    assert_eq!(ranged.status().as_u16(), 206);
    assert!(ranged.headers()["cache-control"].to_str().unwrap().contains("immutable"));
    assert_eq!(ranged.bytes().await.unwrap(), &catchup_segment[..100]);
    let (missing, _) = app.get_text(&format!("{base}/source/seg999999.m4s")).await;
    assert_eq!(missing, 404);
    let (outside, _) = app.get_text(&format!("{base}/source/index.log")).await;
    assert_eq!(outside, 404, "only media files and playlists are served");

    hls_js_plays_to_the_end(&app, &format!("{base}/master.m3u8"), recorded_seconds).await;
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ladder_recording_has_every_rendition_with_the_expected_frames() {
    if !have_ffmpeg() {
        return;
    }
    let app = appliance().await;
    let rungs =
        [(360, 800), (240, 300)].map(|(height, bitrate_kbps)| RenditionSpec::h264(height, bitrate_kbps)).to_vec();
    let output = ChannelOutput::Ladder { ladder: Ladder { rungs, include_source: true } };
    let channel = app.appliance.store.create_channel(recorded("rec-abr", output), true).unwrap();
    publish(&app, &channel.stream_key, 8.0).await;
    let recording = finished_recordings(app.appliance.recordings.catalog(), "rec-abr", 1).await.remove(0);
    assert_eq!(recording.rendition_names(), ["360p", "240p", "source"], "every rendition, top first");
    let base = format!("/hls/rec-abr/recordings/{}", recording.meta.session);
    let (_, master) = app.get_text(&format!("{base}/master.m3u8")).await;
    assert_eq!(variant_uris(&master), ["360p/index.m3u8", "240p/index.m3u8", "source/index.m3u8"], "{master}");
    let dir = tempfile::tempdir().unwrap();
    for (rendition, height) in [("360p", 360), ("240p", 240), ("source", 360)] {
        let file = dir.path().join(format!("{rendition}.mp4"));
        download_catchup(&app, &format!("{base}/{rendition}/index.m3u8"), &file).await;
        let probed = probe(&file);
        assert_eq!(probed.errors, "", "{rendition} decodes without error");
        assert_eq!(probed.height, height, "{rendition}");
        expect_frames(rendition, probed.video_frames, 8.0);
    }
    hls_js_plays_to_the_end(&app, &format!("{base}/master.m3u8"), recording.duration_seconds()).await;
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_with_a_tiny_quota_deletes_the_oldest_unlocked_first_and_never_a_locked_one() {
    if !have_ffmpeg() {
        return;
    }
    let app = appliance().await;
    let channel = app.appliance.store.create_channel(recorded("kept", ChannelOutput::Passthrough), true).unwrap();
    let catalog = app.appliance.recordings.catalog();
    for count in 1..=3 {
        publish(&app, &channel.stream_key, 3.0).await;
        finished_recordings(catalog, "kept", count).await;
    }
    let list = catalog.list("kept").unwrap();
    let [newest, middle, oldest] = [&list[0], &list[1], &list[2]].map(|r| (r.meta.session.clone(), r.bytes));

    // Locked over the REST API, with a write token.
    let (_, token) = app.appliance.store.create_token("recordings", Scope::Write).unwrap();
    let api = |path: &str| app.url(&format!("/api/v1/channels/kept/recordings{path}"));
    let locked = app.http.put(api(&format!("/{}/lock", oldest.0))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(locked.status().as_u16(), 200);
    let body = json(locked).await;
    assert_eq!((body["locked"].clone(), body["state"].clone()), (true.into(), "ready".into()), "{body}");

    // Room for two: the oldest unlocked one goes, the locked oldest stays.
    let two = Quota { keep_free_percent: 0.0, max_bytes: Some(oldest.1 + newest.1) };
    let deleted = app.appliance.recordings.sweep_with(two).unwrap();
    assert_eq!(deleted.iter().map(|d| d.session.as_str()).collect::<Vec<_>>(), [middle.0.as_str()]);
    // Room for nothing: every unlocked one goes, never the locked one.
    let nothing = Quota { keep_free_percent: 0.0, max_bytes: Some(0) };
    let deleted = app.appliance.recordings.sweep_with(nothing).unwrap();
    assert_eq!(deleted.iter().map(|d| d.session.as_str()).collect::<Vec<_>>(), [newest.0.as_str()]);
    let left: Vec<String> = catalog.list("kept").unwrap().into_iter().map(|r| r.meta.session).collect();
    assert_eq!(left, std::slice::from_ref(&oldest.0));

    // Each deletion is in the outbox as `recording.deleted`, with its reason.
    let events = app.appliance.store.list_events(None, 500).unwrap().items;
    let deletions: Vec<(String, Option<String>)> = events
        .iter()
        .filter(|e| e.kind == EventType::RecordingDeleted)
        .filter_map(|e| match &e.snapshot {
            Snapshot::Recording(n) => Some((n.session.clone(), n.reason.clone())),
            _ => None,
        })
        .collect();
    let quota = Some("disk-quota".to_string());
    assert_eq!(deletions, [(middle.0.clone(), quota.clone()), (newest.0.clone(), quota)]);

    // Recording settings over the API: checked, then applied (from the next session).
    let channel_url = app.url("/api/v1/channels/kept");
    let bad = serde_json::json!({"recording": {"enabled": true, "retain_days": 0}});
    let refused = app.http.patch(&channel_url).bearer_auth(&token).json_body(&bad).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 400);
    assert_eq!(json(refused).await["field"], "recording.retain_days");
    let good = serde_json::json!({"recording": {"enabled": true, "renditions": "top-and-source", "retain_days": 7}});
    let patched = json(app.http.patch(&channel_url).bearer_auth(&token).json_body(&good).send().await.unwrap()).await;
    assert_eq!(patched["recording"], good["recording"], "{patched}");

    // The API lists it, refuses to delete it while locked, deletes it once unlocked.
    let listed = json(app.http.get(api("")).bearer_auth(&token).send().await.unwrap()).await;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1), "{listed}");
    assert!(listed["items"][0]["playback_url"].as_str().unwrap().ends_with("/master.m3u8"), "{listed}");
    let refused = app.http.delete(api(&format!("/{}", oldest.0))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 409);
    let unlocked = app.http.delete(api(&format!("/{}/lock", oldest.0))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(unlocked.status().as_u16(), 200);
    let gone = app.http.delete(api(&format!("/{}", oldest.0))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(gone.status().as_u16(), 204);
    // The audit log has the lock, the unlock and the deletion (the refused deletion left nothing).
    let audit = json(app.http.get(app.url("/api/v1/audit")).bearer_auth(&token).send().await.unwrap()).await;
    let target = format!("kept/{}", oldest.0);
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target"] == target.as_str())
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["recording.locked", "recording.unlocked", "recording.deleted"], "{audit}");
    let usage = json(app.http.get(app.url("/api/v1/recordings/usage")).bearer_auth(&token).send().await.unwrap()).await;
    assert_eq!((usage["recordings"].clone(), usage["recordings_bytes"].clone()), (0.into(), 0.into()), "{usage}");
    assert!(usage["disk_total_bytes"].as_u64().unwrap() > 0, "{usage}");
    app.appliance.shutdown().await;
}

/// A JSON request body (the tests' reqwest has no `json` feature).
trait JsonBody {
    fn json_body(self, body: &serde_json::Value) -> Self;
}

impl JsonBody for reqwest::RequestBuilder {
    fn json_body(self, body: &serde_json::Value) -> Self {
        self.header("Content-Type", "application/json").body(body.to_string())
    }
}

async fn json(response: reqwest::Response) -> serde_json::Value {
    serde_json::from_slice(&response.bytes().await.unwrap()).expect("a JSON body")
}

/// The appliance binary next to this test's (cargo builds it for the workspace's tests).
fn appliance_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let binary = exe.parent()?.parent()?.join("appliance");
    if binary.is_file() {
        return Some(binary);
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{} is not built", binary.display());
    eprintln!("skipped: {} is not built (cargo build -p appliance --bin appliance)", binary.display());
    None
}

/// `appliance serve` on `data` with loopback ports chosen by the OS; returns it with its RTMP and HTTP addresses.
async fn serve(binary: &Path, data: &Path) -> (Child, SocketAddr, SocketAddr) {
    let config = data.join("test.toml");
    std::fs::write(&config, "[recording]\nkeep_free_percent = 0\n").unwrap();
    let mut child = Command::new(binary)
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("APPLIANCE_DATA_DIR", data)
        .env("APPLIANCE_RTMP_LISTEN", "127.0.0.1:0")
        .env("APPLIANCE_HTTP_LISTEN", "127.0.0.1:0")
        .env("APPLIANCE_LOG_FORMAT", "text")
        .env("RUST_LOG", "info")
        .env_remove("APPLIANCE_CONFIG")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the appliance starts");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let address = |line: &str, field: &str| -> Option<SocketAddr> {
        let start = line.find(field)? + field.len();
        line[start..].split_whitespace().next()?.parse().ok()
    };
    let (mut rtmp, mut http) = (None, None);
    let found = tokio::time::timeout(STEP_TIMEOUT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            rtmp = rtmp.or_else(|| address(&line, "rtmp_addr="));
            http = http.or_else(|| address(&line, "http_addr="));
            if let (Some(rtmp), Some(http)) = (rtmp, http) {
                return Some((rtmp, http));
            }
        }
        None
    })
    .await;
    let (rtmp, http) = found.ok().flatten().expect("the appliance logs its addresses");
    // Keep reading its log, so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, rtmp, http)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_killed_mid_session_is_playable_up_to_the_kill_after_a_restart() {
    if !have_ffmpeg() {
        return;
    }
    let Some(binary) = appliance_binary() else { return };
    let data = tempfile::tempdir().unwrap();
    let key = {
        let store = Store::open(data.path()).unwrap();
        store.create_channel(recorded("crash", ChannelOutput::Passthrough), true).unwrap().stream_key
    };
    let (mut server, rtmp, http_addr) = serve(&binary, data.path()).await;
    let publisher = Publish { seconds: 60.0, ..Publish::default() }.start(&format!("rtmp://{rtmp}/live/{key}"));
    let catalog = Catalog::new(Layout::new(data.path()));
    let http = reqwest::Client::builder().timeout(STEP_TIMEOUT).build().unwrap();
    let live_msn = |session: String| {
        let http = http.clone();
        async move {
            let url = format!("http://{http_addr}/hls/crash/{session}/source/index.m3u8");
            let text = http.get(&url).send().await.ok()?.text().await.ok()?;
            let playlist = MediaPlaylist::parse(&text);
            playlist.segments.iter().rev().find(|s| s.uri.is_some()).map(|s| s.msn)
        }
    };
    // Recording for a while: at least three segments on disk.
    let session = eventually(STEP_TIMEOUT * 2, || async {
        let recording = catalog.list("crash").ok()?.into_iter().next()?;
        (recording.renditions.first()?.segments >= 3).then_some(recording.meta.session)
    })
    .await
    .expect("the recording grows on disk");
    let sealed_before_kill = live_msn(session.clone()).await.expect("the live playlist lists segments");
    server.start_kill().unwrap();
    server.wait().await.unwrap();
    drop(publisher);
    let on_disk = catalog.get("crash", &session).unwrap();
    assert_eq!(on_disk.meta.state, RecordingState::Recording, "killed: nothing closed it");

    let (mut server, _, http_addr) = serve(&binary, data.path()).await;
    let recording = catalog.get("crash", &session).unwrap();
    assert_eq!(recording.meta.state, RecordingState::Interrupted, "closed at start-up, before any publish");
    let (_, index) = catalog.rendition("crash", &session, "source").unwrap();
    let last = index.entries.last().unwrap().msn;
    assert!(
        last + 1 >= sealed_before_kill,
        "recorded up to segment {last}; the live playlist had sealed {sealed_before_kill} before the kill"
    );

    let base = format!("http://{http_addr}/hls/crash/recordings/{session}");
    let text = http.get(format!("{base}/source/index.m3u8")).send().await.unwrap().text().await.unwrap();
    let playlist = MediaPlaylist::parse(&text);
    assert!(playlist.ended && text.contains("#EXT-X-PLAYLIST-TYPE:VOD"), "{text}");
    assert_eq!(playlist.segments.len(), index.entries.len());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("interrupted.mp4");
    let mut bytes = http.get(format!("{base}/source/init0.mp4")).send().await.unwrap().bytes().await.unwrap().to_vec();
    for segment in &playlist.segments {
        let uri = segment.uri.as_ref().unwrap();
        bytes.extend_from_slice(&http.get(format!("{base}/source/{uri}")).send().await.unwrap().bytes().await.unwrap());
    }
    std::fs::write(&file, bytes).unwrap();
    let probed = probe(&file);
    assert_eq!(probed.errors, "", "the interrupted recording decodes without error");
    let seconds: f64 = playlist.segments.iter().filter_map(|s| s.duration).sum();
    expect_frames("interrupted", probed.video_frames, seconds);

    // `recording.ready` went out for it, saying it was interrupted.
    server.start_kill().unwrap();
    server.wait().await.unwrap();
    let store = Store::open(data.path()).unwrap();
    let ready: HashMap<String, Option<String>> = store
        .list_events(None, 500)
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.kind == EventType::RecordingReady)
        .filter_map(|e| match e.snapshot {
            Snapshot::Recording(n) => Some((n.session, n.reason)),
            _ => None,
        })
        .collect();
    assert_eq!(ready.get(&session), Some(&Some("interrupted".to_string())), "{ready:?}");
}

/// A tmpfs of `size` mounted on `dir` (root only), unmounted on drop.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> Option<SmallDisk> {
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .is_ok_and(|o| o.status.success());
        if !mounted {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "cannot mount a tmpfs (CI runs as root)");
            eprintln!("skipped: cannot mount a small tmpfs to fill (needs root)");
        }
        mounted.then(|| SmallDisk(dir.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_recording_not_the_channel_and_it_resumes_when_there_is_room() {
    if !have_ffmpeg() {
        return;
    }
    let mount = tempfile::tempdir().unwrap();
    let Some(_disk) = SmallDisk::mount(mount.path(), "48m") else { return };
    let data = mount.path().to_path_buf();
    let app = TestAppliance::start_with(|config| {
        config.data_dir = data.clone();
        config.recording.keep_free_percent = 0;
        config.recording.sweep_seconds = 3600;
    })
    .await;
    let channel = app.appliance.store.create_channel(recorded("full", ChannelOutput::Passthrough), true).unwrap();
    let publisher = Publish { seconds: 36.0, ..Publish::default() }.start(&app.rtmp_url(&channel.stream_key));
    let catalog = app.appliance.recordings.catalog();
    let segments =
        |session: &str| catalog.rendition("full", session, "source").map(|(_, i)| i.entries).unwrap_or_default();
    let session = eventually(STEP_TIMEOUT, || async {
        let recording = catalog.list("full").ok()?.into_iter().next()?;
        (recording.renditions.first()?.segments >= 2).then_some(recording.meta.session)
    })
    .await
    .expect("recording starts");
    let live_path = format!("/hls/full/{session}/source/index.m3u8");
    let live_msn = || async {
        let (status, text) = app.get_text(&live_path).await;
        (status == 200)
            .then(|| MediaPlaylist::parse(&text).segments.iter().rev().find_map(|s| s.uri.as_ref().map(|_| s.msn)))?
    };

    // The disk fills up: the live channel goes on, the recording does not.
    let filler = data.join("filler");
    let fill = filler.clone();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut out = std::fs::File::create(&fill).expect("the filler file");
        let block = vec![0u8; 64 * 1024];
        while out.write_all(&block).is_ok() {}
        let _ = out.sync_all();
    })
    .await
    .unwrap();
    let recorded_before = segments(&session);
    let at_fill = live_msn().await.expect("live segments");
    eventually(STEP_TIMEOUT, || async { live_msn().await.filter(|msn| *msn >= at_fill + 2) })
        .await
        .expect("the live playlist keeps advancing on a full disk");
    let while_full = segments(&session);
    assert!(
        while_full.len() <= recorded_before.len() + 1,
        "nothing recorded on a full disk (one segment may have been on its way): {} then {}",
        recorded_before.len(),
        while_full.len()
    );

    // Room again: recording resumes by itself, after a discontinuity.
    std::fs::remove_file(&filler).unwrap();
    eventually(STEP_TIMEOUT, || async {
        let entries = segments(&session);
        entries.iter().skip(while_full.len()).any(|e| e.discontinuity).then_some(())
    })
    .await
    .expect("recording resumes with a discontinuity where the gap is");
    let (ok, stderr) = finish(publisher).await;
    assert!(ok, "publisher failed: {stderr}");
    let recording = finished_recordings(catalog, "full", 1).await.remove(0);
    assert!(recording.renditions[0].discontinuities >= 1, "{:?}", recording.renditions);
    assert!(recording.meta.last_failure.as_deref().is_some_and(|f| f.contains("space")), "{:?}", recording.meta);
    let entries = segments(&session);
    assert_eq!(&entries[..recorded_before.len()], &recorded_before[..], "what was written before is untouched");

    // `recording.failed` reached the outbox once there was room to write it.
    let failed = eventually(STEP_TIMEOUT, || async {
        let events = app.appliance.store.list_events(None, 500).ok()?.items;
        events.into_iter().find(|e| e.kind == EventType::RecordingFailed)
    })
    .await
    .expect("recording.failed");
    let Snapshot::Recording(notice) = failed.snapshot else { panic!("a recording notice") };
    assert!(notice.reason.as_deref().is_some_and(|r| r.contains("space")), "{notice:?}");

    // The catchup plays across the gap: both sides decode without error.
    let base = format!("/hls/full/recordings/{session}/source/index.m3u8");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gap.mp4");
    let playlist = download_catchup(&app, &base, &file).await;
    assert!(playlist.segments.iter().skip(1).any(|s| s.discontinuity), "EXT-X-DISCONTINUITY at the gap");
    let probed = probe(&file);
    assert_eq!(probed.errors, "", "the recording decodes without error");
    app.appliance.shutdown().await;
}
