//! Issue 11, item 4: a flood of idle sockets, from one address and from
//! several, cannot lock publishers with a valid key out.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ingest::IngestConfig;
use support::{Ffmpeg, Flow, Harness, RawClient, eventually, within};
use tokio::io::AsyncReadExt;

const SECOND: Duration = Duration::from_secs(1);

/// Keeps `sockets` idle connections open from `source`, opening a new one
/// whenever the server closes one, until `stop`.
fn flood(
    addr: std::net::SocketAddr,
    source: IpAddr,
    sockets: usize,
    stop: Arc<AtomicBool>,
    opened: Arc<AtomicU64>,
) -> tokio::task::JoinSet<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..sockets {
        let (stop, opened) = (stop.clone(), opened.clone());
        tasks.spawn(async move {
            let mut buf = [0u8; 64];
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut client) = RawClient::connect_from(addr, source).await else {
                    // The flood's pace when a connect fails: retry shortly, as a flooder does.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                opened.fetch_add(1, Ordering::Relaxed);
                // Idle until the server closes us (or the test ends).
                while !stop.load(Ordering::Relaxed) {
                    let read = tokio::time::timeout(Duration::from_millis(200), client.stream.read(&mut buf)).await;
                    if let Ok(Ok(0) | Err(_)) = read {
                        break;
                    }
                }
                // A real flood reopens at once; a pause keeps this shared machine (and its ports) usable.
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
    }
    tasks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_socket_floods_do_not_lock_publishers_out() {
    require_ffmpeg!();
    let config = IngestConfig {
        max_connections: 48,
        max_unauthenticated: 24,
        max_unauthenticated_per_address: 6,
        connect_deadline: 2 * SECOND,
        publish_deadline: 4 * SECOND,
        ..IngestConfig::default()
    };
    let keys = ["key-a", "key-b", "key-c", "key-d"];
    let mut h = Harness::start(&keys, config.clone()).await;
    let (stop, opened) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    // 150 sockets from 127.0.0.2, and 15 from each of 127.0.0.3 to 127.0.0.12: 300 in all.
    let mut floods = vec![flood(h.addr(), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), 150, stop.clone(), opened.clone())];
    for last in 3..=12 {
        let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, last));
        floods.push(flood(h.addr(), source, 15, stop.clone(), opened.clone()));
    }
    eventually(20 * SECOND, "the flood to fill the unauthenticated budget", || {
        let stats = h.server.stats();
        stats.unauthenticated == config.max_unauthenticated && stats.refused_per_address > 0
    })
    .await;

    // Publishers with a valid key, one after another, all get in while the flood goes on.
    let mut publishers = Vec::new();
    for key in keys {
        let ffmpeg = Ffmpeg::publish_test_pattern(&h.url(key), 6, true, &[]);
        let grant = h.next_grant(20 * SECOND).await;
        assert_eq!(grant.key, key);
        let flow = Flow::watch(grant.rx);
        eventually(10 * SECOND, "units from the publisher", || flow.units() > 10).await;
        let stats = h.server.stats();
        assert!(stats.open <= config.max_connections && stats.unauthenticated <= config.max_unauthenticated);
        println!("{key} is in; {stats:?}");
        publishers.push((ffmpeg, flow));
    }
    let during = opened.load(Ordering::Relaxed);
    eventually(20 * SECOND, "the flood to keep reopening", || opened.load(Ordering::Relaxed) > during + 100).await;
    for (_, flow) in &publishers {
        let before = flow.units();
        eventually(5 * SECOND, "every publish to keep flowing", || flow.units() > before + 10).await;
    }
    let stats = h.server.stats();
    println!("{} flood connections opened; {stats:?}", opened.load(Ordering::Relaxed));
    assert!(stats.displaced > 0 && stats.refused_per_address > 0, "{stats:?}");

    stop.store(true, Ordering::Relaxed);
    for (ffmpeg, flow) in publishers {
        let (status, stderr) = ffmpeg.finish(20 * SECOND).await;
        assert!(status.success(), "{stderr}");
        assert!(flow.units() > 100, "{} units", flow.units());
    }
    for mut tasks in floods {
        within(5 * SECOND, "the flood to stop", async { while tasks.join_next().await.is_some() {} }).await;
    }
    eventually(10 * SECOND, "every publish to end once", || h.handler.unpublished().len() == keys.len()).await;
    eventually(10 * SECOND, "every connection to close", || h.server.connections() == 0).await;
}
