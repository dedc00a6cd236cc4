//! The figures of a running pipeline: what its threads count and its handle reads.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use media::DropStats;
use serde::Serialize;

use crate::meter::{RungMeter, RungStats};

/// A snapshot of a running pipeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipelineStats {
    pub decoded_frames: u64,
    /// Source units dropped at the input because the transcode fell behind.
    pub input_dropped_units: u64,
    pub input_drop_episodes: u64,
    /// The running rungs, in the ladder's order, each by its rendition name.
    pub rungs: Vec<RungStats>,
}

/// What the session thread shares with the handle: the figures of `stats`.
#[derive(Debug)]
pub(super) struct Shared {
    pub meters: Mutex<Vec<Arc<RungMeter>>>,
    pub decoded: AtomicU64,
    pub input_drops: Arc<DropStats>,
}
