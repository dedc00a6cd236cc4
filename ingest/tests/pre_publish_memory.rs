//! Issue 11, item 3: connections that have not published cannot make the
//! server buffer megabytes. In a test binary of its own, so that the
//! process's resident memory is this test's alone.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ingest::IngestConfig;
use support::{Ffmpeg, Flow, Harness, RawClient, eventually, rss_bytes, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECOND: Duration = Duration::from_secs(1);
const MIB: u64 = 1 << 20;
/// Clients that each hold `STREAMS` unfinished messages before publishing.
const CLIENTS: usize = 100;
/// Chunk streams 3..=63, all that a one-byte chunk header can name.
const STREAMS: u8 = 61;
/// The largest message allowed before publish.
const MESSAGE: usize = 8 << 10;
/// Of each message, everything but its last 128-byte chunk.
const SENT: usize = MESSAGE - 128;
const BUDGET: usize = 2 << 20;

/// Chunk streams 3.. each start an 8 KiB AMF0 data message (type 18) in
/// 128-byte chunks and stop one chunk short; then a ping request on the
/// control stream, answered once the server has read everything before it.
fn unfinished_messages() -> Vec<u8> {
    let mut out = Vec::new();
    for csid in 3..3 + STREAMS {
        let len = (MESSAGE as u32).to_be_bytes();
        out.extend_from_slice(&[csid, 0, 0, 0, len[1], len[2], len[3], 18, 0, 0, 0, 0]);
        out.extend_from_slice(&[0x5a; 128]);
        for _ in 1..SENT / 128 {
            out.push(0xc0 | csid);
            out.extend_from_slice(&[0x5a; 128]);
        }
    }
    out.extend_from_slice(&[0x02, 0, 0, 0, 0, 0, 6, 4, 0, 0, 0, 0, 0, 6, 1, 2, 3, 4]);
    out
}

/// Without the shared budget these clients would make the server hold
/// CLIENTS x STREAMS x 8 KiB (about 50 MiB); with it, the unfinished
/// messages of all of them stay within `BUDGET` plus one message each, the
/// clients beyond it are closed, and a publisher with a valid key still gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_messages_before_publish_are_bounded_by_a_shared_budget() {
    require_ffmpeg!();
    let config = IngestConfig {
        max_connections: CLIENTS + 16,
        max_unauthenticated: CLIENTS + 8,
        max_unauthenticated_per_address: CLIENTS + 8,
        connect_deadline: 120 * SECOND,
        publish_deadline: 120 * SECOND,
        unauthenticated_buffer: BUDGET,
        ..IngestConfig::default()
    };
    let mut h = Harness::start(&["valid-key"], config).await;
    let payload: Arc<[u8]> = unfinished_messages().into();
    let rss_before = rss_bytes();

    let (held, shed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let mut client = RawClient::connect(h.addr()).await;
        let (payload, held, shed) = (payload.clone(), held.clone(), shed.clone());
        clients.push(tokio::spawn(async move {
            client.handshake().await;
            let (mut read, mut write) = client.stream.into_split();
            let writer = tokio::spawn(async move {
                let _ = write.write_all(&payload).await;
                write
            });
            // The ping's answer says the server read all of it; a close says it shed us.
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match read.read(&mut buf).await {
                    Ok(0) | Err(_) => {
                        shed.fetch_add(1, Ordering::Relaxed);
                        return None;
                    }
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
                if seen.windows(6).any(|w| w == [0, 7, 1, 2, 3, 4]) {
                    held.fetch_add(1, Ordering::Relaxed);
                    // Keep the connection (and what the server holds for it) open.
                    return Some((read, writer.await.expect("writer")));
                }
            }
        }));
    }
    eventually(60 * SECOND, "every client held or shed", || {
        held.load(Ordering::Relaxed) + shed.load(Ordering::Relaxed) == CLIENTS
    })
    .await;
    let stats = h.server.stats();
    let rss_after = rss_bytes();
    let (held, shed) = (held.load(Ordering::Relaxed), shed.load(Ordering::Relaxed));
    let grown = rss_after.saturating_sub(rss_before);
    println!(
        "{held} clients held, {shed} shed; budget {} of {BUDGET} now, peak {}; RSS {} -> {} MiB (+{:.1} MiB)",
        stats.unauthenticated_buffered,
        stats.unauthenticated_buffered_peak,
        rss_before / MIB,
        rss_after / MIB,
        grown as f64 / MIB as f64
    );
    assert!(stats.unauthenticated_buffered_peak <= BUDGET, "{stats:?}");
    assert!(
        stats.unauthenticated_buffered_peak > BUDGET - MESSAGE,
        "the clients should have spent the budget: {stats:?}"
    );
    assert!(shed > 0 && held > 0, "{held} held, {shed} shed");
    eventually(5 * SECOND, "the shed connections to be gone", || h.server.stats().unauthenticated == held).await;
    // Unbounded, the server would hold about CLIENTS * STREAMS * 8 KiB = 49 MiB more.
    let unbounded = (CLIENTS * STREAMS as usize * MESSAGE) as u64;
    assert!(grown < unbounded / 2, "RSS grew {grown} bytes (unbounded: {unbounded})");

    // A publisher with a valid key gets in while they hold all of it.
    let ffmpeg = Ffmpeg::publish_test_pattern(&h.url("valid-key"), 2, true, &[]);
    let grant = h.next_grant(20 * SECOND).await;
    let flow = Flow::watch(grant.rx);
    eventually(10 * SECOND, "units from the publisher", || flow.units() > 30).await;
    let (status, stderr) = ffmpeg.finish(20 * SECOND).await;
    assert!(status.success(), "{stderr}");
    assert_eq!(h.server.stats().unauthenticated, held, "the publisher left the unauthenticated budget");

    // Closing the clients gives everything back.
    for client in clients {
        drop(within(5 * SECOND, "client task", client).await.expect("client task"));
    }
    eventually(5 * SECOND, "the budget to be given back", || h.server.stats().unauthenticated_buffered == 0).await;
    eventually(5 * SECOND, "every connection to close", || h.server.connections() == 0).await;
}
