//! What the stages of a live session report up to it, as typed events
//! (never as calls back into the session or the supervisor), and what the
//! session publishes to whoever watches the live sessions (logs, tests, and
//! later alerts and metrics).

use std::time::SystemTime;

use accel::{Backend, DeviceId};

use crate::state::{OnAir, SwitchReason};

/// An event of one live session.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// The packager published the session's first part: players can watch.
    Viewable,
    /// The ladder runs `kept` on a slot; `dropped`: (rung, why) for rungs above
    /// the source's size or whose conditions the source does not meet.
    EncoderPlaced { backend: Backend, device: DeviceId, kept: Vec<String>, dropped: Vec<(String, String)> },
    /// The ladder's filter graph was (re)built: its text, and the processing
    /// steps on the CPU although the ladder runs on a device.
    FilterGraph { graph: String, cpu_steps: Vec<String> },
    /// The ladder moved to another slot after `error`; a discontinuity in every rendition.
    EncoderMoved { from: DeviceId, to: DeviceId, backend: Backend, error: String, at: SystemTime },
    /// The processing (audio stage, ladder) cannot go on: the session ends with this reason.
    ProcessingFailed { reason: String },
    /// An output stopped with an error; the session goes on without it.
    OutputFailed { output: String, reason: String },
    /// A queue of the session dropped units since the last report (each
    /// episode a skip to the next keyframe). Reported at most once an interval.
    Dropped { queue: String, units: u64, episodes: u64 },
    /// An output's connection to another server came up (`attempt` 1: the first).
    LinkUp { output: String, attempt: u32 },
    /// An output's connection failed or dropped; it is tried again after `retry_in`.
    LinkDown { output: String, attempt: u32, error: String, retry_in: std::time::Duration },
    /// What is on air changed (an input stalled or left, the primary returned, the slate).
    InputSwitched { from: OnAir, to: OnAir, reason: SwitchReason },
}

/// An event with the session it is of, as watchers receive it.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveEvent {
    pub channel: String,
    pub session: String,
    pub event: SessionEvent,
}
