//! Support for the end-to-end tests: an appliance started in-process on port
//! 0 with its own data directory, the real `ffmpeg` program as publisher, a
//! real HTTP client, an independent LL-HLS playlist parser, and `ffprobe`.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

pub mod edge;

use appliance::{Appliance, Channel, Config};
use media::{ChannelOutput, EncoderPolicy, Ladder, LatencyMode, RenditionSpec, VideoCodec};
use tokio::process::{Child, Command};

/// Every await in a test is bounded by this unless it says otherwise.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// The Playwright driver folder `tests/<name>` (hls.js player, console walk),
/// when it and Debian's Chromium are installed; tests skip loudly otherwise.
pub fn browser_driver(name: &str) -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if std::path::Path::new(&chromium).exists() && dir.join("node_modules/playwright-core").is_dir() {
        return Some(dir);
    }
    eprintln!("skipped: Chromium or tests/{name}/node_modules is missing (scripts/test.sh installs both)");
    None
}

/// Whether `program` runs (`program <version_flag>`). Without it a test
/// skips loudly, or fails under `CI=true`, where every tool must be installed.
pub fn have_tool(program: &str, version_flag: &str, install: &str) -> bool {
    let present = std::process::Command::new(program)
        .arg(version_flag)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !present {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{program} is not installed ({install})");
        eprintln!("skipped: {program} is not installed ({install})");
    }
    present
}

/// Whether `ffmpeg` and `ffprobe` exist; tests that need them skip loudly otherwise.
pub fn have_ffmpeg() -> bool {
    let ok = |p: &str| {
        std::process::Command::new(p)
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let present = ok("ffmpeg") && ok("ffprobe");
    if !present {
        eprintln!("skipped: the ffmpeg and ffprobe programs are not installed");
    }
    present
}

/// An appliance running in this process on loopback ports chosen by the OS.
pub struct TestAppliance {
    pub appliance: Appliance,
    pub http: reqwest::Client,
    _data: tempfile::TempDir,
}

impl TestAppliance {
    pub async fn start() -> TestAppliance {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestAppliance {
        let data = tempfile::tempdir().expect("temp dir");
        let mut config = Config { data_dir: data.path().to_path_buf(), ..Config::default() };
        config.rtmp.listen = "127.0.0.1:0".into();
        // A publisher's end ends its session at once (no slate) unless a test sets a grace time.
        config.failover.slate_seconds = 0;
        config.http.listen = "127.0.0.1:0".into();
        adjust(&mut config);
        config.validate().expect("test config is valid");
        let appliance = Appliance::start(&config).await.expect("appliance starts");
        let http = reqwest::Client::builder().timeout(STEP_TIMEOUT).build().expect("http client");
        TestAppliance { appliance, http, _data: data }
    }

    /// An appliance whose console admin password is `password` (the console tests sign in with it).
    pub async fn start_with_admin_password(password: &str) -> TestAppliance {
        Self::start_with(|config| {
            appliance::http::console::password::set(&config.data_dir, password).expect("admin password set");
        })
        .await
    }

    pub fn add_channel(&self, name: &str, mode: LatencyMode) -> Channel {
        self.appliance.store.add(name, mode).expect("channel added")
    }

    /// A ladder channel of H.264 `rungs` (height, kbit/s), with the source when `include_source`.
    pub fn add_ladder_channel(
        &self,
        name: &str,
        mode: LatencyMode,
        rungs: &[(u32, u32)],
        include_source: bool,
        policy: EncoderPolicy,
    ) -> appliance::state::Channel {
        let rungs = rungs
            .iter()
            .map(|&(height, bitrate_kbps)| RenditionSpec {
                height,
                bitrate_kbps,
                codec: VideoCodec::H264,
                max_fps: None,
            })
            .collect();
        let new = appliance::state::NewChannel {
            name: name.to_string(),
            latency_mode: mode,
            output: ChannelOutput::Ladder { ladder: Ladder { rungs, include_source } },
            encoder_policy: policy,
            ..appliance::state::NewChannel::default()
        };
        self.appliance.store.create_channel(new, true).expect("ladder channel created")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.appliance.http_addr)
    }

    pub fn rtmp_url(&self, key: &str) -> String {
        format!("rtmp://{}/live/{key}", self.appliance.rtmp_addr)
    }

    pub async fn get(&self, path_or_url: &str) -> reqwest::Response {
        let url = if path_or_url.starts_with("http") { path_or_url.to_string() } else { self.url(path_or_url) };
        self.http.get(&url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"))
    }

    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let response = self.get(path).await;
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    pub async fn get_bytes(&self, path: &str) -> Vec<u8> {
        let response = self.get(path).await;
        assert_eq!(response.status().as_u16(), 200, "GET {path}");
        response.bytes().await.expect("body").to_vec()
    }

    /// Polls the multivariant playlist until the channel's newest session is
    /// `different_from` something else, and returns that session's media playlist path.
    pub async fn media_playlist_path(&self, channel: &str, different_from: Option<&str>) -> String {
        poll(STEP_TIMEOUT, || async {
            let (status, text) = self.get_text(&format!("/hls/{channel}/index.m3u8")).await;
            if status != 200 {
                return None;
            }
            let uri = text.lines().find(|l| !l.starts_with('#') && !l.is_empty())?.to_string();
            let path = format!("/hls/{channel}/{uri}");
            (Some(path.as_str()) != different_from).then_some(path)
        })
        .await
        .unwrap_or_else(|| panic!("channel {channel} never got a playable stream"))
    }

    /// The init segment and every complete segment of the media playlist at
    /// `path` (as `playlist` lists them), concatenated into `file`.
    pub async fn download_rendition(&self, path: &str, playlist: &MediaPlaylist, file: &Path) {
        use std::io::Write;
        let base = &path[..path.rfind('/').unwrap() + 1];
        let mut out = std::fs::File::create(file).unwrap();
        let map = playlist.segments[0].map.clone().expect("EXT-X-MAP");
        out.write_all(&self.get_bytes(&format!("{base}{map}")).await).unwrap();
        for segment in &playlist.segments {
            assert_eq!(segment.map.as_deref(), Some(map.as_str()), "one init for the whole session");
            let uri = segment.uri.as_ref().expect("complete segments only");
            out.write_all(&self.get_bytes(&format!("{base}{uri}")).await).unwrap();
        }
    }

    /// Waits until the media playlist at `path` satisfies `done`, returning it.
    pub async fn playlist_until(&self, path: &str, done: impl Fn(&MediaPlaylist) -> bool) -> MediaPlaylist {
        poll(STEP_TIMEOUT, || async {
            let (status, text) = self.get_text(path).await;
            let playlist = (status == 200).then(|| MediaPlaylist::parse(&text))?;
            done(&playlist).then_some(playlist)
        })
        .await
        .unwrap_or_else(|| panic!("playlist {path} never reached the expected state"))
    }
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

/// The directory of a media playlist path, for resolving its relative URIs.
pub fn base(path: &str) -> &str {
    &path[..path.rfind('/').map_or(0, |i| i + 1)]
}

/// Polls `f` every 50 ms until it returns `Some` or `limit` passes.
pub async fn poll<T, F, Fut>(limit: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = f().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How the test publisher encodes.
#[derive(Debug, Clone)]
pub struct Publish {
    pub seconds: f64,
    pub video: bool,
    pub audio: bool,
    /// x264 B-frames (0 keeps `-tune zerolatency`).
    pub bframes: u32,
    /// Send in real time (`-re`); otherwise as fast as ffmpeg can.
    pub realtime: bool,
    pub size: &'static str,
    pub fps: u32,
    /// The audio encoder (AAC unless a test asks for another).
    pub audio_codec: PublishAudio,
}

/// Audio codecs the test publisher can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PublishAudio {
    /// FFmpeg's AAC-LC at 48 kHz, 96 kbit/s.
    #[default]
    Aac,
    /// libmp3lame at 44.1 kHz, 128 kbit/s (FLV sound format 2).
    Mp3,
    /// G.711 A-law, 8 kHz mono (FLV sound format 7).
    G711ALaw,
}

impl PublishAudio {
    fn args(self) -> &'static [&'static str] {
        match self {
            PublishAudio::Aac => &["-c:a", "aac", "-b:a", "96k"],
            PublishAudio::Mp3 => &["-c:a", "libmp3lame", "-b:a", "128k", "-ar", "44100"],
            PublishAudio::G711ALaw => &["-c:a", "pcm_alaw", "-ar", "8000", "-ac", "1"],
        }
    }
}

impl Default for Publish {
    fn default() -> Self {
        Self {
            seconds: 4.0,
            video: true,
            audio: true,
            bframes: 0,
            realtime: true,
            size: "640x360",
            fps: 30,
            audio_codec: PublishAudio::Aac,
        }
    }
}

impl Publish {
    /// Starts the real `ffmpeg` program publishing to `url`.
    pub fn start(&self, url: &str) -> Child {
        let mut c = Command::new("ffmpeg");
        c.args(["-hide_banner", "-nostats", "-loglevel", "error"]);
        if self.realtime {
            c.arg("-re");
        }
        let mut maps = Vec::new();
        if self.video {
            c.args(["-f", "lavfi", "-i", &format!("testsrc2=size={}:rate={}", self.size, self.fps)]);
            maps.push(maps.len());
        }
        if self.audio {
            c.args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]);
            maps.push(maps.len());
        }
        for input in maps {
            c.args(["-map", &input.to_string()]);
        }
        c.args(["-t", &self.seconds.to_string()]);
        if self.video {
            c.args(["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]);
            let gop = self.fps.to_string();
            c.args(["-g", &gop, "-keyint_min", &gop, "-sc_threshold", "0"]);
            if self.bframes == 0 {
                c.args(["-tune", "zerolatency"]);
            } else {
                c.args(["-bf", &self.bframes.to_string()]);
            }
        }
        if self.audio {
            c.args(self.audio_codec.args());
        }
        c.args(["-f", "flv", url]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).kill_on_drop(true);
        c.spawn().expect("ffmpeg starts")
    }
}

/// Waits for a publisher to exit; returns (success, stderr).
pub async fn finish(child: Child) -> (bool, String) {
    let output = tokio::time::timeout(STEP_TIMEOUT, child.wait_with_output())
        .await
        .expect("publisher exits in time")
        .expect("publisher output");
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// One `EXT-X-PART`.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub duration: f64,
    pub uri: String,
    pub independent: bool,
}

/// One media segment as listed (complete, or the trailing one with only parts).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Segment {
    pub msn: u64,
    pub duration: Option<f64>,
    pub uri: Option<String>,
    pub parts: Vec<Part>,
    pub program_date_time: Option<String>,
    pub map: Option<String>,
    pub discontinuity: bool,
}

/// An independent parse of a media playlist, for checking our output against the RFC.
#[derive(Debug, Clone, Default)]
pub struct MediaPlaylist {
    pub version: Option<u32>,
    pub target_duration: Option<u64>,
    pub media_sequence: u64,
    pub part_target: Option<f64>,
    pub server_control: HashMap<String, String>,
    pub segments: Vec<Segment>,
    pub preload_hint: Option<String>,
    pub skipped: u64,
    pub rendition_reports: Vec<String>,
    pub ended: bool,
}

/// Splits `A=B,C="D,E"` attribute lists.
pub fn attributes(list: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = list;
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else { break };
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            (&quoted[..end], quoted[end..].trim_start_matches('"'))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        out.insert(key.trim().to_string(), value.to_string());
        rest = next.strip_prefix(',').unwrap_or(next);
    }
    out
}

impl MediaPlaylist {
    pub fn parse(text: &str) -> MediaPlaylist {
        assert!(text.starts_with("#EXTM3U\n"), "playlist must start with #EXTM3U: {text}");
        let mut p = MediaPlaylist::default();
        let mut current = Segment::default();
        let mut map = None;
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("#EXT-X-VERSION:") {
                p.version = v.parse().ok();
            } else if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
                p.target_duration = Some(v.parse().expect("integer TARGETDURATION"));
            } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
                p.media_sequence = v.parse().expect("integer MEDIA-SEQUENCE");
            } else if let Some(v) = line.strip_prefix("#EXT-X-PART-INF:") {
                p.part_target = attributes(v).get("PART-TARGET").map(|t| t.parse().expect("decimal PART-TARGET"));
            } else if let Some(v) = line.strip_prefix("#EXT-X-SERVER-CONTROL:") {
                p.server_control = attributes(v);
            } else if let Some(v) = line.strip_prefix("#EXT-X-SKIP:") {
                p.skipped = attributes(v)["SKIPPED-SEGMENTS"].parse().expect("integer SKIPPED-SEGMENTS");
            } else if let Some(v) = line.strip_prefix("#EXT-X-MAP:") {
                map = attributes(v).get("URI").cloned();
            } else if line == "#EXT-X-DISCONTINUITY" {
                current.discontinuity = true;
            } else if let Some(v) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
                current.program_date_time = Some(v.to_string());
            } else if let Some(v) = line.strip_prefix("#EXT-X-PART:") {
                let a = attributes(v);
                current.parts.push(Part {
                    duration: a["DURATION"].parse().expect("decimal part DURATION"),
                    uri: a["URI"].clone(),
                    independent: a.get("INDEPENDENT").is_some_and(|v| v == "YES"),
                });
            } else if let Some(v) = line.strip_prefix("#EXTINF:") {
                current.duration =
                    Some(v.trim_end_matches(',').split(',').next().unwrap().parse().expect("decimal EXTINF"));
            } else if let Some(v) = line.strip_prefix("#EXT-X-PRELOAD-HINT:") {
                p.preload_hint = attributes(v).get("URI").cloned();
            } else if let Some(v) = line.strip_prefix("#EXT-X-RENDITION-REPORT:") {
                p.rendition_reports.push(v.to_string());
            } else if line == "#EXT-X-ENDLIST" {
                p.ended = true;
            } else if !line.starts_with('#') && !line.is_empty() {
                current.uri = Some(line.to_string());
                current.map = map.clone();
                current.msn = p.media_sequence + p.skipped + p.segments.len() as u64;
                p.segments.push(std::mem::take(&mut current));
            }
        }
        if !current.parts.is_empty() {
            current.map = map;
            current.msn = p.media_sequence + p.skipped + p.segments.len() as u64;
            p.segments.push(current);
        }
        p
    }

    /// The last listed part as (msn, index).
    pub fn last_part(&self) -> Option<(u64, usize)> {
        self.segments.iter().rev().find(|s| !s.parts.is_empty()).map(|s| (s.msn, s.parts.len() - 1))
    }

    /// Asserts every RFC 8216bis rule the appliance promises for ultra-low mode.
    pub fn assert_ll_hls_rules(&self) {
        let td = self.target_duration.expect("EXT-X-TARGETDURATION") as f64;
        let pt = self.part_target.expect("EXT-X-PART-INF:PART-TARGET");
        let sc = &self.server_control;
        assert_eq!(sc.get("CAN-BLOCK-RELOAD").map(String::as_str), Some("YES"), "CAN-BLOCK-RELOAD");
        let num = |k: &str| sc.get(k).unwrap_or_else(|| panic!("SERVER-CONTROL lacks {k}")).parse::<f64>().unwrap();
        assert!(num("PART-HOLD-BACK") >= 3.0 * pt - 1e-9, "PART-HOLD-BACK {} < 3 x {pt}", num("PART-HOLD-BACK"));
        assert!(num("HOLD-BACK") >= 3.0 * td, "HOLD-BACK {} < 3 x {td}", num("HOLD-BACK"));
        assert!(num("CAN-SKIP-UNTIL") >= 6.0 * td, "CAN-SKIP-UNTIL {} < 6 x {td}", num("CAN-SKIP-UNTIL"));
        assert!(self.version.is_some_and(|v| v >= 6), "EXT-X-VERSION");
        let last_segment = self.segments.len().saturating_sub(1);
        for (i, s) in self.segments.iter().enumerate() {
            assert!(s.map.is_some(), "segment {} without EXT-X-MAP", s.msn);
            assert!(s.program_date_time.is_some(), "segment {} without EXT-X-PROGRAM-DATE-TIME", s.msn);
            if let Some(d) = s.duration {
                assert!(d.round() <= td, "EXTINF {d} of segment {} rounds above TARGETDURATION {td}", s.msn);
            }
            if let Some(first) = s.parts.first() {
                assert!(first.independent, "segment {} does not start with an independent part", s.msn);
            }
            let final_segment = i == last_segment && self.ended;
            for (j, part) in s.parts.iter().enumerate() {
                assert!(part.duration <= pt + 1e-9, "part {}.{j} lasts {} > PART-TARGET {pt}", s.msn, part.duration);
                let last_of_segment = j + 1 == s.parts.len() && (s.duration.is_some() || final_segment);
                if !part.independent && !last_of_segment {
                    assert!(
                        part.duration >= 0.85 * pt - 1e-9,
                        "part {}.{j} lasts {} < 85% of {pt}",
                        s.msn,
                        part.duration
                    );
                }
            }
        }
        if self.ended {
            assert!(self.preload_hint.is_none(), "an ended playlist has no preload hint");
        } else {
            assert!(self.preload_hint.is_some(), "a live LL-HLS playlist has EXT-X-PRELOAD-HINT");
        }
    }
}

/// What ffprobe found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub video_frames: u64,
    pub audio_frames: u64,
    pub width: u32,
    pub height: u32,
    pub codecs: Vec<String>,
    /// Anything ffprobe and a full ffmpeg decode printed at `-v error`.
    pub errors: String,
}

/// Decodes `path` fully with ffprobe (frame counts) and ffmpeg (errors).
pub fn probe(path: &Path) -> Probe {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=codec_type,codec_name,width,height,nb_read_frames",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    let mut probe = Probe {
        video_frames: 0,
        audio_frames: 0,
        width: 0,
        height: 0,
        codecs: Vec::new(),
        errors: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    for stream in json["streams"].as_array().into_iter().flatten() {
        let frames: u64 = stream["nb_read_frames"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
        probe.codecs.push(stream["codec_name"].as_str().unwrap_or("?").to_string());
        match stream["codec_type"].as_str() {
            Some("video") => {
                probe.video_frames = frames;
                probe.width = stream["width"].as_u64().unwrap_or(0) as u32;
                probe.height = stream["height"].as_u64().unwrap_or(0) as u32;
            }
            Some("audio") => probe.audio_frames = frames,
            _ => {}
        }
    }
    let decode = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    probe.errors.push_str(&String::from_utf8_lossy(&decode.stderr));
    probe
}

/// The address a raw TCP client should use for the RTMP port.
pub fn rtmp_addr(app: &TestAppliance) -> SocketAddr {
    app.appliance.rtmp_addr
}
