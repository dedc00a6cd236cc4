//! Chromium through the Playwright drivers in `tests/player` and
//! `tests/console` (node scripts that report one JSON object).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// The Playwright driver folder `tests/<name>` (hls.js player, console walk)
/// with the npm `packages` it needs beside Playwright, when it and Debian's
/// Chromium are installed; otherwise the test skips ([`crate::skip`]: loudly,
/// and a failure under `CI=true`).
pub fn browser_driver(name: &str, packages: &[&str]) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        crate::skip(&format!("Chromium is not installed at {chromium} (scripts/deps.sh installs it; or set CHROMIUM)"));
        return None;
    }
    for package in std::iter::once("playwright-core").chain(packages.iter().copied()) {
        if !dir.join("node_modules").join(package).is_dir() {
            crate::skip(&format!("tests/{name}/node_modules lacks {package} (scripts/deps.sh installs it)"));
            return None;
        }
    }
    Some(dir)
}

/// `target/test-artifacts/<sub>` (screenshots, reports), created.
pub fn artifacts_dir(sub: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts").join(sub);
    std::fs::create_dir_all(&dir).expect("the artifacts directory");
    dir
}

/// Runs a Playwright driver script (`node <script> <args>`) for at most
/// `limit` and returns its report: the JSON object on its last stdout line.
pub async fn run_browser_script(script: &Path, args: &[&str], limit: Duration) -> serde_json::Value {
    let run = tokio::process::Command::new("node")
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output =
        tokio::time::timeout(limit, run).await.expect("the browser script finishes in time").expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{} failed: {}\n{stdout}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let report = serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("a JSON report on the last line");
    eprintln!("{} report: {report}", script.file_name().unwrap_or_default().to_string_lossy());
    report
}

/// A Playwright driver script that talks while it runs: each line it prints
/// is a JSON message (publish now, inject a fault, ...) the test acts on, and
/// the last one is its report.
pub struct BrowserScript {
    name: String,
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    last: String,
}

impl BrowserScript {
    /// Starts `node <script> <args>` (its stderr goes to the test's).
    pub fn start(script: &Path, args: &[&std::ffi::OsStr]) -> BrowserScript {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new("node")
            .arg(script)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        let name = script.file_name().unwrap_or_default().to_string_lossy().into_owned();
        BrowserScript { name, child, lines, last: String::new() }
    }

    /// The next message (`Value::Null` for a line that is not JSON); `None` once the script's output ends.
    pub async fn next_message(&mut self) -> Option<serde_json::Value> {
        let line = self.lines.next_line().await.expect("read the script's output")?;
        let message = serde_json::from_str(&line).unwrap_or_default();
        self.last = line;
        Some(message)
    }

    /// Waits for the script to exit successfully; returns its report (the last line).
    pub async fn report(mut self) -> serde_json::Value {
        let status = self.child.wait().await.expect("node exits");
        assert!(status.success(), "{} failed", self.name);
        serde_json::from_str(&self.last).unwrap_or_else(|_| panic!("{}: no JSON report on the last line", self.name))
    }
}
