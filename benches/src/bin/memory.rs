//! Memory given back: the real `appliance serve` binary through rounds of
//! publish cycles and rounds of held blocking playlist reloads, with its RSS
//! after each round and again after it has idled (ended streams past their
//! retention, connections closed). A leak or an allocator that keeps what
//! was freed shows as a settled RSS that climbs round after round.
//!
//! Each `--variant LABEL=PATH [KEY=VALUE ...]` is run in turn (its own
//! process and data directory, the environment added), so builds with
//! different allocators, or glibc with `MALLOC_ARENA_MAX`, are compared in the
//! same run. Not a pass/fail test: it prints the series.
//!
//! A publish cycle: an RTMP publish (our minimal publisher, see
//! `rtmp_publisher`) of the first seconds of a 360p recording sent at once,
//! a viewer's multivariant and media playlist requests, `deleteStream`;
//! `--cycle-channels` publishers cycle in parallel, each on its own channel.
//! A held-reload round: `--reloads` connections each send a blocking reload
//! (`_HLS_msn`/`_HLS_part`) for a part a few parts ahead, all held at once
//! by the origin until the part exists, then closed; a real `ffmpeg`
//! publisher keeps the channel live in real time.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use benches::appliance_process::{ApplianceProcess, add_channel, find_binary};
use benches::http_client::HttpConnection;
use benches::media_playlist::PlaylistView;
use benches::rtmp_publisher::{PublishError, RtmpPublisher};
use benches::{Tag, read_flv, small_recording, target_dir};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "RSS of the appliance over rounds of publish cycles and of held blocking playlist reloads")]
struct Args {
    /// `LABEL=PATH [KEY=VALUE ...]`: an appliance binary and environment to measure (repeatable);
    /// default: the `appliance` built beside this program.
    #[arg(long = "variant")]
    variants: Vec<String>,
    /// Rounds of publish cycles.
    #[arg(long, default_value_t = 10)]
    cycle_rounds: usize,
    /// Publish cycles per round.
    #[arg(long, default_value_t = 1000)]
    cycles: usize,
    /// Channels publishing in parallel during the cycles.
    #[arg(long, default_value_t = 4)]
    cycle_channels: usize,
    /// Media per publish (ms of the recording, sent at once).
    #[arg(long, default_value_t = 2000)]
    cycle_media_ms: u32,
    /// Rounds of held blocking reloads.
    #[arg(long, default_value_t = 6)]
    reload_rounds: usize,
    /// Blocking reloads held at once per round (one connection each).
    #[arg(long, default_value_t = 5000)]
    reloads: usize,
    /// How long ended streams stay in the origin (`APPLIANCE_HLS_RETENTION_SECONDS`).
    #[arg(long, default_value_t = 5)]
    retention_seconds: u64,
    /// Idle time before the settled sample (default: retention + 25 s: the origin sweeps every
    /// 5 s and jemalloc gives pages back over its 10 s decay).
    #[arg(long)]
    settle_seconds: Option<u64>,
    /// Print one JSON line per variant at the end too.
    #[arg(long)]
    json: bool,
    /// Keep each variant's data directory (state file, appliance log) after the run.
    #[arg(long)]
    keep: bool,
}

#[derive(Debug, Clone)]
struct Variant {
    label: String,
    binary: PathBuf,
    env: Vec<(String, String)>,
}

fn parse_variant(text: &str) -> Result<Variant, String> {
    let (label, rest) = text.split_once('=').ok_or("a variant is LABEL=PATH [KEY=VALUE ...]")?;
    let mut words = rest.split_whitespace();
    let binary = find_binary(Some(words.next().ok_or("a variant needs a binary path")?.as_ref()))?;
    let env = words
        .map(|w| w.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or(format!("{w}: not KEY=VALUE")))
        .collect::<Result<_, _>>()?;
    Ok(Variant { label: label.to_string(), binary, env })
}

/// One measured round.
#[derive(Debug, Clone)]
struct Round {
    phase: &'static str,
    index: usize,
    /// Cycles or reloads done in the round (cumulative over the phase).
    done: usize,
    ok: u64,
    /// Publishes refused because the channel's previous session was still ending (retried).
    retried: u64,
    failed: u64,
    seconds: f64,
    rss_hot_mib: f64,
    rss_settled_mib: f64,
    /// The state file's size: what redb may cache.
    db_mib: f64,
}

fn print_round(label: &str, r: &Round) {
    println!(
        "{label:<16} {:<8} {:>5} {:>8} {:>7} {:>7} {:>6} {:>7.1} {:>9.1} {:>9.1} {:>7.1}",
        r.phase, r.index, r.done, r.ok, r.retried, r.failed, r.seconds, r.rss_hot_mib, r.rss_settled_mib, r.db_mib
    );
}

/// Counters shared by the cycling publishers.
#[derive(Debug, Default)]
struct CycleCounts {
    ok: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
}

/// One publish cycle on `key`'s channel: publish, send `tags`, ask as a viewer would, unpublish.
async fn cycle(
    app: &ApplianceProcess,
    channel: &str,
    key: &str,
    tags: &[Tag],
    viewer: &mut Option<HttpConnection>,
    counts: &CycleCounts,
) -> Result<(), String> {
    let mut publisher = loop {
        match RtmpPublisher::publish(app.rtmp, "live", key, Duration::from_secs(10)).await {
            Ok(publisher) => break publisher,
            // The previous session of this channel is still being recorded as over.
            Err(PublishError::Refused("NetStream.Publish.BadName")) => {
                counts.retried.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => return Err(format!("publish: {e}")),
        }
    };
    for tag in tags {
        publisher.send(tag, tag.timestamp).await.map_err(|e| format!("send: {e}"))?;
    }
    if viewer.as_ref().is_none_or(HttpConnection::is_closed) {
        *viewer = Some(HttpConnection::open(app.http).await.map_err(|e| format!("viewer: {e}"))?);
    }
    let http = viewer.as_mut().expect("opened above");
    let limit = Duration::from_secs(15);
    let (status, body) =
        http.get(&format!("/hls/{channel}/index.m3u8"), limit).await.map_err(|e| format!("multivariant: {e}"))?;
    if status != 200 {
        return Err(format!("multivariant: HTTP {status}"));
    }
    let text = String::from_utf8_lossy(&body);
    let variant = text.lines().find(|l| !l.starts_with('#') && !l.is_empty()).ok_or("no variant")?;
    let (status, _) =
        http.get(&format!("/hls/{channel}/{variant}"), limit).await.map_err(|e| format!("media playlist: {e}"))?;
    if status != 200 {
        return Err(format!("media playlist: HTTP {status}"));
    }
    publisher.unpublish().await.map_err(|e| format!("unpublish: {e}"))?;
    Ok(())
}

/// `cycles` publish cycles spread over the channels, in parallel.
async fn cycle_round(
    app: &Arc<ApplianceProcess>,
    keys: &[(String, String)],
    tags: &Arc<Vec<Tag>>,
    cycles: usize,
) -> CycleCounts {
    let counts = Arc::new(CycleCounts::default());
    let mut workers = tokio::task::JoinSet::new();
    for (i, (channel, key)) in keys.iter().enumerate() {
        let share = cycles / keys.len() + usize::from(i < cycles % keys.len());
        let (app, channel, key, tags, counts) =
            (app.clone(), channel.clone(), key.clone(), tags.clone(), counts.clone());
        workers.spawn(async move {
            let mut viewer = None;
            for _ in 0..share {
                match cycle(&app, &channel, &key, &tags, &mut viewer, &counts).await {
                    Ok(()) => counts.ok.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        if counts.failed.fetch_add(1, Ordering::Relaxed) < 5 {
                            eprintln!("cycle on {channel} failed: {e}");
                        }
                        viewer = None;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        0
                    }
                };
            }
        });
    }
    while workers.join_next().await.is_some() {}
    Arc::try_unwrap(counts).unwrap_or_default()
}

/// The first variant of `channel` and its media playlist, once it has a part.
async fn live_playlist(
    app: &ApplianceProcess,
    channel: &str,
    limit: Duration,
) -> Result<(String, PlaylistView), String> {
    let deadline = Instant::now() + limit;
    let mut http = HttpConnection::open(app.http).await.map_err(|e| e.to_string())?;
    while Instant::now() < deadline {
        let (status, body) = http.get(&format!("/hls/{channel}/index.m3u8"), limit).await.map_err(|e| e.to_string())?;
        if status == 200 {
            let text = String::from_utf8_lossy(&body).into_owned();
            if let Some(variant) = text.lines().find(|l| !l.starts_with('#') && !l.is_empty()) {
                let path = format!("/hls/{channel}/{variant}");
                let (status, body) = http.get(&path, limit).await.map_err(|e| e.to_string())?;
                if let Some(view) = PlaylistView::parse(&String::from_utf8_lossy(&body)).filter(|_| status == 200)
                    && view.next_part().is_some()
                {
                    return Ok((path, view));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!("{channel} has no part after {limit:?}"))
}

/// Opens `count` connections, then holds one blocking reload on each for a
/// part a few parts ahead; returns (answered 200, other answers or errors).
async fn reload_round(app: &ApplianceProcess, channel: &str, count: usize) -> Result<(u64, u64), String> {
    const CONNECTING: usize = 256;
    let mut connections = Vec::with_capacity(count);
    let mut failed = 0u64;
    let mut opening = tokio::task::JoinSet::new();
    for _ in 0..count {
        if opening.len() >= CONNECTING
            && let Some(opened) = opening.join_next().await
        {
            match opened.expect("connect task") {
                Ok(connection) => connections.push(connection),
                Err(_) => failed += 1,
            }
        }
        let http = app.http;
        opening.spawn(async move { HttpConnection::open(http).await.map_err(|e| e.to_string()) });
    }
    while let Some(opened) = opening.join_next().await {
        match opened.expect("connect task") {
            Ok(connection) => connections.push(connection),
            Err(_) => failed += 1,
        }
    }
    let (path, view) = live_playlist(app, channel, Duration::from_secs(20)).await?;
    let (msn, part) = view.next_part().expect("live_playlist waits for a part");
    // Two parts past the next: every request is held until then (or answered by a later part).
    let target = format!("{path}?_HLS_msn={msn}&_HLS_part={}", part + 2);
    let mut held = tokio::task::JoinSet::new();
    for mut connection in connections {
        let target = target.clone();
        held.spawn(async move { connection.get(&target, Duration::from_secs(20)).await.map(|(status, _)| status) });
    }
    let mut ok = 0;
    while let Some(answer) = held.join_next().await {
        match answer.expect("request task") {
            Ok(200) => ok += 1,
            _ => failed += 1,
        }
    }
    Ok((ok, failed))
}

/// A real-time `ffmpeg` publisher looping the recording into `url`.
fn looping_publisher(source: &std::path::Path, url: &str) -> Child {
    Command::new("ffmpeg")
        .args(["-v", "error", "-re", "-stream_loop", "-1", "-i"])
        .arg(source)
        .args(["-c", "copy", "-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg starts")
}

fn rss_mib(app: &ApplianceProcess) -> f64 {
    app.stats().map_or(f64::NAN, |s| s.rss_mib())
}

fn db_mib(data: &std::path::Path) -> f64 {
    std::fs::metadata(data.join("appliance.redb")).map_or(f64::NAN, |m| m.len() as f64 / (1024.0 * 1024.0))
}

/// A fresh appliance of `variant` with `channels` (name -> stream key).
struct Fixture {
    data: tempfile::TempDir,
    app: Arc<ApplianceProcess>,
    keys: Vec<(String, String)>,
}

impl Fixture {
    fn start(args: &Args, variant: &Variant, channels: &[String]) -> Result<Fixture, String> {
        let mut data = tempfile::Builder::new().prefix("appliance-memory-").tempdir().map_err(|e| e.to_string())?;
        data.disable_cleanup(args.keep);
        let keys = channels
            .iter()
            .map(|name| add_channel(&variant.binary, data.path(), name, None).map(|key| (name.clone(), key)))
            .collect::<Result<_, _>>()?;
        let mut env = vec![("APPLIANCE_HLS_RETENTION_SECONDS".to_string(), args.retention_seconds.to_string())];
        env.extend(variant.env.iter().cloned());
        let app = Arc::new(ApplianceProcess::start(&variant.binary, data.path(), &env)?);
        println!("{}: appliance pid {} (log {})", variant.label, app.pid(), app.log.display());
        // Let start-up work (the encoder probe) finish before the first sample.
        std::thread::sleep(Duration::from_secs(2));
        Ok(Fixture { data, app, keys })
    }

    fn round(
        &self,
        phase: &'static str,
        index: usize,
        done: usize,
        work: (u64, u64, u64),
        seconds: f64,
        hot: f64,
    ) -> Round {
        Round {
            phase,
            index,
            done,
            ok: work.0,
            retried: work.1,
            failed: work.2,
            seconds,
            rss_hot_mib: hot,
            rss_settled_mib: rss_mib(&self.app),
            db_mib: db_mib(self.data.path()),
        }
    }

    /// SIGTERM; the appliance must drain and exit cleanly.
    fn stop(self) -> Result<(), String> {
        let app = Arc::try_unwrap(self.app).map_err(|_| "the appliance handle is still shared")?;
        let status = app.stop()?;
        if status.success() { Ok(()) } else { Err(format!("the appliance exited with {status} at SIGTERM")) }
    }
}

/// Both phases, each on a fresh appliance so each one's own growth shows.
fn run_variant(
    args: &Args,
    variant: &Variant,
    source: &std::path::Path,
    tags: Arc<Vec<Tag>>,
) -> Result<Vec<Round>, String> {
    let settle = Duration::from_secs(args.settle_seconds.unwrap_or(args.retention_seconds + 25));
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let mut rounds = Vec::new();
    let mut report = |round: Round| {
        print_round(&variant.label, &round);
        rounds.push(round);
    };
    if args.cycle_rounds > 0 {
        let channels: Vec<String> = (0..args.cycle_channels).map(|i| format!("cycle-{i}")).collect();
        let fixture = Fixture::start(args, variant, &channels)?;
        report(fixture.round("start", 0, 0, (0, 0, 0), 0.0, rss_mib(&fixture.app)));
        for index in 1..=args.cycle_rounds {
            let started = Instant::now();
            let counts = runtime.block_on(cycle_round(&fixture.app, &fixture.keys, &tags, args.cycles));
            let seconds = started.elapsed().as_secs_f64();
            let hot = rss_mib(&fixture.app);
            std::thread::sleep(settle);
            let work = (counts.ok.into_inner(), counts.retried.into_inner(), counts.failed.into_inner());
            report(fixture.round("cycles", index, index * args.cycles, work, seconds, hot));
        }
        fixture.stop()?;
    }
    if args.reload_rounds > 0 {
        let fixture = Fixture::start(args, variant, &["held".to_string()])?;
        let mut publisher = looping_publisher(source, &fixture.app.publish_url(&fixture.keys[0].1));
        report(fixture.round("start", 0, 0, (0, 0, 0), 0.0, rss_mib(&fixture.app)));
        for index in 1..=args.reload_rounds {
            let started = Instant::now();
            let result = runtime.block_on(reload_round(&fixture.app, "held", args.reloads));
            let seconds = started.elapsed().as_secs_f64();
            let (ok, failed) = result.inspect_err(|_| {
                let _ = publisher.kill();
                let _ = publisher.wait();
            })?;
            let hot = rss_mib(&fixture.app);
            std::thread::sleep(settle);
            report(fixture.round("reloads", index, index * args.reloads, (ok, 0, failed), seconds, hot));
        }
        let _ = publisher.kill();
        let _ = publisher.wait();
        fixture.stop()?;
    }
    Ok(rounds)
}

/// Settled RSS growth per 1000 units of work over a phase's rounds after its first (least squares).
fn growth_per_thousand(rounds: &[Round], phase: &str) -> Option<f64> {
    let points: Vec<(f64, f64)> =
        rounds.iter().filter(|r| r.phase == phase).skip(1).map(|r| (r.done as f64, r.rss_settled_mib)).collect();
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let (mx, my) = (points.iter().map(|p| p.0).sum::<f64>() / n, points.iter().map(|p| p.1).sum::<f64>() / n);
    let cov: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let var: f64 = points.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    Some(cov / var * 1000.0)
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if args.cycle_channels == 0 || args.reloads == 0 {
        eprintln!("memory: --cycle-channels and --reloads must be at least 1");
        return std::process::ExitCode::from(2);
    }
    if benches::skip_without_ffmpeg() {
        return std::process::ExitCode::FAILURE;
    }
    let variants: Result<Vec<Variant>, String> = if args.variants.is_empty() {
        find_binary(None).map(|binary| vec![Variant { label: "appliance".into(), binary, env: Vec::new() }])
    } else {
        args.variants.iter().map(|v| parse_variant(v)).collect()
    };
    let variants = match variants {
        Ok(v) => v,
        Err(e) => {
            eprintln!("memory: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let source = small_recording(&target_dir());
    let tags: Arc<Vec<Tag>> =
        Arc::new(read_flv(&source).into_iter().filter(|t| t.timestamp < args.cycle_media_ms).collect());
    println!(
        "memory: {} rounds x {} publish cycles ({} channels in parallel, {} ms of 360p media each), {} rounds x {} held blocking reloads; settled = after {} s idle",
        args.cycle_rounds,
        args.cycles,
        args.cycle_channels,
        args.cycle_media_ms,
        args.reload_rounds,
        args.reloads,
        args.settle_seconds.unwrap_or(args.retention_seconds + 25)
    );
    println!(
        "{:<16} {:<8} {:>5} {:>8} {:>7} {:>7} {:>6} {:>7} {:>9} {:>9} {:>7}",
        "variant", "phase", "round", "total", "ok", "retried", "failed", "took_s", "rss_MiB", "settled", "db_MiB"
    );
    let mut all = Vec::new();
    for variant in &variants {
        match run_variant(&args, variant, &source, tags.clone()) {
            Ok(rounds) => all.push((variant, rounds)),
            Err(e) => {
                eprintln!("{}: {e}", variant.label);
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    println!("summary (settled RSS, MiB):");
    for (variant, rounds) in &all {
        let settled =
            |phase: &str| rounds.iter().filter(|r| r.phase == phase).map(|r| r.rss_settled_mib).collect::<Vec<_>>();
        let fmt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:+.2}"));
        let starts = settled("start");
        println!(
            "{:<16} started at {:?}; cycles {:?}: {} MiB per 1000 cycles after round 1; reloads {:?}: {} MiB per 1000 reloads after round 1",
            variant.label,
            starts.iter().map(|v| (v * 10.0).round() / 10.0).collect::<Vec<_>>(),
            settled("cycles").iter().map(|v| (v * 10.0).round() / 10.0).collect::<Vec<_>>(),
            fmt(growth_per_thousand(rounds, "cycles")),
            settled("reloads").iter().map(|v| (v * 10.0).round() / 10.0).collect::<Vec<_>>(),
            fmt(growth_per_thousand(rounds, "reloads")),
        );
        if args.json {
            let rows: Vec<_> = rounds
                .iter()
                .map(|r| {
                    serde_json::json!({"phase": r.phase, "round": r.index, "total": r.done, "ok": r.ok, "retried": r.retried,
                        "failed": r.failed, "seconds": r.seconds, "rss_mib": r.rss_hot_mib, "rss_settled_mib": r.rss_settled_mib, "db_mib": r.db_mib})
                })
                .collect();
            println!("{}", serde_json::json!({"bench": "memory", "variant": variant.label, "rounds": rows}));
        }
    }
    std::process::ExitCode::SUCCESS
}
