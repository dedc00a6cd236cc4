//! Identities of each role for the access tests: API tokens made through the
//! API by the admin (write) token, and the live event feed's answer, whose
//! body never ends.

use serde_json::{Value, json};

use crate::{Reply, TestAppliance};

impl TestAppliance {
    /// A new token of `role`, restricted to `channels` when some are given; returns its text.
    pub async fn token_with_role(&self, role: &str, channels: &[&str]) -> String {
        let mut body = json!({"name": format!("{role} token"), "role": role});
        if !channels.is_empty() {
            body["channels"] = json!(channels);
        }
        let made = self.write("POST", "/api/v1/tokens", Some(body)).await;
        assert_eq!(made.status, 201, "{role} token: {:?}", made.body);
        made.body["token"].as_str().expect("token text").to_string()
    }

    /// `GET /api/v1/events/stream`'s status and content type (its body never ends).
    pub async fn event_stream_reply(&self, token: &str) -> Reply {
        let response = self.http.get(self.url("/api/v1/events/stream")).bearer_auth(token).send().await.unwrap();
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let status = response.status().as_u16();
        if status != 200 {
            return Reply::read(response).await;
        }
        Reply { status, body: Value::Null, content_type }
    }
}
