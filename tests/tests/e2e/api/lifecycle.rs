//! Channel and session lifecycle driven by real publishes: idle -> active,
//! init -> live -> ended, maximum duration, stop, key rotation, and recovery
//! after the process died. (A stop made by the CLI in another process is in
//! the appliance's own binary tests, `appliance/tests/binary/cli.rs`.)

use std::time::Duration;

use serde_json::json;

use support::{STEP_TIMEOUT, TestAppliance, eventually, finish_within, have_ffmpeg, publish};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_goes_idle_to_active_and_a_publish_runs_init_live_ended() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = app.create_channel(json!({"name": "studio"})).await;
    assert_eq!(channel["state"], "idle");
    let key = channel["stream_key"].as_str().unwrap().to_string();

    // Idle: the publish is refused and leaves no session.
    let (ok, _) = finish_within(publish(&app.rtmp_url(&key), 2.0), STEP_TIMEOUT).await;
    assert!(!ok, "a publish to an idle channel is refused");
    assert!(app.newest_session("studio").await.is_none());

    let started = app.write("POST", "/api/v1/channels/studio/start", None).await;
    assert_eq!((started.status, started.body["state"].as_str()), (200, Some("active")));
    let again = app.write("POST", "/api/v1/channels/studio/start", None).await;
    assert_eq!(again.status, 409, "{:?}", again.body);
    assert_eq!(again.body["type"], "urn:appliance:problem:conflict");

    let publisher = publish(&app.rtmp_url(&key), 4.0);
    let init = app.session_until("studio", "in progress", |s| s["state"] != "ended").await;
    let id = init["id"].as_str().unwrap().to_string();
    let live = app.session_until("studio", "live", |s| s["state"] == "live").await;
    assert_eq!(live["id"], id.as_str());
    assert!(live["live_at"].is_string());
    let channel = app.get_json("/api/v1/channels/studio").await;
    assert_eq!(channel["current_session"], id.as_str());
    // Channel reads carry the session in progress, so a wall of channels is one request.
    assert_eq!((&channel["session"]["id"], &channel["session"]["state"]), (&json!(id), &json!("live")));
    let listed = app.get_json("/api/v1/channels").await;
    assert_eq!(listed["items"][0]["session"]["peer"], live["peer"], "{listed}");

    let (ok, _) = finish_within(publisher, STEP_TIMEOUT).await;
    assert!(ok, "the publisher ran to its end");
    let over = app.session_until("studio", "ended", |s| s["state"] == "ended").await;
    assert_eq!(over["id"], id.as_str());
    assert_eq!(over["end_reason"], "publisher-left");
    assert_eq!(over["renditions"], json!(["source"]));
    assert!(over["bytes_in"].as_u64().unwrap() > 50_000, "{over}");
    let duration = over["duration_ms"].as_u64().unwrap();
    assert!((3000..10_000).contains(&duration), "duration {duration} ms");
    assert_eq!(app.get_json("/api/v1/channels/studio").await["current_session"], json!(null));
    let path = over["playlist_path"].as_str().unwrap().to_string();
    assert!(eventually(STEP_TIMEOUT, || async { app.has_ended(&path).await.then_some(()) }).await.is_some(), "ENDLIST");

    // The lifecycle is in the event log, in order.
    let events = app.get_json("/api/v1/events?limit=100").await;
    let types: Vec<&str> = events["items"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["channel.created", "channel.started", "session.init", "session.live", "session.ended"],
        "{events}"
    );
    // A second publish is a new session; the first stays listed.
    let second = publish(&app.rtmp_url(&key), 1.5);
    let next = app.session_until("studio", "a new session", |s| s["id"] != id.as_str()).await;
    finish_within(second, STEP_TIMEOUT).await;
    let all = app.get_json("/api/v1/channels/studio/sessions").await;
    let ids: Vec<&str> = all["items"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [next["id"].as_str().unwrap(), id.as_str()], "newest first");
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_maximum_duration_ends_a_session_and_disconnects_the_publisher() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = app.create_channel(json!({"name": "capped", "start": true, "max_session_seconds": 3})).await;
    let publisher = publish(&app.rtmp_url(channel["stream_key"].as_str().unwrap()), 20.0);
    let (ok, took) = finish_within(publisher, STEP_TIMEOUT).await;
    assert!(!ok, "the publisher was cut off");
    assert!(took < Duration::from_secs(10), "cut off after {took:?}, not at the end of its 20 s");
    let over = app.session_until("capped", "ended", |s| s["state"] == "ended").await;
    assert_eq!(over["end_reason"], "max-duration");
    let duration = over["duration_ms"].as_u64().unwrap();
    assert!((3000..6000).contains(&duration), "duration {duration} ms");
    let path = over["playlist_path"].as_str().unwrap().to_string();
    assert!(eventually(STEP_TIMEOUT, || async { app.has_ended(&path).await.then_some(()) }).await.is_some(), "ENDLIST");
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_channel_ends_its_live_session_and_refuses_publishes() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = app.create_channel(json!({"name": "news", "start": true})).await;
    let url = app.rtmp_url(channel["stream_key"].as_str().unwrap());
    let publisher = publish(&url, 30.0);
    let live = app.session_until("news", "live", |s| s["state"] == "live").await;
    let path = live["playlist_path"].as_str().unwrap().to_string();

    let stopped = app.write("POST", "/api/v1/channels/news/stop", None).await;
    assert_eq!((stopped.status, stopped.body["state"].as_str()), (200, Some("stopped")));
    let (ok, took) = finish_within(publisher, STEP_TIMEOUT).await;
    assert!(!ok && took < Duration::from_secs(10), "the publisher was disconnected ({ok}, {took:?})");
    let over = app.session_until("news", "ended", |s| s["state"] == "ended").await;
    assert_eq!(over["end_reason"], "channel-stopped");
    assert!(over["bytes_in"].as_u64() > Some(0) && over["units_in"].as_u64() > Some(0), "stats recorded: {over}");
    assert!(eventually(STEP_TIMEOUT, || async { app.has_ended(&path).await.then_some(()) }).await.is_some(), "ENDLIST");

    let (ok, _) = finish_within(publish(&url, 2.0), STEP_TIMEOUT).await;
    assert!(!ok, "a stopped channel refuses publishes");
    assert_eq!(app.newest_session("news").await.unwrap()["id"], over["id"], "no session was created");
    assert_eq!(app.write("POST", "/api/v1/channels/news/stop", None).await.status, 409);
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_stream_key_refuses_the_old_key_at_once() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = app.create_channel(json!({"name": "keyed", "start": true})).await;
    let old = channel["stream_key"].as_str().unwrap().to_string();
    let rotated = app.write("POST", "/api/v1/channels/keyed/rotate-key", None).await;
    assert_eq!(rotated.status, 200);
    let new = rotated.body["stream_key"].as_str().unwrap().to_string();
    assert_ne!(old, new);
    assert!(rotated.body["publish_url"].as_str().unwrap().ends_with(&new));

    let (ok, _) = finish_within(publish(&app.rtmp_url(&old), 2.0), STEP_TIMEOUT).await;
    assert!(!ok, "the old key is refused");
    assert!(app.newest_session("keyed").await.is_none());
    let publisher = publish(&app.rtmp_url(&new), 2.0);
    app.session_until("keyed", "live", |s| s["state"] == "live").await;
    assert!(finish_within(publisher, STEP_TIMEOUT).await.0);
    app.appliance.shutdown().await;
}

/// A backup key: made at creation, rotated over the API (the old one refused
/// at once), and a publish on it joins the live session as its backup input,
/// which the live figures show next to the primary on air.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_key_joins_the_live_session_as_its_second_input() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = app.create_channel(json!({"name": "twin", "start": true, "backup_input": true})).await;
    let old_backup = channel["backup_stream_key"].as_str().unwrap().to_string();
    assert!(channel["backup_publish_url"].as_str().unwrap().ends_with(&old_backup));
    let bad = app.write("POST", "/api/v1/channels/twin/rotate-key?input=tertiary", None).await;
    assert_eq!((bad.status, &bad.body["field"]), (400, &json!("input")), "{:?}", bad.body);
    let rotated = app.write("POST", "/api/v1/channels/twin/rotate-key?input=backup", None).await;
    assert_eq!(rotated.status, 200);
    let backup = rotated.body["backup_stream_key"].as_str().unwrap().to_string();
    assert_ne!(backup, old_backup);
    assert_eq!(rotated.body["stream_key"], channel["stream_key"], "the primary key stays");
    let (ok, _) = finish_within(publish(&app.rtmp_url(&old_backup), 2.0), STEP_TIMEOUT).await;
    assert!(!ok, "the old backup key is refused");

    let primary = publish(&app.rtmp_url(channel["stream_key"].as_str().unwrap()), 30.0);
    app.session_until("twin", "live", |s| s["state"] == "live").await;
    let second = publish(&app.rtmp_url(&backup), 30.0);
    let live = eventually(STEP_TIMEOUT, || async {
        let c = app.get_json("/api/v1/channels/twin").await;
        let inputs = c["live"]["inputs"].as_array()?.clone();
        (inputs.len() == 2 && inputs.iter().all(|i| i["units"].as_u64() > Some(0))).then_some(c["live"].clone())
    })
    .await
    .expect("both inputs read");
    assert_eq!(live["on_air"], "primary", "{live}");
    let roles: Vec<_> = live["inputs"].as_array().unwrap().iter().map(|i| (&i["role"], &i["on_air"])).collect();
    assert_eq!(roles, [(&json!("primary"), &json!(true)), (&json!("backup"), &json!(false))]);
    assert_eq!(app.newest_session("twin").await.unwrap()["state"], "live", "one session for both");
    drop((primary, second));
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_live_when_the_process_died_is_ended_with_appliance_restart() {
    if !have_ffmpeg() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    // The first appliance runs on a runtime of its own, which is then dropped
    // without any graceful step: its tasks simply stop, as at a crash.
    let dir = data.path().to_path_buf();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (die_tx, die_rx) = std::sync::mpsc::channel::<()>();
    let first = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let appliance = runtime.block_on(async {
            let config = support::appliance::test_config(&dir);
            appliance::Appliance::start(&config).await.expect("first appliance starts")
        });
        let channel = appliance.store.add("crashy", media::LatencyMode::UltraLow).unwrap();
        ready_tx.send((appliance.rtmp_addr, channel.stream_key, appliance.store.clone())).unwrap();
        let _ = die_rx.recv();
        runtime.shutdown_background();
        drop(appliance);
    });
    let (rtmp, key, store) = ready_rx.recv().unwrap();
    let publisher = publish(&format!("rtmp://{rtmp}/live/{key}"), 30.0);
    // Read the records through the first appliance's own handle on the file.
    let live = eventually(STEP_TIMEOUT, || {
        let store = store.clone();
        async move {
            let page = tokio::task::spawn_blocking(move || store.list_sessions("crashy", None, 1)).await.unwrap();
            page.ok()?.items.into_iter().next().filter(|s| s.state == appliance::state::SessionState::Live)
        }
    })
    .await
    .expect("the session went live");
    die_tx.send(()).unwrap();
    first.join().unwrap();
    // The last handle of the dead process: the file is free for the next one.
    drop(store);
    let (ok, _) = finish_within(publisher, STEP_TIMEOUT).await;
    assert!(!ok, "the publisher lost its connection with the process");

    let app = TestAppliance::start_in(data, |_| {}).await;
    let session = app.get_json(&format!("/api/v1/channels/crashy/sessions/{}", live.id)).await;
    assert_eq!(session["state"], "ended");
    assert_eq!(session["end_reason"], "appliance-restart");
    let channel = app.get_json("/api/v1/channels/crashy").await;
    assert_eq!((channel["state"].as_str(), &channel["current_session"]), (Some("active"), &json!(null)));
    // The channel takes a new publish at once.
    let publisher = publish(&app.rtmp_url(&key), 2.0);
    app.session_until("crashy", "live again", |s| s["state"] == "live" && s["id"] != live.id.as_str()).await;
    assert!(finish_within(publisher, STEP_TIMEOUT).await.0);
    app.appliance.shutdown().await;
}
