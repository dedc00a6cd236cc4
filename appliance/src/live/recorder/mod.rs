//! The recorder as an output of a live session: it takes no unit stream; it
//! reads the packager's sealed segments through a tap (the same bytes the
//! origin serves: no second mux) and writes them to disk on its own thread
//! (`writer`), so a slow or full disk never stalls the packager or the
//! session. Its files and index are `crate::recordings`.

pub mod writer;

use packager::SegmentReceiver;

use super::packaging::{DvrPlan, PackagerOutput};
use super::ports::{Feed, Output, OutputError, OutputRun, Reporter, Subscription};
use crate::recordings::Recordings;
use crate::recordings::notify::Notifier;
use crate::state::Channel;
pub use writer::RecordingPlan;

/// Segments the tap holds for the recorder (about a minute of 2 s segments
/// for a four-rendition ladder): a disk stalled longer loses segments, counted.
pub const TAP_QUEUE: usize = 128;

/// When `channel` records its sessions: taps `packaging` and returns the
/// recorder of session `session` (whose renditions are `renditions`, top
/// first) to plug in beside it. With a DVR window, the recorded renditions
/// get DVR playlists whose old part the recording serves.
pub fn plug(
    packaging: PackagerOutput,
    channel: &Channel,
    session: &str,
    renditions: Vec<String>,
    recordings: &Recordings,
) -> (PackagerOutput, Option<RecorderOutput>) {
    if !channel.recording.enabled {
        return (packaging, None);
    }
    // The recorder writes the packager's own segments: one tap between them.
    let (tap, segments) = packager::segment_tap(TAP_QUEUE);
    let packaging = match channel.dvr_window_seconds.duration() {
        Some(window) => {
            let recorded = renditions.iter().filter(|r| channel.recording.records(r, &renditions)).cloned().collect();
            packaging.with_dvr(DvrPlan { window, renditions: recorded })
        }
        None => packaging,
    };
    let plan = RecordingPlan {
        layout: recordings.catalog().layout().clone(),
        channel: channel.name.clone(),
        session: session.to_string(),
        settings: channel.recording,
        renditions,
    };
    (packaging.with_tap(tap), Some(RecorderOutput::new(plan, recordings.notifier().clone(), segments)))
}

/// The recorder output of one session.
pub struct RecorderOutput {
    plan: RecordingPlan,
    notifier: Notifier,
    segments: SegmentReceiver,
}

impl RecorderOutput {
    /// Records the segments arriving on `segments` (the packager's tap) as `plan` says.
    pub fn new(plan: RecordingPlan, notifier: Notifier, segments: SegmentReceiver) -> RecorderOutput {
        RecorderOutput { plan, notifier, segments }
    }
}

impl Output for RecorderOutput {
    fn name(&self) -> &str {
        "recorder"
    }

    fn subscription(&self) -> Subscription {
        Subscription::no_units()
    }

    fn start(self: Box<Self>, _feeds: Vec<Feed>, reporter: Reporter) -> OutputRun {
        let RecorderOutput { plan, notifier, segments } = *self;
        let (done, finished) = tokio::sync::oneshot::channel();
        let span = tracing::Span::current();
        let spawned = std::thread::Builder::new().name("recorder".into()).spawn(move || {
            let _entered = span.enter();
            writer::Writer::new(plan, notifier).run(segments, Some(reporter));
            let _ = done.send(());
        });
        Box::pin(async move {
            spawned.map_err(|e| OutputError::new(format!("cannot start the recorder's thread: {e}")))?;
            finished.await.map_err(|_| OutputError::new("the recorder's thread stopped unexpectedly"))
        })
    }
}
