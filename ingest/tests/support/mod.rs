//! Shared helpers of the ingest end-to-end tests: a recording `IngestHandler`,
//! the real `ffmpeg` program as a publisher, a raw RTMP client for hostile
//! input, log capture, and polling with deadlines.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ingest::{
    IngestConfig, IngestHandler, PublishGrant, PublishRequest, Refusal, RefusalKind, RtmpServer, RtmpServerHandle,
    StreamMetadata,
};
use media::{EncodedUnit, StreamEvent, TrackInfo, UnitReceiver, unit_channel};
use scuffle_amf0::{Amf0Encoder, Amf0Object, Amf0Value};
use scuffle_rtmp::chunk::Chunk;
use scuffle_rtmp::chunk::writer::ChunkWriter;
use scuffle_rtmp::messages::MessageType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// Returns early from a test when the `ffmpeg` and `ffprobe` programs are
/// missing: loudly, and as a failure where `CI=true` (`test_tools::have_ffmpeg`).
#[macro_export]
macro_rules! require_ffmpeg {
    () => {
        if !test_tools::have_ffmpeg() {
            return;
        }
    };
}

/// Awaits `fut` or panics after `limit` with `what`.
pub async fn within<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, fut).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {limit:?}: {what}"),
    }
}

/// Polls `cond` until it holds, or panics after `limit` (`test_tools::eventually`).
pub async fn eventually(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let held = test_tools::eventually(limit, || std::future::ready(cond().then_some(()))).await;
    assert!(held.is_some(), "timed out after {limit:?}: {what}");
}

/// A granted publish as the test sees it.
pub struct Granted {
    pub publish_id: u64,
    pub app: String,
    pub key: String,
    pub rx: UnitReceiver,
}

/// Grants publishes for known keys (one live publisher per key) and records everything.
pub struct TestHandler {
    keys: HashSet<String>,
    live: Mutex<HashMap<u64, String>>,
    next_id: AtomicU64,
    capacity: usize,
    grants: mpsc::Sender<Granted>,
    pub unpublished: Mutex<Vec<u64>>,
    pub metadata: Mutex<Vec<(u64, StreamMetadata)>>,
    pub requests: Mutex<Vec<PublishRequest>>,
}

impl TestHandler {
    /// A handler granting `keys`, and where its grants arrive.
    pub fn new(keys: &[&str], capacity: usize) -> (Arc<TestHandler>, mpsc::Receiver<Granted>) {
        let (grants_tx, grants) = mpsc::channel(16);
        let handler = Arc::new(TestHandler {
            keys: keys.iter().map(|k| k.to_string()).collect(),
            live: Mutex::default(),
            next_id: AtomicU64::new(1),
            capacity,
            grants: grants_tx,
            unpublished: Mutex::default(),
            metadata: Mutex::default(),
            requests: Mutex::default(),
        });
        (handler, grants)
    }

    pub fn unpublished(&self) -> Vec<u64> {
        self.unpublished.lock().unwrap().clone()
    }
}

impl IngestHandler for TestHandler {
    async fn on_publish(&self, req: PublishRequest) -> Result<PublishGrant, Refusal> {
        self.requests.lock().unwrap().push(req.clone());
        if !self.keys.contains(&req.stream_key) {
            return Err(Refusal::new(RefusalKind::UnknownKey, "unknown stream key"));
        }
        let publish_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut live = self.live.lock().unwrap();
            if live.values().any(|k| *k == req.stream_key) {
                return Err(Refusal::new(RefusalKind::AlreadyLive, "channel test is already live"));
            }
            live.insert(publish_id, req.stream_key.clone());
        }
        let (sink, rx) = unit_channel(self.capacity);
        let _ = self.grants.send(Granted { publish_id, app: req.app, key: req.stream_key, rx }).await;
        Ok(PublishGrant { sink, label: format!("channel-{publish_id}"), publish_id, keyframe_interval: None })
    }

    /// Unknown keys are refused in the SRT listen callback, before `on_publish`.
    fn srt_access(&self, stream_key: &str) -> impl Future<Output = Result<ingest::SrtAccess, Refusal>> + Send {
        std::future::ready(if self.keys.contains(stream_key) {
            Ok(ingest::SrtAccess::default())
        } else {
            Err(Refusal::new(RefusalKind::UnknownKey, "unknown stream key"))
        })
    }

    fn on_metadata(&self, publish_id: u64, meta: &StreamMetadata) {
        self.metadata.lock().unwrap().push((publish_id, meta.clone()));
    }

    fn on_unpublish(&self, publish_id: u64) {
        self.live.lock().unwrap().remove(&publish_id);
        self.unpublished.lock().unwrap().push(publish_id);
    }
}

/// A running server with its recording handler.
pub struct Harness {
    pub server: RtmpServerHandle,
    pub handler: Arc<TestHandler>,
    pub grants: mpsc::Receiver<Granted>,
}

impl Harness {
    pub async fn start(keys: &[&str], config: IngestConfig) -> Self {
        Self::start_with_capacity(keys, config, 4096).await
    }

    pub async fn start_with_capacity(keys: &[&str], config: IngestConfig, capacity: usize) -> Self {
        let (handler, grants) = TestHandler::new(keys, capacity);
        let server = RtmpServer::bind("127.0.0.1:0", config, handler.clone()).await.expect("bind");
        let server = server.spawn().expect("spawn");
        Self { server, handler, grants }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    pub fn url(&self, key: &str) -> String {
        format!("rtmp://{}/live/{key}", self.addr())
    }

    /// The next granted publish.
    pub async fn next_grant(&mut self, limit: Duration) -> Granted {
        within(limit, "a granted publish", self.grants.recv()).await.expect("handler gone")
    }
}

/// Everything a sink received until the publish ended.
#[derive(Default)]
pub struct Received {
    pub tracks: Vec<Arc<[TrackInfo]>>,
    /// Each unit with the index of the announcement it followed.
    pub units: Vec<(usize, EncodedUnit)>,
}

impl Received {
    pub fn of_track(&self, track: usize) -> Vec<&EncodedUnit> {
        self.units.iter().filter(|(_, u)| u.track == track).map(|(_, u)| u).collect()
    }
}

/// Reads a sink until the producer closes it (the publish ended).
pub async fn drain(rx: &mut UnitReceiver, limit: Duration) -> Received {
    within(limit, "the publish to end", async {
        let mut received = Received::default();
        while let Some(event) = rx.recv().await {
            match event {
                StreamEvent::Tracks(tracks) => received.tracks.push(tracks),
                StreamEvent::Unit(unit) => {
                    assert!(!received.tracks.is_empty(), "a unit before the first announcement");
                    received.units.push((received.tracks.len() - 1, unit));
                }
            }
        }
        received
    })
    .await
}

/// Counts units as they arrive (on a task of its own) and notes the longest gap.
#[derive(Default)]
pub struct Flow {
    pub units: AtomicU64,
    pub max_gap_ms: AtomicU64,
    pub closed: std::sync::atomic::AtomicBool,
}

impl Flow {
    pub fn watch(mut rx: UnitReceiver) -> Arc<Flow> {
        let flow = Arc::new(Flow::default());
        let watched = flow.clone();
        tokio::spawn(async move {
            let mut last: Option<Instant> = None;
            while let Some(event) = rx.recv().await {
                if let StreamEvent::Unit(_) = event {
                    let now = Instant::now();
                    if let Some(last) = last {
                        let gap = now.duration_since(last).as_millis() as u64;
                        watched.max_gap_ms.fetch_max(gap, Ordering::Relaxed);
                    }
                    last = Some(now);
                    watched.units.fetch_add(1, Ordering::Relaxed);
                }
            }
            watched.closed.store(true, Ordering::Relaxed);
        });
        flow
    }

    pub fn units(&self) -> u64 {
        self.units.load(Ordering::Relaxed)
    }

    pub fn reset_gap(&self) {
        self.max_gap_ms.store(0, Ordering::Relaxed);
    }

    pub fn max_gap(&self) -> Duration {
        Duration::from_millis(self.max_gap_ms.load(Ordering::Relaxed))
    }
}

/// The real `ffmpeg` program, its stderr kept.
pub struct Ffmpeg {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Ffmpeg {
    pub fn spawn(args: &[&str]) -> Self {
        let mut child = Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-loglevel", "info"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn ffmpeg");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Self { child, stderr }
    }

    /// A test pattern with a tone, H.264 (x264, no B-frames) and AAC, to `url`.
    pub fn publish_test_pattern(url: &str, seconds: u32, realtime: bool, extra: &[&str]) -> Self {
        let seconds = seconds.to_string();
        let mut args: Vec<&str> = Vec::new();
        if realtime {
            args.push("-re");
        }
        args.extend([
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            &seconds,
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
            "-g",
            "30",
            "-pix_fmt",
            "yuv420p",
            "-b:v",
            "500k",
            "-c:a",
            "aac",
            "-b:a",
            "96k",
        ]);
        args.extend(extra);
        args.extend(["-f", "flv", url]);
        Self::spawn(&args)
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for the program to exit.
    pub async fn finish(mut self, limit: Duration) -> (ExitStatus, String) {
        let status = match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(status) => status.expect("wait ffmpeg"),
            Err(_) => panic!("ffmpeg did not exit within {limit:?}; stderr:\n{}", self.stderr()),
        };
        // Let the stderr reader catch the last lines.
        tokio::time::sleep(Duration::from_millis(50)).await;
        (status, self.stderr())
    }

    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Runs a blocking tool (ffprobe, ffmpeg to a file) and returns stdout.
pub async fn run_tool(program: &str, args: &[&str]) -> String {
    let output = within(Duration::from_secs(20), program, Command::new(program).args(args).output())
        .await
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(output.status.success(), "{program} {args:?} failed:\n{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// A scratch directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ingest-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A hand-driven RTMP client for input no real encoder sends.
pub struct RawClient {
    pub stream: TcpStream,
    writer: ChunkWriter,
}

impl RawClient {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = within(Duration::from_secs(2), "tcp connect", TcpStream::connect(addr)).await.expect("connect");
        Self { stream, writer: ChunkWriter::default() }
    }

    /// Connects from `source` (another loopback address, say, to play a
    /// second client machine).
    pub async fn connect_from(addr: SocketAddr, source: std::net::IpAddr) -> std::io::Result<Self> {
        let socket = if source.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        socket.bind(SocketAddr::new(source, 0))?;
        let stream = tokio::time::timeout(Duration::from_secs(2), socket.connect(addr))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        Ok(Self { stream, writer: ChunkWriter::default() })
    }

    /// A `connect` command, without waiting for its answer.
    pub async fn send_connect(&mut self, app: &str) -> std::io::Result<()> {
        let connect: Amf0Object = [
            ("app".into(), Amf0Value::String(app.to_owned().into())),
            ("tcUrl".into(), Amf0Value::String(format!("rtmp://127.0.0.1/{app}").into())),
        ]
        .into_iter()
        .collect();
        self.command(0, &[Amf0Value::String("connect".into()), Amf0Value::Number(1.0), Amf0Value::Object(connect)])
            .await
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// C0 + C1.
    pub fn c0c1() -> Vec<u8> {
        let mut c0c1 = vec![3u8];
        c0c1.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        c0c1.extend((0..1528u32).map(|i| (i * 7) as u8));
        c0c1
    }

    /// A complete simple handshake; the caller must send at least one more
    /// byte before scuffle finishes its side.
    pub async fn handshake(&mut self) {
        self.send_raw(&Self::c0c1()).await.expect("send c0c1");
        let mut s0s1s2 = vec![0u8; 1 + 2 * 1536];
        within(Duration::from_secs(3), "S0 S1 S2", self.stream.read_exact(&mut s0s1s2)).await.expect("read s0s1s2");
        assert_eq!(s0s1s2[0], 3);
        let c2 = s0s1s2[1..1537].to_vec();
        self.send_raw(&c2).await.expect("send c2");
    }

    pub async fn message(
        &mut self,
        msg_type: MessageType,
        stream_id: u32,
        timestamp: u32,
        payload: Vec<u8>,
    ) -> std::io::Result<()> {
        let mut out = Vec::new();
        let csid = if msg_type == MessageType::Video { 6 } else { 3 };
        self.writer.write_chunk(&mut out, Chunk::new(csid, timestamp, msg_type, stream_id, Bytes::from(payload)))?;
        self.stream.write_all(&out).await
    }

    pub async fn command(&mut self, stream_id: u32, values: &[Amf0Value<'_>]) -> std::io::Result<()> {
        let mut payload = Vec::new();
        let mut enc = Amf0Encoder::new(&mut payload);
        for value in values {
            value.encode(&mut enc).expect("encode amf0");
        }
        self.message(MessageType::CommandAMF0, stream_id, 0, payload).await
    }

    /// connect, createStream and publish, without waiting for answers.
    pub async fn start_publish(&mut self, app: &str, key: &str) -> std::io::Result<()> {
        let connect: Amf0Object = [
            ("app".into(), Amf0Value::String(app.to_owned().into())),
            ("type".into(), Amf0Value::String("nonprivate".into())),
            ("tcUrl".into(), Amf0Value::String(format!("rtmp://127.0.0.1/{app}").into())),
        ]
        .into_iter()
        .collect();
        self.command(0, &[Amf0Value::String("connect".into()), Amf0Value::Number(1.0), Amf0Value::Object(connect)])
            .await?;
        self.command(0, &[Amf0Value::String("createStream".into()), Amf0Value::Number(2.0), Amf0Value::Null]).await?;
        self.command(
            1,
            &[
                Amf0Value::String("publish".into()),
                Amf0Value::Number(3.0),
                Amf0Value::Null,
                Amf0Value::String(key.to_owned().into()),
                Amf0Value::String("live".into()),
            ],
        )
        .await
    }

    /// Reads (and discards) until the server closes the connection; returns
    /// how long that took, or `None` if it stayed open for `limit`.
    pub async fn closed_within(&mut self, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        let mut buf = vec![0u8; 16 * 1024];
        let closed = tokio::time::timeout(limit, async {
            loop {
                match self.stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
        closed.ok().map(|()| start.elapsed())
    }
}

/// This process's resident memory, from `/proc/self/status`.
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS in /proc/self/status");
    let kib: u64 = line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("VmRSS in kB");
    kib * 1024
}

/// Log lines written on this thread while the guard lives (use a
/// current-thread runtime so the server's tasks log here too).
pub struct CapturedLogs {
    buf: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

#[derive(Clone)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    pub fn start() -> Self {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = SharedBuf(buf.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        Self { buf, _guard: tracing::subscriber::set_default(subscriber) }
    }

    pub fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).lines().map(str::to_owned).collect()
    }
}
