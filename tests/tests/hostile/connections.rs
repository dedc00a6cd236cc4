//! The HTTP listener under idle and slow clients: a thousand connections
//! dribbling header bytes (reopened as each is cut, from eight loopback
//! addresses) are cut by the header timeout while the health check, a
//! player's playlist fetch and a new RTMP publish all get in; over the caps
//! the longest idle connection makes room, a held blocking playlist reload
//! is never taken for idle, and an idle keep-alive connection is closed; on
//! the HTTPS listener silent and stalled TLS handshakes are cut the same way.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use support::{STEP_TIMEOUT, TestAppliance, eventually, have_ffmpeg, publish};

/// A request head sent one byte at a time; never finished.
const DRIBBLE: &[u8] = b"GET /api/v1/health HTTP/1.1\r\nHost: appliance\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// The process's resident memory in bytes (`VmRSS`).
pub fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

/// Raises this process's open-file limit to at least `wanted` where the hard
/// limit allows; returns the soft limit in force.
pub fn raise_file_limit(wanted: u64) -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let soft = limit.current.unwrap_or(u64::MAX);
    if soft >= wanted {
        return soft;
    }
    let raised = wanted.min(limit.maximum.unwrap_or(u64::MAX));
    match setrlimit(Resource::Nofile, Rlimit { current: Some(raised), maximum: limit.maximum }) {
        Ok(()) => raised,
        Err(_) => soft,
    }
}

/// A TCP connection to `to` from the loopback address 127.0.0.`host`.
pub async fn connect_from(host: u8, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, host)), 0))?;
    socket.connect(to).await
}

/// Whether the server closed `stream` (EOF or reset) within `limit`; bytes it sends are read and ignored.
pub async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// Slow clients: `slots` connections, each sending a request head one byte per
/// `every`, reopened whenever the server cuts it, until stopped.
pub struct Dribblers {
    /// Connections the server has cut so far.
    pub cut: Arc<AtomicU64>,
    /// Connections open from the clients' side now.
    pub open: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Dribblers {
    pub fn start(to: SocketAddr, slots: usize, addresses: u8, every: Duration) -> Dribblers {
        let (cut, open, stop) =
            (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let tasks = (0..slots)
            .map(|slot| {
                let (cut, open, stop) = (cut.clone(), open.clone(), stop.clone());
                let host = 2 + (slot % addresses as usize) as u8;
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let Ok(mut stream) = connect_from(host, to).await else {
                            tokio::time::sleep(every).await;
                            continue;
                        };
                        open.fetch_add(1, Ordering::Relaxed);
                        let mut sent = 0;
                        let mut buf = [0u8; 256];
                        loop {
                            if stop.load(Ordering::Relaxed) {
                                open.fetch_sub(1, Ordering::Relaxed);
                                return;
                            }
                            let byte = [DRIBBLE[sent % DRIBBLE.len()]];
                            sent += 1;
                            if stream.write_all(&byte).await.is_err() {
                                break;
                            }
                            if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(every, stream.read(&mut buf)).await {
                                break;
                            }
                        }
                        open.fetch_sub(1, Ordering::Relaxed);
                        cut.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Dribblers { cut, open, stop, tasks }
    }

    /// Stops every client and closes its connection.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = tokio::time::timeout(STEP_TIMEOUT, task).await;
        }
    }
}

/// A client that opens a new connection per request (no pool): each check is a fresh admission.
fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder().timeout(STEP_TIMEOUT).pool_max_idle_per_host(0).build().expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_dribbling_connections_are_cut_while_health_players_and_publishers_get_in() {
    if !have_ffmpeg() {
        return;
    }
    let slots = 1000;
    let limit = raise_file_limit(3 * slots as u64 + 512);
    assert!(limit >= 2 * slots as u64 + 256, "the open-file limit ({limit}) is too low for this test");
    let app = TestAppliance::start_with(|c| {
        c.http.header_timeout_ms = 3000;
        c.http.idle_timeout_ms = 5000;
    })
    .await;
    let channel = app.create_channel(json!({"name": "onair", "start": true})).await;
    let key = channel["stream_key"].as_str().unwrap().to_string();
    let rss_before = resident_bytes();

    // Eight addresses of 125 connections each: under the per-address cap, so the timeout is what cuts them.
    let attack = Dribblers::start(app.appliance.http_addr, slots, 8, Duration::from_millis(500));
    let held = eventually(STEP_TIMEOUT, || async {
        let open = app.appliance.http_connections.open();
        (open >= slots * 9 / 10).then_some(open)
    })
    .await
    .expect("the dribbling connections are accepted and held");
    eprintln!("dribbling connections held by the server: {held}");

    // While they are held: the health check answers on a new connection,
    let client = fresh_client();
    let health = client.get(app.url("/api/v1/health")).send().await.expect("health answers under attack");
    assert_eq!(health.status().as_u16(), 200);
    // a publisher with a valid key gets in and goes live, and a player fetches its playlists.
    let publisher = publish(&app.rtmp_url(&key), 30.0);
    let media = eventually(STEP_TIMEOUT, || async {
        let response = client.get(app.url("/hls/onair/index.m3u8")).send().await.ok()?;
        let text = (response.status().as_u16() == 200).then_some(response.text().await.ok()?)?;
        text.lines().find(|l| !l.starts_with('#') && !l.is_empty()).map(|uri| format!("/hls/onair/{uri}"))
    })
    .await
    .expect("the channel goes live and its multivariant playlist answers under attack");
    let playlist = client.get(app.url(&media)).send().await.expect("the media playlist answers");
    assert_eq!(playlist.status().as_u16(), 200);
    assert!(playlist.text().await.unwrap().contains("#EXT-X-PART:"), "a live LL-HLS playlist");

    // Every dribbling connection is cut by the header timeout (and reopened by the attacker).
    let cut = eventually(STEP_TIMEOUT, || async {
        let cut = attack.cut.load(Ordering::Relaxed);
        (cut >= slots as u64).then_some(cut)
    })
    .await
    .expect("every dribbling connection is cut within a header timeout");
    let during = (app.appliance.http_connections.open(), attack.open.load(Ordering::Relaxed));
    let rss_during = resident_bytes();
    attack.stop().await;
    let drained =
        eventually(STEP_TIMEOUT, || async { (app.appliance.http_connections.open() <= 2).then_some(()) }).await;
    assert!(drained.is_some(), "connections left open: {}", app.appliance.http_connections.open());
    eprintln!(
        "slow headers: {cut} connections cut; {} open during the attack ({} on the clients' side); \
         RSS {} MB before, {} MB during (this process: server and clients)",
        during.0,
        during.1,
        rss_before >> 20,
        rss_during >> 20
    );
    // A bound that leaves room for the suite's other tests, which run in this process at the same time.
    assert!(rss_during < rss_before + (512 << 20), "RSS grew from {rss_before} to {rss_during}");
    drop(publisher);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_caps_the_longest_idle_connection_makes_room_and_refusals_are_answered() {
    raise_file_limit(1024);
    let app = TestAppliance::start_with(|c| {
        c.http.max_connections = 24;
        c.http.max_connections_per_address = 8;
    })
    .await;
    let to = app.appliance.http_addr;

    // One address: its ninth connection closes its first (idle, never sent a byte).
    let mut first = connect_from(2, to).await.unwrap();
    let mut same: Vec<TcpStream> = Vec::new();
    for _ in 0..7 {
        same.push(connect_from(2, to).await.unwrap());
    }
    eventually(STEP_TIMEOUT, || async { (app.appliance.http_connections.open() == 8).then_some(()) })
        .await
        .expect("8 admitted");
    let _ninth = connect_from(2, to).await.unwrap();
    assert!(closed_within(&mut first, STEP_TIMEOUT).await, "the address's longest idle connection is shed");

    // Fill the rest of the total from other addresses; the health check from yet another still answers.
    let mut others = Vec::new();
    for i in 0..16 {
        others.push(connect_from(3 + (i % 4) as u8, to).await.unwrap());
    }
    let health = fresh_client().get(app.url("/api/v1/health")).send().await.expect("health answers at the cap");
    assert_eq!(health.status().as_u16(), 200);
    assert!(app.appliance.http_connections.shed_count() >= 2);

    // Every connection busy: a newcomer is refused with 503, not left hanging.
    drop((same, others, _ninth));
    eventually(STEP_TIMEOUT, || async { (app.appliance.http_connections.open() == 0).then_some(()) })
        .await
        .expect("all closed");
    let mut busy = Vec::new();
    for i in 0..24u8 {
        // A sign-in whose body never comes: its request is in progress.
        let mut stream = connect_from(10 + i % 3, to).await.unwrap();
        let head = "POST /console/api/session HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n";
        stream.write_all(format!("{head}Content-Length: 100\r\n\r\n{{").as_bytes()).await.unwrap();
        busy.push(stream);
    }
    let connections = &app.appliance.http_connections;
    eventually(STEP_TIMEOUT, || async { (connections.open() == 24 && connections.idle() == 0).then_some(()) })
        .await
        .expect("24 busy");
    let mut refused = connect_from(20, to).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(STEP_TIMEOUT, refused.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503 "), "refused with 503: {answer:?}");
    assert!(app.appliance.http_connections.refused_count() >= 1);

    // What the caps did is in the scrape, per listener, as the registry counted it.
    drop(busy);
    eventually(STEP_TIMEOUT, || async { (connections.open() == 0).then_some(()) }).await.expect("all closed");
    let scrape = fresh_client().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let sample = |series: &str| {
        scrape.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse::<f64>().ok())
    };
    assert_eq!(
        sample(r#"appliance_connections_shed_total{listener="http"}"#),
        Some(connections.shed_count() as f64),
        "{scrape}"
    );
    assert_eq!(
        sample(r#"appliance_connections_refused_total{listener="http"}"#),
        Some(connections.refused_count() as f64)
    );
    assert_eq!(sample(r#"appliance_connections{listener="http"}"#), Some(1.0), "the scrape's own connection");
    assert_eq!(sample(r#"appliance_http_accept_failures_total{listener="http"}"#), Some(0.0));
    assert!(sample(r#"appliance_rtmp_unauthenticated_connections{listener="rtmp"}"#).is_some(), "{scrape}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_blocking_reload_is_never_idle_and_an_idle_keep_alive_connection_is_closed() {
    if !have_ffmpeg() {
        return;
    }
    raise_file_limit(1024);
    let app = TestAppliance::start_with(|c| {
        c.http.max_connections = 16;
        c.http.max_connections_per_address = 16;
        c.http.header_timeout_ms = 1000;
        c.http.idle_timeout_ms = 2000;
    })
    .await;
    let channel = app.create_channel(json!({"name": "held", "start": true})).await;
    let publisher = publish(&app.rtmp_url(channel["stream_key"].as_str().unwrap()), 30.0);
    let media = eventually(STEP_TIMEOUT, || async {
        let (status, text) = app.get_text("/hls/held/index.m3u8").await;
        let uri = text.lines().find(|l| !l.starts_with('#') && !l.is_empty())?.to_string();
        (status == 200).then(|| format!("/hls/held/{uri}"))
    })
    .await
    .expect("the channel goes live");
    let (_, text) = app.get_text(&media).await;
    // The next segment's first part: held for about a segment (longer than the header timeout).
    let msn = text.lines().filter(|l| l.starts_with("#EXTINF:")).count() as u64
        + text.lines().find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:")).unwrap().parse::<u64>().unwrap();
    let blocking = format!("{media}?_HLS_msn={}&_HLS_part=0", msn + 1);
    let mut held = connect_from(2, app.appliance.http_addr).await.unwrap();
    held.write_all(format!("GET {blocking} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes()).await.unwrap();

    // A stream of idle newcomers at the cap, while the reload is held: they shed each other, never it.
    let mut idle = Vec::new();
    for i in 0..40u8 {
        idle.push(connect_from(3 + i % 5, app.appliance.http_addr).await.unwrap());
    }
    let mut head = [0u8; 64];
    let n =
        tokio::time::timeout(STEP_TIMEOUT, held.read(&mut head)).await.expect("the held reload is answered").unwrap();
    let head = String::from_utf8_lossy(&head[..n]);
    assert!(head.starts_with("HTTP/1.1 200"), "the held reload completes: {head:?}");
    assert!(app.appliance.http_connections.shed_count() >= 20);

    // A keep-alive connection that asked once and then says nothing is closed by the idle timeout.
    let mut keep_alive = connect_from(9, app.appliance.http_addr).await.unwrap();
    keep_alive.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
    let mut first = [0u8; 15];
    keep_alive.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200 OK");
    assert!(closed_within(&mut keep_alive, STEP_TIMEOUT).await, "the idle keep-alive connection is closed");
    drop(publisher);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_a_byte_at_a_time_fails_at_the_body_timeout_and_frees_its_connection() {
    let app = TestAppliance::start_with(|c| c.http.body_timeout_ms = 1000).await;
    let mut slow = connect_from(2, app.appliance.http_addr).await.unwrap();
    let head = "POST /console/api/session HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n";
    slow.write_all(format!("{head}Content-Length: 1000\r\n\r\n{{").as_bytes()).await.unwrap();
    // A byte every 200 ms: never idle, never finished.
    let answer = tokio::time::timeout(STEP_TIMEOUT, async {
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            let _ = slow.write_all(b" ").await;
            match tokio::time::timeout(Duration::from_millis(200), slow.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => return answer,
                Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
    })
    .await
    .expect("the slow body is cut and its connection closed");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400 "), "the handler answered the failed body: {answer:?}");
    let freed = eventually(STEP_TIMEOUT, || async { (app.appliance.http_connections.open() == 0).then_some(()) }).await;
    assert!(freed.is_some(), "the connection is not counted any more");
}

/// On the HTTPS listener: sockets that never start (or never finish) a TLS
/// handshake are cut by the header timeout, and a browser-like client still
/// gets HTTP/2 meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_stalled_tls_handshakes_are_cut_while_http2_clients_get_in() {
    if !support::have_tool("curl", "--version", "apt install curl; scripts/deps.sh installs it") {
        return;
    }
    let app = TestAppliance::start_with(|c| {
        c.tls.self_signed = true;
        c.http.header_timeout_ms = 1000;
    })
    .await;
    let https = app.appliance.https_addr.expect("HTTPS on");
    let mut silent = Vec::new();
    for _ in 0..50 {
        silent.push(TcpStream::connect(https).await.unwrap());
    }
    // Half a ClientHello: a record header announcing more than is sent.
    let mut stalled = TcpStream::connect(https).await.unwrap();
    stalled.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).await.unwrap();
    let answered = tokio::process::Command::new("curl")
        .args(["-sk", "--http2", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_version} %{response_code}"])
        .arg(format!("https://{https}/healthz"))
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&answered.stdout), "2 200", "an HTTP/2 client gets in");
    assert!(closed_within(&mut stalled, STEP_TIMEOUT).await, "a stalled handshake is cut");
    for mut s in silent {
        assert!(closed_within(&mut s, STEP_TIMEOUT).await, "a silent socket is cut");
    }
    app.appliance.shutdown().await;
}
