//! Identities of each role for the access tests: API tokens made through the
//! API by the admin (write) token, console sessions signed in over HTTP, and
//! the live event feed's answer, whose body never ends.

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

/// A console session signed in over HTTP: its cookie and CSRF token.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    pub cookie: String,
    pub csrf: String,
    /// What the sign-in answered (`user`, `role`, `csrf_token`).
    pub body: Value,
}

impl TestAppliance {
    /// `POST /console/api/session` as `user`, from `forwarded_for` (an
    /// `X-Forwarded-For` address, for appliances that trust loopback as a proxy).
    pub async fn console_sign_in_reply(
        &self,
        user: &str,
        password: &str,
        forwarded_for: Option<&str>,
    ) -> reqwest::Response {
        let mut request =
            self.http.post(self.url("/console/api/session")).json(&json!({"user": user, "password": password}));
        if let Some(address) = forwarded_for {
            request = request.header("x-forwarded-for", address);
        }
        request.send().await.expect("sign-in answered")
    }

    /// Signs in to the console as `user`; panics unless it succeeds.
    pub async fn console_sign_in(&self, user: &str, password: &str) -> ConsoleSession {
        let reply = self.console_sign_in_reply(user, password, None).await;
        assert_eq!(reply.status(), 200, "{user} signs in");
        let set = reply.headers()["set-cookie"].to_str().unwrap().to_string();
        let cookie = set.split(';').next().unwrap().to_string();
        let body: Value = reply.json().await.unwrap();
        let csrf = body["csrf_token"].as_str().expect("csrf token").to_string();
        ConsoleSession { cookie, csrf, body }
    }

    /// An API call made with a console session (its CSRF token on every method but GET).
    pub async fn console_call(&self, session: &ConsoleSession, method: &str, path: &str, body: Option<Value>) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.http.request(method.clone(), self.url(path)).header("cookie", &session.cookie);
        if method != reqwest::Method::GET {
            request = request.header("x-csrf-token", &session.csrf);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        Reply::read(request.send().await.expect("answered")).await
    }
}
