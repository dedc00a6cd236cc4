//! Debian's Prometheus as a test tool: `promtool` checks an exposition or a
//! rules file, and a real `prometheus` server (its own temporary directory,
//! a free loopback port, a 1 s scrape interval) scrapes an appliance and
//! answers PromQL over its HTTP API. The server is killed when dropped.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

use crate::{STEP_TIMEOUT, eventually, have_tool};

/// Whether `promtool` and `prometheus` run; otherwise skips (see `skip`).
pub fn have_prometheus() -> bool {
    have_tool("promtool", "--version", "apt install prometheus; scripts/deps.sh installs it")
        && have_tool("prometheus", "--version", "apt install prometheus; scripts/deps.sh installs it")
}

/// `promtool check metrics` on `exposition`: its exit status and what it printed.
pub async fn promtool_check_metrics(exposition: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(exposition.as_bytes()).await.expect("promtool reads the exposition");
    drop(stdin);
    let output = tokio::time::timeout(STEP_TIMEOUT, child.wait_with_output()).await.expect("promtool ends").unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// `promtool check rules FILE`: its exit status and what it printed.
pub async fn promtool_check_rules(file: &std::path::Path) -> (bool, String) {
    let output = Command::new("promtool").args(["check", "rules"]).arg(file).output().await.expect("promtool runs");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// A Prometheus server scraping one target.
pub struct PrometheusServer {
    child: Child,
    pub port: u16,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl PrometheusServer {
    /// Starts a server that scrapes `target` (`host:port`) at `/metrics`
    /// every second as job `appliance`, with `bearer` as its token if given;
    /// returns once it answers its readiness endpoint.
    pub async fn start(target: &str, bearer: Option<&str>) -> PrometheusServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: appliance\n    \
             scrape_timeout: 1s\n    static_configs:\n      - targets: ['{target}']\n"
        );
        if let Some(token) = bearer {
            config.push_str(&format!("    authorization:\n      type: Bearer\n      credentials: '{token}'\n"));
        }
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("config written");
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().unwrap().port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("prometheus starts");
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
        let server = PrometheusServer { child, port, http, _dir: dir };
        let ready = eventually(STEP_TIMEOUT, || async {
            let response = server.http.get(server.url("/-/ready")).send().await.ok()?;
            response.status().is_success().then_some(())
        })
        .await;
        assert!(ready.is_some(), "prometheus did not become ready on port {port}");
        server
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// An instant PromQL query: the `result` vector (empty when nothing matches).
    pub async fn query(&self, promql: &str) -> Vec<Value> {
        let response =
            self.http.get(self.url("/api/v1/query")).query(&[("query", promql)]).send().await.expect("query sent");
        let body: Value = response.json().await.expect("query answer is JSON");
        assert_eq!(body["status"], "success", "{promql}: {body}");
        body["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// Whether the server still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// The value of an instant-vector sample (`[time, "value"]`).
pub fn sample_value(sample: &Value) -> Option<f64> {
    sample["value"][1].as_str()?.parse().ok()
}
