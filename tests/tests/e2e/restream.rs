//! Restreaming end to end: a channel with two destinations added through the
//! REST API, one a second appliance (its RTMP ingest), the other the real
//! `ffmpeg` program listening for an RTMP publish that only comes up after
//! the session started. The real `ffmpeg` publisher feeds the first
//! appliance; what arrives at each destination is decoded with ffprobe, the
//! destinations' keys never appear in the API or the events, and the late
//! destination is retried until it takes the stream.

use std::path::Path;
use std::time::Duration;

use appliance::state::Scope;
use media::LatencyMode;
use serde_json::{Value, json};
use support::{Publish, STEP_TIMEOUT, TestAppliance, eventually, have_ffmpeg, probe};

/// A free loopback port for the late listener (bound, read, released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn api(
    app: &TestAppliance,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app.http.request(method, app.url(&format!("/api/v1{path}"))).bearer_auth(token);
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body.to_string());
    }
    let response = request.send().await.expect("API answers");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// The destination's live connection figures, as the API lists them.
async fn link(app: &TestAppliance, token: &str, id: &str) -> Option<Value> {
    let (status, list) = api(app, token, reqwest::Method::GET, "/channels/show/restreams", None).await;
    assert_eq!(status, 200, "{list}");
    list.as_array()?.iter().find(|d| d["id"] == id).map(|d| d["link"].clone()).filter(|l| !l.is_null())
}

/// (dts in seconds) of every video packet of `file`, in file order.
fn video_dts(file: &Path) -> Vec<f64> {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=dts_time", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.trim().trim_end_matches(',').parse().ok()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_channel_is_restreamed_to_another_appliance_and_to_a_destination_that_comes_up_late() {
    if !have_ffmpeg() {
        return;
    }
    let origin = TestAppliance::start().await;
    let mirror = TestAppliance::start().await;
    origin.add_channel("show", LatencyMode::Low);
    let mirrored = mirror.add_channel("mirror", LatencyMode::Low);
    let (_, token) = origin.appliance.store.create_token("restream-test", Scope::Write).expect("token");
    let (_, read_token) = origin.appliance.store.create_token("restream-read", Scope::Read).expect("token");

    let to_mirror = json!({
        "url": format!("rtmp://{}/live", mirror.appliance.rtmp_addr),
        "key": mirrored.stream_key,
        "description": "the second appliance",
    });
    let (status, created) =
        api(&origin, &token, reqwest::Method::POST, "/channels/show/restreams", Some(to_mirror)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["key_set"], true);
    assert_eq!(created["rendition"], "source");
    assert!(!created.to_string().contains(&mirrored.stream_key), "the key is write-only: {created}");
    let mirror_id = created["id"].as_str().unwrap().to_string();

    let late_port = free_port();
    let late = json!({ "url": format!("rtmp://127.0.0.1:{late_port}/live"), "key": "late-key-1234" });
    let (status, created) = api(&origin, &token, reqwest::Method::POST, "/channels/show/restreams", Some(late)).await;
    assert_eq!(status, 201, "{created}");
    let late_id = created["id"].as_str().unwrap().to_string();

    // Bad destinations are refused with a clear error, read tokens cannot add any.
    let bad = json!({ "url": "http://example.com/live" });
    let (status, problem) = api(&origin, &token, reqwest::Method::POST, "/channels/show/restreams", Some(bad)).await;
    assert_eq!(status, 400, "{problem}");
    let refused = json!({ "url": "rtmp://example.com/live" });
    let (status, _) = api(&origin, &read_token, reqwest::Method::POST, "/channels/show/restreams", Some(refused)).await;
    assert_eq!(status, 403);

    let key = origin.appliance.store.get("show").unwrap().unwrap().stream_key;
    let publisher = Publish { seconds: 40.0, ..Publish::default() }.start(&origin.rtmp_url(&key));

    // The second appliance gets the show as a publish of its own channel, and packages it.
    let path = mirror.media_playlist_path("mirror", None).await;
    let playlist = mirror.playlist_until(&path, |p| p.segments.iter().filter(|s| s.uri.is_some()).count() >= 3).await;
    let dir = tempfile::tempdir().unwrap();
    let mirrored_file = dir.path().join("mirror.mp4");
    let complete = support::MediaPlaylist {
        segments: playlist.segments.iter().filter(|s| s.uri.is_some()).cloned().collect(),
        ..playlist.clone()
    };
    mirror.download_rendition(&path, &complete, &mirrored_file).await;
    let probed = probe(&mirrored_file);
    assert_eq!((probed.width, probed.height), (640, 360), "{probed:?}");
    assert!(probed.codecs.contains(&"h264".to_string()) && probed.codecs.contains(&"aac".to_string()), "{probed:?}");
    assert!(probed.video_frames >= 60, "{probed:?}");
    assert!(probed.errors.trim().is_empty(), "the restream decodes cleanly: {}", probed.errors);

    let live = eventually(STEP_TIMEOUT, || async {
        link(&origin, &read_token, &mirror_id).await.filter(|l| l["state"] == "live" && l["bytes"].as_u64() > Some(0))
    })
    .await
    .expect("the mirror destination is live with bytes sent");
    assert_eq!(live["attempts"], 1, "{live}");

    // The late destination is refused (nobody listens) and retried with its error shown.
    let retrying = eventually(STEP_TIMEOUT, || async {
        link(&origin, &read_token, &late_id).await.filter(|l| l["state"] == "retrying")
    })
    .await
    .expect("the late destination is retried");
    assert!(retrying["last_error"].as_str().is_some_and(|e| !e.is_empty()), "{retrying}");

    // Now it comes up: the real ffmpeg program takes an RTMP publish and records 5 s of it.
    let received = dir.path().join("late.flv");
    let listener = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-listen", "1", "-i"])
        .arg(format!("rtmp://127.0.0.1:{late_port}/live/late-key-1234"))
        .args(["-c", "copy", "-t", "5", "-f", "flv", "-y"])
        .arg(&received)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), listener)
        .await
        .expect("the late destination gets the stream within the backoff")
        .expect("ffmpeg runs");
    assert!(output.status.success(), "listener: {}", String::from_utf8_lossy(&output.stderr));
    let probed = probe(&received);
    assert_eq!((probed.width, probed.height), (640, 360), "{probed:?}");
    assert!(probed.codecs.contains(&"aac".to_string()), "audio travels too: {probed:?}");
    assert!(probed.video_frames >= 100, "about 5 s of 30 fps: {probed:?}");
    let dts = video_dts(&received);
    assert!(dts.first().is_some_and(|first| *first < 1.0), "timestamps start near zero: {:?}", dts.first());
    assert!(dts.windows(2).all(|w| w[1] > w[0]), "video timestamps never go backwards");

    // Events: both destinations connected, the late one failed first; no key anywhere.
    let events = eventually(STEP_TIMEOUT, || async {
        let (_, page) = api(&origin, &read_token, reqwest::Method::GET, "/events?limit=200", None).await;
        let items = page["items"].as_array()?.clone();
        let of = |kind: &str, id: &str| items.iter().any(|e| e["type"] == kind && e["data"]["destination"] == id);
        (of("restream.connected", &mirror_id) && of("restream.failed", &late_id) && of("restream.connected", &late_id))
            .then_some(items)
    })
    .await
    .expect("restream.connected and restream.failed events");
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains(&mirrored.stream_key) && !text.contains("late-key-1234"), "no destination key in events");

    drop(publisher);
}
