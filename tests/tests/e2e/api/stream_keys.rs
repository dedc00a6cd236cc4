//! The stream key is a write-level secret (whoever has it can publish): a
//! read token never sees it nor the publish URL that contains it, in the
//! list or the channel; write tokens and the console's session do; webhook
//! payloads (and the event log, which shows them) never carry it; and the
//! OpenAPI document says so.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::webhooks::{Received, Receiver, SECRET};
use support::{STEP_TIMEOUT, TestAppliance, eventually};

const PASSWORD: &str = "the console password";

/// Whether `value` holds the key anywhere (in any field, as any part of a string).
fn mentions(value: &Value, key: &str) -> bool {
    value.to_string().contains(key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_tokens_and_webhooks_never_see_stream_keys_write_scope_and_the_console_do() {
    let app = TestAppliance::start_with(|c| {
        appliance::http::console::password::set(&c.data_dir, PASSWORD).expect("admin password set");
    })
    .await;
    let received = Arc::new(Mutex::new(Received::default()));
    let (_receiver, addr) = Receiver::start("127.0.0.1:0".parse().unwrap(), received.clone()).await;
    let hook = json!({"url": format!("http://{addr}/hook"), "secret": SECRET});
    assert_eq!(app.write("POST", "/api/v1/webhooks", Some(hook)).await.status, 201);

    let created = app.create_channel(json!({"name": "secret", "start": true})).await;
    let key = created["stream_key"].as_str().expect("the creator (write scope) sees the key").to_string();
    assert!(created["publish_url"].as_str().unwrap().ends_with(&key));
    let rotated = app.write("POST", "/api/v1/channels/secret/rotate-key", None).await;
    assert_eq!(rotated.status, 200);
    let key = rotated.body["stream_key"].as_str().unwrap().to_string();

    // Read token: neither the key nor the publish URL, in the channel or the list.
    let read_one = app.call("GET", "/api/v1/channels/secret", Some(&app.read_token), None).await;
    let read_list = app.call("GET", "/api/v1/channels", Some(&app.read_token), None).await;
    assert_eq!((read_one.status, read_list.status), (200, 200));
    for body in [&read_one.body, &read_list.body["items"][0]] {
        assert_eq!(body["name"], "secret");
        assert!(body.get("stream_key").is_none() && body.get("publish_url").is_none(), "{body}");
        assert!(body["playback_url"].is_string(), "the rest of the channel is there: {body}");
    }
    assert!(!mentions(&read_one.body, &key) && !mentions(&read_list.body, &key));

    // Write token: both.
    let write_one = app.write("GET", "/api/v1/channels/secret", None).await;
    let write_list = app.write("GET", "/api/v1/channels", None).await;
    assert_eq!(write_one.body["stream_key"], key.as_str());
    assert_eq!(write_list.body["items"][0]["stream_key"], key.as_str());
    assert!(write_one.body["publish_url"].as_str().unwrap().ends_with(&key));

    // The console's session is the admin: it sees the key to copy it.
    let signed_in = app
        .http
        .post(app.url("/console/api/session"))
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .expect("sign-in");
    assert_eq!(signed_in.status().as_u16(), 200);
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let console = app.http.get(app.url("/api/v1/channels/secret")).header("cookie", cookie).send().await.unwrap();
    assert_eq!(support::Reply::read(console).await.body["stream_key"], key.as_str());

    // Webhook payloads (channel.created, channel.started, the rotation ...) and the event log never carry it.
    let arrivals = eventually(STEP_TIMEOUT, || async {
        let arrivals = received.lock().unwrap().arrivals.clone();
        (arrivals.iter().filter(|a| a.channel == "secret").count() >= 2).then_some(arrivals)
    })
    .await
    .expect("the channel's events are delivered");
    for arrival in &arrivals {
        assert!(!mentions(&arrival.event, &key), "a webhook payload carries the key: {}", arrival.event);
        assert!(arrival.event["data"].get("stream_key").is_none());
    }
    let events = app.call("GET", "/api/v1/events", Some(&app.write_token), None).await;
    assert!(!events.body["items"].as_array().unwrap().is_empty());
    assert!(!mentions(&events.body, &key), "the event log carries the key");

    // The OpenAPI document says who sees it.
    let openapi = app.call("GET", "/api/v1/openapi.json", Some(&app.read_token), None).await;
    let described = openapi.body["components"]["schemas"]["ChannelResource"]["properties"]["stream_key"]["description"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(described.contains("operators and admins") && described.contains("absent for viewers"), "{described}");
}
