//! The soak: the real `appliance serve` binary with N live channels fed by
//! real `ffmpeg` publishers (a 360p recording looped in real time, `-c copy`;
//! optionally ladder channels that the appliance transcodes), several LL-HLS
//! players per channel doing what hls.js does (`ll_hls_player`), and
//! publishers churning: every `--churn-seconds` one channel's publisher is
//! stopped (SIGTERM and SIGKILL in turn) and started again after
//! `--down-seconds`, rotating through the channels.
//!
//! Every `--sample-seconds` it prints the appliance's RSS, open fds and
//! threads (from /proc) and what the players saw (parts per second, gaps
//! between parts, failures). At the end a summary; the exit status is 1 when
//! RSS, fds or threads grew after warm-up beyond a tolerance, when a live
//! channel stalled (no new part for more than `--stall-parts` part targets
//! while its publisher was up), or when the appliance died. Not in the suite:
//! `cargo run --release -p benches --bin soak -- --minutes 60 --channels 6`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::appliance_process::{ApplianceProcess, add_channel, find_binary};
use benches::ll_hls_player::{ChannelWatch, Seen, play};
use benches::process_stats::ProcessStats;
use benches::trend::Trend;
use benches::{small_recording, target_dir};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "Soak the appliance: live channels, LL-HLS players, publisher churn; fails on growth or stalls")]
struct Args {
    #[arg(long, default_value_t = 60.0)]
    minutes: f64,
    /// Pass-through channels (360p30, 800 kb/s + AAC).
    #[arg(long, default_value_t = 6)]
    channels: usize,
    /// Ladder channels (the appliance decodes and encodes `--ladder` in software).
    #[arg(long, default_value_t = 0)]
    ladder_channels: usize,
    #[arg(long, default_value = "240:300")]
    ladder: String,
    /// Players per channel.
    #[arg(long, default_value_t = 3)]
    players: usize,
    /// One publisher is stopped every this many seconds (0: no churn).
    #[arg(long, default_value_t = 60)]
    churn_seconds: u64,
    /// How long a stopped publisher stays away.
    #[arg(long, default_value_t = 5)]
    down_seconds: u64,
    #[arg(long, default_value_t = 10)]
    sample_seconds: u64,
    /// Samples before this are not judged for growth (default: a quarter of the run, at most 5 minutes).
    #[arg(long)]
    warmup_minutes: Option<f64>,
    /// A live channel stalls when no new part comes for this many part targets.
    #[arg(long, default_value_t = 3.0)]
    stall_parts: f64,
    /// Growth allowed after warm-up: RSS (MiB and fraction, both must be exceeded), fds, threads.
    #[arg(long, default_value_t = 16.0)]
    rss_tolerance_mib: f64,
    #[arg(long, default_value_t = 0.10)]
    rss_tolerance_fraction: f64,
    #[arg(long, default_value_t = 8)]
    fd_tolerance: u64,
    #[arg(long, default_value_t = 4)]
    thread_tolerance: u64,
    /// The appliance binary (default: the one built beside this program).
    #[arg(long)]
    appliance: Option<PathBuf>,
    /// Also print the whole series and summary as one JSON line.
    #[arg(long)]
    json: bool,
}

/// After a publisher (re)starts, time for ffmpeg to connect and the first part to reach the players.
const START_GRACE: Duration = Duration::from_secs(10);
/// The appliance's default part target, until a player reads the playlist's.
const DEFAULT_PART_TARGET: Duration = Duration::from_millis(200);
const TICK: Duration = Duration::from_millis(100);

/// One channel's publisher and what happened to it.
struct Channel {
    name: String,
    url: String,
    child: Option<Child>,
    /// Since when the running publisher is up (None while it is away).
    up_since: Option<Instant>,
    /// When a stopped publisher comes back.
    back_at: Option<Instant>,
    watch: Arc<ChannelWatch>,
    log: PathBuf,
    /// Planned stops, and exits nobody asked for.
    churned: u64,
    unexpected_exits: u64,
    /// The stall in progress (since when), and the stalls seen.
    stalled_since: Option<Instant>,
    stalls: Vec<(f64, f64)>,
    /// Totals over the run.
    seen: Seen,
}

impl Channel {
    fn start(&mut self, source: &Path) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).ok();
        let child = Command::new("ffmpeg")
            .args(["-hide_banner", "-nostats", "-v", "warning", "-re", "-stream_loop", "-1", "-i"])
            .arg(source)
            .args(["-c", "copy", "-f", "flv", &self.url])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.map_or_else(Stdio::null, Stdio::from))
            .spawn();
        match child {
            Ok(child) => {
                self.child = Some(child);
                self.up_since = Some(Instant::now());
            }
            Err(e) => eprintln!("{}: ffmpeg does not start: {e}", self.name),
        }
        self.back_at = None;
    }

    /// Stops the publisher: SIGTERM (ffmpeg ends the publish cleanly) or SIGKILL (the socket just closes).
    fn stop(&mut self, kill: bool, away: Duration) {
        if let Some(mut child) = self.child.take() {
            if !kill {
                benches::terminate(&child);
                let deadline = Instant::now() + Duration::from_secs(5);
                while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.up_since = None;
        self.stalled_since = None;
        self.back_at = Some(Instant::now() + away);
    }
}

/// One sample of the run.
#[derive(Debug, Clone)]
struct Sample {
    at: f64,
    stats: ProcessStats,
    parts: u64,
    failures: u64,
    max_gap_ms: f64,
    p99_gap_ms: f64,
    stalls: usize,
    publishers_up: usize,
    /// The machine's 1-minute load average, and how late this program's own
    /// 100 ms tick woke at worst: a stall that coincides with a late tick is
    /// the machine starving everyone (publishers, players), not the appliance.
    load: f64,
    late_ms: f64,
}

/// The 1-minute load average.
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn merge(total: &mut Seen, more: Seen) {
    total.parts += more.parts;
    total.bytes += more.bytes;
    total.requests += more.requests;
    total.sessions += more.sessions;
    total.hint_misses += more.hint_misses;
    total.waits += more.waits;
    total.gaps.extend(more.gaps);
    for (status, n) in more.failures {
        *total.failures.entry(status).or_default() += n;
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> Result<bool, String> {
    if args.channels + args.ladder_channels == 0 || args.players == 0 || args.sample_seconds == 0 {
        return Err("at least one channel, one player and a sample every second or slower".into());
    }
    if benches::skip_without_ffmpeg() {
        return Err("the ffmpeg program is needed".into());
    }
    let binary = find_binary(args.appliance.as_deref())?;
    let source = small_recording(&target_dir());
    let data = tempfile::Builder::new().prefix("appliance-soak-").tempdir().map_err(|e| e.to_string())?;
    let mut names: Vec<(String, Option<&str>)> = (0..args.channels).map(|i| (format!("soak-{i}"), None)).collect();
    names.extend((0..args.ladder_channels).map(|i| (format!("soak-ladder-{i}"), Some(args.ladder.as_str()))));
    let keys: Vec<String> = names
        .iter()
        .map(|(name, ladder)| add_channel(&binary, data.path(), name, *ladder))
        .collect::<Result<_, _>>()?;
    let mut app = ApplianceProcess::start(&binary, data.path(), &[])?;
    let duration = Duration::from_secs_f64(args.minutes * 60.0);
    let warmup = Duration::from_secs_f64(args.warmup_minutes.unwrap_or((args.minutes / 4.0).min(5.0)) * 60.0);
    println!(
        "soak: {} pass-through + {} ladder ({}) channels, {} players each, a publisher churned every {} s (away {} s), {:.0} min, warm-up {:.1} min; appliance pid {}, log {}",
        args.channels,
        args.ladder_channels,
        args.ladder,
        args.players,
        args.churn_seconds,
        args.down_seconds,
        args.minutes,
        warmup.as_secs_f64() / 60.0,
        app.pid(),
        app.log.display()
    );
    let mut channels: Vec<Channel> = names
        .iter()
        .zip(&keys)
        .map(|((name, _), key)| Channel {
            name: name.clone(),
            url: app.publish_url(key),
            child: None,
            up_since: None,
            back_at: None,
            watch: Arc::new(ChannelWatch::default()),
            log: data.path().join(format!("{name}-ffmpeg.log")),
            churned: 0,
            unexpected_exits: 0,
            stalled_since: None,
            stalls: Vec::new(),
            seen: Seen::default(),
        })
        .collect();
    for channel in &mut channels {
        channel.start(&source);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("soak-player")
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let (stop_players, stopped) = tokio::sync::watch::channel(false);
    for channel in &channels {
        for _ in 0..args.players {
            runtime.spawn(play(app.http, channel.name.clone(), channel.watch.clone(), stopped.clone()));
        }
    }
    println!(
        "{:>7} {:>8} {:>5} {:>7} {:>8} {:>9} {:>9} {:>6} {:>6} {:>4} {:>5} {:>7}",
        "t_s",
        "rss_MiB",
        "fds",
        "threads",
        "parts/s",
        "p99gap_ms",
        "maxgap_ms",
        "stalls",
        "fails",
        "up",
        "load",
        "late_ms"
    );
    let started = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let mut next_sample = started + Duration::from_secs(args.sample_seconds);
    let mut next_churn = (args.churn_seconds > 0).then(|| started + Duration::from_secs(args.churn_seconds));
    let mut churns = 0usize;
    let mut died = None;
    let mut late = Duration::ZERO;
    while started.elapsed() < duration {
        let asleep = Instant::now();
        std::thread::sleep(TICK);
        let now = Instant::now();
        late = late.max(now.duration_since(asleep).saturating_sub(TICK));
        if let Some(status) = app.exited() {
            died = Some(status);
            break;
        }
        for channel in &mut channels {
            if let Some(child) = channel.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                channel.unexpected_exits += 1;
                eprintln!(
                    "{:>7.0} {}: publisher exited by itself ({status}); restarting in 1 s",
                    started.elapsed().as_secs_f64(),
                    channel.name
                );
                channel.child = None;
                channel.stop(false, Duration::from_secs(1));
            }
            if channel.child.is_none() && channel.back_at.is_some_and(|at| now >= at) {
                channel.start(&source);
            }
            // A live channel whose players have seen no new part for too long.
            let target = channel.watch.part_target().unwrap_or(DEFAULT_PART_TARGET);
            let limit = target.mul_f64(args.stall_parts);
            if let Some(up) = channel.up_since.filter(|up| now > *up + START_GRACE) {
                let reference = channel.watch.last_part_at().map_or(up + START_GRACE, |at| at.max(up + START_GRACE));
                let stalled = now.duration_since(reference) > limit;
                match (stalled, channel.stalled_since) {
                    (true, None) => channel.stalled_since = Some(reference),
                    (false, Some(since)) => {
                        let at = since.duration_since(started).as_secs_f64();
                        let length = now.duration_since(since).as_secs_f64();
                        eprintln!(
                            "{at:>7.0} {}: stalled {:.2} s (no new part; limit {:.2} s; load {:.1}; this program's tick late by {} ms at worst since the last sample)",
                            channel.name,
                            length,
                            limit.as_secs_f64(),
                            load_average(),
                            late.as_millis()
                        );
                        channel.stalls.push((at, length));
                        channel.stalled_since = None;
                    }
                    _ => {}
                }
            }
        }
        if let Some(at) = next_churn.filter(|at| now >= *at) {
            let k = churns % channels.len();
            let kill = churns % 2 == 1;
            let channel = &mut channels[k];
            if let Some(since) = channel.stalled_since.take() {
                // A stall that lasted until the stop still counts.
                let start = since.duration_since(started).as_secs_f64();
                channel.stalls.push((start, now.duration_since(since).as_secs_f64()));
            }
            channel.stop(kill, Duration::from_secs(args.down_seconds));
            channel.churned += 1;
            churns += 1;
            next_churn = Some(at + Duration::from_secs(args.churn_seconds));
        }
        if now >= next_sample {
            next_sample += Duration::from_secs(args.sample_seconds);
            let Some(stats) = app.stats() else { continue };
            let mut parts = 0;
            let mut failures = 0;
            let mut gaps = Vec::new();
            for channel in &mut channels {
                let seen = channel.watch.take();
                parts += seen.parts;
                failures += seen.failures.values().sum::<u64>();
                gaps.extend(seen.gaps.iter().copied());
                merge(&mut channel.seen, seen);
            }
            gaps.sort();
            let sample = Sample {
                at: started.elapsed().as_secs_f64(),
                stats,
                // Each new part is seen by every player of its channel.
                parts: parts / args.players.max(1) as u64,
                failures,
                max_gap_ms: percentile(&gaps, 1.0),
                p99_gap_ms: percentile(&gaps, 0.99),
                stalls: channels.iter().map(|c| c.stalls.len() + usize::from(c.stalled_since.is_some())).sum(),
                publishers_up: channels.iter().filter(|c| c.up_since.is_some()).count(),
                load: load_average(),
                late_ms: late.as_secs_f64() * 1000.0,
            };
            late = Duration::ZERO;
            println!(
                "{:>7.0} {:>8.1} {:>5} {:>7} {:>8.1} {:>9.0} {:>9.0} {:>6} {:>6} {:>4} {:>5.1} {:>7.0}",
                sample.at,
                stats.rss_mib(),
                stats.fds,
                stats.threads,
                sample.parts as f64 / args.sample_seconds as f64,
                sample.p99_gap_ms,
                sample.max_gap_ms,
                sample.stalls,
                sample.failures,
                sample.publishers_up,
                sample.load,
                sample.late_ms
            );
            samples.push(sample);
        }
    }
    let _ = stop_players.send(true);
    runtime.shutdown_timeout(Duration::from_secs(5));
    for channel in &mut channels {
        if let Some(since) = channel.stalled_since.take() {
            channel.stalls.push((since.duration_since(started).as_secs_f64(), since.elapsed().as_secs_f64()));
        }
        channel.stop(false, Duration::ZERO);
        merge(&mut channel.seen, channel.watch.take());
    }
    let stop = if died.is_none() { Some(app.stop()) } else { None };
    Ok(summarize(args, warmup, &samples, &channels, died, stop))
}

/// Prints the summary; whether the soak passed.
fn summarize(
    args: &Args,
    warmup: Duration,
    samples: &[Sample],
    channels: &[Channel],
    died: Option<std::process::ExitStatus>,
    stop: Option<Result<std::process::ExitStatus, String>>,
) -> bool {
    let mut problems = Vec::new();
    if let Some(status) = died {
        problems.push(format!("the appliance died during the run ({status})"));
    }
    match stop {
        Some(Ok(status)) if !status.success() => {
            problems.push(format!("the appliance exited with {status} at SIGTERM"))
        }
        Some(Err(e)) => problems.push(e),
        _ => {}
    }
    println!("summary:");
    let judged: Vec<&Sample> = samples.iter().filter(|s| s.at >= warmup.as_secs_f64()).collect();
    let series = |f: &dyn Fn(&ProcessStats) -> f64| judged.iter().map(|s| (s.at, f(&s.stats))).collect::<Vec<_>>();
    // (name, (seconds, value) points, absolute tolerance, fractional tolerance)
    type Check<'a> = (&'a str, Vec<(f64, f64)>, f64, f64);
    let checks: [Check; 3] = [
        ("rss_MiB", series(&|s| s.rss_mib()), args.rss_tolerance_mib, args.rss_tolerance_fraction),
        ("fds", series(&|s| s.fds as f64), args.fd_tolerance as f64, 0.0),
        ("threads", series(&|s| s.threads as f64), args.thread_tolerance as f64, 0.0),
    ];
    let mut trends = serde_json::Map::new();
    for (name, points, absolute, fraction) in checks {
        let all: Vec<f64> = samples
            .iter()
            .map(|s| match name {
                "rss_MiB" => s.stats.rss_mib(),
                "fds" => s.stats.fds as f64,
                _ => s.stats.threads as f64,
            })
            .collect();
        let (min, max) = all.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        match Trend::of(&points) {
            Some(trend) => {
                let grows = trend.grows(absolute, fraction);
                println!(
                    "  {name:<8} min {min:.1} max {max:.1}; after warm-up: first quarter {:.1}, last quarter {:.1} ({:+.1}), slope {:+.2}/h: {}",
                    trend.start,
                    trend.end,
                    trend.growth(),
                    trend.slope_per_hour,
                    if grows { "GROWS" } else { "flat" }
                );
                if grows {
                    problems.push(format!("{name} grew from {:.1} to {:.1} after warm-up", trend.start, trend.end));
                }
                trends.insert(
                    name.into(),
                    serde_json::json!({"min": min, "max": max, "start": trend.start, "end": trend.end, "slope_per_hour": trend.slope_per_hour, "grows": grows}),
                );
            }
            None => {
                println!("  {name:<8} min {min:.1} max {max:.1}; too few samples after warm-up to judge");
                problems.push(format!("too few samples after warm-up to judge {name}"));
            }
        }
    }
    let mut per_channel = Vec::new();
    for channel in channels {
        let mut gaps = channel.seen.gaps.clone();
        gaps.sort();
        let stalled = channel.stalls.iter().fold(0.0, |total, s| total + s.1);
        println!(
            "  {:<14} parts {:>6} sessions {:>3} gaps p50 {:>4.0} ms p99 {:>4.0} ms max {:>5.0} ms; stalls {} ({:.1} s); churned {}, exited by itself {}; failures {:?}, hinted parts never made {}",
            channel.name,
            channel.seen.parts / args.players.max(1) as u64,
            channel.seen.sessions,
            percentile(&gaps, 0.5),
            percentile(&gaps, 0.99),
            percentile(&gaps, 1.0),
            channel.stalls.len(),
            stalled,
            channel.churned,
            channel.unexpected_exits,
            channel.seen.failures,
            channel.seen.hint_misses
        );
        for (at, length) in &channel.stalls {
            println!("      stall at {at:.0} s for {length:.2} s");
        }
        if !channel.stalls.is_empty() {
            problems.push(format!("{} stalled {} times", channel.name, channel.stalls.len()));
        }
        per_channel.push(serde_json::json!({
            "channel": channel.name, "parts": channel.seen.parts / args.players.max(1) as u64, "sessions": channel.seen.sessions,
            "gap_p50_ms": percentile(&gaps, 0.5), "gap_p99_ms": percentile(&gaps, 0.99), "gap_max_ms": percentile(&gaps, 1.0),
            "stalls": channel.stalls, "churned": channel.churned, "unexpected_exits": channel.unexpected_exits, "hint_misses": channel.seen.hint_misses,
            "failures": channel.seen.failures.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
        }));
    }
    let passed = problems.is_empty();
    if passed {
        println!("PASS: no growth after warm-up, no stall");
    } else {
        for problem in &problems {
            println!("FAIL: {problem}");
        }
    }
    if args.json {
        let series: Vec<_> = samples
            .iter()
            .map(|s| {
                serde_json::json!({"t": s.at, "rss_mib": s.stats.rss_mib(), "fds": s.stats.fds, "threads": s.stats.threads,
                    "parts": s.parts, "failures": s.failures, "gap_p99_ms": s.p99_gap_ms, "gap_max_ms": s.max_gap_ms,
                    "stalls": s.stalls, "publishers_up": s.publishers_up, "load": s.load, "late_ms": s.late_ms})
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"bench": "soak", "minutes": args.minutes, "channels": args.channels, "ladder_channels": args.ladder_channels,
                "players": args.players, "passed": passed, "problems": problems, "trends": trends, "channels_seen": per_channel, "samples": series})
        );
    }
    passed
}
