//! The refusal's log line, in a test binary of its own: tracing caches
//! per-callsite interest process-wide, so a thread-scoped capturing
//! subscriber misses events while other tests log on other threads.

mod support;

use std::time::Duration;

use ingest::IngestConfig;
use support::{CapturedLogs, Ffmpeg, Harness, eventually};

const SECOND: Duration = Duration::from_secs(1);

/// A current-thread runtime, so the server's tasks log on the capturing thread.
#[tokio::test]
async fn unknown_key_is_refused_with_a_status_and_one_warning() {
    require_ffmpeg!();
    let logs = CapturedLogs::start();
    let h = Harness::start(&["known-key"], IngestConfig::default()).await;
    let key = "unknown-secret-key-987";
    let ffmpeg = Ffmpeg::publish_test_pattern(&h.url(key), 1, false, &[]);
    let (status, stderr) = ffmpeg.finish(10 * SECOND).await;
    assert!(!status.success(), "ffmpeg must fail: {stderr}");
    assert!(stderr.contains("Server error: unknown stream key"), "{stderr}");
    for line in stderr.lines().rev().take(4) {
        println!("ffmpeg said: {line}");
    }
    eventually(3 * SECOND, "the connection to close", || h.server.connections() == 0).await;
    assert!(h.handler.unpublished().is_empty());
    let lines = logs.lines();
    let warnings: Vec<&String> = lines.iter().filter(|l| l.contains(" WARN ")).collect();
    assert_eq!(warnings.len(), 1, "{lines:#?}");
    assert!(warnings[0].contains("publish refused") && warnings[0].contains("unknown stream key"), "{}", warnings[0]);
    assert!(warnings[0].contains("peer=127.0.0.1:"), "{}", warnings[0]);
    assert!(!lines.iter().any(|l| l.contains(key)), "the full key was logged: {lines:#?}");
    assert!(!lines.iter().any(|l| l.contains(" ERROR ")), "{lines:#?}");
}
