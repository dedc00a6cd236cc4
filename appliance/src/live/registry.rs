//! The one registry of what is live: a session in progress per channel, with
//! its figures and its outputs. The supervisor adds a session when it starts
//! and the session takes itself out when its media stops; the API, the
//! console, the status line and the checkpointer only read it. Watchers
//! (logs, tests, later alerts and metrics) subscribe to the sessions' events.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use tokio::sync::{broadcast, mpsc};

use super::control::SessionCommand;
use super::events::{LiveEvent, SessionEvent};
use super::figures::{OutputFigures, SessionFigures};
use super::input::meters::InputMeters;
use super::link::Link;

/// Events kept for watchers that fall behind (they lose the oldest beyond it).
const EVENT_BACKLOG: usize = 256;

/// A session in progress.
#[derive(Debug)]
pub struct LiveEntry {
    pub channel: String,
    pub session: String,
    /// The publisher.
    pub peer: SocketAddr,
    pub started: Instant,
    /// The renditions it is packaged into.
    pub renditions: Vec<String>,
    pub figures: Arc<SessionFigures>,
    /// Its inputs (primary, backup) and what is on air.
    pub inputs: Arc<InputMeters>,
    outputs: Mutex<Vec<OutputFigures>>,
    /// The connections of outputs that send to other servers, by output name: read live.
    links: Mutex<Vec<(String, Arc<Link>)>>,
    /// The session's commands; only the supervisor sends them.
    pub(super) control: mpsc::Sender<SessionCommand>,
}

impl LiveEntry {
    pub(super) fn new(
        channel: &str,
        session: &str,
        peer: SocketAddr,
        renditions: Vec<String>,
        figures: Arc<SessionFigures>,
        control: mpsc::Sender<SessionCommand>,
    ) -> LiveEntry {
        LiveEntry {
            control,
            channel: channel.to_string(),
            session: session.to_string(),
            peer,
            started: Instant::now(),
            renditions,
            figures,
            inputs: Arc::default(),
            outputs: Mutex::new(Vec::new()),
            links: Mutex::new(Vec::new()),
        }
    }

    /// The outputs now.
    pub fn outputs(&self) -> Vec<OutputFigures> {
        let mut outputs = self.outputs.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        for output in &mut outputs {
            if let Some((_, link)) = links.iter().find(|(name, _)| *name == output.name) {
                output.link = Some(link.figures());
            }
        }
        outputs
    }

    /// Lists an output's connection (the session does, as it plugs the output in).
    pub(super) fn add_link(&self, output: &str, link: Arc<Link>) {
        self.links.lock().unwrap_or_else(|e| e.into_inner()).push((output.to_string(), link));
    }

    /// Replaces the outputs' figures (the session is the only writer).
    pub(super) fn set_outputs(&self, outputs: Vec<OutputFigures>) {
        *self.outputs.lock().unwrap_or_else(|e| e.into_inner()) = outputs;
    }
}

/// Every session in progress here, by channel.
#[derive(Debug)]
pub struct Registry {
    // A poisoned lock only means a panic while a map was swapped in or out: the map is whole.
    sessions: RwLock<HashMap<String, Arc<LiveEntry>>>,
    events: broadcast::Sender<LiveEvent>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry { sessions: RwLock::new(HashMap::new()), events: broadcast::channel(EVENT_BACKLOG).0 }
    }
}

impl Registry {
    /// `channel`'s session in progress.
    pub fn get(&self, channel: &str) -> Option<Arc<LiveEntry>> {
        self.sessions.read().unwrap_or_else(|e| e.into_inner()).get(channel).cloned()
    }

    /// `channel`'s session in progress if it is `session`.
    pub fn session(&self, channel: &str, session: &str) -> Option<Arc<LiveEntry>> {
        self.get(channel).filter(|e| e.session == session)
    }

    /// Every session in progress.
    pub fn all(&self) -> Vec<Arc<LiveEntry>> {
        self.sessions.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.sessions.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sessions' events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.events.subscribe()
    }

    pub(super) fn publish(&self, channel: &str, session: &str, event: SessionEvent) {
        let _ = self.events.send(LiveEvent { channel: channel.to_string(), session: session.to_string(), event });
    }

    pub(super) fn insert(&self, entry: Arc<LiveEntry>) {
        self.sessions.write().unwrap_or_else(|e| e.into_inner()).insert(entry.channel.clone(), entry);
    }

    /// Takes `channel`'s session out if it is still `session`.
    pub(super) fn remove(&self, channel: &str, session: &str) {
        let mut sessions = self.sessions.write().unwrap_or_else(|e| e.into_inner());
        if sessions.get(channel).is_some_and(|e| e.session == session) {
            sessions.remove(channel);
        }
    }
}
