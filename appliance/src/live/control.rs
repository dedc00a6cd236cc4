//! What can be asked of a running session (by the supervisor, its only
//! sender), and how a session is to end.

use accel::pipeline::Fault;
use tokio::sync::oneshot;

use super::ports::Output;
use crate::state::InputRole;
use crate::state::lifecycle::EndReason;

/// How a session in progress is to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    End(EndReason),
    /// The processing failed; the session goes to `error` with this text.
    Fail(String),
}

/// What the supervisor asks of a running session.
#[derive(Debug)]
pub enum SessionCommand {
    Stop(Ending),
    /// Plugs an output in next to the others (it starts at the next keyframe).
    Attach(Box<dyn Output>, oneshot::Sender<Result<(), String>>),
    /// Trips a failure in the running ladder; `false` without one.
    InjectFault(Fault, oneshot::Sender<bool>),
    /// Restarts the running ladder with this processing (a discontinuity in
    /// every rendition, no end of stream); `false` without a ladder.
    Reprocess(Box<media::Processing>, oneshot::Sender<bool>),
    /// A publish on the channel's other stream key joins as the input `role`;
    /// the reply is the sink ingest feeds, or the refusal (that input is already publishing).
    AttachInput {
        role: InputRole,
        peer: std::net::SocketAddr,
        reply: oneshot::Sender<Result<media::UnitSender, ingest::Refusal>>,
    },
}
