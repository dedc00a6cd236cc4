//! The session thread of a pipeline: reads the source's events, keeps its
//! tracks, decodes the video once, decides at the first frame which rungs
//! run (none above the source), forces keyframes on the cadence, scales each
//! frame for every running rung and feeds the rung threads (waiting while one
//! is busy, which is the back-pressure to the input), passes AAC to all of
//! them, and on the way out collects the outputs by rendition name.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ffmpeg_next as ffmpeg;
use media::{EncodedUnit, ScalingMode, StreamEvent, Timebase, TrackInfo, TrackKind, UnitReceiver};

use super::config::{EARLY_AUDIO, PipelineConfig};
use super::decode::SourceDecoder;
use super::events::{PipelineEvent, Resume};
use super::picture::{self, SourceFacts};
use super::rendition::Outputs;
use super::rung::{RungEncoder, RungInput, Worker, WorkerExit};
use super::scale::Scaler;
use super::stats::Shared;
use crate::cadence::KeyframeCadence;
use crate::error::AccelError;
use crate::ffi::HwDevice;
use crate::meter::RungMeter;

/// Largest source accepted (4K UHD, with DCI 4K's width).
const MAX_SOURCE: (u32, u32) = (4096, 2304);
/// Highest source frame rate accepted (60 fps, with NTSC and jitter slack).
const MAX_SOURCE_FPS: f64 = 61.0;

/// Why the session loop ended without an error.
enum Ended {
    /// The input ended or the pipeline was stopped.
    Input,
    /// `Pipeline::restart`: hand the channels back.
    RestartAsked,
}

pub(super) struct Session {
    config: PipelineConfig,
    input: UnitReceiver,
    /// The outputs no rung thread holds now, by rendition name.
    outputs: Outputs,
    events: tokio::sync::mpsc::Sender<PipelineEvent>,
    stop: Arc<AtomicBool>,
    restart: Arc<AtomicBool>,
    shared: Arc<Shared>,
    hw: Option<HwDevice>,
    source_tracks: Option<Arc<[TrackInfo]>>,
    video_track: Option<usize>,
    audio: Option<TrackInfo>,
    decoder: SourceDecoder,
    scaler: Option<Scaler>,
    /// Rung index -> worker, once the first frame decided which rungs run.
    workers: Option<Vec<Option<Worker>>>,
    early_audio: VecDeque<EncodedUnit>,
    cadence: KeyframeCadence,
    /// The last display-matrix rotation the source sent (clockwise quarter turns).
    display_turns: u8,
}

impl Session {
    pub(super) fn new(
        config: PipelineConfig,
        resume: Resume,
        hw: Option<HwDevice>,
        events: tokio::sync::mpsc::Sender<PipelineEvent>,
        (stop, restart): (Arc<AtomicBool>, Arc<AtomicBool>),
        shared: Arc<Shared>,
    ) -> Self {
        let interval = Timebase::VIDEO.ticks(config.keyframe_interval);
        Session {
            input: resume.input,
            outputs: resume.outputs,
            events,
            stop,
            restart,
            shared,
            decoder: SourceDecoder::new(config.label.clone(), config.device.clone(), hw.is_some()),
            hw,
            source_tracks: None,
            video_track: None,
            audio: None,
            scaler: None,
            workers: None,
            early_audio: VecDeque::new(),
            cadence: KeyframeCadence::new(interval),
            display_turns: 0,
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

    pub(super) fn run(mut self) {
        let events = self.events.clone();
        let outcome = self.run_loop();
        let event = match outcome {
            Ok(Ended::Input) => {
                self.finish();
                PipelineEvent::Finished
            }
            Ok(Ended::RestartAsked) => {
                let outputs = self.stop_workers();
                tracing::info!(channel = %self.config.label, "transcode stopped to restart with a new configuration");
                let Session { input, source_tracks, .. } = self;
                PipelineEvent::Restartable { resume: Resume { input, outputs, source_tracks } }
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

    fn run_loop(&mut self) -> Result<Ended, AccelError> {
        while !self.stop.load(Ordering::Relaxed) {
            if self.restart.load(Ordering::Relaxed) {
                return Ok(Ended::RestartAsked);
            }
            let Some(event) = self.input.blocking_recv() else { return Ok(Ended::Input) };
            match event {
                StreamEvent::Tracks(tracks) => self.on_tracks(tracks)?,
                StreamEvent::Unit(unit) if Some(unit.track) == self.video_track => self.on_video(unit)?,
                StreamEvent::Unit(unit) if unit.kind == TrackKind::Audio => self.on_audio(unit)?,
                StreamEvent::Unit(_) => {}
            }
        }
        Ok(Ended::Input)
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
        if previous_video != new_video || !self.decoder.is_open() {
            self.decoder.open(video.map(|i| &tracks[i]), self.config.backend, self.hw.as_ref())?;
        }
        // An announcement starts a new run of the source (a switch to another
        // input, the slate): every rung starts a GOP on its first frame.
        self.cadence.restart();
        if audio != self.audio {
            self.audio = audio.clone();
            self.broadcast(|| RungInput::AudioTrack(audio.clone()))?;
        }
        self.video_track = video;
        self.source_tracks = Some(tracks);
        Ok(())
    }

    fn on_video(&mut self, unit: EncodedUnit) -> Result<(), AccelError> {
        if self.decoder.send(&unit)? {
            self.drain_decoder()?;
        }
        Ok(())
    }

    fn drain_decoder(&mut self) -> Result<(), AccelError> {
        while let Some(frame) = self.decoder.receive() {
            self.on_frame(frame)?;
        }
        Ok(())
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
        if let Some(turns) = picture::display_matrix_turns(&frame) {
            self.display_turns = turns;
        }
        let facts = SourceFacts::of(&frame, self.display_turns);
        if self.workers.is_none() {
            self.start_workers(&facts)?;
        }
        if !self.scaler.as_ref().is_some_and(|s| s.fits(&frame, &facts)) {
            let scaler = self.build_scaler(&frame, facts)?;
            let (graph, cpu_steps) = (scaler.spec().to_string(), scaler.cpu_steps().to_vec());
            self.scaler = Some(scaler);
            let _ = self.events.blocking_send(PipelineEvent::Graph { graph, cpu_steps });
        }
        let forced = self.cadence.decide(pts, frame.is_key());
        frame.set_pts(Some(pts));
        frame.set_kind(if forced { ffmpeg::picture::Type::I } else { ffmpeg::picture::Type::None });
        let arrival = self.decoder.arrival_of(pts);
        let outputs = self.scaler.as_mut().expect("built above").scale(&frame)?;
        for (rung, scaled) in outputs {
            self.send_to(rung, RungInput::Frame { frame: scaled, arrival })?;
        }
        Ok(())
    }

    /// The graph for `frame`'s size and format, scaling to every running rung.
    fn build_scaler(&self, frame: &ffmpeg::frame::Video, facts: SourceFacts) -> Result<Scaler, AccelError> {
        let workers = self.workers.as_ref().expect("workers start before the scaler");
        let rungs: Vec<(usize, u32, ScalingMode)> = workers
            .iter()
            .enumerate()
            .filter(|(_, w)| w.is_some())
            .map(|(i, _)| {
                let rung = &self.config.rungs[i];
                (i, rung.height, self.config.picture.scaling_for(&rung.name()))
            })
            .collect();
        Scaler::build(frame, facts, &self.config.picture, self.config.backend, self.hw.as_ref(), &rungs)
    }

    /// Decides which rungs run for the source and starts their threads: a
    /// rung runs when the picture (after crop and rotation) is at least as
    /// tall and the source meets the rung's conditions.
    fn start_workers(&mut self, facts: &SourceFacts) -> Result<(), AccelError> {
        let (width, height) = (facts.width, facts.height);
        let video = self.video_track.and_then(|i| self.source_tracks.as_ref().map(|t| t[i].clone()));
        let source_fps = video.as_ref().and_then(|v| v.frame_rate).filter(|(n, d)| *n > 0 && *d > 0).unwrap_or((30, 1));
        let source_kbps = video.as_ref().and_then(|v| v.bitrate).map(|b| b / 1000);
        let ((_, picture_height), _) = picture::picture_geometry(&self.config.picture, facts);
        let mut workers = Vec::with_capacity(self.config.rungs.len());
        let (mut kept, mut dropped) = (Vec::new(), Vec::new());
        for (index, spec) in self.config.rungs.clone().into_iter().enumerate() {
            let output = self.outputs.take(&spec.name());
            let why = if spec.height > picture_height {
                Some(format!("above the source's {picture_height} lines"))
            } else {
                spec.when.unmet(width, height, source_kbps)
            };
            let Some(output) = output.filter(|_| why.is_none()) else {
                dropped.push((spec.name(), why.unwrap_or_else(|| "its consumer left".into())));
                workers.push(None); // dropping the output ends that rendition with no media
                continue;
            };
            kept.push(spec.name());
            let meter = Arc::new(RungMeter::new(spec.name()));
            self.shared.meters.lock().unwrap_or_else(|e| e.into_inner()).push(meter.clone());
            let encoder = RungEncoder::new(&self.config, index, spec, source_fps, output, meter, self.audio.clone());
            workers.push(Some(encoder.spawn()?));
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
        if let Some(output) = exit.output {
            self.outputs.put(self.config.rungs[rung].name(), output);
        }
        exit.result?;
        if workers.iter().all(Option::is_none) {
            return Err(AccelError::OutputsClosed);
        }
        Ok(())
    }

    /// Stops every rung thread and collects the outputs they still hold, by rendition name.
    fn stop_workers(&mut self) -> Outputs {
        if let Some(workers) = self.workers.take() {
            for (rung, worker) in workers.into_iter().enumerate() {
                if let Some(Worker { tx, join }) = worker {
                    drop(tx);
                    if let Ok(WorkerExit { output: Some(output), .. }) = join.join() {
                        self.outputs.put(self.config.rungs[rung].name(), output);
                    }
                }
            }
        }
        std::mem::take(&mut self.outputs)
    }

    /// The input ended: drain the decoder, let every encoder flush, close the outputs.
    fn finish(&mut self) {
        if self.decoder.send_eof() {
            let _ = self.drain_decoder();
        }
        let outputs = self.stop_workers();
        drop(outputs);
        tracing::info!(channel = %self.config.label, decode_errors = self.decoder.errors_total(), "transcode finished");
    }
}
