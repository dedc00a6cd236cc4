//! The appliance's side of `accel`: the encoder probe (once, at start, off
//! the runtime) and the slot pool (`Transcoder`), and a session's ladder
//! stage.
//!
//! A ladder's slot is leased at publish time for a nominal source (16:9 at
//! 30 fps), so a channel that cannot have a slot at all is refused at once
//! with the scheduler's typed error. The stage's task then supervises the
//! ladder: at the source's first video announcement it re-lets the slot for
//! the real size and frame rate (moving, falling back or refusing per policy)
//! and only then starts the pipeline on the slot it got; it logs the
//! pipeline's stats, raises the fallback alert, and moves the ladder to
//! another slot when an encoder or device fails, which the packager turns
//! into a discontinuity in every rendition, not an ENDLIST. What it does
//! comes up to the session as typed events (`EncoderPlaced`,
//! `EncoderMoved`); when the ladder cannot go on, the task ends with the
//! reason and the session ends with it.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use accel::pipeline::{FaultSwitch, INPUT_QUEUE, Outputs, Pipeline, PipelineConfig, PipelineEvent, Rendition, Resume};
use accel::probe::ProbeReport;
use accel::scheduler::{Demand, NOMINAL_FPS};
use accel::{AccelError, Calibration, Lease, SlotPool};
use media::{
    ChannelOutput, EncoderPolicy, Ladder, PictureProcessing, RenditionSpec, TrackInfo, TrackKind, UnitSender,
    unit_channel,
};
use tokio::sync::{mpsc, watch};

use super::events::SessionEvent;

/// The queue between the ladder and the session's fan-out, per rendition.
const RENDITION_QUEUE: usize = 256;
/// How often a running ladder logs its per-rung stats.
const STATS_INTERVAL: Duration = Duration::from_secs(30);
/// Moves of one session's ladder after failures before it gives up.
const MAX_MOVES: u32 = 3;

/// The renditions a channel's sessions have: the ladder's rungs, then the
/// source when the ladder offers it, or the source alone.
pub fn rendition_names(output: &ChannelOutput) -> Vec<String> {
    match output {
        ChannelOutput::Passthrough => vec!["source".to_string()],
        ChannelOutput::Ladder { ladder } => {
            let mut names: Vec<String> = ladder.rungs.iter().map(RenditionSpec::name).collect();
            if ladder.include_source {
                names.push("source".to_string());
            }
            names
        }
    }
}

/// Encoder probe and slots, shared by every session.
#[derive(Debug)]
pub struct Transcoder {
    data_dir: std::path::PathBuf,
    state: tokio::sync::OnceCell<(Arc<ProbeReport>, SlotPool)>,
}

impl Transcoder {
    pub fn new(data_dir: &Path) -> Arc<Self> {
        Arc::new(Self { data_dir: data_dir.to_path_buf(), state: tokio::sync::OnceCell::new() })
    }

    /// Encoder slot usage once the probe has run; never waits for it (systemd STATUS).
    pub fn slot_usage(&self) -> Option<Vec<accel::slots::DeviceUsage>> {
        self.state.get().map(|(_, pool)| pool.usage())
    }

    /// Probes the devices (once, on a blocking thread) and builds the slot pool.
    pub async fn ready(&self) -> &(Arc<ProbeReport>, SlotPool) {
        self.state
            .get_or_init(|| async {
                let data_dir = self.data_dir.clone();
                let probed = tokio::task::spawn_blocking(move || {
                    let report = accel::probe::probe();
                    let calibration = Calibration::load(&data_dir).unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "encoder capacity calibration ignored; using defaults");
                        Calibration::default()
                    });
                    (report, calibration)
                })
                .await;
                let (report, calibration) = probed.unwrap_or_else(|e| {
                    tracing::error!(error = %e, "encoder probe failed");
                    (ProbeReport { libavcodec: String::new(), cpu_cores: 1, backends: Vec::new() }, Calibration::default())
                });
                for b in &report.backends {
                    match &b.status {
                        accel::probe::ProbeStatus::Available { .. } => {
                            tracing::info!(backend = %b.backend, device = %b.device, name = %b.name, "encoder available")
                        }
                        accel::probe::ProbeStatus::Unavailable { reason } => {
                            tracing::info!(backend = %b.backend, device = %b.device, %reason, "encoder unavailable")
                        }
                    }
                }
                let pool = SlotPool::from_probe(&report, &calibration);
                (Arc::new(report), pool)
            })
            .await
    }

    /// Leases a slot for `ladder` at a nominal source under `policy`, or says
    /// why not (`is_capacity()`: no slot fits; otherwise the probe's reason,
    /// e.g. `hardware-only` without hardware).
    pub async fn lease(&self, ladder: &Ladder, policy: EncoderPolicy) -> Result<LadderLease, AccelError> {
        let (_, pool) = self.ready().await;
        let demand = Demand::for_rungs(&ladder.rungs, NOMINAL_FPS);
        let lease = pool.lease(&demand, policy)?;
        Ok(LadderLease { lease, pool: pool.clone(), demand, policy, ladder: ladder.clone() })
    }
}

/// A ladder's slot, leased for a session that has not started yet.
#[derive(Debug)]
pub struct LadderLease {
    lease: Lease,
    pool: SlotPool,
    demand: Demand,
    policy: EncoderPolicy,
    ladder: Ladder,
}

/// The latest track announcement of a session.
pub type Announced = Option<Arc<[TrackInfo]>>;

/// A session's ladder: the session writes the source into `input` (and
/// publishes each announcement on `tracks` first), reads each rung's stream
/// from `renditions`, and joins `run`.
pub struct LadderStage {
    pub input: UnitSender,
    pub tracks: watch::Sender<Announced>,
    /// The rungs' streams, by rendition name, in the ladder's order.
    pub renditions: Vec<Rendition>,
    /// Trips a failure in the running ladder (tests and failover drills).
    pub faults: FaultSwitch,
    /// New picture processing for the running ladder: it restarts with it
    /// (a discontinuity in every rendition, no end of stream).
    pub picture: watch::Sender<PictureProcessing>,
    /// The supervision: `Ok` when the publish ended, `Err` with the reason when the ladder cannot go on.
    pub run: std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send>>,
}

impl LadderLease {
    /// Starts supervising the ladder with `picture` processing; the pipeline
    /// itself starts at the source's first video announcement. `label` names
    /// threads and logs.
    pub fn start(
        self,
        label: &str,
        keyframe_interval: Duration,
        picture: PictureProcessing,
        events: mpsc::Sender<SessionEvent>,
    ) -> Result<LadderStage, AccelError> {
        let (input, input_rx) = unit_channel(INPUT_QUEUE);
        let (outputs, renditions) = Outputs::for_rungs(&self.ladder.rungs, RENDITION_QUEUE)?;
        let faults = FaultSwitch::default();
        let config = PipelineConfig {
            label: label.to_string(),
            backend: self.lease.backend(),
            device: self.lease.device().clone(),
            rungs: self.ladder.rungs.clone(),
            picture: picture.clone(),
            keyframe_interval,
            preset: None,
            fail_after_frames: None,
            faults: faults.clone(),
        };
        let (tracks, announced) = watch::channel(None);
        let (picture, pictures) = watch::channel(picture);
        let supervised = Supervised { pool: self.pool, demand: self.demand, policy: self.policy, events, pictures };
        let resume = Resume { input: input_rx, outputs, source_tracks: None };
        let run = Box::pin(supervised.run(self.lease, config, resume, announced));
        Ok(LadderStage { input, tracks, renditions, faults, picture, run })
    }
}

fn has_video(tracks: &Announced) -> bool {
    tracks.as_ref().is_some_and(|t| t.iter().any(|t| t.kind == TrackKind::Video))
}

/// "1280x720 at 60 fps" for logs and refusals.
fn describe_source(tracks: &[TrackInfo]) -> String {
    let Some(video) = tracks.iter().find(|t| t.kind == TrackKind::Video) else { return "no video".into() };
    let (w, h) = video.resolution().unwrap_or_default();
    match video.frame_rate.filter(|(n, d)| *n > 0 && *d > 0) {
        Some((n, d)) => format!("{w}x{h} at {:.2} fps", n as f64 / d as f64).replace(".00 fps", " fps"),
        None => format!("{w}x{h} (no declared frame rate; {NOMINAL_FPS} fps assumed)"),
    }
}

/// One session's ladder under supervision.
struct Supervised {
    pool: SlotPool,
    /// What the lease is for: nominal until the first video announcement, then the source's.
    demand: Demand,
    policy: EncoderPolicy,
    events: mpsc::Sender<SessionEvent>,
    /// The picture processing to run; a change restarts the pipeline with it.
    pictures: watch::Receiver<PictureProcessing>,
}

impl Supervised {
    /// Runs the ladder until the publish ends (`Ok`) or it cannot go on (`Err` with the reason).
    async fn run(
        mut self,
        mut lease: Lease,
        mut config: PipelineConfig,
        resume: Resume,
        mut tracks: watch::Receiver<Announced>,
    ) -> Result<(), String> {
        // The pipeline starts once the source's first video announcement says what it really costs.
        let first = match tracks.wait_for(has_video).await {
            Ok(announced) => announced.clone().unwrap_or_else(|| Arc::from(Vec::new())),
            Err(_) => return Ok(()), // the publish ended before any video
        };
        let source = describe_source(&first);
        if let Some(real) = Demand::for_tracks(&config.rungs, &first) {
            lease
                .relet(&real, self.policy)
                .map_err(|e| format!("the source is {source}, more than its nominal lease: {e}"))?;
            self.demand = real;
        }
        if let Some(why) = lease.fallback() {
            // The alert: prefer-hardware fell back to the CPU.
            tracing::warn!(alert = "transcode-fallback", reason = why, "no hardware slot: ladder runs on the CPU");
        }
        config.backend = lease.backend();
        config.device = lease.device().clone();
        let mut pipeline = Pipeline::resume(config.clone(), resume).map_err(|e| e.to_string())?;
        tracing::info!(%source, backend = %lease.backend(), device = %lease.device(), load = ?lease.load(), "ladder leased");

        let mut tick = tokio::time::interval(STATS_INTERVAL);
        tick.tick().await;
        let mut tracks_open = true;
        let mut pictures_open = true;
        let mut moves = 0;
        loop {
            let event = tokio::select! {
                event = pipeline.next_event() => event,
                _ = tick.tick() => {
                    log_stats(&pipeline, "transcode");
                    continue;
                }
                changed = tracks.changed(), if tracks_open => {
                    tracks_open = changed.is_ok();
                    let announced = tracks.borrow_and_update().clone();
                    self.resize(&mut lease, &config.rungs, announced.as_deref());
                    continue;
                }
                changed = self.pictures.changed(), if pictures_open => {
                    pictures_open = changed.is_ok();
                    if pictures_open {
                        // Applied when the pipeline hands its channels back (`Restartable`).
                        pipeline.restart();
                    }
                    continue;
                }
            };
            match event {
                Some(PipelineEvent::Configured { source, kept, dropped }) => {
                    tracing::info!(source = ?source, kept = ?kept, dropped = ?dropped, "ladder running");
                    let placed = SessionEvent::EncoderPlaced {
                        backend: lease.backend(),
                        device: lease.device().clone(),
                        kept,
                        dropped,
                    };
                    let _ = self.events.send(placed).await;
                }
                Some(PipelineEvent::Failed { error, resume: Some(resume) }) if moves < MAX_MOVES => {
                    moves += 1;
                    let from = lease.device().clone();
                    tracing::error!(alert = "transcode-failed", device = %from, %error, "encoder failed; moving the ladder");
                    if error.is_device_lost() && lease.backend().is_hardware() {
                        self.pool.mark_failed(&from);
                    }
                    lease
                        .relet(&self.demand, self.policy)
                        .map_err(|e| format!("{error}; and no slot to move the ladder to: {e}"))?;
                    if let Some(why) = lease.fallback() {
                        tracing::warn!(alert = "transcode-fallback", reason = why, "ladder moved to the CPU");
                    }
                    config.backend = lease.backend();
                    config.device = lease.device().clone();
                    pipeline = Pipeline::resume(config.clone(), resume)
                        .map_err(|e| format!("{error}; and the ladder could not restart: {e}"))?;
                    tracing::warn!(alert = "transcode-moved", from = %from, to = %lease.device(), "ladder moved (a discontinuity in every rendition)");
                    let moved = SessionEvent::EncoderMoved {
                        from,
                        to: lease.device().clone(),
                        backend: lease.backend(),
                        error: error.to_string(),
                        at: SystemTime::now(),
                    };
                    let _ = self.events.send(moved).await;
                }
                Some(PipelineEvent::Graph { graph, cpu_steps }) => {
                    if !cpu_steps.is_empty() {
                        tracing::info!(?cpu_steps, backend = %lease.backend(), "picture processing runs these steps on the CPU");
                    }
                    let _ = self.events.send(SessionEvent::FilterGraph { graph, cpu_steps }).await;
                }
                Some(PipelineEvent::Restartable { resume }) => {
                    config.picture = self.pictures.borrow_and_update().clone();
                    pipeline = Pipeline::resume(config.clone(), resume)
                        .map_err(|e| format!("the ladder could not restart with its new processing: {e}"))?;
                    tracing::info!(picture = ?config.picture, "ladder restarted with new processing (a discontinuity in every rendition)");
                }
                Some(PipelineEvent::Failed { error, .. }) if error.is_closed() => return Ok(()),
                Some(PipelineEvent::Failed { error, .. }) => {
                    let after = if moves > 0 { format!(" (after {moves} moves)") } else { String::new() };
                    return Err(format!("transcode failed{after}: {error}"));
                }
                Some(PipelineEvent::Finished) | None => {
                    log_stats(&pipeline, "transcode ended");
                    return Ok(());
                }
            }
        }
    }

    /// A later video announcement (the source changed size or rate). The set
    /// of renditions stays as the session began (players never reload the
    /// multivariant playlist, so a rendition can neither appear nor vanish);
    /// the pipeline rescales to the new size, never up (`accel::pipeline::rung_size`).
    /// Moving a running ladder would cost a discontinuity, so its lease is
    /// counted at the new demand where it is, with an alert when over budget.
    fn resize(&mut self, lease: &mut Lease, rungs: &[RenditionSpec], announced: Option<&[TrackInfo]>) {
        let Some(tracks) = announced else { return };
        let Some(demand) = Demand::for_tracks(rungs, tracks).filter(|d| *d != self.demand) else { return };
        let source = describe_source(tracks);
        match lease.resize(&demand) {
            None => tracing::info!(%source, load = ?lease.load(), "source changed; lease adjusted"),
            Some(over) => {
                tracing::warn!(alert = "transcode-over-budget", %source, reason = %over, "source changed; the ladder now uses more than its slot has")
            }
        }
        self.demand = demand;
    }
}

fn log_stats(pipeline: &Pipeline, message: &str) {
    let stats = pipeline.stats();
    for rung in &stats.rungs {
        tracing::info!(rendition = %rung.name, frames = rung.frames, added_latency_p50_ms = rung.latency_ms_p50, added_latency_p95_ms = rung.latency_ms_p95, added_latency_max_ms = rung.latency_ms_max, "{message}");
    }
    if stats.input_dropped_units > 0 {
        tracing::warn!(
            dropped_units = stats.input_dropped_units,
            episodes = stats.input_drop_episodes,
            "transcode fell behind real time: input dropped to the next keyframe"
        );
    }
}
