//! The console's day-to-day operations in Debian's headless Chromium
//! (tests/console/operations.mjs): the dashboard shows a live publish's
//! input as measured (resolution, frame rate, bitrate) and its encoder
//! (`passthrough`, then `software` for a ladder); the copy buttons put the
//! API's RTMP URL, stream key, playback URL and watch-page iframe snippet on the clipboard; an API token
//! made on the system page is shown once, works over HTTP and stops working
//! when revoked; a restream destination is added (its key never shown) and
//! removed on the channel page; a webhook is made and deleted there; the rendition switcher
//! of a 360p/240p ladder changes hls.js's level and the picture's height; an
//! encoder failure injected under the ladder shows as an alert on the
//! channel page, the dashboard and the system page's recent events.
//! Screenshots go to `target/test-artifacts/console/`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use accel::pipeline::Fault;
use appliance::state::NewChannel;
use media::{ChannelOutput, EncoderPolicy, Ladder, LatencyMode, RenditionSpec, VideoCodec};
use serde_json::{Value, json};
use support::{BrowserScript, Publish, TestAppliance, browser_driver, have_ffmpeg};

const PASSWORD: &str = "console-operations-password";
const PASSTHROUGH: &str = "ops-cam";
const LADDER: &str = "ops-ladder";

/// The number before " fps" in a console text.
fn fps_in(text: &str) -> f64 {
    let before = text.split(" fps").next().unwrap_or("");
    before.rsplit([' ', ',']).next().unwrap_or("").parse().unwrap_or_else(|_| panic!("no frame rate in {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_watches_live_figures_copies_urls_manages_tokens_and_webhooks_and_switches_renditions() {
    if !have_ffmpeg() {
        return;
    }
    let Some(console_dir) = browser_driver("console", &[]) else { return };
    let started = Instant::now();
    let app = TestAppliance::start_with_admin_password(PASSWORD).await;
    let mut keys = HashMap::new();
    keys.insert(PASSTHROUGH, app.add_channel(PASSTHROUGH, LatencyMode::UltraLow).stream_key);
    let rungs = [(360, 800), (240, 400)].map(|(height, bitrate_kbps)| RenditionSpec {
        height,
        bitrate_kbps,
        codec: VideoCodec::H264,
        max_fps: None,
        when: Default::default(),
    });
    let ladder = NewChannel {
        name: LADDER.into(),
        latency_mode: LatencyMode::UltraLow,
        output: ChannelOutput::Ladder { ladder: Ladder { rungs: rungs.to_vec(), include_source: false } },
        encoder_policy: EncoderPolicy::Software,
        ..NewChannel::default()
    };
    keys.insert(LADDER, app.appliance.store.create_channel(ladder, true).expect("ladder channel").stream_key);

    let shots = support::artifacts_dir("console");
    let url = app.url("");
    let args = [url.as_ref(), PASSWORD.as_ref(), shots.as_os_str(), PASSTHROUGH.as_ref(), LADDER.as_ref()];
    let mut script = BrowserScript::start(&console_dir.join("operations.mjs"), &args);
    let mut publishers = HashMap::new();
    let walk = async {
        while let Some(message) = script.next_message().await {
            if let Some(channel) = message["publish"].as_str() {
                let key = &keys[channel];
                publishers.insert(
                    channel.to_string(),
                    Publish { seconds: 80.0, ..Publish::default() }.start(&app.rtmp_url(key)),
                );
            }
            if let Some(channel) = message["unpublish"].as_str() {
                publishers.remove(channel); // killed on drop
            }
            if let Some(channel) = message["inject_fault"].as_str() {
                assert!(app.appliance.live.inject_fault(channel, Fault::Encoder).await, "a ladder runs on {channel}");
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(150), walk).await.expect("the console walk-through finishes in time");
    let report = script.report().await;
    eprintln!("console operations report ({:.1} s in all): {report:#}", started.elapsed().as_secs_f64());
    assert_eq!(report["error"], Value::Null, "{report:#}");

    // (a) The dashboard's live input and encoder, as the API measured them.
    let dashboard = &report["dashboard"];
    let input = dashboard["input"].as_str().unwrap();
    assert!(input.starts_with("640×360 H264, "), "{input}");
    assert!(input.ends_with("bit/s"), "{input}");
    let (shown_fps, api_fps) = (fps_in(input), report["api_live"]["fps"].as_f64().unwrap());
    assert!((27.0..=33.0).contains(&shown_fps) && (27.0..=33.0).contains(&api_fps), "{shown_fps} / {api_fps} fps");
    assert_eq!(dashboard["encoder"], "passthrough");
    assert_eq!(dashboard["audio"], "AAC 48 kHz mono");
    assert_eq!((&report["api_live"]["width"], &report["api_live"]["height"]), (&json!(640), &json!(360)));
    assert!(report["api_live"]["bitrate_bps"].as_u64().unwrap() > 50_000, "{report}");
    let page = &report["channel_page"];
    assert_eq!(page["video"], "640×360 H264");
    assert!(
        page["fps"].as_str().unwrap().ends_with(" fps") && page["bitrate"].as_str().unwrap().ends_with("bit/s"),
        "{page}"
    );
    assert_eq!(page["encoder"], "passthrough");
    assert!(page["viewers"].as_u64().unwrap() >= 1, "the page's own player is a viewer: {page}");

    // (d) Copy buttons: exactly what the API says; the key masked until revealed.
    for what in ["rtmp", "key", "playback"] {
        let pair = &report["copies"][what];
        assert!(pair[0].as_str().is_some_and(|s| !s.is_empty()), "{what}: {pair}");
        assert_eq!(pair[0], pair[1], "{what}: the clipboard holds what the API says");
    }
    assert_eq!(report["copies"]["key"][0].as_str(), Some(keys[PASSTHROUGH].as_str()));
    assert_eq!(report["masked"]["shows_key"], false, "masked until revealed: {}", report["masked"]);
    assert_eq!(report["copies"]["revealed_key_text"].as_str(), Some(keys[PASSTHROUGH].as_str()));
    // The embed snippet frames the channel's watch page (played in tests/player/watch.mjs).
    let playback = report["copies"]["playback"][1].as_str().unwrap_or_default();
    let watch = format!("{}/watch/{PASSTHROUGH}?embed=1", &playback[..playback.find("/hls/").unwrap_or(0)]);
    let embed = report["copies"]["embed"].as_str().unwrap_or_default();
    assert!(embed.starts_with("<iframe ") && embed.contains(&format!("src=\"{watch}\"")), "embed snippet: {embed}");

    // (b) The token: shown once, working with its role, revoked.
    let token = &report["token"];
    assert_eq!((&token["get_status"], &token["post_status"]), (&json!(200), &json!(403)), "a viewer token: {token}");
    assert_eq!(token["status_after_revoke"], 401, "{token}");
    assert_eq!((&token["list_has_secret"], &token["shown_again"]), (&json!(false), &json!(false)), "{token}");
    let text = token["text"].as_str().unwrap();
    let after = app.http.get(app.url("/api/v1/channels")).bearer_auth(text).send().await.unwrap();
    assert_eq!(after.status().as_u16(), 401, "the revoked token opens nothing");

    // A restream destination on the channel page: listed, its key never shown, then gone.
    let restream = &report["restream"];
    assert_eq!(restream["row"].as_str(), Some("rtmp://127.0.0.1:9/live2 + key •••"), "{restream}");
    assert_eq!(restream["page_shows_key"], false, "{restream}");
    assert_eq!(
        restream["api"],
        json!([{ "url": "rtmp://127.0.0.1:9/live2", "key_set": true, "rendition": "source", "has_key_field": false }])
    );
    assert_eq!(restream["api_after_delete"], 0);

    // (c) The webhook, with its filter, made and gone.
    let webhook = &report["webhook"];
    assert!(webhook["secret_length"].as_u64().unwrap() >= 16, "{webhook}");
    assert_eq!(webhook["api_events"], json!(["session.encoder_moved", "session.error"]));
    assert_eq!(webhook["api_after_delete"], 0);
    assert!(app.appliance.store.list_webhooks(None, 100).unwrap().items.is_empty());

    // (e) The ladder runs on the CPU; the switcher drives hls.js to each rung's height.
    let encoder = report["ladder_dashboard"]["encoder"].as_str().unwrap();
    assert_eq!(encoder, "software on cpu: 360p, 240p");
    let switches = report["switches"].as_array().unwrap();
    let heights: Vec<u64> = switches.iter().map(|s| s["video_height"].as_u64().unwrap()).collect();
    assert_eq!(heights, [240, 360], "{switches:?}");
    for switch in switches {
        assert_eq!(switch["shown"], format!("playing {}p", switch["video_height"]), "{switch}");
    }
    // The move after the injected failure, as the operator sees it.
    let moved = &report["move"];
    let alert = moved["channel_alert"].as_str().unwrap();
    assert!(alert.starts_with("Moved from software cpu to software cpu at "), "{alert}");
    assert!(alert.ends_with("injected encoder failure (fault switch)"), "{alert}");
    assert!(moved["channel_encoder"].as_str().unwrap().ends_with(", moved 1×"), "{moved}");
    assert_eq!(moved["dashboard_badge"], "moved 1×");
    assert_eq!(moved["system_event"]["alert"], true, "{moved}");
    assert!(moved["system_event"]["details"].as_str().unwrap().contains("injected encoder failure"), "{moved}");
    assert_eq!(report["csp_violations"], json!([]), "{report:#}");
    for page in [
        "dashboard-live",
        "channel-live",
        "system-token-created",
        "system-webhook-created",
        "dashboard-ladder",
        "channel-moved",
        "system-alert",
    ] {
        assert!(shots.join(format!("{page}.png")).exists(), "screenshot of {page}");
    }
    drop(publishers);
    app.appliance.shutdown().await;
}
