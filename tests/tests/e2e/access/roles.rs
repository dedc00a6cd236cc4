//! Roles of API tokens over real HTTP: an audit of every route of the
//! OpenAPI document with a token of each role (the answer is the role
//! table's: 403 below the route's role, never 401 or 403 at or above it), a
//! token restricted to one channel on every route, and the cases:
//! an operator cannot manage tokens, a viewer cannot stop a channel or see
//! stream keys, a restricted token cannot read another channel (404, as for
//! one that does not exist) and sees only its own in lists and the event
//! feed. Legacy `read`/`write` tokens map to viewer and admin.

use std::time::Duration;

use serde_json::{Value, json};

use support::{Reply, TestAppliance};

const ROLES: [&str; 3] = ["viewer", "operator", "admin"];

/// The policy, written independently of the appliance's table:
/// the lowest role (index in `ROLES`) that may call `method path`; `None`: no credential needed.
fn minimum_role(method: &str, path: &str) -> Option<usize> {
    let admin_only = ["/api/v1/tokens", "/api/v1/console/", "/api/v1/users", "/api/v1/audit", "/api/v1/playback-keys"];
    if path == "/api/v1/health" {
        None
    } else if admin_only.iter().any(|p| path.starts_with(p)) {
        Some(2)
    } else if path.starts_with("/api/v1/webhooks") {
        Some(if method == "get" { 0 } else { 2 })
    } else if method == "get" {
        Some(0)
    } else {
        Some(1)
    }
}

/// Routes that list across channels and show a restricted token only its own (or nothing about channels).
fn filtered_for_restricted(path: &str) -> bool {
    ["/api/v1/channels", "/api/v1/events", "/api/v1/events/stream", "/api/v1/openapi.json", "/api/v1/health"]
        .contains(&path)
}

fn concrete(path: &str, channel: &str) -> String {
    path.replace("{name}", channel).replace("{id}", "x").replace("{session}", "x")
}

async fn operations(app: &TestAppliance) -> Vec<(String, String)> {
    let doc = app.get_json("/api/v1/openapi.json").await;
    let mut ops: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| ops.as_object().unwrap().keys().map(move |m| (m.clone(), path.clone())))
        .collect();
    ops.sort();
    assert!(ops.len() >= 36, "the whole API: {}", ops.len());
    ops
}

async fn send(app: &TestAppliance, method: &str, path: &str, token: &str) -> Reply {
    if path == "/api/v1/events/stream" {
        app.event_stream_reply(token).await
    } else {
        app.call(method, path, Some(token), None).await
    }
}

fn assert_forbidden(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 403, "{what}: {:?}", reply.body);
    assert_eq!(reply.content_type, "application/problem+json", "{what}");
    assert_eq!(reply.body["type"], "urn:appliance:problem:forbidden", "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_each_role_as_the_role_table_says() {
    let app = TestAppliance::start().await;
    for name in ["audit", "mine", "theirs"] {
        app.create_channel(json!({"name": name})).await;
    }
    let restricted = app.token_with_role("operator", &["mine"]).await;
    let tokens: Vec<String> = {
        let mut out = Vec::new();
        for role in ROLES {
            out.push(app.token_with_role(role, &[]).await);
        }
        out
    };
    let ops = operations(&app).await;
    let theirs_before = app.get_json("/api/v1/channels/theirs").await;

    // A token restricted to `mine`: another channel's routes answer 404, appliance-wide ones 403.
    for (method, path) in &ops {
        let what = format!("restricted operator on {method} {path}");
        let reply = send(&app, method, &concrete(path, "theirs"), &restricted).await;
        if path.starts_with("/api/v1/channels/{name}") {
            assert_eq!(reply.status, 404, "{what}: {:?}", reply.body);
            assert_eq!(reply.body["detail"], "channel \"theirs\" does not exist", "{what}");
        } else if filtered_for_restricted(path) {
            assert!(![401, 403].contains(&reply.status) && reply.status < 500, "{what}: {:?}", reply.body);
        } else {
            assert_forbidden(&reply, &what);
        }
    }
    assert_eq!(app.get_json("/api/v1/channels/theirs").await, theirs_before, "refused calls changed nothing");

    // Each role on every route, the lowest first (an operator's calls may change `audit`).
    for (rank, (role, token)) in ROLES.iter().zip(&tokens).enumerate() {
        for (method, path) in &ops {
            let what = format!("{role} on {method} {path}");
            let reply = send(&app, method, &concrete(path, "audit"), token).await;
            assert!(reply.status < 500, "{what}: {:?}", reply.body);
            match minimum_role(method, path) {
                Some(minimum) if rank < minimum => assert_forbidden(&reply, &what),
                _ => assert!(![401, 403].contains(&reply.status), "{what}: {:?}", reply.body),
            }
        }
    }
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_cannot_manage_tokens_and_viewers_cannot_stop_a_channel_or_see_its_key() {
    let app = TestAppliance::start().await;
    app.create_channel(json!({"name": "studio", "start": true})).await;
    let operator = app.token_with_role("operator", &[]).await;
    let viewer = app.token_with_role("viewer", &[]).await;

    let made = app.call("POST", "/api/v1/tokens", Some(&operator), Some(json!({"name": "x", "role": "viewer"}))).await;
    assert_forbidden(&made, "an operator creating a token");
    assert_eq!(made.body["detail"], "this operation needs the admin role (the caller has operator)");
    assert_forbidden(&app.call("GET", "/api/v1/tokens", Some(&operator), None).await, "an operator listing tokens");
    let hook = json!({"url": "http://127.0.0.1:9/hook"});
    assert_forbidden(&app.call("POST", "/api/v1/webhooks", Some(&operator), Some(hook)).await, "operator webhook");

    let stop = app.call("POST", "/api/v1/channels/studio/stop", Some(&viewer), None).await;
    assert_forbidden(&stop, "a viewer stopping a channel");
    let seen = app.call("GET", "/api/v1/channels/studio", Some(&viewer), None).await.body;
    assert_eq!(seen["state"], "active", "still active");
    assert!(seen.get("stream_key").is_none() && seen.get("publish_url").is_none(), "no key for a viewer: {seen}");
    let listed = app.call("GET", "/api/v1/channels", Some(&viewer), None).await.body;
    assert!(listed["items"][0].get("stream_key").is_none(), "nor in lists");

    // An operator sees the key, stops and rotates.
    let seen = app.call("GET", "/api/v1/channels/studio", Some(&operator), None).await.body;
    assert!(seen["stream_key"].as_str().is_some_and(|k| !k.is_empty()), "{seen}");
    assert_eq!(app.call("POST", "/api/v1/channels/studio/stop", Some(&operator), None).await.status, 200);
    assert_eq!(app.get_json("/api/v1/channels/studio").await["state"], "stopped");
    let rotated = app.call("POST", "/api/v1/channels/studio/rotate-key", Some(&operator), None).await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_have_roles_and_legacy_scopes_map_to_viewer_and_admin() {
    let app = TestAppliance::start().await;
    let cases = [
        (json!({"name": "a", "scope": "read"}), "viewer", "read"),
        (json!({"name": "b", "scope": "write"}), "admin", "write"),
        (json!({"name": "c", "role": "operator"}), "operator", "write"),
        (json!({"name": "d", "role": "viewer", "scope": "read"}), "viewer", "read"),
    ];
    for (body, role, scope) in cases {
        let made = app.write("POST", "/api/v1/tokens", Some(body.clone())).await;
        assert_eq!(made.status, 201, "{body}: {:?}", made.body);
        assert_eq!((made.body["role"].as_str(), made.body["scope"].as_str()), (Some(role), Some(scope)), "{body}");
        assert!(made.body["channels"].is_null());
    }
    let refused = [
        (json!({"name": "e"}), "role"),
        (json!({"name": "f", "role": "viewer", "scope": "write"}), "scope"),
        (json!({"name": "g", "role": "root"}), "role"),
        (json!({"name": "h", "role": "admin", "channels": ["mine"]}), "channels"),
        (json!({"name": "i", "role": "viewer", "channels": []}), "channels"),
        (json!({"name": "j", "role": "viewer", "channels": ["Not A Name"]}), "channels[0]"),
    ];
    for (body, field) in refused {
        let reply = app.write("POST", "/api/v1/tokens", Some(body.clone())).await;
        assert_eq!((reply.status, reply.body["field"].as_str()), (400, Some(field)), "{body}: {:?}", reply.body);
    }
    // The test harness's own tokens, made with the legacy scopes, are a viewer and an admin.
    let listed = app.write("GET", "/api/v1/tokens?limit=100", None).await.body;
    let role_of =
        |name: &str| listed["items"].as_array().unwrap().iter().find(|t| t["name"] == name).map(|t| t["role"].clone());
    assert_eq!(role_of("tests-read"), Some(json!("viewer")));
    assert_eq!(role_of("tests-write"), Some(json!("admin")));
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_restricted_token_sees_and_changes_only_its_channels() {
    let app = TestAppliance::start().await;
    app.create_channel(json!({"name": "mine"})).await;
    app.create_channel(json!({"name": "theirs"})).await;
    let viewer = app.token_with_role("viewer", &["mine"]).await;
    let operator = app.token_with_role("operator", &["mine", "next"]).await;

    // Another channel is answered exactly as one that does not exist.
    let other = app.call("GET", "/api/v1/channels/theirs", Some(&viewer), None).await;
    let ghost = app.call("GET", "/api/v1/channels/ghost", Some(&app.write_token), None).await;
    assert_eq!((other.status, ghost.status), (404, 404));
    assert_eq!(other.body["type"], ghost.body["type"]);
    assert_eq!(other.body["detail"].as_str().unwrap().replace("theirs", "ghost"), ghost.body["detail"]);
    assert_eq!(app.call("GET", "/api/v1/channels/theirs/sessions", Some(&viewer), None).await.status, 404);
    assert_eq!(app.call("GET", "/api/v1/channels/mine", Some(&viewer), None).await.status, 200);

    let names = |page: &Value| -> Vec<String> {
        page["items"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_string()).collect()
    };
    let listed = app.call("GET", "/api/v1/channels", Some(&viewer), None).await;
    assert_eq!(names(&listed.body), ["mine"]);
    assert_forbidden(&app.call("GET", "/api/v1/encoders", Some(&viewer), None).await, "appliance-wide route");

    // The operator may create a channel of its list only, and change only its own.
    let refused = app.call("POST", "/api/v1/channels", Some(&operator), Some(json!({"name": "elsewhere"}))).await;
    assert_forbidden(&refused, "creating a channel outside the list");
    let created = app.call("POST", "/api/v1/channels", Some(&operator), Some(json!({"name": "next"}))).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(app.call("POST", "/api/v1/channels/theirs/start", Some(&operator), None).await.status, 404);
    assert_eq!(app.call("DELETE", "/api/v1/channels/theirs", Some(&operator), None).await.status, 404);
    assert_eq!(app.get_json("/api/v1/channels/theirs").await["state"], "idle", "untouched");
    assert_eq!(app.call("POST", "/api/v1/channels/mine/start", Some(&operator), None).await.status, 200);
    let listed = app.call("GET", "/api/v1/channels?limit=1", Some(&operator), None).await.body;
    assert_eq!(names(&listed), ["mine"]);
    let cursor = listed["next_cursor"].as_str().expect("a second page");
    let rest = app.call("GET", &format!("/api/v1/channels?limit=1&cursor={cursor}"), Some(&operator), None).await;
    assert_eq!(names(&rest.body), ["next"]);

    // The event log and the live feed carry only its channels' events.
    let events = app.call("GET", "/api/v1/events?limit=100", Some(&viewer), None).await.body;
    let channels: Vec<&str> =
        events["items"].as_array().unwrap().iter().map(|e| e["channel"].as_str().unwrap()).collect();
    assert!(!channels.is_empty() && channels.iter().all(|c| *c == "mine"), "{channels:?}");
    let mut feed = app.http.get(app.url("/api/v1/events/stream")).bearer_auth(&viewer).send().await.unwrap();
    assert_eq!(feed.status(), 200);
    app.write("POST", "/api/v1/channels/theirs/start", None).await;
    app.write("POST", "/api/v1/channels/mine/stop", None).await;
    let mut text = String::new();
    let first_event = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(chunk) = feed.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if let Some(data) = text.lines().find_map(|l| l.strip_prefix("data:")) {
                return serde_json::from_str::<Value>(data.trim()).unwrap();
            }
        }
        panic!("the feed ended");
    })
    .await
    .expect("an event within 20 s");
    assert_eq!(first_event["channel"], "mine", "theirs was started first but is not in the feed: {first_event}");
    app.appliance.shutdown().await;
}
