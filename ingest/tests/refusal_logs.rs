//! The refusals' log lines, in a test binary of its own: tracing caches
//! per-callsite interest process-wide, so a thread-scoped capturing
//! subscriber misses events while other tests log on other threads.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use ingest::IngestConfig;
use support::{CapturedLogs, Ffmpeg, Harness, RawClient, eventually, within};

const SECOND: Duration = Duration::from_secs(1);

/// A wrong key from `source`, by a raw client that waits for the server to close.
async fn refused_from(h: &Harness, source: IpAddr, key: &str) {
    let mut client = RawClient::connect_from(h.addr(), source).await.expect("connect");
    client.handshake().await;
    client.start_publish("live", key).await.expect("publish");
    assert!(client.closed_within(5 * SECOND).await.is_some(), "the refused client was not closed");
}

/// The value of `field=` in a log line.
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!(" {name}="))? + name.len() + 2;
    line[start..].split_whitespace().next()
}

/// A current-thread runtime, so the server's tasks log on the capturing thread.
/// One real `ffmpeg` refused gets one warning; then a scanner's many refusals
/// from one address are counted into one line per interval, not one each.
#[tokio::test]
async fn refusals_are_logged_once_then_summarised_per_address() {
    require_ffmpeg!();
    let logs = CapturedLogs::start();
    let config = IngestConfig { refusal_log_interval: 2 * SECOND, ..IngestConfig::default() };
    let h = Harness::start(&["known-key"], config).await;
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

    // A scanner: 20 wrong keys from 127.0.0.1 and 3 from 127.0.0.2.
    let (one, two) = (IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
    within(30 * SECOND, "the scanner", async {
        for i in 0..20 {
            refused_from(&h, one, &format!("guess-{i}")).await;
        }
        for i in 0..3 {
            refused_from(&h, two, &format!("guess-{i}")).await;
        }
    })
    .await;
    // Every refusal is accounted for, either in its own line or in a summary.
    let accounted = |lines: &[String]| -> (usize, u64) {
        let firsts = lines.iter().filter(|l| l.contains(" WARN ") && l.contains("publish refused")).count();
        let summarised: u64 = lines
            .iter()
            .filter(|l| l.contains("publish refusals from one address"))
            .map(|l| field(l, "refusals").and_then(|n| n.parse::<u64>().ok()).expect("refusals=N"))
            .sum();
        (firsts, summarised)
    };
    eventually(10 * SECOND, "the summaries", || {
        let (firsts, summarised) = accounted(&logs.lines());
        firsts as u64 + summarised == 24
    })
    .await;
    let lines = logs.lines();
    let warnings: Vec<&String> = lines.iter().filter(|l| l.contains(" WARN ")).collect();
    for line in &warnings {
        println!("{line}");
    }
    let (firsts, _) = accounted(&lines);
    // At least one first line per address; more only if an interval passed quietly in between.
    assert!((2..=4).contains(&firsts), "{warnings:#?}");
    let summary = warnings
        .iter()
        .find(|l| l.contains("publish refusals from one address") && field(l, "address") == Some("127.0.0.1"))
        .expect("a summary for 127.0.0.1");
    assert!(field(summary, "refusals").unwrap().parse::<u64>().unwrap() >= 18, "{summary}");
    assert!(field(summary, "kinds").unwrap().starts_with("unknown_key="), "{summary}");
    assert!(warnings.len() <= 7, "{} warnings for 24 refusals: {warnings:#?}", warnings.len());
    assert!(!lines.iter().any(|l| l.contains("guess-")), "a key was logged: {lines:#?}");
}
