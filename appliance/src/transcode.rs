//! The appliance's side of `accel`: probes the encoders once at start (off
//! the runtime), keeps the slot pool, and for a granted publish whose channel
//! outputs a ladder leases a slot for the whole ladder under the channel's
//! policy, starts the pipeline and returns one stream per rendition (the
//! ladder's rungs, then the source when the ladder includes it). A small task
//! per session supervises the pipeline: it logs its stats, raises the
//! fallback alert, and moves the ladder to another slot when an encoder or
//! device fails (a discontinuity in the HLS stream, not an ENDLIST).
//! Also the `probe` and `bench transcode` commands.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use accel::bench::{BenchOptions, BenchReport};
use accel::pipeline::{INPUT_QUEUE, Pipeline, PipelineConfig, PipelineEvent};
use accel::probe::ProbeReport;
use accel::scheduler::{Demand, NOMINAL_FPS};
use accel::{Calibration, Lease, SlotPool};
use media::{ChannelOutput, EncoderPolicy, Ladder, RenditionSpec, StreamEvent, UnitReceiver, VideoCodec, unit_channel};

use crate::state::Channel;

/// The queue between the transcoder and each rendition's packager.
const RENDITION_QUEUE: usize = 256;
/// How often a running ladder logs its per-rung stats.
const STATS_INTERVAL: Duration = Duration::from_secs(30);
/// Moves of one session's ladder after failures before it gives up.
const MAX_MOVES: u32 = 3;

/// The renditions a channel's sessions have, in the order `Transcoder::start` returns their streams.
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

/// Encoder probe and slots, shared by every publish.
#[derive(Debug)]
pub struct Transcoder {
    data_dir: std::path::PathBuf,
    state: tokio::sync::OnceCell<(Arc<ProbeReport>, SlotPool)>,
}

impl Transcoder {
    pub fn new(data_dir: &Path) -> Arc<Self> {
        Arc::new(Self { data_dir: data_dir.to_path_buf(), state: tokio::sync::OnceCell::new() })
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
    /// stream; a ladder leases a slot and starts the pipeline, or says why not
    /// (the probe's reason for `hardware-only` without hardware, a spent CPU budget).
    pub async fn start(
        &self,
        channel: &Channel,
        session: &str,
        events: UnitReceiver,
        keyframe_interval: Duration,
    ) -> Result<Vec<UnitReceiver>, String> {
        let ChannelOutput::Ladder { ladder } = &channel.output else { return Ok(vec![events]) };
        let (_, pool) = self.ready().await;
        let demand = Demand::for_rungs(&ladder.rungs, NOMINAL_FPS);
        let lease = pool.lease(&demand, channel.encoder_policy).map_err(|e| e.to_string())?;
        if let Some(why) = lease.fallback() {
            // The alert: prefer-hardware fell back to the CPU.
            tracing::warn!(alert = "transcode-fallback", channel = %channel.name, session, reason = why, "no hardware slot: ladder runs on the CPU");
        }
        let (input, input_rx) = unit_channel(INPUT_QUEUE);
        let (outputs, mut streams): (Vec<_>, Vec<_>) =
            ladder.rungs.iter().map(|_| unit_channel(RENDITION_QUEUE)).unzip();
        let source = ladder.include_source.then(|| unit_channel(RENDITION_QUEUE));
        let config = PipelineConfig {
            label: channel.name.clone(),
            backend: lease.backend(),
            device: lease.device().clone(),
            rungs: ladder.rungs.clone(),
            keyframe_interval,
            preset: None,
            fail_after_frames: None,
        };
        let pipeline = Pipeline::start(config.clone(), input_rx, outputs).map_err(|e| e.to_string())?;
        tracing::info!(channel = %channel.name, session, backend = %lease.backend(), device = %lease.device(), load = ?lease.load(), "ladder leased");
        let source_tx = match source {
            Some((tx, rx)) => {
                streams.push(rx);
                Some(tx)
            }
            None => None,
        };
        tokio::spawn(forward(events, input, source_tx));
        let supervised = Supervised {
            pool: pool.clone(),
            demand,
            policy: channel.encoder_policy,
            channel: channel.name.clone(),
            session: session.to_string(),
        };
        tokio::spawn(supervised.run(pipeline, lease, config));
        Ok(streams)
    }
}

/// Copies the session's events into the pipeline's small input (where a
/// transcode that falls behind drops to the next keyframe, counted) and, for
/// a ladder that includes it, into the source rendition.
async fn forward(mut events: UnitReceiver, mut input: media::UnitSender, mut source: Option<media::UnitSender>) {
    while let Some(event) = events.recv().await {
        match event {
            StreamEvent::Tracks(tracks) => {
                if let Some(s) = source.as_mut()
                    && s.send_tracks(tracks.clone()).await.is_err()
                {
                    source = None;
                }
                if input.send_tracks(tracks).await.is_err() && source.is_none() {
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

/// One session's ladder under supervision.
struct Supervised {
    pool: SlotPool,
    demand: Demand,
    policy: EncoderPolicy,
    channel: String,
    session: String,
}

impl Supervised {
    async fn run(self, mut pipeline: Pipeline, mut lease: Lease, mut config: PipelineConfig) {
        let mut tick = tokio::time::interval(STATS_INTERVAL);
        tick.tick().await;
        let mut moves = 0;
        loop {
            let event = tokio::select! {
                event = pipeline.next_event() => event,
                _ = tick.tick() => {
                    let stats = pipeline.stats();
                    for rung in &stats.rungs {
                        tracing::info!(channel = %self.channel, rendition = %rung.name, frames = rung.frames, added_latency_p50_ms = rung.latency_ms_p50, added_latency_p95_ms = rung.latency_ms_p95, added_latency_max_ms = rung.latency_ms_max, "transcode");
                    }
                    if stats.input_dropped_units > 0 {
                        tracing::warn!(channel = %self.channel, dropped_units = stats.input_dropped_units, episodes = stats.input_drop_episodes, "transcode fell behind real time: input dropped to the next keyframe");
                    }
                    continue;
                }
            };
            match event {
                Some(PipelineEvent::Configured { source, kept, dropped }) => {
                    tracing::info!(channel = %self.channel, session = %self.session, source = ?source, kept = ?kept, dropped_above_source = ?dropped, "ladder running");
                }
                Some(PipelineEvent::Failed { error, resume: Some(resume) }) if moves < MAX_MOVES => {
                    moves += 1;
                    tracing::error!(alert = "transcode-failed", channel = %self.channel, session = %self.session, device = %lease.device(), %error, "encoder failed; moving the ladder");
                    if lease.backend().is_hardware() {
                        self.pool.mark_failed(lease.device());
                    }
                    drop(lease);
                    lease = match self.pool.lease(&self.demand, self.policy) {
                        Ok(lease) => lease,
                        Err(e) => {
                            tracing::error!(alert = "transcode-failed", channel = %self.channel, session = %self.session, reason = %e, "no slot to move the ladder to: renditions end");
                            return;
                        }
                    };
                    if let Some(why) = lease.fallback() {
                        tracing::warn!(alert = "transcode-fallback", channel = %self.channel, reason = why, "ladder moved to the CPU");
                    }
                    config.backend = lease.backend();
                    config.device = lease.device().clone();
                    pipeline = match Pipeline::resume(config.clone(), resume) {
                        Ok(p) => p,
                        Err(e) => {
                            tracing::error!(channel = %self.channel, error = %e, "ladder could not restart");
                            return;
                        }
                    };
                    tracing::warn!(channel = %self.channel, session = %self.session, device = %lease.device(), "ladder moved (discontinuity in every rendition)");
                }
                Some(PipelineEvent::Failed { error, .. }) => {
                    tracing::error!(alert = "transcode-failed", channel = %self.channel, session = %self.session, %error, "transcode stopped");
                    return;
                }
                Some(PipelineEvent::Finished) | None => {
                    let stats = pipeline.stats();
                    for rung in &stats.rungs {
                        tracing::info!(channel = %self.channel, rendition = %rung.name, frames = rung.frames, added_latency_p50_ms = rung.latency_ms_p50, added_latency_p95_ms = rung.latency_ms_p95, added_latency_max_ms = rung.latency_ms_max, "transcode ended");
                    }
                    return;
                }
            }
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
