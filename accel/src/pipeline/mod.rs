//! The transcode of one live session, on dedicated OS threads joined to
//! tokio by bounded channels:
//!
//! ```text
//! ingest --unit channel--> [session thread] decode once (NVDEC/VAAPI/QSV or CPU)
//!                            -> one filter graph: split + scale per rung
//!                               (scale_cuda / scale_vaapi / vpp_qsv keep frames on the device)
//!                            --bounded--> [rung thread] encode --unit channel--> "360p" consumer
//!                            --bounded--> [rung thread] encode --unit channel--> "240p" consumer
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
//!
//! Renditions are named as their rungs (`RenditionSpec::name`) wherever they
//! cross this module's edge: the streams (`Outputs`, `Rendition`), the
//! events (`PipelineEvent::Configured`) and the stats (`RungStats::name`).
//!
//! | file | owns |
//! | --- | --- |
//! | `mod.rs` | the handle (`Pipeline`) |
//! | `config.rs`, `events.rs`, `stats.rs` | its configuration, its events (and `Resume`), its figures |
//! | `rendition.rs` | the renditions by name: `Outputs` (writing ends) and `Rendition` (reading ends) |
//! | `session.rs` | the session thread: tracks, which rungs run, frames and audio to the rung threads |
//! | `decode.rs` | the one decoder of the source (on the device where the backend has one) |
//! | `picture.rs` | the picture processing as graph text: the source chain before the split, each rung's fit/fill/stretch, per backend |
//! | `scale.rs` | the graph: processing, split, a scaler per rung |
//! | `rung_size.rs` | `rung_size`, a rung's picture size for a source |
//! | `rung.rs` | one rung's encoder thread: encoder, frame-rate cap, track announcements, units out |
//! | `fault.rs` | `Fault` and `FaultSwitch`, the injection for tests and drills |

mod config;
mod decode;
mod events;
mod fault;
mod picture;
mod rendition;
mod rung;
mod rung_size;
mod scale;
mod session;
mod stats;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use media::UnitReceiver;

use crate::device::{Backend, DeviceId};
use crate::error::AccelError;
use crate::ffi::{self, HwDevice, HwKind};

pub use crate::thread_name::truncate_thread_name;
pub use config::PipelineConfig;
/// The source decoder's opening, shared with `thumbnail` (one keyframe at a time).
pub(crate) use decode::open_decoder;
pub use events::{PipelineEvent, Resume};
pub use fault::{Fault, FaultSwitch};
pub use rendition::{Outputs, Rendition};
pub use rung_size::rung_size;
pub use stats::PipelineStats;
use stats::Shared;

/// Events between ingest and a pipeline: small, so a transcode that falls
/// behind drops (to the next keyframe) within about a second instead of queueing.
pub const INPUT_QUEUE: usize = 64;
/// Pipeline events to the supervisor.
const EVENT_QUEUE: usize = 16;
/// A running pipeline. Dropping it asks the threads to stop (at the next input event).
#[derive(Debug)]
pub struct Pipeline {
    events: tokio::sync::mpsc::Receiver<PipelineEvent>,
    stop: Arc<AtomicBool>,
    restart: Arc<AtomicBool>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Pipeline {
    /// Starts a pipeline reading `input` and writing every rung to its
    /// output in `outputs` (`Outputs::for_rungs` makes them); an output for
    /// each rung, and none that names no rung.
    pub fn start(config: PipelineConfig, input: UnitReceiver, outputs: Outputs) -> Result<Pipeline, AccelError> {
        if let Some(rung) = config.rungs.iter().find(|r| !outputs.contains(&r.name())) {
            return Err(AccelError::Ladder(format!("no output for rendition {}", rung.name())));
        }
        Self::resume(config, Resume { input, outputs, source_tracks: None })
    }

    /// Restarts a ladder from a failed pipeline's channels (possibly on
    /// another device). A rung without an output is left out, as when its
    /// consumer has gone; an output that names no rung is refused.
    pub fn resume(config: PipelineConfig, resume: Resume) -> Result<Pipeline, AccelError> {
        ffi::init();
        rendition::check_names(&config.rungs)?;
        if let Some(name) = resume.outputs.names().find(|n| !config.rungs.iter().any(|r| r.name() == *n)) {
            return Err(AccelError::Ladder(format!("output {name} is not a rung of the ladder")));
        }
        let (events_tx, events) = tokio::sync::mpsc::channel(EVENT_QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let restart = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            meters: Mutex::new(Vec::new()),
            decoded: AtomicU64::new(0),
            input_drops: resume.input.stats(),
        });
        let name = format!("accel-{}", config.label);
        // Everything that touches libav, the device included, happens on the session thread.
        let flags = (stop.clone(), restart.clone());
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
                session::Session::new(config, resume, hw, events_tx, flags, shared_stats).run()
            })
            .map_err(|e| AccelError::Init(format!("cannot start the session thread: {e}")))?;
        Ok(Pipeline { events, stop, restart, shared, thread: Some(thread) })
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

    /// Asks the pipeline to stop at the next input event and hand its input
    /// and outputs back (`PipelineEvent::Restartable`), to be resumed with
    /// another configuration (`Pipeline::resume`).
    pub fn restart(&self) {
        self.restart.store(true, Ordering::Relaxed);
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

fn hw_kind(backend: Backend) -> Option<HwKind> {
    match backend {
        Backend::Software => None,
        Backend::Nvenc => Some(HwKind::Cuda),
        Backend::Vaapi => Some(HwKind::Vaapi),
        Backend::Qsv => Some(HwKind::Qsv),
    }
}

/// Opens the FFmpeg device context behind a device id.
fn open_device(kind: HwKind, device: &DeviceId) -> Result<HwDevice, String> {
    let node = device.ffmpeg_device();
    match kind {
        HwKind::Qsv => HwDevice::create(kind, Some("hw"), &node.map(|n| vec![("child_device", n)]).unwrap_or_default()),
        _ => HwDevice::create(kind, node, &[]),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use media::{RenditionSpec, VideoCodec, unit_channel};

    use super::*;

    fn config(heights: &[u32]) -> PipelineConfig {
        PipelineConfig {
            label: "test".into(),
            backend: Backend::Software,
            device: DeviceId::cpu(),
            rungs: heights
                .iter()
                .map(|&height| RenditionSpec {
                    height,
                    bitrate_kbps: 300,
                    codec: VideoCodec::H264,
                    max_fps: None,
                    when: Default::default(),
                })
                .collect(),
            picture: Default::default(),
            keyframe_interval: Duration::from_secs(1),
            preset: None,
            fail_after_frames: None,
            faults: FaultSwitch::default(),
        }
    }

    fn outputs(heights: &[u32]) -> Outputs {
        Outputs::for_rungs(&config(heights).rungs, 4).unwrap().0
    }

    /// Outputs are matched to rungs by name, so a mismatch is a refusal, never a misrouted rendition.
    #[test]
    fn outputs_that_do_not_match_the_rungs_by_name_are_refused() {
        let refusal = |result: Result<Pipeline, AccelError>| result.map(|_| ()).unwrap_err().to_string();
        let input = || unit_channel(1).1;
        assert_eq!(
            refusal(Pipeline::start(config(&[360, 240]), input(), outputs(&[240]))),
            "ladder not usable: no output for rendition 360p"
        );
        assert_eq!(
            refusal(Pipeline::start(config(&[360, 360]), input(), outputs(&[360]))),
            "ladder not usable: two rungs are named 360p"
        );
        let resume = |outputs| Resume { input: input(), outputs, source_tracks: None };
        assert_eq!(
            refusal(Pipeline::resume(config(&[360]), resume(outputs(&[360, 240])))),
            "ladder not usable: output 240p is not a rung of the ladder"
        );
        // A resumed ladder may have lost a rung's consumer: that rung is left out, not refused.
        let mut pipeline = Pipeline::resume(config(&[360, 240]), resume(outputs(&[240]))).unwrap();
        assert!(matches!(pipeline.blocking_next_event(), Some(PipelineEvent::Finished)), "the input ended");
    }
}
