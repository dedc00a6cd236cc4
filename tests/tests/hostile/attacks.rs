//! Hostile clients on the same LAN (issue 11), each in small, bounded form
//! against an appliance with a live channel: a console sign-in flood, slow
//! HTTP headers, RTMP connections buffering partial messages before they
//! publish, RTMP slots held by idle sockets, a read token asking for stream
//! keys, publish churn, and a wrong-key flood. Under each attack the live
//! channel keeps publishing parts, the health check answers on a new
//! connection, the process's memory stays under a bound, and a publisher
//! with a valid key gets in.
//!
//! The tests run one at a time (`SERIAL`), so that the memory figures are
//! one attack's and two cores are not shared by seven publishers. The
//! process uses the product's allocator (jemalloc), and its warnings are
//! captured, to count the refusal lines of the wrong-key flood.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::connections::resident_bytes;
use media::LatencyMode;
use support::{MediaPlaylist, Publish, STEP_TIMEOUT, TestAppliance, eventually, finish, have_ffmpeg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::process::Child;

/// One attack at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Growth of resident memory allowed during an attack (the issue saw 3.3 GB
/// from sign-ins and 0.5 GB from 40 RTMP clients; measured here: under 40
/// MB). Loose enough for tests of other modules running in this process at
/// the same time, should this file join a larger test binary.
const RSS_BOUND: u64 = 384 << 20;

// ---------------------------------------------------------------- the stage

/// Warning lines of every appliance in this process.
fn captured_warnings() -> &'static Mutex<Vec<String>> {
    static LINES: OnceLock<Arc<Mutex<Vec<String>>>> = OnceLock::new();
    LINES.get_or_init(|| {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .with_writer(move || Capture(sink.clone()))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        lines
    })
}

/// A log line writer into the captured lines.
struct Capture(Arc<Mutex<Vec<String>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend(text.lines().map(String::from));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A TCP connection to `to` from the loopback address 127.0.`net`.`host`.
async fn connect_from(net: u8, host: u8, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, net, host)), 0))?;
    tokio::time::timeout(STEP_TIMEOUT, socket.connect(to)).await.map_err(|_| std::io::ErrorKind::TimedOut)?
}

/// Reads and discards until the server closes `stream`; whether it did within `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(limit, async {
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                return;
            }
        }
    })
    .await
    .is_ok()
}

/// Clients that each hold a connection from one of 127.0.`net`.1..=`hosts`
/// (`hold` returns true when the server closed it) and reconnect, after a
/// short pause, whenever the server closes it, until stopped.
struct Swarm {
    closed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Swarm {
    fn start<F, Fut>(clients: u32, (net, hosts): (u8, u32), to: SocketAddr, hold: F) -> Swarm
    where
        F: Fn(TcpStream, Arc<AtomicBool>) -> Fut + Clone + Send + 'static,
        Fut: std::future::Future<Output = bool> + Send,
    {
        let (closed, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let tasks = (0..clients)
            .map(|i| {
                let (closed, stop, hold) = (closed.clone(), stop.clone(), hold.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        if let Ok(stream) = connect_from(net, 1 + (i % hosts) as u8, to).await
                            && hold(stream, stop.clone()).await
                        {
                            closed.fetch_add(1, Ordering::Relaxed);
                        }
                        // Reopened at once, but not in a busy loop: a scanner, not a CPU benchmark.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                })
            })
            .collect();
        Swarm { closed, stop, tasks }
    }

    /// Connections the server has closed so far.
    fn closed(&self) -> u64 {
        self.closed.load(Ordering::Relaxed)
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = tokio::time::timeout(STEP_TIMEOUT, task).await;
        }
    }
}

/// An appliance with the live channel `onair` (a real `ffmpeg` publishing),
/// and the checks every attack is held to.
struct Stage {
    _serial: tokio::sync::MutexGuard<'static, ()>,
    app: TestAppliance,
    _publisher: Child,
    media: String,
    last_part: (u64, usize),
    rss_before: u64,
    rss_peak: u64,
    checks: u32,
}

impl Stage {
    /// The stage, once no other attack runs; none (the test skips) without `ffmpeg`.
    async fn start(adjust: impl FnOnce(&mut appliance::Config)) -> Option<Stage> {
        let serial = SERIAL.lock().await;
        if !have_ffmpeg() {
            return None;
        }
        captured_warnings();
        let app = TestAppliance::start_with(adjust).await;
        let channel = app.add_channel("onair", LatencyMode::UltraLow);
        let live = Publish { seconds: 120.0, size: "320x180", fps: 25, ..Publish::default() };
        let publisher = live.start(&app.rtmp_url(&channel.stream_key));
        let media = app.media_playlist_path("onair", None).await;
        let first = app.playlist_until(&media, |p| p.last_part().is_some()).await;
        let rss_before = resident_bytes();
        let last_part = first.last_part().expect("a part");
        Some(Stage {
            _serial: serial,
            app,
            _publisher: publisher,
            media,
            last_part,
            rss_before,
            rss_peak: rss_before,
            checks: 0,
        })
    }

    /// While under attack: the health check answers on a new connection, the
    /// live playlist answers with parts newer than at the last check, and
    /// memory is within the bound.
    async fn still_serving(&mut self, during: &str) {
        let fresh = reqwest::Client::builder().timeout(STEP_TIMEOUT).pool_max_idle_per_host(0).build().unwrap();
        let health = fresh.get(self.app.url("/api/v1/health")).send().await;
        let status = health.map(|r| r.status().as_u16()).unwrap_or_else(|e| panic!("{during}: health: {e}"));
        assert_eq!(status, 200, "{during}: the health check");
        let since = self.last_part;
        let newer = eventually(STEP_TIMEOUT, || async {
            let response = fresh.get(self.app.url(&self.media)).send().await.ok()?;
            let playlist = (response.status() == 200).then_some(response.text().await.ok()?)?;
            let last = MediaPlaylist::parse(&playlist).last_part()?;
            (last > since).then_some(last)
        })
        .await;
        self.last_part = newer.unwrap_or_else(|| panic!("{during}: no new part after {since:?}"));
        let rss = resident_bytes();
        self.rss_peak = self.rss_peak.max(rss);
        assert!(
            rss < self.rss_before + RSS_BOUND,
            "{during}: RSS {} MB, {} MB before",
            rss >> 20,
            self.rss_before >> 20
        );
        self.checks += 1;
    }

    /// A publisher with a valid key on a channel of its own gets in and goes live.
    async fn valid_publisher_gets_in(&self, name: &str, during: &str) {
        let channel = self.app.add_channel(name, LatencyMode::UltraLow);
        let newcomer = Publish { seconds: 3.0, size: "320x180", fps: 25, ..Publish::default() };
        let publisher = newcomer.start(&self.app.rtmp_url(&channel.stream_key));
        let live = eventually(STEP_TIMEOUT, || async {
            let (status, _) = self.app.get_text(&format!("/hls/{name}/index.m3u8")).await;
            (status == 200).then_some(())
        })
        .await;
        assert!(live.is_some(), "{during}: a publisher with a valid key did not get in");
        let (ok, stderr) = finish(publisher).await;
        assert!(ok, "{during}: the valid publisher failed: {stderr}");
    }

    fn report(&self, attack: &str, figures: &str) {
        eprintln!(
            "hostile {attack}: {figures}; RSS {} MB before, {} MB at most; {} checks passed",
            self.rss_before >> 20,
            self.rss_peak >> 20,
            self.checks
        );
    }
}

// ---------------------------------------------------------- 1. sign-in flood

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_sign_in_flood_is_refused_at_once() {
    const PASSWORD: &str = "the admin's own password";
    let Some(mut stage) = Stage::start(|c| {
        appliance::http::console::password::set(&c.data_dir, PASSWORD).expect("admin password");
    })
    .await
    else {
        return;
    };
    let url = stage.app.url("/console/api/session");
    let sign_in = |net: u8, host: u8, password: &'static str| {
        let client = reqwest::Client::builder()
            .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, net, host)))
            .timeout(STEP_TIMEOUT)
            .build()
            .unwrap();
        let url = url.clone();
        async move {
            let response = client
                .post(url)
                .header("content-type", "application/json")
                .body(serde_json::json!({"password": password}).to_string())
                .send()
                .await;
            let response = response.expect("every sign-in is answered");
            let retry = response.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            (response.status().as_u16(), retry)
        }
    };
    // 100 at once from one address and 100 from twenty, while the checks run.
    let flood: Vec<_> =
        (0..200u8).map(|i| if i < 100 { sign_in(1, 2, "guess") } else { sign_in(2, 1 + i % 20, "guess") }).collect();
    let flood = tokio::spawn(futures_util::future::join_all(flood));
    stage.still_serving("a sign-in flood").await;
    let answers = flood.await.unwrap();
    let refused = answers.iter().filter(|(status, _)| *status == 429).count();
    assert!(answers.iter().all(|(s, r)| *s != 429 || r.is_some()), "every 429 says when to retry");
    assert!(answers.iter().all(|(s, _)| *s != 200 && *s < 500), "{answers:?}");
    assert!(refused >= 150, "most are refused at once: {refused} of 200");
    stage.still_serving("after a sign-in flood").await;
    // The admin, from elsewhere, honours Retry-After and gets in.
    let mut tries = 0;
    loop {
        let (status, retry) = sign_in(3, 1, PASSWORD).await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 429);
        tries += 1;
        assert!(tries <= 10, "the admin never got in");
        tokio::time::sleep(Duration::from_secs(retry.unwrap_or(1))).await;
    }
    stage.valid_publisher_gets_in("newcomer", "a sign-in flood").await;
    stage.report("sign-in flood", &format!("{refused} of 200 refused at once, the admin in after {tries} refusals"));
}

// --------------------------------------------------------- 2. slow headers

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_http_headers_are_cut_by_the_header_timeout() {
    let Some(mut stage) = Stage::start(|c| c.http.header_timeout_ms = 2000).await else { return };
    // 300 clients from four addresses, one header byte every 500 ms, reconnecting when cut.
    let slow = Swarm::start(
        300,
        (4, 4),
        stage.app.appliance.http_addr,
        |mut stream: TcpStream, stop: Arc<AtomicBool>| async move {
            let head = b"GET /api/v1/health HTTP/1.1\r\nHost: appliance\r\nX-Slow: ";
            let mut buf = [0u8; 512];
            for byte in head.iter().chain(std::iter::repeat(&b'a')) {
                if stop.load(Ordering::Relaxed) {
                    return false;
                }
                if stream.write_all(&[*byte]).await.is_err() {
                    return true;
                }
                if let Ok(Ok(0) | Err(_)) =
                    tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buf)).await
                {
                    return true;
                }
            }
            false
        },
    );
    eventually(STEP_TIMEOUT, || async { (stage.app.appliance.http_connections.open() >= 270).then_some(()) })
        .await
        .expect("the slow connections are accepted");
    stage.still_serving("slow headers").await;
    stage.valid_publisher_gets_in("newcomer", "slow headers").await;
    let all_cut = eventually(STEP_TIMEOUT, || async { (slow.closed() >= 300).then_some(()) }).await;
    assert!(all_cut.is_some(), "only {} slow connections were cut", slow.closed());
    stage.still_serving("slow headers, after the cuts").await;
    let cut = slow.closed();
    slow.stop().await;
    let open =
        eventually(STEP_TIMEOUT, || async { (stage.app.appliance.http_connections.open() <= 2).then_some(()) }).await;
    assert!(open.is_some(), "connections left open: {}", stage.app.appliance.http_connections.open());
    stage.report("slow headers", &format!("{cut} connections cut by the header timeout"));
}

// ------------------------------------------- 3. RTMP partial messages before publish

/// The simple RTMP handshake (C0 C1, S0 S1 S2, C2).
async fn rtmp_handshake(stream: &mut TcpStream) -> std::io::Result<()> {
    let mut c0c1 = vec![3u8; 1537];
    c0c1[1..9].fill(0);
    stream.write_all(&c0c1).await?;
    let mut s0s1s2 = vec![0u8; 1 + 2 * 1536];
    stream.read_exact(&mut s0s1s2).await?;
    stream.write_all(&s0s1s2[1..1537]).await
}

/// Before any publish: on every chunk stream a one-byte header can name, an
/// 8 KiB data message stopped one 128-byte chunk short, then a 16 MiB video
/// message begun: what a client holding the server's memory would send.
fn partial_messages() -> Vec<u8> {
    let mut out = Vec::new();
    for stream in 3u8..64 {
        let length = 8192u32.to_be_bytes();
        out.extend_from_slice(&[stream, 0, 0, 0, length[1], length[2], length[3], 18, 0, 0, 0, 0]);
        for chunk in 0..63 {
            if chunk > 0 {
                out.push(0xc0 | stream);
            }
            out.extend_from_slice(&[0x42; 128]);
        }
    }
    out.extend_from_slice(&[0x04, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0]);
    out.extend_from_slice(&[0x17; 128]);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtmp_clients_cannot_buffer_megabytes_before_they_publish() {
    let Some(mut stage) = Stage::start(|c| {
        c.rtmp.publish_timeout_ms = 60_000;
        c.rtmp.connect_timeout_ms = 60_000;
    })
    .await
    else {
        return;
    };
    let to = stage.app.appliance.rtmp_addr;
    let payload: Arc<[u8]> = partial_messages().into();
    // 100 clients from five addresses: 48 MB of partial messages (and 1.6 GB declared) without the caps.
    let clients: Vec<_> = (0..100u8)
        .map(|i| {
            let payload = payload.clone();
            tokio::spawn(async move {
                let mut stream = connect_from(5, 1 + i % 5, to).await.ok()?;
                if rtmp_handshake(&mut stream).await.is_err() {
                    return Some(true); // closed at once: over the per-address or unauthenticated cap
                }
                let _ = stream.write_all(&payload).await;
                Some(closed_within(&mut stream, STEP_TIMEOUT).await)
            })
        })
        .collect();
    stage.still_serving("partial RTMP messages").await;
    stage.valid_publisher_gets_in("newcomer", "partial RTMP messages").await;
    let mut closed = 0;
    for client in clients {
        if let Ok(Some(true)) = client.await {
            closed += 1;
        }
    }
    assert!(closed >= 90, "the server closed only {closed} of 100 clients");
    stage.still_serving("after partial RTMP messages").await;
    stage.report("partial RTMP messages", &format!("{closed} of 100 clients closed by the server"));
}

// ------------------------------------------------ 4. RTMP slots held by idle sockets

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_rtmp_sockets_do_not_lock_out_publishers() {
    let Some(mut stage) = Stage::start(|_| {}).await else { return };
    // 300 idle sockets from six addresses, each reopened when closed (more than the 256 slots).
    let idle = Swarm::start(
        300,
        (6, 6),
        stage.app.appliance.rtmp_addr,
        |mut stream: TcpStream, stop: Arc<AtomicBool>| async move {
            while !stop.load(Ordering::Relaxed) {
                if closed_within(&mut stream, Duration::from_millis(500)).await {
                    return true;
                }
            }
            false
        },
    );
    eventually(STEP_TIMEOUT, || async { (idle.closed() >= 100).then_some(()) })
        .await
        .expect("the idle sockets beyond the caps are closed");
    for round in 0..2 {
        stage.valid_publisher_gets_in(&format!("newcomer{round}"), "idle RTMP sockets").await;
        stage.still_serving("idle RTMP sockets").await;
    }
    let closed = idle.closed();
    idle.stop().await;
    stage.report("idle RTMP sockets", &format!("{closed} idle sockets closed"));
}

// -------------------------------------------------- 5. a read token and stream keys

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_token_never_sees_stream_keys() {
    let Some(mut stage) = Stage::start(|_| {}).await else { return };
    let store = &stage.app.appliance.store;
    let (_, read) = store.create_token("hostile-read", appliance::state::Scope::Read).unwrap();
    let (_, write) = store.create_token("hostile-write", appliance::state::Scope::Write).unwrap();
    let key = store.get("onair").unwrap().unwrap().stream_key;
    let get = |token: &str, path: &str| stage.app.http.get(stage.app.url(path)).bearer_auth(token.to_string()).send();
    for path in ["/api/v1/channels/onair", "/api/v1/channels"] {
        let text = get(&read, path).await.unwrap().text().await.unwrap();
        assert!(text.contains("onair") && !text.contains(&key), "{path} with a read token: {text}");
        assert!(!text.contains("stream_key") && !text.contains("publish_url"), "{text}");
        let text = get(&write, path).await.unwrap().text().await.unwrap();
        assert!(text.contains(&key), "{path} with a write token shows the key");
    }
    stage.still_serving("a read token").await;
    stage.report("read token", "no stream key or publish URL in its view");
}

// ------------------------------------------------------------- 6. publish churn

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_bounded_over_publish_churn() {
    let Some(mut stage) = Stage::start(|_| {}).await else { return };
    let channel = stage.app.add_channel("churn", LatencyMode::UltraLow);
    let url = stage.app.rtmp_url(&channel.stream_key);
    let cycle = Publish { seconds: 1.0, size: "160x90", fps: 25, realtime: false, ..Publish::default() };
    let mut after = Vec::new();
    for round in 0..10 {
        let (ok, stderr) = finish(cycle.start(&url)).await;
        assert!(ok, "publish {round} failed: {stderr}");
        after.push(resident_bytes());
    }
    stage.still_serving("publish churn").await;
    let (warm, last) = (after[1], after[after.len() - 1]);
    eprintln!("RSS after each publish (MB): {:?}", after.iter().map(|r| r >> 20).collect::<Vec<_>>());
    assert!(last < warm + (48 << 20), "RSS grew from {} MB to {} MB over 8 publishes", warm >> 20, last >> 20);
    stage.valid_publisher_gets_in("newcomer", "publish churn").await;
    stage.report(
        "publish churn",
        &format!("RSS {} MB after the 2nd publish, {} MB after the 10th", warm >> 20, last >> 20),
    );
}

// ----------------------------------------------------------- 7. wrong-key flood

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_flood_is_logged_as_a_count_not_a_line_each() {
    let Some(mut stage) = Stage::start(|_| {}).await else { return };
    let refusal_lines = || {
        let lines = captured_warnings().lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().filter(|l| l.contains("publish refused")).count()
    };
    let before = refusal_lines();
    // 24 real publishers with wrong keys, six at a time (every one from 127.0.0.1).
    let wrong = Publish { seconds: 2.0, size: "160x90", fps: 25, ..Publish::default() };
    for batch in 0..4 {
        let publishers: Vec<_> =
            (0..6).map(|i| wrong.start(&stage.app.rtmp_url(&format!("hostile-guess-{batch}-{i}")))).collect();
        for publisher in publishers {
            let (ok, _) = finish(publisher).await;
            assert!(!ok, "a wrong key was accepted");
        }
        stage.still_serving("a wrong-key flood").await;
    }
    stage.valid_publisher_gets_in("newcomer", "a wrong-key flood").await;
    let lines = refusal_lines() - before;
    assert!((1..=2).contains(&lines), "24 refusals from one address made {lines} log lines, not one and a count");
    stage.report("wrong-key flood", &format!("24 refusals, {lines} log line(s)"));
}
