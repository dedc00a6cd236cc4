//! The REST API as an integrator calls it: a method, a path, a bearer token
//! (or none) and a JSON body; the reply's status, content type and JSON.

use serde_json::Value;

use crate::{STEP_TIMEOUT, TestAppliance, eventually};

/// A response: status and JSON body (`Value::Null` when empty or not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub content_type: String,
}

impl Reply {
    pub async fn read(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let bytes = response.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { status, body, content_type }
    }
}

impl TestAppliance {
    /// Sends `method path` with `token` (none: no Authorization) and a JSON body.
    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("method");
        let mut request = self.http.request(method.clone(), self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        Reply::read(response).await
    }

    /// With the write token.
    pub async fn write(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        self.call(method, path, Some(&self.write_token), body).await
    }

    /// GET with the read token; panics unless 200.
    pub async fn get_json(&self, path: &str) -> Value {
        let reply = self.call("GET", path, Some(&self.read_token), None).await;
        assert_eq!(reply.status, 200, "GET {path}: {:?}", reply.body);
        reply.body
    }

    /// Creates a channel through the API; returns its resource.
    pub async fn create_channel(&self, body: Value) -> Value {
        let reply = self.write("POST", "/api/v1/channels", Some(body.clone())).await;
        assert_eq!(reply.status, 201, "create {body}: {:?}", reply.body);
        reply.body
    }

    /// The channel's newest session.
    pub async fn newest_session(&self, channel: &str) -> Option<Value> {
        let page = self.get_json(&format!("/api/v1/channels/{channel}/sessions?limit=1")).await;
        page["items"].as_array().and_then(|items| items.first().cloned())
    }

    /// Polls the newest session until `done` holds; returns it.
    pub async fn session_until(&self, channel: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        eventually(STEP_TIMEOUT, || async { self.newest_session(channel).await.filter(|s| done(s)) })
            .await
            .unwrap_or_else(|| panic!("channel {channel}: no session became {what}"))
    }
}
