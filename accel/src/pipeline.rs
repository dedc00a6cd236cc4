//! The transcode of one live session, on dedicated OS threads joined to
//! tokio by bounded channels:
//!
//! ```text
//! ingest --unit channel--> [session thread] decode once (NVDEC/VAAPI/QSV or CPU)
//!                            -> one filter graph: split + scale per rung
//!                               (scale_cuda / scale_vaapi / vpp_qsv keep frames on the device)
//!                            --bounded--> [rung thread] encode --unit channel--> packager
//!                            --bounded--> [rung thread] encode --unit channel--> packager
//! ```
//!
//! Keyframes are forced on the same source timestamps in every rung (closed
//! GOPs: IDR only), so every rendition has the same segment boundaries. AAC
//! audio is passed through once into every rung. A rung thread that cannot
//! keep up blocks the session thread, whose bounded input then drops at the
//! ingest side to the next keyframe (counted by the unit channel): latency
//! never grows without bound. An encoder or device failure ends the threads
//! and hands the channels back in `PipelineEvent::Failed` so the supervisor
//! can restart the ladder elsewhere without ending the HLS stream (the new
//! encoders announce their tracks again, which the packager turns into a
//! discontinuity). A `FaultSwitch` injects such a failure into a running
//! pipeline, for tests and failover drills.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ffmpeg_next as ffmpeg;
use media::{
    Arrival, CodecConfig, DropStats, EncodedUnit, RenditionSpec, StreamEvent, Timebase, TrackInfo, TrackKind,
    UnitReceiver, UnitSender, VideoCodec,
};
use serde::Serialize;

use crate::bitstream;
use crate::cadence::{FrameRateCap, KeyframeCadence, TICKS_PER_SECOND};
use crate::device::{Backend, DeviceId};
use crate::error::AccelError;
use crate::ffi::{self, HwDevice, HwKind};
use crate::meter::{RungMeter, RungStats};
use crate::options::EncoderSettings;

/// Events between ingest and a pipeline: small, so a transcode that falls
/// behind drops (to the next keyframe) within about a second instead of queueing.
pub const INPUT_QUEUE: usize = 64;
/// Frames queued to each rung's encoder thread.
const RUNG_QUEUE: usize = 4;
/// Pipeline events to the supervisor.
const EVENT_QUEUE: usize = 16;
/// Audio units held before the first video frame decides which rungs run.
const EARLY_AUDIO: usize = 256;
/// Consecutive decode errors on a hardware decoder that mean the device is gone.
const HW_DECODE_ERRORS_LOST: u32 = 30;
/// Largest source accepted (4K UHD, with DCI 4K's width).
const MAX_SOURCE: (u32, u32) = (4096, 2304);
/// Highest source frame rate accepted (60 fps, with NTSC and jitter slack).
const MAX_SOURCE_FPS: f64 = 61.0;

/// What one pipeline does.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Channel name, for thread names and logs.
    pub label: String,
    pub backend: Backend,
    pub device: DeviceId,
    /// The ladder's rungs, in the order of the outputs passed to `start`.
    pub rungs: Vec<RenditionSpec>,
    /// Keyframe cadence: the segment target.
    pub keyframe_interval: Duration,
    /// Encoder preset instead of the table's (tests and the bench use `ultrafast`).
    pub preset: Option<String>,
    /// Test hook: the first rung's encoder fails after this many frames.
    #[doc(hidden)]
    pub fail_after_frames: Option<u64>,
    /// Fault injection on the running ladder (tests and drills); shared by
    /// every pipeline started or resumed with clones of this config.
    pub faults: FaultSwitch,
}

/// A failure to inject into a running pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The encoder returns an error (`AccelError::Encode`).
    Encoder,
    /// The device is lost (`AccelError::DeviceLost`; the supervisor takes a hardware device out of service).
    DeviceLost,
}

/// Fault injection for tests and drills, harmless in production: it is a
/// flag in memory that nothing outside the process can set, and tripping it
/// makes the first rung encoder to take a frame fail exactly as a real
/// encoder error or device loss would, once, handing the ladder back for a
/// move. Clones share the flag, so it survives `Pipeline::resume`.
#[derive(Debug, Clone, Default)]
pub struct FaultSwitch(Arc<AtomicU8>);

impl FaultSwitch {
    const NONE: u8 = 0;
    const ENCODER: u8 = 1;
    const DEVICE_LOST: u8 = 2;

    /// Arms `fault`: the next encoded frame of any rung fails with it.
    pub fn trip(&self, fault: Fault) {
        let code = match fault {
            Fault::Encoder => Self::ENCODER,
            Fault::DeviceLost => Self::DEVICE_LOST,
        };
        self.0.store(code, Ordering::SeqCst);
    }

    /// Whether a fault is armed and not yet taken by an encoder.
    pub fn is_armed(&self) -> bool {
        self.0.load(Ordering::SeqCst) != Self::NONE
    }

    /// Takes the armed fault (one rung takes it; the others carry on).
    fn take(&self) -> Option<Fault> {
        match self.0.swap(Self::NONE, Ordering::SeqCst) {
            Self::ENCODER => Some(Fault::Encoder),
            Self::DEVICE_LOST => Some(Fault::DeviceLost),
            _ => None,
        }
    }
}

/// What the supervisor hears from a pipeline.
#[derive(Debug)]
pub enum PipelineEvent {
    /// The first video frame was decoded: these rungs run, those above the source were dropped.
    Configured { source: (u32, u32), kept: Vec<String>, dropped: Vec<String> },
    /// The pipeline stopped on an error. With `resume`, the ladder can be
    /// restarted (`Pipeline::resume`) on another slot: the input and the
    /// outputs are handed back, so the HLS stream continues with a discontinuity.
    Failed { error: AccelError, resume: Option<Resume> },
    /// The input ended (publish over) and every output was closed.
    Finished,
}

/// The channels of a failed pipeline, to restart the ladder with.
#[derive(Debug)]
pub struct Resume {
    pub input: UnitReceiver,
    /// Per rung; `None` for rungs that were dropped or whose consumer left.
    pub outputs: Vec<Option<UnitSender>>,
    /// The source's last track announcement (the source does not repeat it).
    pub source_tracks: Option<Arc<[TrackInfo]>>,
}

/// A snapshot of a running pipeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipelineStats {
    pub decoded_frames: u64,
    /// Source units dropped at the input because the transcode fell behind.
    pub input_dropped_units: u64,
    pub input_drop_episodes: u64,
    pub rungs: Vec<RungStats>,
}

/// A running pipeline. Dropping it asks the threads to stop (at the next input event).
#[derive(Debug)]
pub struct Pipeline {
    events: tokio::sync::mpsc::Receiver<PipelineEvent>,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    meters: Mutex<Vec<Arc<RungMeter>>>,
    decoded: AtomicU64,
    input_drops: Arc<DropStats>,
}

impl Pipeline {
    /// Starts a pipeline reading `input` and writing one output per rung.
    pub fn start(
        config: PipelineConfig,
        input: UnitReceiver,
        outputs: Vec<UnitSender>,
    ) -> Result<Pipeline, AccelError> {
        let resume = Resume { input, outputs: outputs.into_iter().map(Some).collect(), source_tracks: None };
        Self::resume(config, resume)
    }

    /// Restarts a ladder from a failed pipeline's channels (possibly on another device).
    pub fn resume(config: PipelineConfig, resume: Resume) -> Result<Pipeline, AccelError> {
        ffi::init();
        if resume.outputs.len() != config.rungs.len() {
            return Err(AccelError::Source(format!(
                "{} outputs for {} rungs",
                resume.outputs.len(),
                config.rungs.len()
            )));
        }
        let (events_tx, events) = tokio::sync::mpsc::channel(EVENT_QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            meters: Mutex::new(Vec::new()),
            decoded: AtomicU64::new(0),
            input_drops: resume.input.stats(),
        });
        let name = format!("accel-{}", config.label);
        // Everything that touches libav, the device included, happens on the session thread.
        let stop_flag = stop.clone();
        let shared_stats = shared.clone();
        let thread = std::thread::Builder::new()
            .name(truncate_thread_name(name))
            .spawn(move || {
                let hw = match hw_kind(config.backend) {
                    None => None,
                    Some(kind) => match open_device(kind, &config.device) {
                        Ok(hw) => Some(hw),
                        Err(detail) => {
                            let error = AccelError::DeviceLost { device: config.device.clone(), detail };
                            let _ = events_tx.blocking_send(PipelineEvent::Failed { error, resume: Some(resume) });
                            return;
                        }
                    },
                };
                Session::new(config, resume, hw, events_tx, stop_flag, shared_stats).run()
            })
            .map_err(|e| AccelError::Init(format!("cannot start the session thread: {e}")))?;
        Ok(Pipeline { events, stop, shared, thread: Some(thread) })
    }

    /// The next event; `None` once the pipeline's thread has ended and every event was read.
    pub async fn next_event(&mut self) -> Option<PipelineEvent> {
        self.events.recv().await
    }

    /// The next event if one is waiting.
    pub fn try_next_event(&mut self) -> Option<PipelineEvent> {
        self.events.try_recv().ok()
    }

    /// `next_event` for callers on plain threads (the bench); never on the runtime.
    pub fn blocking_next_event(&mut self) -> Option<PipelineEvent> {
        self.events.blocking_recv()
    }

    pub fn stats(&self) -> PipelineStats {
        let meters = self.shared.meters.lock().unwrap_or_else(|e| e.into_inner());
        PipelineStats {
            decoded_frames: self.shared.decoded.load(Ordering::Relaxed),
            input_dropped_units: self.shared.input_drops.dropped_units(),
            input_drop_episodes: self.shared.input_drops.drop_episodes(),
            rungs: meters.iter().map(|m| m.snapshot()).collect(),
        }
    }

    /// Asks the threads to stop; they do at the next input event.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Waits for the session thread (bench and tests; it ends when the input ends).
    pub fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// `name` cut to the 15 bytes a Linux thread name holds (a readable prefix).
pub fn truncate_thread_name(mut name: String) -> String {
    while name.len() > 15 {
        name.pop();
    }
    name
}

fn hw_kind(backend: Backend) -> Option<HwKind> {
    match backend {
        Backend::Software => None,
        Backend::Nvenc => Some(HwKind::Cuda),
        Backend::Vaapi => Some(HwKind::Vaapi),
        Backend::Qsv => Some(HwKind::Qsv),
    }
}

/// Opens the FFmpeg device context behind a device id.
pub(crate) fn open_device(kind: HwKind, device: &DeviceId) -> Result<HwDevice, String> {
    let node = device.ffmpeg_device();
    match kind {
        HwKind::Qsv => HwDevice::create(kind, Some("hw"), &node.map(|n| vec![("child_device", n)]).unwrap_or_default()),
        _ => HwDevice::create(kind, node, &[]),
    }
}

/// What the session thread sends a rung thread.
enum RungInput {
    Frame { frame: ffmpeg::frame::Video, arrival: Arrival },
    Audio(EncodedUnit),
    AudioTrack(Option<TrackInfo>),
}

struct Worker {
    tx: SyncSender<RungInput>,
    join: JoinHandle<WorkerExit>,
}

struct WorkerExit {
    output: Option<UnitSender>,
    result: Result<(), AccelError>,
}

/// The split + scale graph for one source format.
struct Scaler {
    graph: ffmpeg::filter::Graph,
    source: (u32, u32, ffmpeg::format::Pixel),
    /// (rung index, sink name) for each kept rung.
    sinks: Vec<(usize, String)>,
}

struct Session {
    config: PipelineConfig,
    input: UnitReceiver,
    outputs: Vec<Option<UnitSender>>,
    events: tokio::sync::mpsc::Sender<PipelineEvent>,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
    hw: Option<HwDevice>,
    source_tracks: Option<Arc<[TrackInfo]>>,
    video_track: Option<usize>,
    audio: Option<TrackInfo>,
    decoder: Option<ffmpeg::decoder::Video>,
    waiting_for_keyframe: bool,
    decode_errors: u32,
    decode_errors_total: u64,
    scaler: Option<Scaler>,
    /// Rung index -> worker, once the first frame decided which rungs run.
    workers: Option<Vec<Option<Worker>>>,
    early_audio: VecDeque<EncodedUnit>,
    cadence: KeyframeCadence,
    arrivals: VecDeque<(i64, Arrival)>,
}

impl Session {
    fn new(
        config: PipelineConfig,
        resume: Resume,
        hw: Option<HwDevice>,
        events: tokio::sync::mpsc::Sender<PipelineEvent>,
        stop: Arc<AtomicBool>,
        shared: Arc<Shared>,
    ) -> Self {
        let interval = Timebase::VIDEO.ticks(config.keyframe_interval);
        Session {
            input: resume.input,
            outputs: resume.outputs,
            events,
            stop,
            shared,
            hw,
            source_tracks: None,
            video_track: None,
            audio: None,
            decoder: None,
            waiting_for_keyframe: true,
            decode_errors: 0,
            decode_errors_total: 0,
            scaler: None,
            workers: None,
            early_audio: VecDeque::new(),
            cadence: KeyframeCadence::new(interval),
            arrivals: VecDeque::new(),
            config,
        }
        .primed(resume.source_tracks)
    }

    fn primed(mut self, tracks: Option<Arc<[TrackInfo]>>) -> Self {
        if let Some(tracks) = tracks
            && let Err(error) = self.on_tracks(tracks)
        {
            tracing::warn!(channel = %self.config.label, %error, "resumed source tracks not usable");
        }
        self
    }

    fn run(mut self) {
        let events = self.events.clone();
        let outcome = self.run_loop();
        let event = match outcome {
            Ok(()) => {
                self.finish();
                PipelineEvent::Finished
            }
            Err(error) => {
                let movable = error.is_movable();
                let outputs = self.stop_workers();
                tracing::warn!(channel = %self.config.label, device = %self.config.device, %error, "transcode stopped");
                let Session { input, source_tracks, .. } = self;
                let resume = movable.then_some(Resume { input, outputs, source_tracks });
                PipelineEvent::Failed { error, resume }
            }
        };
        // A rare, must-deliver message: wait for room.
        let _ = events.blocking_send(event);
    }

    fn run_loop(&mut self) -> Result<(), AccelError> {
        while !self.stop.load(Ordering::Relaxed) {
            let Some(event) = self.input.blocking_recv() else { return Ok(()) };
            match event {
                StreamEvent::Tracks(tracks) => self.on_tracks(tracks)?,
                StreamEvent::Unit(unit) if Some(unit.track) == self.video_track => self.on_video(unit)?,
                StreamEvent::Unit(unit) if unit.kind == TrackKind::Audio => self.on_audio(unit)?,
                StreamEvent::Unit(_) => {}
            }
        }
        Ok(())
    }

    fn on_tracks(&mut self, tracks: Arc<[TrackInfo]>) -> Result<(), AccelError> {
        let video = tracks.iter().position(|t| t.kind == TrackKind::Video);
        let audio = tracks.iter().find(|t| t.kind == TrackKind::Audio).cloned();
        let previous_video = self.video_track.and_then(|i| self.source_tracks.as_ref().map(|t| t[i].codec.clone()));
        let new_video = video.map(|i| tracks[i].codec.clone());
        if let Some(rate) = video.and_then(|i| tracks[i].frame_rate).filter(|(n, d)| *d > 0 && *n > 0)
            && rate.0 as f64 / rate.1 as f64 > MAX_SOURCE_FPS
        {
            return Err(AccelError::Source(format!(
                "{}/{} fps is above the 60 fps this appliance accepts",
                rate.0, rate.1
            )));
        }
        if previous_video != new_video || self.decoder.is_none() {
            self.decoder = match video {
                Some(i) => Some(self.open_decoder(&tracks[i])?),
                None => None,
            };
            self.waiting_for_keyframe = true;
        }
        if audio != self.audio {
            self.audio = audio.clone();
            self.broadcast(|| RungInput::AudioTrack(audio.clone()))?;
        }
        self.video_track = video;
        self.source_tracks = Some(tracks);
        Ok(())
    }

    fn open_decoder(&self, track: &TrackInfo) -> Result<ffmpeg::decoder::Video, AccelError> {
        let (id, record, qsv_name) = match &track.codec {
            CodecConfig::Avc(avc) => (ffmpeg::codec::Id::H264, avc.record.clone(), "h264_qsv"),
            CodecConfig::Hevc(hevc) => (ffmpeg::codec::Id::HEVC, hevc.record.clone(), "hevc_qsv"),
            CodecConfig::Aac(_) | CodecConfig::OtherAudio(_) => {
                return Err(AccelError::Source("the video track carries audio".into()));
            }
        };
        let codec = match self.config.backend {
            Backend::Qsv => ffmpeg::decoder::find_by_name(qsv_name),
            _ => ffmpeg::decoder::find(id),
        }
        .ok_or_else(|| AccelError::Decode(format!("no decoder for {id:?} in this FFmpeg")))?;
        let mut unopened = ffi::NotOpenedCodec::new(codec);
        unopened.set_extradata(&record);
        if let Some(hw) = &self.hw {
            unopened.set_hw_device(hw);
        }
        let mut ctx = unopened.into_context();
        if self.hw.is_none() {
            // Slice threads add no delay; frame threads (a frame of delay per
            // thread) only where one core cannot decode the source in time.
            let large = track.resolution().is_some_and(|(w, h)| w * h > 1920 * 1088);
            let kind = if large { ffmpeg::threading::Type::Frame } else { ffmpeg::threading::Type::Slice };
            ctx.set_threading(ffmpeg::threading::Config { kind, count: 0, ..Default::default() });
        }
        let mut decoder = ctx.decoder();
        decoder.set_packet_time_base((1, TICKS_PER_SECOND as i32));
        let (opened, log) = ffi::capture_log(|| decoder.video());
        opened.map_err(|e| AccelError::Decode(format!("{e}: {}", log.join(" / "))))
    }

    fn on_video(&mut self, unit: EncodedUnit) -> Result<(), AccelError> {
        if self.waiting_for_keyframe {
            if !unit.keyframe {
                return Ok(());
            }
            self.waiting_for_keyframe = false;
        }
        let Some(decoder) = self.decoder.as_mut() else { return Ok(()) };
        self.arrivals.push_back((unit.pts, unit.arrival));
        while self.arrivals.len() > 256 {
            self.arrivals.pop_front();
        }
        let mut packet = ffmpeg::Packet::copy(&unit.data);
        packet.set_pts(Some(unit.pts));
        packet.set_dts(Some(unit.dts));
        if unit.keyframe {
            packet.set_flags(ffmpeg::packet::Flags::KEY);
        }
        match decoder.send_packet(&packet) {
            Ok(()) => self.decode_errors = 0,
            Err(e) => {
                self.decode_errors += 1;
                self.decode_errors_total += 1;
                if self.decode_errors_total.is_power_of_two() {
                    tracing::warn!(channel = %self.config.label, error = %e, total = self.decode_errors_total, "source frames failed to decode");
                }
                if self.hw.is_some() && self.decode_errors >= HW_DECODE_ERRORS_LOST {
                    return Err(AccelError::DeviceLost {
                        device: self.config.device.clone(),
                        detail: format!("{} decode errors in a row: {e}", self.decode_errors),
                    });
                }
            }
        }
        self.drain_decoder()
    }

    fn drain_decoder(&mut self) -> Result<(), AccelError> {
        loop {
            let Some(decoder) = self.decoder.as_mut() else { return Ok(()) };
            let mut frame = ffmpeg::frame::Video::empty();
            if decoder.receive_frame(&mut frame).is_err() {
                return Ok(());
            }
            self.on_frame(frame)?;
        }
    }

    fn on_frame(&mut self, mut frame: ffmpeg::frame::Video) -> Result<(), AccelError> {
        self.shared.decoded.fetch_add(1, Ordering::Relaxed);
        let Some(pts) = frame.timestamp().or(frame.pts()) else { return Ok(()) };
        let (width, height) = (frame.width(), frame.height());
        if width > MAX_SOURCE.0 || height > MAX_SOURCE.1 {
            return Err(AccelError::Source(format!(
                "{width}x{height} is larger than the 3840x2160 this appliance accepts"
            )));
        }
        if self.workers.is_none() {
            self.start_workers(width, height)?;
        }
        let stale = self.scaler.as_ref().is_none_or(|s| s.source != (width, height, frame.format()));
        if stale {
            self.scaler = Some(self.build_scaler(&frame)?);
        }
        let forced = self.cadence.decide(pts, frame.is_key());
        frame.set_pts(Some(pts));
        frame.set_kind(if forced { ffmpeg::picture::Type::I } else { ffmpeg::picture::Type::None });
        let arrival = self.arrival_of(pts);
        let scaler = self.scaler.as_mut().expect("built above");
        let mut source = scaler.graph.get("in").expect("the graph has its source");
        source.source().add(&frame).map_err(|e| AccelError::Filter(e.to_string()))?;
        let mut outputs = Vec::with_capacity(scaler.sinks.len());
        for (rung, sink_name) in &scaler.sinks {
            let mut sink = scaler.graph.get(sink_name).expect("the graph has its sinks");
            loop {
                let mut scaled = ffmpeg::frame::Video::empty();
                match sink.sink().frame(&mut scaled) {
                    Ok(()) => outputs.push((*rung, scaled)),
                    Err(ffmpeg::Error::Other { errno: libc::EAGAIN }) | Err(ffmpeg::Error::Eof) => break,
                    Err(e) => return Err(AccelError::Filter(e.to_string())),
                }
            }
        }
        for (rung, scaled) in outputs {
            self.send_to(rung, RungInput::Frame { frame: scaled, arrival })?;
        }
        Ok(())
    }

    fn arrival_of(&mut self, pts: i64) -> Arrival {
        while let Some((front, _)) = self.arrivals.front() {
            if *front < pts && self.arrivals.len() > 1 && self.arrivals.iter().any(|(p, _)| *p == pts) {
                self.arrivals.pop_front();
            } else {
                break;
            }
        }
        self.arrivals.iter().find(|(p, _)| *p == pts).map(|(_, a)| *a).unwrap_or_else(Arrival::now)
    }

    /// Decides which rungs run for a `width`x`height` source and starts their threads.
    fn start_workers(&mut self, width: u32, height: u32) -> Result<(), AccelError> {
        let source_fps = self
            .video_track
            .and_then(|i| self.source_tracks.as_ref()?[i].frame_rate)
            .filter(|(n, d)| *n > 0 && *d > 0)
            .unwrap_or((30, 1));
        let mut workers = Vec::with_capacity(self.config.rungs.len());
        let (mut kept, mut dropped) = (Vec::new(), Vec::new());
        for (index, spec) in self.config.rungs.clone().into_iter().enumerate() {
            let output = self.outputs[index].take();
            if spec.height > height || output.is_none() {
                dropped.push(spec.name());
                workers.push(None); // dropping the output ends that rendition with no media
                continue;
            }
            kept.push(spec.name());
            let meter = Arc::new(RungMeter::new(spec.name()));
            self.shared.meters.lock().unwrap_or_else(|e| e.into_inner()).push(meter.clone());
            let (tx, rx) = sync_channel(RUNG_QUEUE);
            let encoder = RungEncoder {
                spec: spec.clone(),
                backend: self.config.backend,
                device: self.config.device.clone(),
                preset: self.config.preset.clone(),
                keyframe_seconds: self.config.keyframe_interval.as_secs_f64(),
                source_fps,
                fail_after: if index == 0 { self.config.fail_after_frames } else { None },
                faults: self.config.faults.clone(),
                output: output.expect("checked above"),
                meter,
                encoder: None,
                opened_for: None,
                codec: spec.codec,
                video: None,
                audio: self.audio.clone(),
                announced: false,
                held_audio: VecDeque::new(),
                pending: VecDeque::new(),
                cap: FrameRateCap::new(spec.max_fps),
                frames_in: 0,
            };
            let name = truncate_thread_name(format!("accel-{}", spec.name()));
            let join = std::thread::Builder::new()
                .name(name)
                .spawn(move || encoder.run(rx))
                .map_err(|e| AccelError::Init(format!("cannot start an encoder thread: {e}")))?;
            workers.push(Some(Worker { tx, join }));
        }
        tracing::info!(channel = %self.config.label, source = %format!("{width}x{height}"), kept = ?kept, dropped = ?dropped, backend = %self.config.backend, "ladder configured");
        let _ = self.events.blocking_send(PipelineEvent::Configured { source: (width, height), kept, dropped });
        self.workers = Some(workers);
        let early: Vec<EncodedUnit> = self.early_audio.drain(..).collect();
        for unit in early {
            self.broadcast(|| RungInput::Audio(unit.clone()))?;
        }
        if self.workers.as_ref().is_some_and(|w| w.iter().all(Option::is_none)) {
            return Err(AccelError::OutputsClosed);
        }
        Ok(())
    }

    fn build_scaler(&self, frame: &ffmpeg::frame::Video) -> Result<Scaler, AccelError> {
        let fail = |e: ffmpeg::Error| AccelError::Filter(e.to_string());
        let (width, height, format) = (frame.width(), frame.height(), frame.format());
        let format_name = format
            .descriptor()
            .map(|d| d.name())
            .ok_or_else(|| AccelError::Filter(format!("{format:?} has no name")))?;
        let sar = frame.aspect_ratio();
        let (sar_n, sar_d) =
            if sar.numerator() > 0 && sar.denominator() > 0 { (sar.numerator(), sar.denominator()) } else { (1, 1) };
        let mut graph = ffmpeg::filter::Graph::new();
        let args = format!(
            "video_size={width}x{height}:pix_fmt={format_name}:time_base=1/{TICKS_PER_SECOND}:pixel_aspect={sar_n}/{sar_d}"
        );
        graph.add(&ffmpeg::filter::find("buffer").expect("libavfilter has buffer"), "in", &args).map_err(fail)?;
        let on_device = ffi::frame_hw_frames(frame);
        if let Some(frames) = &on_device {
            let mut source = graph.get("in").expect("just added");
            ffi::set_buffersrc_hw_frames(&mut source, frames).map_err(AccelError::Filter)?;
        }
        let workers = self.workers.as_ref().expect("workers start before the scaler");
        let rungs: Vec<(usize, u32, u32)> = workers
            .iter()
            .enumerate()
            .filter(|(_, w)| w.is_some())
            .map(|(i, _)| {
                let (w, h) = rung_size(width, height, self.config.rungs[i].height);
                (i, w, h)
            })
            .collect();
        let mut sinks = Vec::new();
        for (i, _, _) in &rungs {
            let name = format!("out{i}");
            graph
                .add(&ffmpeg::filter::find("buffersink").expect("libavfilter has buffersink"), &name, "")
                .map_err(fail)?;
            sinks.push((*i, name));
        }
        let upload = match (self.config.backend, &on_device) {
            (Backend::Software, _) | (_, Some(_)) => "",
            _ => "format=nv12,hwupload,",
        };
        let labels: String = rungs.iter().map(|(i, _, _)| format!("[s{i}]")).collect();
        let mut spec = format!("[in]{upload}split={}{labels}", rungs.len());
        for (i, w, h) in &rungs {
            let scale = match self.config.backend {
                Backend::Software => format!("scale=w={w}:h={h}:flags=bicubic,format=yuv420p"),
                Backend::Nvenc => format!("scale_cuda=w={w}:h={h}"),
                Backend::Vaapi => format!("scale_vaapi=w={w}:h={h}:format=nv12"),
                Backend::Qsv => format!("vpp_qsv=w={w}:h={h}"),
            };
            spec.push_str(&format!(";[s{i}]{scale}[out{i}]"));
        }
        let mut parser = graph.output("in", 0).map_err(fail)?;
        for (_, name) in &sinks {
            parser = parser.input(name, 0).map_err(fail)?;
        }
        parser.parse(&spec).map_err(|e| AccelError::Filter(format!("{spec}: {e}")))?;
        if let Some(hw) = &self.hw {
            ffi::set_graph_device(&mut graph, hw);
        }
        let (validated, log) = ffi::capture_log(|| graph.validate());
        validated.map_err(|e| AccelError::Filter(format!("{spec}: {e}: {}", log.join(" / "))))?;
        Ok(Scaler { graph, source: (width, height, format), sinks })
    }

    fn on_audio(&mut self, unit: EncodedUnit) -> Result<(), AccelError> {
        if self.workers.is_none() {
            if self.early_audio.len() >= EARLY_AUDIO {
                self.early_audio.pop_front();
            }
            self.early_audio.push_back(unit);
            return Ok(());
        }
        self.broadcast(|| RungInput::Audio(unit.clone()))
    }

    fn broadcast(&mut self, input: impl Fn() -> RungInput) -> Result<(), AccelError> {
        let count = self.workers.as_ref().map_or(0, Vec::len);
        for rung in 0..count {
            if self.workers.as_ref().is_some_and(|w| w[rung].is_some()) {
                self.send_to(rung, input())?;
            }
        }
        Ok(())
    }

    /// Sends to a rung thread, waiting while it is busy (backpressure to the input).
    fn send_to(&mut self, rung: usize, input: RungInput) -> Result<(), AccelError> {
        let Some(workers) = self.workers.as_mut() else { return Ok(()) };
        let Some(worker) = workers[rung].as_ref() else { return Ok(()) };
        if worker.tx.send(input).is_ok() {
            return Ok(());
        }
        // The thread ended: an encoder failure, or its consumer left.
        let worker = workers[rung].take().expect("present above");
        let exit = worker.join.join().unwrap_or_else(|_| WorkerExit {
            output: None,
            result: Err(AccelError::Encode {
                encoder: "unknown",
                device: self.config.device.clone(),
                detail: "the encoder thread panicked".into(),
            }),
        });
        self.outputs[rung] = exit.output;
        exit.result?;
        if workers.iter().all(Option::is_none) {
            return Err(AccelError::OutputsClosed);
        }
        Ok(())
    }

    /// Stops every rung thread and collects the outputs they still hold.
    fn stop_workers(&mut self) -> Vec<Option<UnitSender>> {
        if let Some(workers) = self.workers.take() {
            for (rung, worker) in workers.into_iter().enumerate() {
                if let Some(Worker { tx, join }) = worker {
                    drop(tx);
                    if let Ok(exit) = join.join() {
                        self.outputs[rung] = exit.output;
                    }
                }
            }
        }
        std::mem::take(&mut self.outputs)
    }

    /// The input ended: drain the decoder, let every encoder flush, close the outputs.
    fn finish(&mut self) {
        if let Some(decoder) = self.decoder.as_mut() {
            let _ = decoder.send_eof();
            let _ = self.drain_decoder();
        }
        let outputs = self.stop_workers();
        drop(outputs);
        tracing::info!(channel = %self.config.label, decode_errors = self.decode_errors_total, "transcode finished");
    }
}

/// A rung's picture size for a source: the rung's height (even) and the
/// source's aspect ratio (even width).
pub fn rung_size(source_width: u32, source_height: u32, height: u32) -> (u32, u32) {
    let height = (height.min(source_height) / 2 * 2).max(2);
    let width = ((source_width as f64 * height as f64 / source_height as f64 / 2.0).round() as u32 * 2).max(2);
    (width, height)
}

type OpenEncoder = ffmpeg::codec::encoder::video::Encoder;

/// One rung's encoder thread.
struct RungEncoder {
    spec: RenditionSpec,
    backend: Backend,
    device: DeviceId,
    preset: Option<String>,
    keyframe_seconds: f64,
    source_fps: (u32, u32),
    fail_after: Option<u64>,
    faults: FaultSwitch,
    output: UnitSender,
    meter: Arc<RungMeter>,
    encoder: Option<OpenEncoder>,
    /// The (width, height, format) the encoder was opened for.
    opened_for: Option<(u32, u32, ffmpeg::format::Pixel)>,
    codec: VideoCodec,
    video: Option<TrackInfo>,
    audio: Option<TrackInfo>,
    announced: bool,
    held_audio: VecDeque<EncodedUnit>,
    /// (pts, arrival) of frames inside the encoder.
    pending: VecDeque<(i64, Arrival)>,
    cap: FrameRateCap,
    frames_in: u64,
}

/// Why a rung thread ended early without an error: its consumer left.
struct Closed;

impl RungEncoder {
    fn run(mut self, rx: Receiver<RungInput>) -> WorkerExit {
        let result = self.run_loop(&rx);
        let result = match result {
            Ok(()) => self.flush(),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => WorkerExit { output: Some(self.output), result: Ok(()) },
            Err(Ok(Closed)) => WorkerExit { output: None, result: Ok(()) },
            Err(Err(e)) => WorkerExit { output: Some(self.output), result: Err(e) },
        }
    }

    fn run_loop(&mut self, rx: &Receiver<RungInput>) -> Result<(), Result<Closed, AccelError>> {
        while let Ok(input) = rx.recv() {
            match input {
                RungInput::Frame { frame, arrival } => self.on_frame(frame, arrival)?,
                RungInput::Audio(unit) => self.on_audio(unit)?,
                RungInput::AudioTrack(track) => {
                    if track != self.audio {
                        self.audio = track;
                        if self.announced {
                            self.announce()?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn fps(&self) -> f64 {
        let source = self.source_fps.0 as f64 / self.source_fps.1 as f64;
        self.spec.max_fps.map_or(source, |cap| source.min(cap as f64))
    }

    fn encode_error(&self, encoder: &'static str, e: impl std::fmt::Display) -> Result<Closed, AccelError> {
        Err(AccelError::Encode { encoder, device: self.device.clone(), detail: e.to_string() })
    }

    fn on_frame(
        &mut self,
        mut frame: ffmpeg::frame::Video,
        arrival: Arrival,
    ) -> Result<(), Result<Closed, AccelError>> {
        let pts = frame.pts().unwrap_or(0);
        let forced = frame.kind() == ffmpeg::picture::Type::I;
        if !self.cap.keep(pts, forced) {
            self.meter.record_capped();
            return Ok(());
        }
        let format = (frame.width(), frame.height(), frame.format());
        if self.encoder.is_some() && self.opened_for != Some(format) {
            // The source changed size or format mid-session: a new encoder, a new init (a discontinuity).
            self.flush()?;
            self.encoder = None;
            self.video = None;
            self.announced = false;
        }
        if self.encoder.is_none() {
            self.encoder = Some(self.open(&frame).map_err(Err)?);
            self.opened_for = Some(format);
        }
        self.frames_in += 1;
        if self.fail_after.is_some_and(|n| self.frames_in > n) {
            return Err(self.encode_error("injected", "injected encoder failure (test hook)"));
        }
        match self.faults.take() {
            Some(Fault::Encoder) => {
                return Err(self.encode_error(self.settings().encoder, "injected encoder failure (fault switch)"));
            }
            Some(Fault::DeviceLost) => {
                let detail = "injected device loss (fault switch)".to_string();
                return Err(Err(AccelError::DeviceLost { device: self.device.clone(), detail }));
            }
            None => {}
        }
        frame.set_kind(if forced { ffmpeg::picture::Type::I } else { ffmpeg::picture::Type::None });
        self.pending.push_back((pts, arrival));
        let settings_encoder = self.settings().encoder;
        let sent = self.encoder.as_mut().expect("opened above").send_frame(&frame);
        if let Err(e) = sent {
            return Err(self.encode_error(settings_encoder, e));
        }
        self.drain()
    }

    fn settings(&self) -> EncoderSettings {
        EncoderSettings::for_rung(
            self.backend,
            self.codec,
            self.spec.bitrate_kbps,
            self.fps(),
            self.keyframe_seconds,
            self.preset.as_deref(),
        )
    }

    fn open(&mut self, frame: &ffmpeg::frame::Video) -> Result<OpenEncoder, AccelError> {
        let settings = self.settings();
        let codec =
            ffmpeg::encoder::find_by_name(settings.encoder).ok_or(AccelError::EncoderMissing(settings.encoder))?;
        let mut unopened = ffi::NotOpenedCodec::new(codec);
        if let Some(frames) = ffi::frame_hw_frames(frame) {
            // Frames on a device: the encoder reads them from their frames context.
            unopened.set_hw_frames(&frames);
        }
        let mut encoder = unopened
            .into_context()
            .encoder()
            .video()
            .map_err(|e| AccelError::EncoderOpen { encoder: settings.encoder, detail: e.to_string() })?;
        encoder.set_width(frame.width());
        encoder.set_height(frame.height());
        encoder.set_format(frame.format());
        let sar = frame.aspect_ratio();
        if sar.numerator() > 0 {
            encoder.set_aspect_ratio(sar);
        }
        encoder.set_time_base((1, TICKS_PER_SECOND as i32));
        let fps = self.fps();
        encoder.set_frame_rate(Some(ffmpeg::Rational::from(fps)));
        encoder.set_bit_rate(settings.bitrate);
        encoder.set_max_bit_rate(settings.max_bitrate);
        encoder.set_gop(settings.gop_frames);
        encoder.set_max_b_frames(0);
        encoder.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);
        let mut options = ffmpeg::Dictionary::new();
        options.set("bufsize", &settings.buffer_size.to_string());
        for (k, v) in &settings.options {
            options.set(k, v);
        }
        let (opened, log) = ffi::capture_log(|| encoder.open_with(options));
        let opened = opened.map_err(|e| AccelError::EncoderOpen {
            encoder: settings.encoder,
            detail: if log.is_empty() { e.to_string() } else { format!("{e}: {}", log.join(" / ")) },
        })?;
        self.meter.set_size(frame.width(), frame.height());
        let extradata = ffi::extradata(opened.as_ref());
        if !extradata.is_empty() {
            let config = bitstream::codec_config(self.codec, &extradata).map_err(|e| AccelError::EncoderOpen {
                encoder: settings.encoder,
                detail: format!("parameter sets: {e}"),
            })?;
            self.video = Some(self.video_track(config));
        }
        tracing::debug!(rung = %self.spec.name(), encoder = settings.encoder, width = frame.width(), height = frame.height(), fps, "encoder opened");
        Ok(opened)
    }

    fn video_track(&self, codec: CodecConfig) -> TrackInfo {
        let fps = self.fps();
        let frame_rate = if (fps - fps.round()).abs() < 1e-6 {
            (fps.round() as u32, 1)
        } else {
            ((fps * 1001.0).round() as u32, 1001)
        };
        TrackInfo {
            kind: TrackKind::Video,
            timebase: Timebase::VIDEO,
            codec,
            frame_rate: Some(frame_rate),
            bitrate: Some(self.spec.bitrate_kbps * 1000),
        }
    }

    fn announce(&mut self) -> Result<(), Result<Closed, AccelError>> {
        let Some(video) = self.video.clone() else { return Ok(()) };
        let mut tracks = vec![video];
        tracks.extend(self.audio.clone());
        self.output.blocking_send_tracks(Arc::from(tracks)).map_err(|_| Ok(Closed))?;
        self.announced = true;
        while let Some(unit) = self.held_audio.pop_front() {
            self.on_audio(unit)?;
        }
        Ok(())
    }

    fn on_audio(&mut self, mut unit: EncodedUnit) -> Result<(), Result<Closed, AccelError>> {
        if !self.announced || self.audio.is_none() {
            if self.audio.is_some() {
                if self.held_audio.len() >= EARLY_AUDIO {
                    self.held_audio.pop_front();
                }
                self.held_audio.push_back(unit);
            }
            return Ok(());
        }
        unit.track = 1;
        self.output.send_unit(unit).map_err(|_| Ok(Closed))?;
        Ok(())
    }

    /// Moves every packet the encoder has ready to the output.
    fn drain(&mut self) -> Result<(), Result<Closed, AccelError>> {
        loop {
            let mut packet = ffmpeg::Packet::empty();
            let received = self.encoder.as_mut().expect("open").receive_packet(&mut packet);
            match received {
                Ok(()) => self.on_packet(&packet)?,
                Err(ffmpeg::Error::Other { errno: libc::EAGAIN }) | Err(ffmpeg::Error::Eof) => return Ok(()),
                Err(e) => return Err(self.encode_error(self.settings().encoder, e)),
            }
        }
    }

    fn on_packet(&mut self, packet: &ffmpeg::Packet) -> Result<(), Result<Closed, AccelError>> {
        let Some(data) = packet.data() else { return Ok(()) };
        if self.video.is_none() {
            // No global header from this encoder: the first keyframe carries the parameter sets.
            let config = bitstream::codec_config(self.codec, data).map_err(|e| {
                Err(AccelError::Encode {
                    encoder: self.settings().encoder,
                    device: self.device.clone(),
                    detail: format!("no parameter sets in the first packet: {e}"),
                })
            })?;
            self.video = Some(self.video_track(config));
        }
        if !self.announced {
            self.announce()?;
        }
        let pts = packet.pts().unwrap_or(0);
        let dts = packet.dts().unwrap_or(pts).min(pts);
        while self.pending.front().is_some_and(|(p, _)| *p < pts) {
            self.pending.pop_front();
        }
        let arrival = match self.pending.front() {
            Some((p, a)) if *p == pts => {
                let a = *a;
                self.pending.pop_front();
                a
            }
            _ => Arrival::now(),
        };
        let payload = bitstream::to_length_prefixed(self.codec, data);
        self.meter.record_frame(payload.len(), Instant::now().saturating_duration_since(arrival.instant));
        let unit = EncodedUnit {
            track: 0,
            kind: TrackKind::Video,
            pts,
            dts,
            keyframe: packet.is_key(),
            data: payload,
            arrival,
        };
        self.output.send_unit(unit).map_err(|_| Ok(Closed))?;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Result<Closed, AccelError>> {
        if let Some(encoder) = self.encoder.as_mut() {
            let _ = encoder.send_eof();
            self.drain()?;
        }
        Ok(())
    }
}
