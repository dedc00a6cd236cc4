//! A live session's output port: what an output (the LL-HLS packager today;
//! next the recorder, restreamer, thumbnailer, captioner) declares it wants,
//! and what it is handed to run. Each subscribed rendition reaches the output
//! through its own bounded queue (`media::unit_channel`), so an output that
//! falls behind drops to the next keyframe, counted, and never stalls the
//! live path or another output; an output that fails is reported and the
//! session goes on.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use media::{TrackKind, UnitReceiver};
use tokio::sync::mpsc;

use super::events::SessionEvent;

/// Events a rendition's queue holds for one output (about 4 s of 30 fps video with audio).
pub const OUTPUT_QUEUE: usize = 256;

/// Which renditions an output wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renditions {
    /// Every rendition of the session (a ladder's rungs, and `source` when offered).
    All,
    /// Only these, by name; names the session does not have are ignored.
    Named(Vec<String>),
    /// No unit stream: the output is fed another way (the recorder reads
    /// the packager's sealed segments through a tap).
    NoUnits,
}

impl Renditions {
    pub fn wants(&self, name: &str) -> bool {
        match self {
            Renditions::All => true,
            Renditions::Named(names) => names.iter().any(|n| n == name),
            Renditions::NoUnits => false,
        }
    }
}

/// Which tracks of each rendition an output wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracks {
    All,
    /// Only tracks of this kind (announced re-indexed from 0).
    Only(TrackKind),
}

impl Tracks {
    pub fn wants(self, kind: TrackKind) -> bool {
        match self {
            Tracks::All => true,
            Tracks::Only(only) => only == kind,
        }
    }
}

/// What an output subscribes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub renditions: Renditions,
    pub tracks: Tracks,
}

impl Subscription {
    /// Every track of every rendition.
    pub fn everything() -> Subscription {
        Subscription { renditions: Renditions::All, tracks: Tracks::All }
    }

    /// No unit stream at all (an output fed by another output's products).
    pub fn no_units() -> Subscription {
        Subscription { renditions: Renditions::NoUnits, tracks: Tracks::All }
    }
}

/// One subscribed rendition's stream, as the output reads it.
#[derive(Debug)]
pub struct Feed {
    /// The rendition's name (`source`, `720p`, ...).
    pub rendition: String,
    pub events: UnitReceiver,
}

/// Why an output stopped before its feeds ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OutputError(pub String);

impl OutputError {
    pub fn new(reason: impl Into<String>) -> OutputError {
        OutputError(reason.into())
    }
}

/// What an output runs as: a future the session owns and joins.
pub type OutputRun = Pin<Box<dyn Future<Output = Result<(), OutputError>> + Send>>;

/// Where an output reports (typed events up to its session; never calls).
#[derive(Debug, Clone)]
pub struct Reporter {
    pub(super) output: String,
    pub(super) events: mpsc::Sender<SessionEvent>,
}

impl Reporter {
    /// Reports an event of this output's. Lossy when the session is far
    /// behind on its events, which only happens while it is ending.
    pub fn report(&self, event: SessionEvent) {
        let _ = self.events.try_send(event);
    }

    /// The output's name, as events and logs name it.
    pub fn output(&self) -> &str {
        &self.output
    }
}

/// An output of a live session. The session calls `subscription` once, makes
/// a bounded queue for each rendition it wants, and runs what `start`
/// returns until the feeds end (the session ended) or it fails.
pub trait Output: Send + 'static {
    /// A short name for logs, events and the API (`packager`, `recorder`, ...).
    fn name(&self) -> &str;

    fn subscription(&self) -> Subscription;

    /// The connection's figures, for an output that sends to another server.
    fn link(&self) -> Option<std::sync::Arc<super::link::Link>> {
        None
    }

    /// Starts the output on its feeds (in rendition order). Must not block:
    /// blocking work goes to a thread the returned future joins.
    fn start(self: Box<Self>, feeds: Vec<Feed>, reporter: Reporter) -> OutputRun;
}

impl fmt::Debug for dyn Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Output").field("name", &self.name()).field("subscription", &self.subscription()).finish()
    }
}
