//! The appliance's side of `accel`: probes the encoders once at start (off
//! the runtime), keeps the slot pool, and for a granted publish whose channel
//! outputs a ladder leases a slot for the whole ladder under the channel's
//! policy and returns one stream per rendition (the ladder's rungs, then the
//! source when the ladder includes it).
//!
//! The lease taken at publish time is for a nominal source (16:9 at 30 fps),
//! so a channel that cannot have a slot at all is refused at once. A small
//! task per session then supervises the ladder: at the source's first video
//! announcement it re-lets the slot for the real size and frame rate (moving,
//! falling back or refusing per policy) and only then starts the pipeline on
//! the slot it got; it logs the pipeline's stats, raises the fallback alert,
//! and moves the ladder to another slot when an encoder or device fails, which
//! the packager turns into a discontinuity in every rendition, not an ENDLIST.
//! When the ladder cannot go on, the session ends with the reason. Also the
//! `probe` and `bench transcode` commands.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use accel::bench::{BenchOptions, BenchReport};
use accel::pipeline::{Fault, FaultSwitch, INPUT_QUEUE, Outputs, Pipeline, PipelineConfig, PipelineEvent, Resume};
use accel::probe::ProbeReport;
use accel::scheduler::{Demand, NOMINAL_FPS};
use accel::{Calibration, DeviceId, Lease, SlotPool};
use media::{
    ChannelOutput, EncoderPolicy, Ladder, RenditionSpec, StreamEvent, TrackInfo, TrackKind, UnitReceiver, UnitSender,
    VideoCodec, unit_channel,
};
use serde::Serialize;
use tokio::sync::watch;

use crate::session_supervisor::{Ending, SessionSupervisor};
use crate::state::Channel;

/// The queue between the transcoder and each rendition's packager.
const RENDITION_QUEUE: usize = 256;
/// How often a running ladder logs its per-rung stats.
const STATS_INTERVAL: Duration = Duration::from_secs(30);
/// Moves of one session's ladder after failures before it gives up.
const MAX_MOVES: u32 = 3;
/// Ladder moves remembered for `Transcoder::moves`.
const MOVES_KEPT: usize = 32;

/// The renditions a channel's sessions have, in the order `Transcoder::start`
/// returns their streams (it looks each one up by this name).
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

/// A ladder moved to another slot after an encoder or device failure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LadderMove {
    pub channel: String,
    pub session: String,
    pub from: DeviceId,
    pub to: DeviceId,
    /// The failure that caused it.
    pub error: String,
    pub at: SystemTime,
}

/// The ladders running now (their fault switches) and the latest moves.
#[derive(Debug, Default)]
struct Ladders {
    /// Channel -> (session, fault switch).
    running: Mutex<HashMap<String, (String, FaultSwitch)>>,
    moves: Mutex<VecDeque<LadderMove>>,
}

impl Ladders {
    fn forget(&self, channel: &str, session: &str) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if running.get(channel).is_some_and(|(s, _)| s == session) {
            running.remove(channel);
        }
    }

    fn record(&self, moved: LadderMove) {
        let mut moves = self.moves.lock().unwrap_or_else(|e| e.into_inner());
        if moves.len() >= MOVES_KEPT {
            moves.pop_front();
        }
        moves.push_back(moved);
    }
}

/// Encoder probe and slots, shared by every publish.
#[derive(Debug)]
pub struct Transcoder {
    data_dir: std::path::PathBuf,
    state: tokio::sync::OnceCell<(Arc<ProbeReport>, SlotPool)>,
    ladders: Arc<Ladders>,
}

impl Transcoder {
    pub fn new(data_dir: &Path) -> Arc<Self> {
        Arc::new(Self {
            data_dir: data_dir.to_path_buf(),
            state: tokio::sync::OnceCell::new(),
            ladders: Arc::new(Ladders::default()),
        })
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

    /// Wires a session's `events`: passthrough returns them as the one "source"
    /// stream; a ladder leases a slot for a nominal source and hands the
    /// session to its supervising task, or says why not (the probe's reason
    /// for `hardware-only` without hardware, a spent CPU budget). Later
    /// failures end the session through `supervisor` with their reason.
    pub async fn start(
        &self,
        channel: &Channel,
        session: &str,
        events: UnitReceiver,
        keyframe_interval: Duration,
        supervisor: &Arc<SessionSupervisor>,
    ) -> Result<Vec<UnitReceiver>, String> {
        let events = crate::audio_stage::aac_audio(&channel.name, session, events);
        supervisor.count_drops(&channel.name, session, events.stats());
        let ChannelOutput::Ladder { ladder } = &channel.output else { return Ok(vec![events]) };
        let (_, pool) = self.ready().await;
        let demand = Demand::for_rungs(&ladder.rungs, NOMINAL_FPS);
        let lease = pool.lease(&demand, channel.encoder_policy).map_err(|e| e.to_string())?;
        let (input, input_rx) = unit_channel(INPUT_QUEUE);
        let (outputs, renditions) = Outputs::for_rungs(&ladder.rungs, RENDITION_QUEUE).map_err(|e| e.to_string())?;
        let mut by_name: HashMap<String, UnitReceiver> = renditions.into_iter().map(|r| (r.name, r.stream)).collect();
        let source_tx = ladder.include_source.then(|| {
            let (tx, rx) = unit_channel(RENDITION_QUEUE);
            by_name.insert("source".to_string(), rx);
            tx
        });
        let streams = rendition_names(&channel.output)
            .iter()
            .map(|name| by_name.remove(name).ok_or_else(|| format!("the ladder has no rendition {name}")))
            .collect::<Result<Vec<_>, String>>()?;
        let faults = FaultSwitch::default();
        let config = PipelineConfig {
            label: channel.name.clone(),
            backend: lease.backend(),
            device: lease.device().clone(),
            rungs: ladder.rungs.clone(),
            keyframe_interval,
            preset: None,
            fail_after_frames: None,
            faults: faults.clone(),
        };
        self.ladders
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(channel.name.clone(), (session.to_string(), faults));
        let (tracks_tx, tracks) = watch::channel(None);
        tokio::spawn(forward(events, input, source_tx, tracks_tx));
        let supervised = Supervised {
            pool: pool.clone(),
            demand,
            policy: channel.encoder_policy,
            channel: channel.name.clone(),
            session: session.to_string(),
            ladders: self.ladders.clone(),
            supervisor: supervisor.clone(),
        };
        let resume = Resume { input: input_rx, outputs, source_tracks: None };
        tokio::spawn(supervised.run(lease, config, resume, tracks));
        Ok(streams)
    }

    /// Trips the fault switch of `channel`'s running ladder: its next encoded
    /// frame fails with `fault`, and the ladder moves per policy exactly as
    /// after a real failure. For end-to-end tests and failover drills; it is
    /// reachable only from inside the process. Returns whether a ladder was
    /// running on the channel.
    pub fn inject_fault(&self, channel: &str, fault: Fault) -> bool {
        let running = self.ladders.running.lock().unwrap_or_else(|e| e.into_inner());
        let Some((session, switch)) = running.get(channel) else { return false };
        tracing::warn!(%channel, %session, ?fault, "fault injected into the ladder");
        switch.trip(fault);
        true
    }

    /// The latest ladder moves after failures, oldest first.
    pub fn moves(&self) -> Vec<LadderMove> {
        self.ladders.moves.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect()
    }
}

/// The latest track announcement of a session.
type Announced = Option<Arc<[TrackInfo]>>;

/// Copies the session's events into the pipeline's small input (where a
/// transcode that falls behind drops to the next keyframe, counted) and, for
/// a ladder that includes it, into the source rendition. Every track
/// announcement is also published on `tracks` (before it is queued, so the
/// supervisor can start the pipeline that will read it).
async fn forward(
    mut events: UnitReceiver,
    mut input: UnitSender,
    mut source: Option<UnitSender>,
    tracks: watch::Sender<Announced>,
) {
    while let Some(event) = events.recv().await {
        match event {
            StreamEvent::Tracks(announced) => {
                tracks.send_replace(Some(announced.clone()));
                if let Some(s) = source.as_mut()
                    && s.send_tracks(announced.clone()).await.is_err()
                {
                    source = None;
                }
                if input.send_tracks(announced).await.is_err() && source.is_none() {
                    return;
                }
            }
            StreamEvent::Unit(unit) => {
                if let Some(s) = source.as_mut()
                    && s.send_unit(unit.clone()).is_err()
                {
                    source = None;
                }
                if input.send_unit(unit).is_err() && source.is_none() {
                    return;
                }
            }
        }
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
    channel: String,
    session: String,
    ladders: Arc<Ladders>,
    supervisor: Arc<SessionSupervisor>,
}

impl Supervised {
    async fn run(mut self, lease: Lease, config: PipelineConfig, resume: Resume, tracks: watch::Receiver<Announced>) {
        let outcome = self.supervise(lease, config, resume, tracks).await;
        self.ladders.forget(&self.channel, &self.session);
        if let Err(reason) = outcome {
            tracing::error!(alert = "transcode-failed", channel = %self.channel, session = %self.session, %reason, "ladder stopped: the session ends");
            self.supervisor.end(&self.channel, Some(&self.session), Ending::Fail(reason));
        }
    }

    /// Runs the ladder until the publish ends (`Ok`) or it cannot go on (`Err` with the reason).
    async fn supervise(
        &mut self,
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
            tracing::warn!(alert = "transcode-fallback", channel = %self.channel, session = %self.session, reason = why, "no hardware slot: ladder runs on the CPU");
        }
        config.backend = lease.backend();
        config.device = lease.device().clone();
        // The pipeline's input queue (kept across moves): its drops are the session's.
        self.supervisor.count_drops(&self.channel, &self.session, resume.input.stats());
        let mut pipeline = Pipeline::resume(config.clone(), resume).map_err(|e| e.to_string())?;
        tracing::info!(channel = %self.channel, session = %self.session, %source, backend = %lease.backend(), device = %lease.device(), load = ?lease.load(), "ladder leased");

        let mut tick = tokio::time::interval(STATS_INTERVAL);
        tick.tick().await;
        let mut tracks_open = true;
        let mut moves = 0;
        loop {
            let event = tokio::select! {
                event = pipeline.next_event() => event,
                _ = tick.tick() => {
                    self.log_stats(&pipeline, "transcode");
                    continue;
                }
                changed = tracks.changed(), if tracks_open => {
                    tracks_open = changed.is_ok();
                    let announced = tracks.borrow_and_update().clone();
                    self.resize(&mut lease, &config.rungs, announced.as_deref());
                    continue;
                }
            };
            match event {
                Some(PipelineEvent::Configured { source, kept, dropped }) => {
                    tracing::info!(channel = %self.channel, session = %self.session, source = ?source, kept = ?kept, dropped_above_source = ?dropped, "ladder running");
                    self.supervisor.encoder_placed(
                        &self.channel,
                        &self.session,
                        lease.backend(),
                        lease.device(),
                        kept,
                        dropped,
                    );
                }
                Some(PipelineEvent::Failed { error, resume: Some(resume) }) if moves < MAX_MOVES => {
                    moves += 1;
                    let from = lease.device().clone();
                    tracing::error!(alert = "transcode-failed", channel = %self.channel, session = %self.session, device = %from, %error, "encoder failed; moving the ladder");
                    if error.is_device_lost() && lease.backend().is_hardware() {
                        self.pool.mark_failed(&from);
                    }
                    lease
                        .relet(&self.demand, self.policy)
                        .map_err(|e| format!("{error}; and no slot to move the ladder to: {e}"))?;
                    if let Some(why) = lease.fallback() {
                        tracing::warn!(alert = "transcode-fallback", channel = %self.channel, session = %self.session, reason = why, "ladder moved to the CPU");
                    }
                    config.backend = lease.backend();
                    config.device = lease.device().clone();
                    pipeline = Pipeline::resume(config.clone(), resume)
                        .map_err(|e| format!("{error}; and the ladder could not restart: {e}"))?;
                    tracing::warn!(alert = "transcode-moved", channel = %self.channel, session = %self.session, from = %from, to = %lease.device(), "ladder moved (a discontinuity in every rendition)");
                    let moved = LadderMove {
                        channel: self.channel.clone(),
                        session: self.session.clone(),
                        from,
                        to: lease.device().clone(),
                        error: error.to_string(),
                        at: SystemTime::now(),
                    };
                    // The session's placement follows and `session.encoder_moved` is recorded.
                    self.supervisor.encoder_moved(&moved, lease.backend());
                    self.ladders.record(moved);
                }
                Some(PipelineEvent::Failed { error, .. }) if error.is_closed() => return Ok(()),
                Some(PipelineEvent::Failed { error, .. }) => {
                    let after = if moves > 0 { format!(" (after {moves} moves)") } else { String::new() };
                    return Err(format!("transcode failed{after}: {error}"));
                }
                Some(PipelineEvent::Finished) | None => {
                    self.log_stats(&pipeline, "transcode ended");
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
            None => {
                tracing::info!(channel = %self.channel, session = %self.session, %source, load = ?lease.load(), "source changed; lease adjusted")
            }
            Some(over) => {
                tracing::warn!(alert = "transcode-over-budget", channel = %self.channel, session = %self.session, %source, reason = %over, "source changed; the ladder now uses more than its slot has")
            }
        }
        self.demand = demand;
    }

    fn log_stats(&self, pipeline: &Pipeline, message: &str) {
        let stats = pipeline.stats();
        for rung in &stats.rungs {
            tracing::info!(channel = %self.channel, rendition = %rung.name, frames = rung.frames, added_latency_p50_ms = rung.latency_ms_p50, added_latency_p95_ms = rung.latency_ms_p95, added_latency_max_ms = rung.latency_ms_max, "{message}");
        }
        if stats.input_dropped_units > 0 {
            tracing::warn!(channel = %self.channel, dropped_units = stats.input_dropped_units, episodes = stats.input_drop_episodes, "transcode fell behind real time: input dropped to the next keyframe");
        }
    }
}

/// Parses `360:800,240:400,144:200` (height:kbit/s, then optional `:hevc` and `@fps`), with `+source`.
pub fn parse_ladder(text: &str) -> Result<Ladder, String> {
    let mut ladder = Ladder { rungs: Vec::new(), include_source: false };
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if item == "+source" || item == "source" {
            ladder.include_source = true;
            continue;
        }
        let (spec, fps) = match item.split_once('@') {
            Some((spec, fps)) => (spec, Some(fps.parse::<u32>().map_err(|_| format!("{item}: bad frame rate"))?)),
            None => (item, None),
        };
        let mut parts = spec.split(':');
        let height = parts
            .next()
            .unwrap_or("")
            .trim_end_matches('p')
            .parse::<u32>()
            .map_err(|_| format!("{item}: bad height"))?;
        let bitrate_kbps = parts
            .next()
            .ok_or(format!("{item}: height:kbit/s expected"))?
            .parse::<u32>()
            .map_err(|_| format!("{item}: bad bitrate"))?;
        let codec = match parts.next() {
            None | Some("h264") => VideoCodec::H264,
            Some("hevc") => VideoCodec::Hevc,
            Some(other) => return Err(format!("{item}: codec {other} (h264 or hevc)")),
        };
        ladder.rungs.push(RenditionSpec { height, bitrate_kbps, codec, max_fps: fps });
    }
    if ladder.rungs.is_empty() {
        return Err("a ladder needs at least one rung, e.g. 360:800,240:400".into());
    }
    Ok(ladder)
}

/// Parses `hardware-only`, `prefer-hardware` or `software`.
pub fn parse_policy(text: &str) -> Result<EncoderPolicy, String> {
    serde_json::from_value(serde_json::Value::String(text.to_string()))
        .map_err(|_| format!("{text:?}: expected hardware-only, prefer-hardware or software"))
}

/// `appliance probe`.
pub fn probe_command(json: bool) -> anyhow::Result<()> {
    let report = accel::probe::probe();
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// `appliance bench transcode`.
pub fn bench_command(data_dir: &Path, options: BenchOptions, json: bool, calibrate: bool) -> anyhow::Result<()> {
    let probe = accel::probe::probe();
    let report: BenchReport = accel::bench::run(&options, &probe)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    if calibrate {
        let previous = Calibration::load(data_dir)?;
        let path = report.calibration(&previous).save(data_dir)?;
        eprintln!("slot capacities written to {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladder_flags() {
        let l = parse_ladder("360:800, 240p:400:hevc, 144:200@15,+source").unwrap();
        assert!(l.include_source);
        let names: Vec<String> = l.rungs.iter().map(RenditionSpec::name).collect();
        assert_eq!(names, ["360p", "240p-hevc", "144p15"]);
        assert_eq!(rendition_names(&ChannelOutput::Ladder { ladder: l }), ["360p", "240p-hevc", "144p15", "source"]);
        for (bad, want) in [
            ("", "a ladder needs at least one rung, e.g. 360:800,240:400"),
            ("360", "360: height:kbit/s expected"),
            ("x:1", "x:1: bad height"),
            ("360:800:av1", "360:800:av1: codec av1 (h264 or hevc)"),
            ("360:800@x", "360:800@x: bad frame rate"),
        ] {
            assert_eq!(parse_ladder(bad).unwrap_err(), want);
        }
        assert_eq!(rendition_names(&ChannelOutput::Passthrough), ["source"]);
    }
}
