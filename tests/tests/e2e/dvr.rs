//! The DVR window end to end: the real `ffmpeg` program publishes to an
//! ultra-low latency channel that records; `/hls/{channel}/dvr.m3u8` lists
//! the whole session while `index.m3u8` keeps its short window, the old part
//! redirected into the recording (served from disk while the session goes on),
//! delta updates (`_HLS_skip=YES`) answer `EXT-X-SKIP` with the full
//! playlist's tail, and hls.js in Chromium rewinds into the recorded part,
//! plays there and returns to the live edge.

use std::time::Duration;

use appliance::state::{NewChannel, RecordingSettings};
use media::{ChannelOutput, EncoderPolicy, LatencyMode};
use support::{MediaPlaylist, Publish, STEP_TIMEOUT, TestAppliance, eventually, have_ffmpeg};

/// How far back hls.js seeks (beyond the live window and the segments memory still holds).
const SECONDS_BACK: f64 = 75.0;

async fn text(app: &TestAppliance, path: &str) -> String {
    let response = app.get(path).await;
    assert_eq!(response.status().as_u16(), 200, "GET {path}");
    response.text().await.unwrap()
}

fn listed_seconds(playlist: &MediaPlaylist) -> f64 {
    playlist.segments.iter().filter_map(|s| s.duration).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_js_rewinds_into_the_recorded_window_and_returns_to_live() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start_with(|config| {
        config.hls.window_seconds = 12;
        config.recording.keep_free_percent = 0;
    })
    .await;
    let new = NewChannel {
        name: "dvr".into(),
        latency_mode: LatencyMode::UltraLow,
        output: ChannelOutput::Passthrough,
        encoder_policy: EncoderPolicy::Software,
        recording: RecordingSettings { enabled: true, ..RecordingSettings::default() },
        ..NewChannel::default()
    };
    let channel = app.appliance.store.create_channel(new, true).unwrap();
    assert_eq!(channel.dvr_window_seconds.0, 7200, "a channel has a 2 h DVR window unless it sets one");
    let publisher = Publish { seconds: 600.0, ..Publish::default() }.start(&app.rtmp_url(&channel.stream_key));

    let multivariant = eventually(STEP_TIMEOUT, || async {
        let response = app.get("/hls/dvr/dvr.m3u8").await;
        (response.status().as_u16() == 200).then_some(())?;
        response.text().await.ok()
    })
    .await
    .expect("the DVR multivariant playlist appears");
    let media = multivariant.lines().find(|l| l.ends_with("/source/dvr.m3u8")).expect(&multivariant).to_string();
    let path = format!("/hls/dvr/{media}");
    let session = media.split('/').next().unwrap().to_string();

    // Wait for the window to hold more than the seek goes back (bounded: the publish is real time).
    let wanted = SECONDS_BACK + 20.0;
    let full = eventually(Duration::from_secs(wanted as u64 + 60), || async {
        let playlist = MediaPlaylist::parse(&text(&app, &path).await);
        (listed_seconds(&playlist) >= wanted).then_some(playlist)
    })
    .await
    .unwrap_or_else(|| panic!("the DVR playlist never listed {wanted} s"));
    full.assert_ll_hls_rules();
    assert!(!full.ended);
    let live = MediaPlaylist::parse(&text(&app, &format!("/hls/dvr/{session}/source/index.m3u8")).await);
    assert!(listed_seconds(&live) < 30.0, "the live playlist keeps its short window: {} s", listed_seconds(&live));
    assert_eq!(full.media_sequence, 0, "the DVR playlist starts at the session's first segment");

    // The old part is the recording's files, served while the session goes on: its URIs stay
    // as listed and the origin redirects them there.
    assert_eq!(full.segments[0].uri.as_deref(), Some("seg0.m4s"));
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let url = app.url(&format!("/hls/dvr/{session}/source/seg0.m4s"));
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 301, "GET {url}");
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(location, format!("../../recordings/{session}/source/seg0.m4s"));
    let response = app.get(&format!("/hls/dvr/recordings/{session}/source/seg0.m4s")).await;
    assert_eq!(response.status().as_u16(), 200, "GET {location}");
    assert!(!response.bytes().await.unwrap().is_empty());
    // The init section is the session's only one: still in memory, served from there.
    let response = app.get(&format!("/hls/dvr/{session}/source/init0.mp4")).await;
    assert_eq!(response.status().as_u16(), 200);
    // Parts only at the live edge.
    let with_parts = full.segments.iter().filter(|s| !s.parts.is_empty()).count();
    assert!(with_parts <= 5, "{with_parts} segments list parts");

    // A delta update: EXT-X-SKIP, then the full playlist's tail.
    let (msn, part) = full.last_part().unwrap();
    let blocking = format!("{path}?_HLS_msn={msn}&_HLS_part={part}");
    let full_text = text(&app, &blocking).await;
    let delta_text = text(&app, &format!("{blocking}&_HLS_skip=YES")).await;
    let (full, delta) = (MediaPlaylist::parse(&full_text), MediaPlaylist::parse(&delta_text));
    assert!(delta.skipped > 0 && delta_text.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS="), "{delta_text}");
    assert_eq!(delta.media_sequence, full.media_sequence);
    let tail: Vec<_> = full.segments[delta.skipped as usize..].iter().map(|s| (s.msn, s.uri.clone())).collect();
    let head =
        |p: &MediaPlaylist| p.segments.iter().map(|s| (s.msn, s.uri.clone())).take(tail.len()).collect::<Vec<_>>();
    assert_eq!(head(&delta), tail, "the delta update is the full playlist's tail");
    eprintln!(
        "DVR reload with {} s listed: full {} B, with _HLS_skip=YES {} B ({} segments skipped)",
        listed_seconds(&full) as u64,
        full_text.len(),
        delta_text.len(),
        delta.skipped
    );

    // hls.js rewinds into the recorded part, plays, and returns to the live edge.
    if let Some(player) = support::browser_driver("player", &[]) {
        let origin = app.url("");
        let back = SECONDS_BACK.to_string();
        let args = [origin.as_str(), "dvr", back.as_str()];
        let report =
            support::run_browser_script(&player.join("dvr.mjs"), &args, Duration::from_secs(120) + STEP_TIMEOUT).await;
        for errors in ["fatal_errors", "http_errors", "console_errors"] {
            assert_eq!(report[errors], serde_json::json!([]), "{errors}: {report}");
        }
        assert_eq!(report["started"], true, "{report}");
        let seekable = report["seekable"].as_array().expect("a seekable range");
        let range = seekable[1].as_f64().unwrap() - seekable[0].as_f64().unwrap();
        assert!(range >= SECONDS_BACK, "hls.js can seek over {range} s: {report}");
        assert_eq!(report["played_back"], true, "played after the seek back: {report}");
        let rewound_latency = report["rewound"]["latency"].as_f64().unwrap();
        assert!(rewound_latency > SECONDS_BACK - 10.0, "it played {rewound_latency} s behind live: {report}");
        let recorded = report["from_recording"].as_array().unwrap();
        let first_back =
            report["rewound"]["urls"][0].as_str().expect("segments loaded back there").rsplit('/').next().unwrap();
        assert!(
            recorded
                .iter()
                .any(|u| u.as_str().unwrap().ends_with(&format!("/recordings/{session}/source/{first_back}"))),
            "segments back there come from the recording: {report}"
        );
        assert_eq!(report["returned"], true, "back at the live edge: {report}");
        assert!(report["back_live"]["latency"].as_f64().unwrap() < 10.0, "{report}");
        assert_eq!(report["back_live"]["playing"], true, "{report}");
    }
    drop(publisher);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dvr_window_is_a_channel_setting_with_a_url_while_it_records() {
    let app = TestAppliance::start().await;
    let created = app.create_channel(serde_json::json!({"name": "plain"})).await;
    assert_eq!(created["dvr_window_seconds"], 7200, "2 h by default: {created}");
    assert!(created.get("dvr_url").is_none(), "no DVR URL while the channel does not record: {created}");
    let body = serde_json::json!({"name": "rec", "dvr_window_seconds": 1800, "recording": {"enabled": true}});
    let created = app.create_channel(body).await;
    assert_eq!(created["dvr_window_seconds"], 1800);
    assert!(created["dvr_url"].as_str().unwrap().ends_with("/hls/rec/dvr.m3u8"), "{created}");
    let reply = app.write("PATCH", "/api/v1/channels/rec", Some(serde_json::json!({"dvr_window_seconds": 0}))).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let channel = app.get_json("/api/v1/channels/rec").await;
    assert_eq!(channel["dvr_window_seconds"], 0);
    assert!(channel.get("dvr_url").is_none(), "DVR off: {channel}");
    let reply =
        app.write("PATCH", "/api/v1/channels/rec", Some(serde_json::json!({"dvr_window_seconds": 90000}))).await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        (&reply.body["field"], &reply.body["detail"]),
        (&serde_json::json!("dvr_window_seconds"), &serde_json::json!("90000 is outside 0..=86400"))
    );
    assert_eq!(app.get_json("/api/v1/channels/rec").await["dvr_window_seconds"], 0, "a refused change changes nothing");
}
