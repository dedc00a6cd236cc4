//! `appliance bench transcode`: hardware QA. For each available backend,
//! encodes a generated or given source at each rung alone and as the whole
//! ladder at once, and reports frames per second, speed against real time,
//! MPix/s, the added latency per frame (in a real-time paced run of the
//! ladder) and PSNR/SSIM of every rung against the source scaled the same way
//! (libavfilter's psnr and ssim). In the same run the `ffmpeg` program does
//! the same ladder with the same encoder settings (from `options`), and our
//! throughput is printed as a ratio of its. The measured ladder throughput can
//! calibrate the slot capacities.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ffmpeg_next as ffmpeg;
use media::{CodecConfig, EncodedUnit, Ladder, RenditionSpec, StreamEvent, TrackInfo, TrackKind, unit_channel};
use serde::Serialize;

use crate::device::{Backend, DeviceId};
use crate::error::AccelError;
use crate::ffi;
use crate::options::EncoderSettings;
use crate::pipeline::{Outputs, Pipeline, PipelineConfig, PipelineEvent, PipelineStats, Rendition, rung_size};
use crate::probe::ProbeReport;
use crate::scheduler::{Load, SOFTWARE_DECODE_WEIGHT};
use crate::slots::Calibration;
use crate::source::{self, Source};

/// Share of the measured ladder throughput a calibrated capacity allows (headroom for the rest of the box).
pub const CALIBRATION_HEADROOM: f64 = 0.8;

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// A file to read (H.264/HEVC video, optional AAC); otherwise a generated 1280x720 30 fps source.
    pub input: Option<PathBuf>,
    pub seconds: u32,
    /// The ladder; `Ladder::default_for` the source's height when absent.
    pub ladder: Option<Ladder>,
    /// Keyframe cadence (the segment target).
    pub keyframe_interval: Duration,
    /// Skip the real-time paced run (it takes `seconds` per backend).
    pub skip_latency: bool,
    /// Working directory for the generated source file.
    pub work_dir: PathBuf,
}

/// One job: a single rung or the whole ladder, ours and the `ffmpeg` program's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobResult {
    pub job: String,
    pub rungs: Vec<String>,
    pub fps: f64,
    pub speed: f64,
    pub mpix_per_sec: f64,
    pub ffmpeg_fps: Option<f64>,
    /// Our throughput divided by the `ffmpeg` program's.
    pub ratio: Option<f64>,
    pub ffmpeg_error: Option<String>,
}

/// Quality and latency of one rung in the ladder job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RungQuality {
    pub rung: String,
    pub width: u32,
    pub height: u32,
    pub bitrate_kbps: f64,
    pub psnr_db: Option<f64>,
    pub ssim: Option<f64>,
    pub latency_ms_p50: Option<f64>,
    pub latency_ms_p95: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendBench {
    pub backend: Backend,
    pub device: DeviceId,
    pub jobs: Vec<JobResult>,
    pub quality: Vec<RungQuality>,
    /// The capacity this run measured (ladder MPix/s with software decode charged, times the headroom).
    pub measured_capacity: Option<Load>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    pub source: String,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    pub seconds: f64,
    pub frames: usize,
    pub backends: Vec<BackendBench>,
}

impl BenchReport {
    /// Capacities measured by this run, to persist with `Calibration::save`.
    pub fn calibration(&self, previous: &Calibration) -> Calibration {
        let mut c = previous.clone();
        for b in &self.backends {
            if let Some(load) = b.measured_capacity {
                c.devices.insert(b.device.clone(), load);
            }
        }
        c
    }

    pub fn table(&self) -> String {
        let mut out = format!(
            "source: {} · {}x{} · {:.2} fps · {:.1} s · {} frames\n",
            self.source, self.width, self.height, self.fps, self.seconds, self.frames
        );
        for b in &self.backends {
            out.push_str(&format!("\n{} on {}\n", b.backend, b.device));
            if let Some(error) = &b.error {
                out.push_str(&format!("  failed: {error}\n"));
                continue;
            }
            out.push_str(&format!(
                "  {:<24} {:>8} {:>7} {:>9} {:>11} {:>10}\n",
                "JOB", "FPS", "SPEED", "MPIX/S", "FFMPEG FPS", "OURS/FFMPEG"
            ));
            for j in &b.jobs {
                let reference = j.ffmpeg_fps.map_or("-".to_string(), |f| format!("{f:.1}"));
                let ratio = j.ratio.map_or("-".to_string(), |r| format!("{r:.2}x"));
                out.push_str(&format!(
                    "  {:<24} {:>8.1} {:>6.2}x {:>9.1} {:>11} {:>10}\n",
                    j.job, j.fps, j.speed, j.mpix_per_sec, reference, ratio
                ));
                if let Some(e) = &j.ffmpeg_error {
                    out.push_str(&format!("    ffmpeg reference failed: {e}\n"));
                }
            }
            out.push_str(&format!(
                "  {:<10} {:>10} {:>9} {:>9} {:>7} {:>22}\n",
                "RUNG", "SIZE", "KBIT/S", "PSNR dB", "SSIM", "ADDED LATENCY p50/p95"
            ));
            for q in &b.quality {
                let opt = |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
                let latency = match (q.latency_ms_p50, q.latency_ms_p95) {
                    (Some(a), Some(b)) => format!("{a:.1} / {b:.1} ms"),
                    _ => "-".into(),
                };
                out.push_str(&format!(
                    "  {:<10} {:>10} {:>9.0} {:>9} {:>7} {:>22}\n",
                    q.rung,
                    format!("{}x{}", q.width, q.height),
                    q.bitrate_kbps,
                    opt(q.psnr_db, 2),
                    opt(q.ssim, 4),
                    latency
                ));
            }
            if let Some(load) = b.measured_capacity {
                out.push_str(&format!(
                    "  measured capacity: {:.0} MPix/s (with {:.0}% headroom)\n",
                    load.mpix_per_sec,
                    CALIBRATION_HEADROOM * 100.0
                ));
            }
        }
        out
    }
}

/// Runs the bench on every available backend of `probe`.
pub fn run(options: &BenchOptions, probe: &ProbeReport) -> Result<BenchReport, AccelError> {
    ffi::init();
    let (source, path) = load_source(options)?;
    let ladder = options.ladder.clone().unwrap_or_else(|| Ladder::default_for(source.height));
    let rungs = ladder.rungs_for_source(source.height);
    if rungs.is_empty() {
        return Err(AccelError::Source(format!("no rung of the ladder fits a {}-line source", source.height)));
    }
    let fps = source.fps.0 as f64 / source.fps.1 as f64;
    let mut backends = Vec::new();
    for b in probe.backends.iter().filter(|b| b.is_available()) {
        let usable: Vec<RenditionSpec> = rungs.iter().filter(|r| b.encoders().contains(&r.codec)).cloned().collect();
        let mut bench = BackendBench {
            backend: b.backend,
            device: b.device.clone(),
            jobs: Vec::new(),
            quality: Vec::new(),
            measured_capacity: None,
            error: None,
        };
        if let Err(e) = bench_backend(&mut bench, &usable, &source, path.as_deref(), options, fps) {
            bench.error = Some(e.to_string());
        }
        backends.push(bench);
    }
    Ok(BenchReport {
        source: path.map_or_else(|| "generated".to_string(), |p| p.display().to_string()),
        width: source.width,
        height: source.height,
        fps,
        seconds: source.seconds,
        frames: source.video_frames(),
        backends,
    })
}

/// The source: the given file, or a generated one written with the `ffmpeg` program (so that
/// both sides read the same file), or generated in-process when the program is missing.
fn load_source(options: &BenchOptions) -> Result<(Source, Option<PathBuf>), AccelError> {
    if let Some(path) = &options.input {
        return Ok((source::from_file(path, options.seconds as f64)?, Some(path.clone())));
    }
    let path = options.work_dir.join(format!("bench-source-{}s-720p.mp4", options.seconds));
    if !path.exists() {
        std::fs::create_dir_all(&options.work_dir)
            .map_err(|e| AccelError::File { path: options.work_dir.display().to_string(), reason: e.to_string() })?;
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-nostats", "-loglevel", "error", "-y"])
            .args([
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=1280x720:rate=30",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=48000",
            ])
            .args([
                "-t",
                &options.seconds.to_string(),
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-b:v",
                "6M",
                "-g",
                "60",
                "-bf",
                "0",
            ])
            .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k"])
            .arg(&path)
            .status();
        if !status.is_ok_and(|s| s.success()) {
            let _ = std::fs::remove_file(&path);
            tracing::warn!("the ffmpeg program is missing or failed: generating in-process, no reference run");
            return Ok((source::generated(1280, 720, 30, options.seconds, 60)?, None));
        }
    }
    Ok((source::from_file(&path, options.seconds as f64)?, Some(path)))
}

fn bench_backend(
    bench: &mut BackendBench,
    rungs: &[RenditionSpec],
    source: &Source,
    path: Option<&Path>,
    options: &BenchOptions,
    fps: f64,
) -> Result<(), AccelError> {
    if rungs.is_empty() {
        return Err(AccelError::Source("the backend encodes none of the ladder's codecs".into()));
    }
    let config = |rungs: Vec<RenditionSpec>| PipelineConfig {
        label: format!("bench-{}", bench.backend),
        backend: bench.backend,
        device: bench.device.clone(),
        rungs,
        picture: Default::default(),
        keyframe_interval: options.keyframe_interval,
        preset: None,
        fail_after_frames: None,
        faults: Default::default(),
    };
    let media_seconds = source.video_frames() as f64 / fps;
    let mut jobs: Vec<(String, Vec<RenditionSpec>)> = rungs.iter().map(|r| (r.name(), vec![r.clone()])).collect();
    jobs.push((format!("ladder ({} rungs)", rungs.len()), rungs.to_vec()));
    let mut ladder_outputs = None;
    for (name, job_rungs) in jobs {
        let run = run_pipeline(config(job_rungs.clone()), source, false)?;
        let wall = run.wall.as_secs_f64().max(1e-9);
        let pixels: f64 = job_rungs
            .iter()
            .map(|r| {
                let (w, h) = rung_size(source.width, source.height, r.height);
                w as f64 * h as f64 * source.video_frames() as f64
            })
            .sum();
        let reference = path.map(|p| ffmpeg_reference(bench.backend, &bench.device, &job_rungs, source, p, options));
        let (ffmpeg_fps, ffmpeg_error) = match reference {
            Some(Ok(wall)) => (Some(source.video_frames() as f64 / wall.as_secs_f64().max(1e-9)), None),
            Some(Err(e)) => (None, Some(e)),
            None => (None, None),
        };
        let ours = source.video_frames() as f64 / wall;
        bench.jobs.push(JobResult {
            job: name,
            rungs: job_rungs.iter().map(RenditionSpec::name).collect(),
            fps: ours,
            speed: media_seconds / wall,
            mpix_per_sec: pixels / wall / 1e6,
            ffmpeg_fps,
            ratio: ffmpeg_fps.map(|f| ours / f),
            ffmpeg_error,
        });
        if job_rungs.len() == rungs.len() {
            let decode = if bench.backend == Backend::Software {
                source.width as f64 * source.height as f64 * source.video_frames() as f64 * SOFTWARE_DECODE_WEIGHT
            } else {
                0.0
            };
            bench.measured_capacity = Some(Load {
                sessions: crate::slots::default_capacity(bench.backend, 1, None).sessions.max(rungs.len() as u32),
                mpix_per_sec: (pixels + decode) / wall / 1e6 * CALIBRATION_HEADROOM,
            });
            ladder_outputs = Some(run.outputs);
        }
    }
    let latency =
        if options.skip_latency { None } else { Some(run_pipeline(config(rungs.to_vec()), source, true)?.stats) };
    let outputs = ladder_outputs.expect("the ladder job ran");
    let none = (None, Vec::new());
    for rung in rungs {
        let (width, height) = rung_size(source.width, source.height, rung.height);
        let (track, units) = outputs.get(&rung.name()).unwrap_or(&none);
        let bytes: usize = units.iter().map(|u| u.data.len()).sum();
        let (psnr_db, ssim) = match quality(source, track, units, width, height) {
            Ok(q) => (Some(q.0), Some(q.1)),
            Err(e) => {
                tracing::warn!(rung = %rung.name(), error = %e, "quality not measured");
                (None, None)
            }
        };
        let meter = latency.as_ref().and_then(|s| s.rungs.iter().find(|r| r.name == rung.name()));
        bench.quality.push(RungQuality {
            rung: rung.name(),
            width,
            height,
            bitrate_kbps: bytes as f64 * 8.0 / media_seconds / 1000.0,
            psnr_db,
            ssim,
            latency_ms_p50: meter.map(|m| m.latency_ms_p50),
            latency_ms_p95: meter.map(|m| m.latency_ms_p95),
        });
    }
    Ok(())
}

struct Run {
    wall: Duration,
    stats: PipelineStats,
    /// By rendition name: the video track and its units.
    outputs: BTreeMap<String, (Option<TrackInfo>, Vec<EncodedUnit>)>,
}

/// Feeds `source` through a pipeline, as fast as it goes or paced in real time.
fn run_pipeline(config: PipelineConfig, source: &Source, paced: bool) -> Result<Run, AccelError> {
    let capacity = source.events.len() + 16;
    let (mut input, input_rx) = unit_channel(capacity);
    let (outputs, renditions) = Outputs::for_rungs(&config.rungs, capacity)?;
    let started = Instant::now();
    let mut pipeline = Pipeline::start(config, input_rx, outputs)?;
    let consumers: Vec<_> = renditions
        .into_iter()
        .map(|Rendition { name, stream: mut rx }| {
            let consumer = std::thread::spawn(move || {
                let mut track = None;
                let mut units = Vec::new();
                while let Some(event) = rx.blocking_recv() {
                    match event {
                        StreamEvent::Tracks(t) => track = t.iter().find(|t| t.kind == TrackKind::Video).cloned(),
                        StreamEvent::Unit(u) if u.kind == TrackKind::Video => units.push(u),
                        StreamEvent::Unit(_) => {}
                    }
                }
                (track, units)
            });
            (name, consumer)
        })
        .collect();
    for event in &source.events {
        match event {
            StreamEvent::Tracks(t) => input.blocking_send_tracks(t.clone()).map_err(|_| AccelError::OutputsClosed)?,
            StreamEvent::Unit(u) => {
                let mut u = u.clone();
                if paced && u.kind == TrackKind::Video {
                    let due = started + Duration::from_secs_f64(media::Timebase::VIDEO.seconds(u.dts).max(0.0));
                    std::thread::sleep(due.saturating_duration_since(Instant::now()));
                }
                u.arrival = media::Arrival::now();
                let _ = input.send_unit(u);
            }
        }
    }
    drop(input);
    let mut failure = None;
    while let Some(event) = pipeline.blocking_next_event() {
        match event {
            // The bench never asks for a restart.
            PipelineEvent::Finished | PipelineEvent::Restartable { .. } => break,
            PipelineEvent::Failed { error, .. } => {
                failure = Some(error);
                break;
            }
            PipelineEvent::Configured { .. } | PipelineEvent::Graph { .. } => {}
        }
    }
    let stats = pipeline.stats();
    pipeline.join();
    let outputs = consumers.into_iter().map(|(name, c)| (name, c.join().unwrap_or_default())).collect();
    let wall = started.elapsed();
    match failure {
        Some(error) => Err(error),
        None => Ok(Run { wall, stats, outputs }),
    }
}

/// The same ladder run by the `ffmpeg` program with the same encoder settings; its wall time.
fn ffmpeg_reference(
    backend: Backend,
    device: &DeviceId,
    rungs: &[RenditionSpec],
    source: &Source,
    path: &Path,
    options: &BenchOptions,
) -> Result<Duration, String> {
    let fps = source.fps.0 as f64 / source.fps.1 as f64;
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostats", "-loglevel", "error", "-y"]);
    let node = device.ffmpeg_device().unwrap_or("");
    let (upload, scale): (&str, fn(u32, u32) -> String) = match backend {
        Backend::Software => ("", |w, h| format!("scale=w={w}:h={h}:flags=bicubic,format=yuv420p")),
        Backend::Nvenc => {
            cmd.args(["-hwaccel", "cuda", "-hwaccel_output_format", "cuda", "-hwaccel_device", node]);
            ("", |w, h| format!("scale_cuda=w={w}:h={h}"))
        }
        Backend::Vaapi => {
            cmd.args(["-hwaccel", "vaapi", "-hwaccel_output_format", "vaapi", "-hwaccel_device", node]);
            ("", |w, h| format!("scale_vaapi=w={w}:h={h}:format=nv12"))
        }
        Backend::Qsv => {
            cmd.args([
                "-init_hw_device",
                &format!("qsv=hw,child_device={node}"),
                "-hwaccel",
                "qsv",
                "-hwaccel_output_format",
                "qsv",
            ]);
            ("", |w, h| format!("vpp_qsv=w={w}:h={h}"))
        }
    };
    cmd.args(["-t", &format!("{:.3}", source.seconds)]).arg("-i").arg(path);
    let labels: String = (0..rungs.len()).map(|i| format!("[s{i}]")).collect();
    let mut graph = format!("[0:v]{upload}split={}{labels}", rungs.len());
    for (i, r) in rungs.iter().enumerate() {
        let (w, h) = rung_size(source.width, source.height, r.height);
        graph.push_str(&format!(";[s{i}]{}[o{i}]", scale(w, h)));
    }
    cmd.args(["-filter_complex", &graph]);
    let keyframes = format!("expr:gte(t,n_forced*{})", options.keyframe_interval.as_secs_f64());
    for (i, r) in rungs.iter().enumerate() {
        let settings = EncoderSettings::for_rung(
            backend,
            r.codec,
            r.bitrate_kbps,
            fps,
            options.keyframe_interval.as_secs_f64(),
            None,
        );
        cmd.args(["-map", &format!("[o{i}]")]).args(settings.ffmpeg_args());
        cmd.args(["-force_key_frames", &keyframes, "-an", "-f", "null", "-"]);
    }
    let started = Instant::now();
    let output = cmd.output().map_err(|e| format!("cannot run ffmpeg: {e}"))?;
    let wall = started.elapsed();
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).lines().take(3).collect::<Vec<_>>().join(" / "));
    }
    Ok(wall)
}

/// Mean per-frame PSNR (dB) and SSIM of an encoded rung against the source scaled to its size.
fn quality(
    source: &Source,
    track: &Option<TrackInfo>,
    units: &[EncodedUnit],
    width: u32,
    height: u32,
) -> Result<(f64, f64), String> {
    let track = track.as_ref().ok_or("no output track")?;
    let source_track = source
        .events
        .iter()
        .find_map(|e| match e {
            StreamEvent::Tracks(t) => t.iter().find(|t| t.kind == TrackKind::Video).cloned(),
            StreamEvent::Unit(_) => None,
        })
        .ok_or("no source track")?;
    let mut reference = Decoder::new(&source_track)?;
    let mut encoded = Decoder::new(track)?;
    let mut graph = ffmpeg::filter::Graph::new();
    let fail = |e: ffmpeg::Error| e.to_string();
    let buffer = ffmpeg::filter::find("buffer").ok_or("no buffer filter")?;
    let src_args =
        format!("video_size={}x{}:pix_fmt=yuv420p:time_base=1/90000:pixel_aspect=1/1", source.width, source.height);
    graph.add(&buffer, "ref", &src_args).map_err(fail)?;
    graph
        .add(&buffer, "enc", &format!("video_size={width}x{height}:pix_fmt=yuv420p:time_base=1/90000:pixel_aspect=1/1"))
        .map_err(fail)?;
    graph.add(&ffmpeg::filter::find("buffersink").ok_or("no buffersink")?, "out", "").map_err(fail)?;
    let spec = format!(
        "[ref]scale=w={width}:h={height}:flags=bicubic,format=yuv420p,split[r1][r2];[enc]format=yuv420p[e];[e][r1]psnr[p];[p][r2]ssim[out]"
    );
    graph
        .output("ref", 0)
        .map_err(fail)?
        .output("enc", 0)
        .map_err(fail)?
        .input("out", 0)
        .map_err(fail)?
        .parse(&spec)
        .map_err(fail)?;
    graph.validate().map_err(fail)?;
    let source_units = source.events.iter().filter_map(|e| match e {
        StreamEvent::Unit(u) if u.kind == TrackKind::Video => Some(u),
        _ => None,
    });
    let mut source_units = source_units.peekable();
    let (mut psnr, mut ssim, mut n) = (0.0, 0.0, 0usize);
    let mut pending_ref: BTreeMap<i64, ffmpeg::frame::Video> = BTreeMap::new();
    let read = |graph: &mut ffmpeg::filter::Graph, psnr: &mut f64, ssim: &mut f64, n: &mut usize| {
        let mut out = ffmpeg::frame::Video::empty();
        while graph.get("out").is_some_and(|mut s| s.sink().frame(&mut out).is_ok()) {
            let meta = out.metadata();
            let p = meta.get("lavfi.psnr.psnr_avg").and_then(|v| v.parse::<f64>().ok());
            let s = meta.get("lavfi.ssim.All").and_then(|v| v.parse::<f64>().ok());
            if let (Some(p), Some(s)) = (p, s) {
                *psnr += p.min(100.0);
                *ssim += s;
                *n += 1;
            }
        }
    };
    for unit in units {
        for frame in encoded.decode(unit)? {
            let pts = frame.pts().unwrap_or(0);
            while !pending_ref.contains_key(&pts) {
                let Some(next) = source_units.next() else { break };
                for f in reference.decode(next)? {
                    pending_ref.insert(f.pts().unwrap_or(0), f);
                }
            }
            let Some(reference_frame) = pending_ref.remove(&pts) else { continue };
            pending_ref.retain(|p, _| *p > pts);
            graph.get("ref").ok_or("no ref")?.source().add(&reference_frame).map_err(fail)?;
            graph.get("enc").ok_or("no enc")?.source().add(&frame).map_err(fail)?;
            read(&mut graph, &mut psnr, &mut ssim, &mut n);
        }
    }
    for name in ["ref", "enc"] {
        let _ = graph.get(name).ok_or("no source")?.source().flush();
    }
    read(&mut graph, &mut psnr, &mut ssim, &mut n);
    if n == 0 {
        return Err("no frame compared".into());
    }
    Ok((psnr / n as f64, ssim / n as f64))
}

/// A software decoder for quality measurement.
struct Decoder(ffmpeg::decoder::Video);

impl Decoder {
    fn new(track: &TrackInfo) -> Result<Decoder, String> {
        let (id, record) = match &track.codec {
            CodecConfig::Avc(a) => (ffmpeg::codec::Id::H264, a.record.clone()),
            CodecConfig::Hevc(h) => (ffmpeg::codec::Id::HEVC, h.record.clone()),
            CodecConfig::Av1(a) => (ffmpeg::codec::Id::AV1, a.record.clone()),
            CodecConfig::Aac(_) | CodecConfig::OtherAudio(_) => return Err("not video".into()),
        };
        let codec = ffmpeg::decoder::find(id).ok_or("no decoder")?;
        let mut ctx = ffi::NotOpenedCodec::new(codec);
        ctx.set_extradata(&record);
        let mut decoder = ctx.into_context().decoder();
        decoder.set_packet_time_base((1, 90_000));
        decoder.video().map(Decoder).map_err(|e| e.to_string())
    }

    fn decode(&mut self, unit: &EncodedUnit) -> Result<Vec<ffmpeg::frame::Video>, String> {
        let mut packet = ffmpeg::Packet::copy(&unit.data);
        packet.set_pts(Some(unit.pts));
        packet.set_dts(Some(unit.dts));
        let _ = self.0.send_packet(&packet);
        let mut frames = Vec::new();
        loop {
            let mut frame = ffmpeg::frame::Video::empty();
            if self.0.receive_frame(&mut frame).is_err() {
                break;
            }
            let pts = frame.timestamp().or(frame.pts());
            frame.set_pts(pts);
            frames.push(frame);
        }
        Ok(frames)
    }
}
