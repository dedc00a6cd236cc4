//! What one pipeline does: its configuration.

use std::time::Duration;

use media::{PictureProcessing, RenditionSpec};

use super::fault::FaultSwitch;
use crate::device::{Backend, DeviceId};

/// Audio units held before the first video frame decides which rungs run
/// (the session thread), or before a rung's first announcement (a rung thread).
pub(super) const EARLY_AUDIO: usize = 256;

/// What one pipeline does.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Channel name, for thread names and logs.
    pub label: String,
    pub backend: Backend,
    pub device: DeviceId,
    /// The ladder's rungs; each names the output it writes (`RenditionSpec::name`, unique).
    pub rungs: Vec<RenditionSpec>,
    /// The channel's picture processing, once before the split (and each rung's scaling mode).
    pub picture: PictureProcessing,
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
