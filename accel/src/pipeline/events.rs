//! What a pipeline reports to its supervisor, and what a failed one hands back.

use std::sync::Arc;

use media::{TrackInfo, UnitReceiver};

use super::rendition::Outputs;
use crate::error::AccelError;

/// What the supervisor hears from a pipeline.
#[derive(Debug)]
pub enum PipelineEvent {
    /// The first video frame was decoded: these rungs run (rendition names);
    /// those dropped, each with why (above the source, a condition of the
    /// rung the source does not meet).
    Configured { source: (u32, u32), kept: Vec<String>, dropped: Vec<(String, String)> },
    /// The filter graph was (re)built for the source (its first frame, a
    /// change of size, format, field flags or display rotation): its text in
    /// FFmpeg's syntax, and the processing steps that run on the CPU although
    /// the ladder runs on a device (their cost).
    Graph { graph: String, cpu_steps: Vec<String> },
    /// The pipeline stopped on an error. With `resume`, the ladder can be
    /// restarted (`Pipeline::resume`) on another slot: the input and the
    /// outputs are handed back, so the HLS stream continues with a discontinuity.
    Failed { error: AccelError, resume: Option<Resume> },
    /// Stopped as `Pipeline::restart` asked: the input and the outputs are
    /// handed back to resume with another configuration (new processing); the
    /// renditions continue after a discontinuity, with no end of stream.
    Restartable { resume: Resume },
    /// The input ended (publish over) and every output was closed.
    Finished,
}

/// The channels of a failed pipeline, to restart the ladder with.
#[derive(Debug)]
pub struct Resume {
    pub input: UnitReceiver,
    /// By rendition name; a rung that was dropped or whose consumer left has none.
    pub outputs: Outputs,
    /// The source's last track announcement (the source does not repeat it).
    pub source_tracks: Option<Arc<[TrackInfo]>>,
}
