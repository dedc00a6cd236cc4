//! A session's live figures through the API: the input as measured where
//! the appliance relays it (resolution, frame rate, bitrate over the last
//! seconds, audio), the encoder placement and the viewers counted from origin
//! requests; and a ladder's move after an injected encoder failure, which
//! arrives as a signed `session.encoder_moved` webhook and shows in the
//! session's placement.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use accel::pipeline::Fault;
use serde_json::{Value, json};

use super::webhooks::{Received, Receiver, SECRET};
use support::{STEP_TIMEOUT, TestAppliance, eventually, finish_within, have_ffmpeg, publish};

/// Units a second of the test publish: 30 video frames and 46.875 AAC frames (48 kHz, 1024 samples).
const UNITS_PER_SECOND: f64 = 30.0 + 48_000.0 / 1024.0;

/// Polls the channel until its `live` figures satisfy `done`.
async fn live_until(app: &TestAppliance, channel: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    eventually(STEP_TIMEOUT, || async {
        let resource = app.get_json(&format!("/api/v1/channels/{channel}")).await;
        done(&resource["live"]).then_some(resource)
    })
    .await
    .unwrap_or_else(|| panic!("channel {channel}: the live figures never showed {what}"))
}

/// GET of an origin path as a player with `agent` as its User-Agent.
async fn fetch_as(app: &TestAppliance, path: &str, agent: &str) -> (u16, String) {
    let response = app.http.get(app.url(path)).header("user-agent", agent).send().await.expect("origin");
    (response.status().as_u16(), response.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_figures_measure_the_input_and_count_viewers() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = app.create_channel(json!({"name": "meter", "start": true})).await;
    let publisher = publish(&app.rtmp_url(channel["stream_key"].as_str().unwrap()), 16.0);

    // A full window of measurement.
    let first = live_until(&app, "meter", "a 5 s window", |l| l["input"]["window_seconds"] == 5).await;
    let taken = Instant::now();
    let live = &first["live"];
    eprintln!("live figures: {live:#}");
    let session = first["current_session"].as_str().unwrap().to_string();
    assert_eq!(live["session"], session.as_str());
    let video = &live["input"]["video"];
    assert_eq!(
        (video["codec"].as_str(), video["width"].as_u64(), video["height"].as_u64()),
        (Some("h264"), Some(640), Some(360))
    );
    assert!(video["codec_string"].as_str().unwrap().starts_with("avc1."), "{video}");
    let fps = video["fps"].as_f64().unwrap();
    assert!((27.0..=33.0).contains(&fps), "measured {fps} fps of a 30 fps publish");
    let audio = &live["input"]["audio"];
    assert_eq!(
        (audio["codec"].as_str(), audio["sample_rate"].as_u64(), audio["channels"].as_u64()),
        (Some("aac"), Some(48_000), Some(1)),
        "{audio}"
    );
    let bitrate = live["input"]["bitrate_bps"].as_u64().unwrap();
    assert!((50_000..50_000_000).contains(&bitrate), "{bitrate} bit/s");
    assert_eq!(
        live["encoder"],
        json!({"mode": "passthrough", "backend": null, "device": null, "kept": ["source"], "dropped": [],
            "dropped_why": [], "filter_graph": null, "cpu_steps": [], "moves": 0, "last_move": null})
    );
    assert_eq!(live["viewers"], 0, "nobody has played it yet");

    // The bitrate is what the byte count says over the same seconds (within
    // the window's granularity), once three more seconds of media have arrived.
    let units = |r: &Value| r["live"]["input"]["units"].as_u64().unwrap();
    let three_seconds = units(&first) + (3.0 * UNITS_PER_SECOND) as u64;
    let later = live_until(&app, "meter", "three more seconds of media", |l| {
        l["input"]["units"].as_u64().is_some_and(|u| u >= three_seconds)
    })
    .await;
    let bytes = |r: &Value| r["live"]["input"]["bytes"].as_u64().unwrap();
    let counted = (bytes(&later) - bytes(&first)) as f64 * 8.0 / taken.elapsed().as_secs_f64();
    let measured = later["live"]["input"]["bitrate_bps"].as_u64().unwrap() as f64;
    eprintln!("bitrate: {measured:.0} bit/s measured over the window, {counted:.0} bit/s from the byte count");
    assert!((0.6..1.6).contains(&(measured / counted)), "{measured} vs {counted}");

    // Two players on one host (two User-Agents) are two viewers; a client asking again is still one.
    let (status, multivariant) = fetch_as(&app, "/hls/meter/index.m3u8", "player-a").await;
    assert_eq!(status, 200);
    let media = multivariant.lines().find(|l| !l.starts_with('#') && !l.is_empty()).unwrap().to_string();
    assert_eq!(fetch_as(&app, &format!("/hls/meter/{media}"), "player-b").await.0, 200);
    assert_eq!(fetch_as(&app, &format!("/hls/meter/{media}"), "player-a").await.0, 200);
    // Not a player request: an unknown channel, a missing file.
    fetch_as(&app, "/hls/nothing/index.m3u8", "player-c").await;
    fetch_as(&app, &format!("/hls/meter/{session}/source/seg999999.m4s"), "player-d").await;
    let counted = app.get_json("/api/v1/channels/meter").await;
    assert_eq!(counted["live"]["viewers"], 2, "{:#}", counted["live"]);

    // The session resource carries the same figures while it is in progress.
    let resource = app.get_json(&format!("/api/v1/channels/meter/sessions/{session}")).await;
    assert_eq!(resource["live"]["session"], session.as_str());
    assert_eq!(resource["live"]["viewers"], 2);
    let listed = app.newest_session("meter").await.unwrap();
    assert_eq!(listed["live"]["input"]["video"]["height"], 360);

    // Over: no live figures anywhere.
    assert!(finish_within(publisher, STEP_TIMEOUT).await.0);
    app.session_until("meter", "ended", |s| s["state"] == "ended").await;
    let channel = app.get_json("/api/v1/channels/meter").await;
    assert!(channel.get("live").is_none(), "{channel:#}");
    let ended = app.get_json(&format!("/api/v1/channels/meter/sessions/{session}")).await;
    assert!(ended.get("live").is_none(), "{ended:#}");
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encoder_move_is_a_signed_webhook_and_the_api_shows_the_new_placement() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let received = Arc::new(Mutex::new(Received::default()));
    let (receiver, addr) = Receiver::start("127.0.0.1:0".parse().unwrap(), received.clone()).await;
    let hook = json!({"url": format!("http://{addr}/hook"), "secret": SECRET, "events": ["session.encoder_moved"]});
    let made = app.write("POST", "/api/v1/webhooks", Some(hook)).await;
    assert_eq!((made.status, &made.body["events"]), (201, &json!(["session.encoder_moved"])), "{:?}", made.body);
    let ladder = json!({"rungs": [{"height": 240, "bitrate_kbps": 400}, {"height": 480, "bitrate_kbps": 1200}]});
    let channel = app
        .create_channel(json!({"name": "mover", "start": true, "encoder_policy": "software",
            "output": {"kind": "ladder", "ladder": ladder}}))
        .await;
    let publisher = publish(&app.rtmp_url(channel["stream_key"].as_str().unwrap()), 16.0);

    // Placed: libx264 on the CPU, the 240p rung running and the 480p one above the 360p source dropped.
    let placed = live_until(&app, "mover", "a placement", |l| l["encoder"]["filter_graph"].is_string()).await;
    let session = placed["current_session"].as_str().unwrap().to_string();
    assert_eq!(
        placed["live"]["encoder"],
        json!({"mode": "transcode", "backend": "software", "device": "cpu", "kept": ["240p"], "dropped": ["480p"],
            "dropped_why": [{"rendition": "480p", "reason": "above the source's 360 lines"}],
            "filter_graph": "[in]split=1[s0];[s0]scale=w=426:h=240:flags=bicubic,format=yuv420p[out0]", "cpu_steps": [],
            "moves": 0, "last_move": null})
    );

    // The encoder fails under the running ladder.
    let injected = Instant::now();
    assert!(app.appliance.live.inject_fault("mover", Fault::Encoder).await);

    // The webhook arrives, signed (the receiver verifies every signature), with the move.
    let arrival = eventually(STEP_TIMEOUT, || async {
        receiver.arrivals().into_iter().find(|a| a.kind == "session.encoder_moved")
    })
    .await
    .expect("session.encoder_moved delivered");
    eprintln!("webhook: {:#}", arrival.event);
    assert_eq!(received.lock().unwrap().bad_signatures, 0);
    assert_eq!((arrival.path, arrival.channel.as_str()), ("/hook", "mover"));
    let data = &arrival.event["data"];
    assert_eq!(data["session"], session.as_str());
    assert_eq!(data["from"], json!({"backend": "software", "device": "cpu"}));
    assert_eq!(data["to"], json!({"backend": "software", "device": "cpu"}));
    assert!(data["reason"].as_str().unwrap().contains("injected encoder failure"), "{data}");
    assert_eq!((&data["kept"], &data["moves"]), (&json!(["240p"]), &json!(1)));
    eprintln!("delivered {:?} after the fault was injected", injected.elapsed());

    // The API shows the new placement on the channel and the session, and the event log lists the move.
    let moved = live_until(&app, "mover", "the move", |l| l["encoder"]["moves"] == 1).await;
    let encoder = &moved["live"]["encoder"];
    assert_eq!((encoder["backend"].as_str(), encoder["device"].as_str()), (Some("software"), Some("cpu")));
    assert_eq!(encoder["last_move"]["reason"], data["reason"]);
    assert_eq!(encoder["last_move"]["to"], data["to"]);
    let resource = app.get_json(&format!("/api/v1/channels/mover/sessions/{session}")).await;
    assert_eq!(resource["live"]["encoder"]["moves"], 1);
    let events = app.get_json("/api/v1/events?limit=500").await;
    let logged: Vec<&Value> =
        events["items"].as_array().unwrap().iter().filter(|e| e["type"] == "session.encoder_moved").collect();
    assert_eq!(logged.len(), 1, "{events:#}");
    assert_eq!(logged[0]["id"], arrival.id.as_str(), "the log and the webhook are the same event");
    assert_eq!(&logged[0]["data"], data);
    let deliveries = app.get_json(&format!("/api/v1/webhooks/{}/deliveries", made.body["id"].as_str().unwrap())).await;
    let kinds: Vec<&str> =
        deliveries["items"].as_array().unwrap().iter().map(|d| d["event_type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["session.encoder_moved"], "the filter lets only moves through");

    // The session goes on to its normal end.
    assert!(finish_within(publisher, STEP_TIMEOUT).await.0);
    let ended = app.session_until("mover", "ended", |s| s["state"] == "ended").await;
    assert_eq!(ended["end_reason"], "publisher-left", "{ended:#}");
    app.appliance.shutdown().await;
}
