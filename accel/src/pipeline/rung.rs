//! One rung's encoder thread: takes scaled frames (and the source's AAC)
//! from the session thread, keeps the rung's frame-rate cap, opens the
//! encoder for the frames' size (again when it changes), announces the
//! rendition's tracks and writes its units to the rendition's output.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Instant;

use ffmpeg_next as ffmpeg;
use media::{Arrival, CodecConfig, EncodedUnit, RenditionSpec, Timebase, TrackInfo, TrackKind, UnitSender, VideoCodec};

use super::config::{EARLY_AUDIO, PipelineConfig};
use super::fault::{Fault, FaultSwitch};
use crate::bitstream;
use crate::cadence::{FrameRateCap, TICKS_PER_SECOND};
use crate::device::{Backend, DeviceId};
use crate::error::AccelError;
use crate::ffi::{self, NotOpenedCodec};
use crate::meter::RungMeter;
use crate::options::EncoderSettings;
use crate::thread_name::truncate_thread_name;

/// Frames queued to each rung's encoder thread.
const RUNG_QUEUE: usize = 4;

/// What the session thread sends a rung thread.
pub(super) enum RungInput {
    Frame { frame: ffmpeg::frame::Video, arrival: Arrival },
    Audio(EncodedUnit),
    AudioTrack(Option<TrackInfo>),
}

/// A running rung thread, as the session thread holds it.
pub(super) struct Worker {
    pub(super) tx: SyncSender<RungInput>,
    pub(super) join: JoinHandle<WorkerExit>,
}

/// How a rung thread ended: its output (None once its consumer left) and why.
pub(super) struct WorkerExit {
    pub(super) output: Option<UnitSender>,
    pub(super) result: Result<(), AccelError>,
}

type OpenEncoder = ffmpeg::codec::encoder::video::Encoder;

/// One rung's encoder thread.
pub(super) struct RungEncoder {
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
    /// The encoder of `spec` (rung `index` of `config`) for a source of
    /// `source_fps`, writing to `output`, with the source's audio track.
    pub(super) fn new(
        config: &PipelineConfig,
        index: usize,
        spec: RenditionSpec,
        source_fps: (u32, u32),
        output: UnitSender,
        meter: Arc<RungMeter>,
        audio: Option<TrackInfo>,
    ) -> Self {
        RungEncoder {
            backend: config.backend,
            device: config.device.clone(),
            preset: config.preset.clone(),
            keyframe_seconds: config.keyframe_interval.as_secs_f64(),
            source_fps,
            fail_after: if index == 0 { config.fail_after_frames } else { None },
            faults: config.faults.clone(),
            output,
            meter,
            encoder: None,
            opened_for: None,
            codec: spec.codec,
            video: None,
            audio,
            announced: false,
            held_audio: VecDeque::new(),
            pending: VecDeque::new(),
            cap: FrameRateCap::new(spec.max_fps),
            frames_in: 0,
            spec,
        }
    }

    /// Starts the rung's thread, fed through a small bounded queue.
    pub(super) fn spawn(self) -> Result<Worker, AccelError> {
        let (tx, rx) = sync_channel(RUNG_QUEUE);
        let name = truncate_thread_name(format!("accel-{}", self.spec.name()));
        let join = std::thread::Builder::new()
            .name(name)
            .spawn(move || self.run(rx))
            .map_err(|e| AccelError::Init(format!("cannot start an encoder thread: {e}")))?;
        Ok(Worker { tx, join })
    }

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
        let mut unopened = NotOpenedCodec::new(codec);
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
