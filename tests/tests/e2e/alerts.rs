//! The alert engine as an operator meets it: a real `ffmpeg` publisher is
//! stalled without closing its connection (SIGSTOP), and `input-lost` is
//! raised within twice its window, delivered as a signed webhook to a
//! receiver, logged in the event history and counted in `/metrics`; the
//! publisher resumes (SIGCONT) and the alert clears.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use media::LatencyMode;
use serde_json::{Value, json};
use support::{Publish, STEP_TIMEOUT, TestAppliance, eventually, have_ffmpeg};

use crate::api::webhooks::{Received, Receiver, SECRET};

const WINDOW_MS: u64 = 2000;

fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status().unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

/// The first delivered event of `kind` at or after `from` (index in the arrivals).
async fn delivered(received: &Arc<Mutex<Received>>, kind: &str, from: usize) -> (Value, Instant) {
    eventually(STEP_TIMEOUT, || async {
        let r = received.lock().unwrap();
        r.arrivals.iter().skip(from).find(|a| a.kind == kind).map(|a| (a.event.clone(), a.at))
    })
    .await
    .unwrap_or_else(|| panic!("no {kind} delivered"))
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok()).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_publisher_raises_input_lost_and_its_return_clears_it() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start_with(|c| {
        c.alerts.input_lost_raise_ms = WINDOW_MS;
        c.alerts.input_lost_clear_ms = WINDOW_MS;
        // The slate keeps the session going while the publisher is stalled.
        c.failover.slate_seconds = 120;
    })
    .await;
    let received = Arc::new(Mutex::new(Received::default()));
    let (_receiver, addr) = Receiver::start("127.0.0.1:0".parse().unwrap(), received.clone()).await;
    let hook =
        json!({"url": format!("http://{addr}/hook"), "secret": SECRET, "events": ["alert.raised", "alert.cleared"]});
    assert_eq!(app.write("POST", "/api/v1/webhooks", Some(hook)).await.status, 201);
    let channel = app.add_channel("cam", LatencyMode::UltraLow);
    let publisher =
        Publish { seconds: 60.0, size: "320x180", ..Publish::default() }.start(&app.rtmp_url(&channel.stream_key));
    let pid = publisher.id().expect("ffmpeg runs");
    app.media_playlist_path("cam", None).await;
    // Flowing media raises nothing.
    tokio::time::sleep(Duration::from_millis(WINDOW_MS + 500)).await;
    assert!(received.lock().unwrap().arrivals.is_empty(), "no alert while media flows");

    let stopped = Instant::now();
    signal(pid, "STOP");
    let (raised, raised_at) = delivered(&received, "alert.raised", 0).await;
    let took = raised_at.saturating_duration_since(stopped);
    eprintln!("input-lost raised {} ms after the publisher stalled (window {WINDOW_MS} ms)", took.as_millis());
    assert!(took < Duration::from_millis(2 * WINDOW_MS), "raised after {took:?}");
    assert!(took >= Duration::from_millis(WINDOW_MS - 300), "raised too early: {took:?}");
    assert_eq!(raised["channel"], "cam");
    assert_eq!(raised["data"]["rule"], "input-lost");
    let session = app.newest_session("cam").await.unwrap()["id"].as_str().unwrap().to_string();
    assert_eq!(raised["data"]["session"], session.as_str());
    let scrape = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(metric(&scrape, "appliance_alerts_active{rule=\"input-lost\"}"), 1.0, "{scrape}");
    let active = app.get_json("/api/v1/alerts").await;
    assert_eq!(active["items"][0]["rule"], "input-lost", "{active}");
    assert_eq!(active["items"][0]["channel"], "cam");
    assert_eq!(active["items"][0]["session"], session.as_str());

    let resumed = Instant::now();
    signal(pid, "CONT");
    let (cleared, cleared_at) = delivered(&received, "alert.cleared", 0).await;
    let took = cleared_at.saturating_duration_since(resumed);
    eprintln!("input-lost cleared {} ms after the publisher resumed", took.as_millis());
    assert!(took >= Duration::from_millis(WINDOW_MS - 300), "cleared too early: {took:?}");
    assert_eq!(cleared["data"]["session"], session.as_str());
    assert!(cleared["data"]["detail"].as_str().unwrap().contains("flowed again"), "{cleared}");
    // The session went on through the stall.
    assert_eq!(app.newest_session("cam").await.unwrap()["id"], session.as_str());
    // The history is in the state file's event log too.
    let events = app.get_json("/api/v1/events?limit=500").await;
    let kinds: Vec<&str> = events["items"].as_array().unwrap().iter().filter_map(|e| e["type"].as_str()).collect();
    assert!(kinds.contains(&"alert.raised") && kinds.contains(&"alert.cleared"), "{kinds:?}");
    let scrape = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(metric(&scrape, "appliance_alerts_raised_total{rule=\"input-lost\"}"), 1.0);
    assert_eq!(metric(&scrape, "appliance_alerts_cleared_total{rule=\"input-lost\"}"), 1.0);
    assert_eq!(metric(&scrape, "appliance_alerts_active{rule=\"input-lost\"}"), 0.0);
    assert_eq!(app.get_json("/api/v1/alerts").await["items"], json!([]));
    assert_eq!(received.lock().unwrap().bad_signatures, 0);
    drop(publisher);
}
