//! Webhooks end to end: a receiver (a small axum server) verifies every
//! signature, goes away while channel and session events happen, and comes
//! back on the same port: every event arrives exactly once, in order per
//! channel, and the failed attempts are visible through the API.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use appliance::webhooks::signature;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::support::{Harness, STEP, finish, have_ffmpeg, poll, publish};

pub(crate) const SECRET: &str = "whsec_the-test-receivers-secret";

#[derive(Debug, Clone)]
pub(crate) struct Arrival {
    pub path: &'static str,
    pub id: String,
    pub sequence: u64,
    pub kind: String,
    pub channel: String,
    pub at: Instant,
    /// The whole event, as delivered.
    pub event: Value,
}

#[derive(Debug, Default)]
pub(crate) struct Received {
    pub arrivals: Vec<Arrival>,
    pub bad_signatures: usize,
}

/// The receiver: verifies, records, answers 204.
pub(crate) struct Receiver {
    received: Arc<Mutex<Received>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    pub(crate) async fn start(addr: SocketAddr, received: Arc<Mutex<Received>>) -> (Receiver, SocketAddr) {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("receiver binds");
        let bound = listener.local_addr().unwrap();
        let handler = |path: &'static str, state: Arc<Mutex<Received>>| {
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move {
                    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                    let timestamp: u64 = header(signature::TIMESTAMP_HEADER).parse().unwrap_or(0);
                    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
                    let sig = header(signature::SIGNATURE_HEADER);
                    let mut received = state.lock().unwrap();
                    if !signature::verify(SECRET, timestamp, &body, &sig, now, 300) {
                        received.bad_signatures += 1;
                        return StatusCode::UNAUTHORIZED;
                    }
                    let event: Value = serde_json::from_slice(&body).unwrap();
                    assert_eq!(event["id"].as_str().unwrap(), header(signature::ID_HEADER));
                    received.arrivals.push(Arrival {
                        path,
                        id: event["id"].as_str().unwrap().to_string(),
                        sequence: event["sequence"].as_u64().unwrap(),
                        kind: event["type"].as_str().unwrap().to_string(),
                        channel: event["channel"].as_str().unwrap().to_string(),
                        at: Instant::now(),
                        event,
                    });
                    StatusCode::NO_CONTENT
                }
            })
        };
        let app = axum::Router::new()
            .route("/hook", handler("/hook", received.clone()))
            .route("/other", handler("/other", received.clone()));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        (Receiver { received, stop: Some(stop), task: Some(task) }, bound)
    }

    /// Takes the receiver down: the port refuses connections until it is started again.
    async fn down(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(STEP, self.task.take().unwrap()).await.expect("receiver stops").unwrap();
    }

    pub(crate) fn arrivals(&self) -> Vec<Arrival> {
        self.received.lock().unwrap().arrivals.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_exactly_once_in_order_after_the_receiver_comes_back() {
    if !have_ffmpeg() {
        return;
    }
    let app = Harness::start().await;
    let received = Arc::new(Mutex::new(Received::default()));
    let (receiver, addr) = Receiver::start("127.0.0.1:0".parse().unwrap(), received.clone()).await;
    let url = format!("http://{addr}/hook");
    let made = app.write("POST", "/api/v1/webhooks", Some(json!({"url": url, "secret": SECRET}))).await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    assert_eq!(made.body["secret"], SECRET);
    let endpoint = made.body["id"].as_str().unwrap().to_string();
    // A second endpoint that only wants session.live: filters apply.
    let filtered = json!({"url": format!("http://{addr}/other"), "secret": SECRET, "events": ["session.live"]});
    let other_id = app.write("POST", "/api/v1/webhooks", Some(filtered)).await.body["id"].as_str().unwrap().to_string();

    // Receiver up: delivery latency from the API request to the receiver.
    let mut latencies = Vec::new();
    for name in ["alpha", "beta"] {
        let count = received.lock().unwrap().arrivals.len();
        let sent = Instant::now();
        app.create_channel(json!({"name": name, "start": true})).await;
        let arrived = poll(STEP, || async {
            let r = received.lock().unwrap();
            (r.arrivals.len() > count).then(|| r.arrivals[count].at)
        })
        .await
        .expect("delivered while the receiver is up");
        latencies.push(arrived.saturating_duration_since(sent));
    }
    eprintln!("webhook delivery latency, from the API request to the receiver: {latencies:?}");
    poll(STEP, || async { (receiver.arrivals().len() == 4).then_some(()) }).await.expect("4 events while up");

    // Receiver down: channel events and a whole publish happen meanwhile.
    receiver.down().await;
    // The stream key is a write-level secret: a read token does not see it.
    let alpha = app.write("GET", "/api/v1/channels/alpha", None).await.body;
    app.write("PATCH", "/api/v1/channels/beta", Some(json!({"latency_mode": "low"}))).await;
    let publisher = publish(&app.rtmp_url(alpha["stream_key"].as_str().unwrap()), 2.0);
    app.session_until("alpha", "live", |s| s["state"] == "live").await;
    app.write("POST", "/api/v1/channels/beta/stop", None).await;
    assert!(finish(publisher, STEP).await.0);
    app.session_until("alpha", "ended", |s| s["state"] == "ended").await;
    app.write("DELETE", "/api/v1/channels/beta", None).await;

    // Retries are failing and visible.
    let deliveries = format!("/api/v1/webhooks/{endpoint}/deliveries?limit=500");
    let failing = poll(STEP, || async {
        let page = app.get(&deliveries).await;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        items.iter().any(|d| d["state"] == "pending" && d["attempts"].as_array().unwrap().len() >= 2).then_some(items)
    })
    .await
    .expect("deliveries are retried while the receiver is down");
    let attempt = failing.iter().find(|d| d["state"] == "pending").unwrap()["attempts"][0].clone();
    assert_eq!(attempt["error"], "cannot connect", "{attempt}");
    assert!(attempt["status"].is_null());

    // Receiver back on the same port.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (receiver, again) = Receiver::start(addr, received.clone()).await;
    assert_eq!(again, addr);
    let events = app.get("/api/v1/events?limit=500").await["items"].as_array().unwrap().clone();
    let want: Vec<(String, u64)> =
        events.iter().map(|e| (e["id"].as_str().unwrap().to_string(), e["sequence"].as_u64().unwrap())).collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "channel.created",
            "channel.started",
            "channel.created",
            "channel.started",
            "channel.updated",
            "session.init",
            "session.live",
            "channel.stopped",
            "session.ended",
            "channel.deleted"
        ]
    );
    poll(Duration::from_secs(60), || async { (receiver.arrivals().len() > want.len()).then_some(()) })
        .await
        .expect("every event arrived after the receiver came back");
    // Settle, then check that nothing arrives twice.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let arrivals = receiver.arrivals();
    assert_eq!(received.lock().unwrap().bad_signatures, 0);
    let hook: Vec<&Arrival> = arrivals.iter().filter(|a| a.path == "/hook").collect();
    let mut got: Vec<(String, u64)> = hook.iter().map(|a| (a.id.clone(), a.sequence)).collect();
    got.sort_by_key(|(_, sequence)| *sequence);
    assert_eq!(got, want, "every event exactly once at /hook");
    let mut last: HashMap<&str, u64> = HashMap::new();
    for a in &hook {
        let previous = last.insert(&a.channel, a.sequence).unwrap_or(0);
        assert!(a.sequence > previous, "channel {}: event {} arrived after {previous}", a.channel, a.sequence);
    }
    let other: Vec<&str> = arrivals.iter().filter(|a| a.path == "/other").map(|a| a.kind.as_str()).collect();
    assert_eq!(other, ["session.live"], "the filtered endpoint got only what it asked for");

    let page = app.get(&deliveries).await;
    let items = page["items"].as_array().unwrap();
    assert!(items.iter().all(|d| d["state"] == "delivered"), "{page}");
    // Only the oldest pending delivery of each channel was retried; the ones
    // behind it waited their turn and went through at the first attempt.
    let retried: Vec<&str> = items
        .iter()
        .filter(|d| d["attempts"].as_array().unwrap().len() > 1)
        .map(|d| d["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(retried, ["channel.updated", "session.init"], "{page}");
    let only_live = app.get(&format!("/api/v1/webhooks/{other_id}/deliveries")).await;
    let kinds: Vec<&str> =
        only_live["items"].as_array().unwrap().iter().map(|d| d["event_type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["session.live"]);
    app.appliance.shutdown().await;
}
