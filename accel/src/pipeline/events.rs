//! What a pipeline reports to its supervisor, and what a failed one hands back.

use std::sync::Arc;

use media::{TrackInfo, UnitReceiver};

use super::rendition::Outputs;
use crate::error::AccelError;

/// What the supervisor hears from a pipeline.
#[derive(Debug)]
pub enum PipelineEvent {
    /// The first video frame was decoded: these rungs run, those above the source were dropped (rendition names).
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
    /// By rendition name; a rung that was dropped or whose consumer left has none.
    pub outputs: Outputs,
    /// The source's last track announcement (the source does not repeat it).
    pub source_tracks: Option<Arc<[TrackInfo]>>,
}
