//! Support for the control-plane tests: an appliance started in-process on
//! loopback port 0 with its own data directory (a real redb file), API tokens
//! made through the store, a real HTTP client, and the real `ffmpeg` program
//! as publisher.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use appliance::state::Scope;
use appliance::{Appliance, Config};
use serde_json::Value;
use tokio::process::{Child, Command};

/// Every await in a test is bounded by this unless it says otherwise.
pub const STEP: Duration = Duration::from_secs(30);

/// Whether `ffmpeg` exists; tests that need it skip loudly otherwise.
pub fn have_ffmpeg() -> bool {
    let ok = std::process::Command::new("ffmpeg")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: the ffmpeg program is not installed");
    }
    ok
}

/// A test configuration on loopback ports chosen by the OS, in `data`.
pub fn config(data: &Path) -> Config {
    let mut config = Config { data_dir: data.to_path_buf(), ..Config::default() };
    config.rtmp.listen = "127.0.0.1:0".into();
    // A publisher's end ends its session at once (no slate), as these tests expect.
    config.failover.slate_seconds = 0;
    config.http.listen = "127.0.0.1:0".into();
    config.webhooks.retry_base_ms = 200;
    config.webhooks.retry_max_ms = 1000;
    config.webhooks.timeout_ms = 2000;
    // The suite's own traffic (hundreds of calls at once, invalid tokens on
    // purpose, schemathesis) is not what its tests are about: rate limits
    // are out of the way here, and rate_limits.rs sets low ones of its own.
    config.api.read_per_second = 1_000_000;
    config.api.read_burst = 1_000_000;
    config.api.mutation_per_second = 1_000_000;
    config.api.mutation_burst = 1_000_000;
    config.api.auth_failures_per_minute = 1_000_000;
    config.api.auth_failure_burst = 1_000_000;
    config
}

/// An appliance running in this process, with a write and a read token.
pub struct Harness {
    pub appliance: Appliance,
    pub http: reqwest::Client,
    pub write_token: String,
    pub read_token: String,
    pub data: tempfile::TempDir,
}

/// A response: status and JSON body (`Value::Null` when empty or not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub content_type: String,
}

impl Harness {
    pub async fn start() -> Harness {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Harness {
        let data = tempfile::tempdir().expect("temp dir");
        Self::start_in(data, adjust).await
    }

    /// Starts on an existing data directory (restart tests).
    pub async fn start_in(data: tempfile::TempDir, adjust: impl FnOnce(&mut Config)) -> Harness {
        let mut config = config(data.path());
        adjust(&mut config);
        config.validate().expect("test config is valid");
        let appliance = Appliance::start(&config).await.expect("appliance starts");
        let (_, write_token) = appliance.store.create_token("tests-write", Scope::Write).expect("token");
        let (_, read_token) = appliance.store.create_token("tests-read", Scope::Read).expect("token");
        let http = reqwest::Client::builder().timeout(STEP).build().expect("http client");
        Harness { appliance, http, write_token, read_token, data }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.appliance.http_addr)
    }

    pub fn rtmp_url(&self, key: &str) -> String {
        format!("rtmp://{}/live/{key}", self.appliance.rtmp_addr)
    }

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
        Self::reply(response).await
    }

    pub async fn reply(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let bytes = response.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { status, body, content_type }
    }

    /// With the write token.
    pub async fn write(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        self.call(method, path, Some(&self.write_token), body).await
    }

    /// GET with the read token; panics unless 200.
    pub async fn get(&self, path: &str) -> Value {
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
        let page = self.get(&format!("/api/v1/channels/{channel}/sessions?limit=1")).await;
        page["items"].as_array().and_then(|items| items.first().cloned())
    }

    /// Polls the newest session until `done` holds; returns it.
    pub async fn session_until(&self, channel: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        poll(STEP, || async { self.newest_session(channel).await.filter(|s| done(s)) })
            .await
            .unwrap_or_else(|| panic!("channel {channel}: no session became {what}"))
    }

    /// GET of a media or playlist path (no token: the origin is public).
    pub async fn origin_text(&self, path: &str) -> (u16, String) {
        let response = self.http.get(self.url(path)).send().await.expect("origin");
        (response.status().as_u16(), response.text().await.unwrap_or_default())
    }
}

/// Polls `f` every 50 ms until it returns `Some` or `limit` passes.
pub async fn poll<T, F, Fut>(limit: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = f().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts the real `ffmpeg` program publishing a 360p test pattern with a tone to `url` in real time.
pub fn publish(url: &str, seconds: f64) -> Child {
    let mut c = Command::new("ffmpeg");
    c.args(["-hide_banner", "-nostats", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-map", "0", "-map", "1", "-t", &seconds.to_string()])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p"])
        .args(["-g", "30", "-keyint_min", "30", "-sc_threshold", "0"])
        .args(["-c:a", "aac", "-b:a", "96k", "-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c.spawn().expect("ffmpeg starts")
}

/// Waits (bounded) for a publisher to exit; returns whether it succeeded and how long it took.
pub async fn finish(mut child: Child, limit: Duration) -> (bool, Duration) {
    let started = tokio::time::Instant::now();
    let status = tokio::time::timeout(limit, child.wait()).await.expect("publisher exits in time").expect("status");
    (status.success(), started.elapsed())
}

/// Whether the media playlist at `path` has ENDLIST.
pub async fn ended(harness: &Harness, path: &str) -> bool {
    let (status, text) = harness.origin_text(path).await;
    status == 200 && text.contains("#EXT-X-ENDLIST")
}
