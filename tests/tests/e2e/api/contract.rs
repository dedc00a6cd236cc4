//! The API's contract over real HTTP: the OpenAPI document lists exactly the
//! routes the issue asks for; every route but health needs a token and read
//! tokens cannot mutate (a scope audit of every documented operation);
//! revocation is immediate; bad input gets problem+json with the field named
//! and never changes state; lists paginate.

use serde_json::{Value, json};

use support::{Reply, TestAppliance};

/// Every operation the API must offer, as (method, path).
const OPERATIONS: [(&str, &str); 44] = [
    ("get", "/api/v1/health"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/api/v1/channels"),
    ("post", "/api/v1/channels"),
    ("get", "/api/v1/channels/{name}"),
    ("patch", "/api/v1/channels/{name}"),
    ("delete", "/api/v1/channels/{name}"),
    ("post", "/api/v1/channels/{name}/start"),
    ("post", "/api/v1/channels/{name}/stop"),
    ("post", "/api/v1/channels/{name}/rotate-key"),
    ("post", "/api/v1/channels/{name}/playback-tokens"),
    ("get", "/api/v1/playback-keys"),
    ("post", "/api/v1/playback-keys/rotate"),
    ("get", "/api/v1/channels/{name}/sessions"),
    ("get", "/api/v1/channels/{name}/sessions/{id}"),
    ("get", "/api/v1/encoders"),
    ("get", "/api/v1/system"),
    ("get", "/api/v1/alerts"),
    ("get", "/api/v1/events/stream"),
    ("get", "/api/v1/events"),
    ("get", "/api/v1/tokens"),
    ("post", "/api/v1/tokens"),
    ("delete", "/api/v1/tokens/{id}"),
    ("get", "/api/v1/webhooks"),
    ("post", "/api/v1/webhooks"),
    ("get", "/api/v1/webhooks/{id}"),
    ("delete", "/api/v1/webhooks/{id}"),
    ("get", "/api/v1/webhooks/{id}/deliveries"),
    ("put", "/api/v1/console/password"),
    ("get", "/api/v1/channels/{name}/restreams"),
    ("post", "/api/v1/channels/{name}/restreams"),
    ("patch", "/api/v1/channels/{name}/restreams/{id}"),
    ("delete", "/api/v1/channels/{name}/restreams/{id}"),
    ("get", "/api/v1/channels/{name}/recordings"),
    ("get", "/api/v1/channels/{name}/recordings/{session}"),
    ("delete", "/api/v1/channels/{name}/recordings/{session}"),
    ("put", "/api/v1/channels/{name}/recordings/{session}/lock"),
    ("delete", "/api/v1/channels/{name}/recordings/{session}/lock"),
    ("get", "/api/v1/recordings/usage"),
    ("get", "/api/v1/users"),
    ("post", "/api/v1/users"),
    ("patch", "/api/v1/users/{name}"),
    ("put", "/api/v1/users/{name}/password"),
    ("get", "/api/v1/audit"),
];

/// Operations a read token may call (every other one needs write).
fn read_allowed(method: &str, path: &str) -> bool {
    let admin_only = ["/api/v1/tokens", "/api/v1/users", "/api/v1/audit", "/api/v1/playback-keys"];
    method == "get" && !admin_only.iter().any(|p| path.starts_with(p))
}

fn concrete(path: &str) -> String {
    path.replace("{name}", "audit").replace("{id}", "x").replace("{session}", "x")
}

async fn document(app: &TestAppliance) -> Value {
    let reply = app.call("GET", "/api/v1/openapi.json", Some(&app.read_token), None).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.content_type, "application/json");
    reply.body
}

/// The live feed never ends: its status and headers are its answer.
async fn stream_reply(app: &TestAppliance, token: &str) -> Reply {
    let response = app.http.get(app.url("/api/v1/events/stream")).bearer_auth(token).send().await.unwrap();
    let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
    assert_eq!(content_type, "text/event-stream");
    Reply { status: response.status().as_u16(), body: Value::Null, content_type }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_covers_every_route() {
    let app = TestAppliance::start().await;
    let doc = document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| ops.as_object().unwrap().keys().map(move |m| (m.clone(), path.clone())))
        .collect();
    documented.sort();
    let mut wanted: Vec<(String, String)> = OPERATIONS.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    wanted.sort();
    assert_eq!(documented, wanted);
    // Each documented operation exists in the router: it answers neither 404-for-no-route nor 405.
    for (method, path) in OPERATIONS {
        let reply = if path == "/api/v1/events/stream" {
            stream_reply(&app, &app.write_token).await
        } else {
            app.call(method, &concrete(path), Some(&app.write_token), None).await
        };
        assert_ne!(reply.status, 405, "{method} {path}");
        assert_ne!(reply.body["detail"], "no API route has this path", "{method} {path}");
        // Each declares its security: none for health, bearer for the rest.
        let security = &doc["paths"][path][method]["security"];
        if path == "/api/v1/health" {
            assert!(security.is_null(), "{method} {path}");
        } else {
            assert_eq!(security, &json!([{"bearer": []}]), "{method} {path}");
        }
    }
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_but_health_needs_a_token_and_read_tokens_cannot_mutate() {
    let app = TestAppliance::start().await;
    app.create_channel(json!({"name": "audit"})).await;
    let before = app.get_json("/api/v1/channels/audit").await;
    let bogus = format!("{}x", app.write_token);
    for (method, path) in OPERATIONS {
        let url = concrete(path);
        let none = app.call(method, &url, None, None).await;
        let wrong = app.call(method, &url, Some(&bogus), None).await;
        let read = if path == "/api/v1/events/stream" {
            stream_reply(&app, &app.read_token).await
        } else {
            app.call(method, &url, Some(&app.read_token), None).await
        };
        if path == "/api/v1/health" {
            assert_eq!(none.status, 200);
            continue;
        }
        for reply in [&none, &wrong] {
            assert_eq!(reply.status, 401, "{method} {path}: {:?}", reply.body);
            assert_eq!(reply.content_type, "application/problem+json");
            assert_eq!(reply.body["type"], "urn:appliance:problem:unauthorized");
        }
        if read_allowed(method, path) {
            assert!(![401, 403].contains(&read.status), "read token on {method} {path}: {}", read.status);
        } else {
            assert_eq!(read.status, 403, "read token on {method} {path}: {:?}", read.body);
            assert_eq!(read.body["type"], "urn:appliance:problem:forbidden");
        }
    }
    assert_eq!(app.get_json("/api/v1/channels/audit").await, before, "refused calls changed nothing");

    // Tokens made through the API work at once and stop at once when revoked.
    let made = app.write("POST", "/api/v1/tokens", Some(json!({"name": "ci job", "scope": "read"}))).await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    let text = made.body["token"].as_str().unwrap().to_string();
    assert_eq!(app.call("GET", "/api/v1/channels", Some(&text), None).await.status, 200);
    let listed = app.write("GET", "/api/v1/tokens", None).await;
    assert!(
        listed.body.to_string().contains("ci job") && !listed.body.to_string().contains(&text[17..]),
        "no secret listed"
    );
    let id = made.body["id"].as_str().unwrap();
    assert_eq!(app.write("DELETE", &format!("/api/v1/tokens/{id}"), None).await.status, 204);
    assert_eq!(app.call("GET", "/api/v1/channels", Some(&text), None).await.status, 401);
    // A token cannot revoke itself.
    let own = app.appliance.store.authenticate(&app.write_token).unwrap().unwrap().id;
    assert_eq!(app.write("DELETE", &format!("/api/v1/tokens/{own}"), None).await.status, 409);
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_problem_naming_the_field_and_changes_nothing() {
    let app = TestAppliance::start().await;
    app.create_channel(json!({"name": "kept", "latency_mode": "low"})).await;
    let state = || async {
        (
            app.get_json("/api/v1/channels?limit=500").await,
            app.get_json("/api/v1/events?limit=500").await["items"].clone(),
        )
    };
    let before = state().await;
    let huge = "x".repeat(70_000);
    let cases: Vec<(&str, &str, String, u16, Option<&str>)> = vec![
        ("POST", "/api/v1/channels", "{\"name\": ".into(), 400, None),
        ("POST", "/api/v1/channels", "[1, 2]".into(), 400, None),
        ("POST", "/api/v1/channels", json!({"name": 7}).to_string(), 400, Some("name")),
        ("POST", "/api/v1/channels", json!({"name": "ok", "bogus": true}).to_string(), 400, Some("bogus")),
        ("POST", "/api/v1/channels", json!({"name": "Not A Slug"}).to_string(), 400, Some("name")),
        ("POST", "/api/v1/channels", json!({"name": "x".repeat(5000)}).to_string(), 400, Some("name")),
        ("POST", "/api/v1/channels", json!({"name": "ok", "latency_mode": "fast"}).to_string(), 400, Some("latency_mode")),
        ("POST", "/api/v1/channels", json!({"name": "ok", "max_session_seconds": -1}).to_string(), 400, Some("max_session_seconds")),
        ("POST", "/api/v1/channels", json!({"name": "ok", "max_session_seconds": 0}).to_string(), 400, Some("max_session_seconds")),
        ("POST", "/api/v1/channels", json!({"name": "ok", "dvr_window_seconds": 86401}).to_string(), 400, Some("dvr_window_seconds")),
        ("POST", "/api/v1/channels", json!({"name": "ok", "dvr_window_seconds": -1}).to_string(), 400, Some("dvr_window_seconds")),
        (
            "POST",
            "/api/v1/channels",
            json!({"name": "ok", "output": {"kind": "ladder", "ladder": {"rungs": [{"height": 721, "bitrate_kbps": 900}]}}}).to_string(),
            400,
            Some("output.ladder.rungs[0].height"),
        ),
        ("POST", "/api/v1/channels", json!({"name": "ok", "output": {"kind": "passthrough", "x": 1}}).to_string(), 400, Some("output.x")),
        ("POST", "/api/v1/channels", json!({"name": huge}).to_string(), 413, None),
        ("POST", "/api/v1/channels", json!({"name": "kept"}).to_string(), 409, None),
        ("PATCH", "/api/v1/channels/kept", json!({"latency_mode": 3}).to_string(), 400, Some("latency_mode")),
        ("PATCH", "/api/v1/channels/missing", json!({}).to_string(), 404, None),
        ("POST", "/api/v1/webhooks", json!({"url": "ftp://example.com/"}).to_string(), 400, Some("url")),
        ("POST", "/api/v1/webhooks", json!({"url": "http://127.0.0.1:9/", "secret": "short"}).to_string(), 400, Some("secret")),
        ("POST", "/api/v1/webhooks", json!({"url": "http://127.0.0.1:9/", "events": ["nope"]}).to_string(), 400, Some("events[0]")),
        ("POST", "/api/v1/tokens", json!({"name": "x", "scope": "admin"}).to_string(), 400, Some("scope")),
        ("GET", "/api/v1/channels?limit=0", String::new(), 400, Some("limit")),
        ("GET", "/api/v1/channels?offset=2", String::new(), 400, Some("offset")),
        ("GET", "/api/v1/events?cursor=abc", String::new(), 400, Some("cursor")),
        ("GET", "/api/v1/channels/NOPE", String::new(), 404, None),
    ];
    for (method, path, body, status, field) in cases {
        let mut request = app
            .http
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), app.url(path))
            .bearer_auth(&app.write_token);
        if !body.is_empty() {
            request = request.header("content-type", "application/json").body(body.clone());
        }
        let reply = Reply::read(request.send().await.unwrap()).await;
        let shown: String = body.chars().take(80).collect();
        assert_eq!(reply.status, status, "{method} {path} {shown}: {:?}", reply.body);
        assert_eq!(reply.content_type, "application/problem+json", "{method} {path} {shown}");
        assert_eq!(reply.body["status"], status);
        assert!(reply.body["type"].as_str().unwrap().starts_with("urn:appliance:problem:"));
        assert_eq!(reply.body["field"].as_str(), field, "{method} {path} {shown}: {:?}", reply.body);
    }
    // Wrong content type.
    let plain = app
        .http
        .post(app.url("/api/v1/channels"))
        .bearer_auth(&app.write_token)
        .header("content-type", "text/plain")
        .body(json!({"name": "plain"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 415);
    assert_eq!(state().await, before, "no refused request changed state or emitted an event");
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_paginate_with_a_cursor() {
    let app = TestAppliance::start().await;
    for i in 0..7 {
        app.create_channel(json!({"name": format!("ch-{i}")})).await;
    }
    let mut names = Vec::new();
    let mut path = "/api/v1/channels?limit=3".to_string();
    loop {
        let page = app.get_json(&path).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        names.extend(items.iter().map(|c| c["name"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/channels?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(names, (0..7).map(|i| format!("ch-{i}")).collect::<Vec<_>>());
    let events = app.get_json("/api/v1/events?limit=4").await;
    let next = events["next_cursor"].as_str().unwrap();
    let rest = app.get_json(&format!("/api/v1/events?limit=100&cursor={next}")).await;
    assert_eq!(events["items"].as_array().unwrap().len() + rest["items"].as_array().unwrap().len(), 7);
    assert_eq!(rest["items"][0]["sequence"], 5);
    app.appliance.shutdown().await;
}
