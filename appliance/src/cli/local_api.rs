//! The running appliance's REST API over its control socket, as the CLI
//! calls it: reqwest over the Unix socket, JSON in and out (the same API
//! integrators use), and a problem+json answer turned into an error that
//! says what the server said.

use std::path::{Path, PathBuf};

use anyhow::Context;
use reqwest::Method;
use serde::de::DeserializeOwned;

use crate::http::control_socket;

/// How long one call may take before the CLI gives up on the server.
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A client of the server on the control socket.
#[derive(Debug)]
pub struct LocalApi {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    socket: PathBuf,
}

/// The problem details of a refusal, as far as the CLI shows them.
#[derive(Debug, serde::Deserialize)]
struct Problem {
    detail: String,
    #[serde(default)]
    field: Option<String>,
}

impl LocalApi {
    /// The API of the appliance serving `data_dir`, or `None` when none runs
    /// (no socket, or a stale one nobody listens on).
    pub fn connect(data_dir: &Path) -> anyhow::Result<Option<LocalApi>> {
        let socket = control_socket::path(data_dir);
        match std::os::unix::net::UnixStream::connect(&socket) {
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused) => {
                return Ok(None);
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => anyhow::bail!(
                "cannot reach the running appliance on {}: {e}; run this as the user the appliance runs as",
                socket.display()
            ),
            Err(e) => anyhow::bail!("cannot reach the running appliance on {}: {e}", socket.display()),
        }
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let client = reqwest::Client::builder().unix_socket(socket.as_path()).timeout(CALL_TIMEOUT).build()?;
        Ok(Some(LocalApi { runtime, client, socket }))
    }

    /// `method` on `/api/v1/<segments...>` (each segment percent-encoded)
    /// with an optional JSON body; the JSON answer, `None` for 204.
    pub fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<Option<T>> {
        // The host is not used to route (the socket is); it only fills the Host header.
        let mut url = reqwest::Url::parse("http://appliance/api/v1").expect("a valid base URL");
        url.path_segments_mut().expect("an http URL has a path").extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut request = self.client.request(method, url);
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_string());
        }
        let (status, bytes) = self
            .runtime
            .block_on(async {
                let response = request.send().await?;
                let status = response.status();
                Ok::<_, reqwest::Error>((status, response.bytes().await?))
            })
            .with_context(|| format!("the running appliance on {} did not answer", self.socket.display()))?;
        if !status.is_success() {
            let problem: Problem = serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Problem { detail: format!("the appliance answered {status}"), field: None });
            match problem.field {
                Some(field) => anyhow::bail!("{field}: {}", problem.detail),
                None => anyhow::bail!("{}", problem.detail),
            }
        }
        if bytes.is_empty() {
            return Ok(None);
        }
        let value = serde_json::from_slice(&bytes).context("the running appliance answered unexpected JSON")?;
        Ok(Some(value))
    }

    /// Every item of a paged list at `/api/v1/<segments...>`.
    pub fn list<T: DeserializeOwned>(&self, segments: &[&str]) -> anyhow::Result<Vec<T>> {
        #[derive(serde::Deserialize)]
        struct Page<T> {
            items: Vec<T>,
            next_cursor: Option<String>,
        }
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = vec![("limit", "500")];
            if let Some(cursor) = &cursor {
                query.push(("cursor", cursor));
            }
            let page: Page<T> =
                self.call(Method::GET, segments, &query, None)?.context("the running appliance sent no list")?;
            all.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(all),
            }
        }
    }
}
