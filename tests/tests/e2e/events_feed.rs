//! The live event feed (`GET /api/v1/events/stream`) as a page or an
//! integrator reads it: server-sent events over a real HTTP client, each
//! change on the box arriving as it happens with its sequence as `id`, and a
//! reconnect with `Last-Event-ID` resuming exactly after the last one seen.

use serde_json::{Value, json};
use support::{STEP_TIMEOUT, TestAppliance};

/// One server-sent event: (id, event, data).
type Sse = (u64, String, Value);

/// Reads events from `response` until `count` have arrived (bounded by `STEP_TIMEOUT`).
async fn read_events(response: &mut reqwest::Response, buffer: &mut String, count: usize) -> Vec<Sse> {
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    while events.len() < count {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let field = |name: &str| block.lines().find_map(|l| l.strip_prefix(name)).map(str::to_string);
            if let (Some(id), Some(event), Some(data)) = (field("id: "), field("event: "), field("data: ")) {
                events.push((id.parse().unwrap(), event, serde_json::from_str(&data).unwrap()));
            }
        }
        if events.len() >= count {
            break;
        }
        let chunk = tokio::time::timeout_at(deadline, response.chunk()).await.expect("events within the deadline");
        buffer.push_str(std::str::from_utf8(&chunk.unwrap().expect("the stream stays open")).unwrap());
    }
    events
}

async fn open(app: &TestAppliance, last_event_id: Option<u64>) -> reqwest::Response {
    let client = reqwest::Client::new(); // no overall timeout: the feed stays open
    let mut request = client.get(app.url("/api/v1/events/stream")).bearer_auth(&app.read_token);
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id.to_string());
    }
    let response = tokio::time::timeout(STEP_TIMEOUT, request.send()).await.expect("answered").unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_arrive_as_they_happen_and_a_reconnect_resumes_after_the_last_seen() {
    let app = TestAppliance::start().await;
    app.create_channel(json!({"name": "before"})).await;
    let mut feed = open(&app, None).await;
    let mut buffer = String::new();
    // Only what happens from now on.
    app.create_channel(json!({"name": "alpha"})).await;
    let first = read_events(&mut feed, &mut buffer, 1).await;
    assert_eq!(first[0].1, "channel.created", "{first:?}");
    assert_eq!(first[0].2["channel"], "alpha");
    assert_eq!(first[0].2["sequence"], first[0].0);
    assert_eq!(app.write("POST", "/api/v1/channels/alpha/start", None).await.status, 200);
    let second = read_events(&mut feed, &mut buffer, 1).await;
    assert_eq!((second[0].1.as_str(), second[0].0), ("channel.started", first[0].0 + 1), "{second:?}");
    drop(feed);

    // Missed while disconnected, then resumed after the last one seen.
    app.create_channel(json!({"name": "beta"})).await;
    app.write("DELETE", "/api/v1/channels/beta", None).await;
    let mut resumed = open(&app, Some(second[0].0)).await;
    let mut buffer = String::new();
    let missed = read_events(&mut resumed, &mut buffer, 2).await;
    let kinds: Vec<(&str, &str)> =
        missed.iter().map(|(_, k, d)| (k.as_str(), d["channel"].as_str().unwrap())).collect();
    assert_eq!(kinds, [("channel.created", "beta"), ("channel.deleted", "beta")]);
    assert_eq!(missed[0].0, second[0].0 + 1);
    // A read token may follow; no token may not.
    let refused = reqwest::Client::new().get(app.url("/api/v1/events/stream")).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    drop(resumed);
}
