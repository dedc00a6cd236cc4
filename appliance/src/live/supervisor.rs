//! The one owner of every live session: a task that takes `Command`s (with
//! oneshot replies) from the rest of the appliance: start a session for a
//! granted publish, end one or all, plug an output into one, inject a fault
//! (tests and drills); it spawns each session's task into its `JoinSet` and
//! joins it, and keeps the registry of what is live that everyone reads.
//! A session's task owns its stages (see `session`); their status comes up
//! to it as typed events, never as calls into the supervisor.
//!
//! Also the checkpointer: it writes the figures of every session in progress
//! into their records periodically (one transaction for all), so a crash
//! keeps them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use accel::pipeline::Fault;
use ingest::{Refusal, RefusalKind};
use media::{ChannelOutput, UnitSender};
use packager::OriginStore;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;

pub use super::control::Ending;
use super::control::SessionCommand;
use super::figures::SessionFigures;
use super::input::failover::FailoverTimes;
use super::packaging::{PackagerOutput, PackagingConfig};
use super::ports::Output;
use super::recorder;
use super::registry::{LiveEntry, Registry};
use super::session::{SessionDeps, SessionSpec};
use super::thumbnails::{self, LatestThumbnails};
use super::transcode::{Transcoder, rendition_names};
use crate::recordings::Recordings;
use crate::state::lifecycle::EndReason;
use crate::state::{Channel, InputRole, Session, SessionCheckpoint, SessionStats, Store, StoreError};

/// Commands waiting for the supervisor.
const COMMAND_QUEUE: usize = 256;
/// Commands waiting for one session.
const SESSION_COMMANDS: usize = 16;

/// What the supervisor is asked to do.
#[derive(Debug)]
enum Command {
    /// Start a session for a granted publish; the reply is the sink ingest feeds, or the refusal.
    Start {
        /// Boxed: a channel record is large next to the other commands.
        channel: Box<Channel>,
        record: Session,
        /// The key it published with, which says whether it is the primary or the backup input.
        stream_key: String,
        peer: SocketAddr,
        reply: oneshot::Sender<Result<UnitSender, Refusal>>,
    },
    /// End `channel`'s session (if it is `session`, when given); replies whether one was running.
    End { channel: String, session: Option<String>, ending: Ending, reply: oneshot::Sender<bool> },
    /// End every session; replies once all have ended.
    EndAll { reason: EndReason, reply: oneshot::Sender<()> },
    /// Plug an output into `channel`'s session.
    Attach { channel: String, output: Box<dyn Output>, reply: oneshot::Sender<Result<(), String>> },
    /// Trip a failure in `channel`'s ladder; replies whether one ran.
    InjectFault { channel: String, fault: Fault, reply: oneshot::Sender<bool> },
    /// Restart `channel`'s running ladder (of session `session`) with new processing.
    Reprocess { channel: String, session: String, processing: media::Processing, reply: oneshot::Sender<bool> },
    /// Answers at once: the readiness probe's proof that the owner task takes commands.
    Ping { reply: oneshot::Sender<()> },
    /// A publish on `channel`'s other stream key joins its session in progress as `role`.
    AttachInput {
        channel: String,
        role: InputRole,
        peer: SocketAddr,
        reply: oneshot::Sender<Result<UnitSender, Refusal>>,
    },
}

/// How sessions are set up: the packager's settings and what sessions share.
#[derive(Clone)]
pub struct LiveConfig {
    pub store: Store,
    pub origin: Arc<OriginStore>,
    pub transcoder: Arc<Transcoder>,
    /// The configured part target (ultra-low latency only).
    pub part_target: Duration,
    /// Seconds of media the playlists list.
    pub window_seconds: u64,
    /// Where channels with recording on record their sessions.
    pub recordings: Recordings,
    /// When a session switches between its inputs and the slate.
    pub failover: FailoverTimes,
    /// Every live channel's latest thumbnail (and how they are made).
    pub thumbnails: Arc<LatestThumbnails>,
}

/// The handle on the supervisor: cheap to clone; every call is a command.
#[derive(Debug, Clone)]
pub struct Supervisor {
    commands: mpsc::Sender<Command>,
    registry: Arc<Registry>,
    transcoder: Arc<Transcoder>,
}

impl Supervisor {
    /// Starts the supervisor's task; it runs until every handle is dropped.
    pub fn spawn(config: LiveConfig) -> Supervisor {
        let (commands, receiver) = mpsc::channel(COMMAND_QUEUE);
        let registry = Arc::new(Registry::default());
        let transcoder = config.transcoder.clone();
        let owner = Owner { config, registry: registry.clone(), sessions: JoinSet::new(), waiting: Vec::new() };
        tokio::spawn(owner.run(receiver).instrument(tracing::info_span!("supervisor")));
        Supervisor { commands, registry, transcoder }
    }

    /// What is live now.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The encoder probe and slots.
    pub fn transcoder(&self) -> &Arc<Transcoder> {
        &self.transcoder
    }

    async fn ask<T>(&self, command: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(command(reply)).await.ok()?;
        answer.await.ok()
    }

    /// Starts a session for a publish the store granted; the sink ingest
    /// feeds, or the refusal (the session's end is then already recorded).
    pub async fn start(
        &self,
        channel: Channel,
        record: Session,
        stream_key: String,
        peer: SocketAddr,
    ) -> Result<UnitSender, Refusal> {
        let refused = || Refusal::new(RefusalKind::Unavailable, "the appliance is shutting down");
        self.ask(|reply| Command::Start { channel: Box::new(channel), record, stream_key, peer, reply })
            .await
            .unwrap_or_else(|| Err(refused()))
    }

    /// Ends `channel`'s session in progress (if it is `session`, when given).
    /// Returns whether one was running here.
    pub async fn end(&self, channel: &str, session: Option<&str>, ending: Ending) -> bool {
        let (channel, session) = (channel.to_string(), session.map(str::to_string));
        self.ask(|reply| Command::End { channel, session, ending, reply }).await.unwrap_or(false)
    }

    /// Ends every session with `reason` and waits (bounded) for their records.
    pub async fn end_all(&self, reason: EndReason, deadline: Duration) {
        if tokio::time::timeout(deadline, self.ask(|reply| Command::EndAll { reason, reply })).await.is_err() {
            tracing::warn!("sessions still ending after the shutdown deadline");
        }
    }

    /// Plugs `output` into `channel`'s session in progress.
    pub async fn attach(&self, channel: &str, output: Box<dyn Output>) -> Result<(), String> {
        let channel = channel.to_string();
        self.ask(|reply| Command::Attach { channel, output, reply })
            .await
            .unwrap_or_else(|| Err("the appliance is shutting down".into()))
    }

    /// Joins a publish on `channel`'s other stream key (`role`) to its
    /// session in progress: the sink ingest feeds, or the refusal.
    pub async fn attach_input(&self, channel: &str, role: InputRole, peer: SocketAddr) -> Result<UnitSender, Refusal> {
        let channel = channel.to_string();
        let refused = || Refusal::new(RefusalKind::Unavailable, "the appliance is shutting down");
        self.ask(|reply| Command::AttachInput { channel, role, peer, reply }).await.unwrap_or_else(|| Err(refused()))
    }

    /// Trips the fault switch of `channel`'s running ladder: its next encoded
    /// frame fails with `fault`, and the ladder moves per policy exactly as
    /// after a real failure. For end-to-end tests and failover drills; it is
    /// reachable only from inside the process. Returns whether a ladder was
    /// running on the channel.
    pub async fn inject_fault(&self, channel: &str, fault: Fault) -> bool {
        let channel = channel.to_string();
        self.ask(|reply| Command::InjectFault { channel, fault, reply }).await.unwrap_or(false)
    }

    /// Restarts the ladder of `channel`'s session `session` with `processing`
    /// (the API's `?restart=now`): every rendition continues after a
    /// discontinuity, with no end of stream. Returns whether a ladder took it.
    pub async fn reprocess(&self, channel: &str, session: &str, processing: media::Processing) -> bool {
        let (channel, session) = (channel.to_string(), session.to_string());
        self.ask(|reply| Command::Reprocess { channel, session, processing, reply }).await.unwrap_or(false)
    }

    /// Whether the supervisor's task answers a command within `within` (the readiness probe).
    pub async fn ping(&self, within: Duration) -> bool {
        tokio::time::timeout(within, self.ask(|reply| Command::Ping { reply })).await.is_ok_and(|r| r.is_some())
    }

    /// Checkpoints the figures of every session in progress every `every`
    /// (see `checkpoint`), until shutdown.
    pub fn spawn_checkpointer(
        &self,
        store: Store,
        every: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let registry = self.registry.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut written = HashMap::new();
            loop {
                let stopping = tokio::select! {
                    _ = tick.tick() => false,
                    _ = shutdown.wait_for(|s| *s) => true,
                };
                if stopping {
                    return;
                }
                checkpoint(&registry, &store, &mut written).await;
            }
        })
    }
}

/// Writes the stats so far of the sessions in progress whose figures moved
/// since their last checkpoint (`written`: what each got last), in one
/// transaction. The sessions' unit path is not touched: the figures are read
/// from the atomics it already keeps.
async fn checkpoint(registry: &Registry, store: &Store, written: &mut HashMap<String, SessionStats>) {
    let all: Vec<SessionCheckpoint> = registry
        .all()
        .iter()
        .map(|e| SessionCheckpoint {
            channel: e.channel.clone(),
            session: e.session.clone(),
            stats: e.figures.stats(e.renditions.clone()),
        })
        .collect();
    written.retain(|session, _| all.iter().any(|c| &c.session == session));
    let due: Vec<SessionCheckpoint> =
        all.into_iter().filter(|c| c.stats.units_in > 0 && written.get(&c.session) != Some(&c.stats)).collect();
    if due.is_empty() {
        return;
    }
    let store = store.clone();
    let sessions = due.len();
    let started = Instant::now();
    let done = tokio::task::spawn_blocking(move || (store.checkpoint_sessions(&due), due)).await;
    let (result, due): (Result<usize, StoreError>, _) = match done {
        Ok(done) => done,
        Err(e) => {
            tracing::warn!(error = %e, "session checkpoint task failed");
            return;
        }
    };
    match result {
        Ok(count) => {
            tracing::debug!(
                sessions,
                written = count,
                took_us = started.elapsed().as_micros() as u64,
                "sessions checkpointed"
            );
            written.extend(due.into_iter().map(|c| (c.session, c.stats)));
        }
        Err(e) => {
            tracing::warn!(sessions, error = %e, "cannot checkpoint the sessions in progress; trying again at the next interval")
        }
    }
}

/// The supervisor's task and what only it touches.
struct Owner {
    config: LiveConfig,
    registry: Arc<Registry>,
    /// Every session's task, with its (channel, session).
    sessions: JoinSet<(String, String)>,
    /// `EndAll` replies waiting for the last session to end.
    waiting: Vec<oneshot::Sender<()>>,
}

impl Owner {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.handle(command),
                    None => break,
                },
                Some(joined) = self.sessions.join_next() => {
                    if let Ok((channel, session)) = joined {
                        self.registry.remove(&channel, &session);
                    }
                    if self.sessions.is_empty() {
                        for reply in self.waiting.drain(..) {
                            let _ = reply.send(());
                        }
                    }
                }
            }
        }
        // Every handle is gone (the appliance stopped): sessions end with it.
        for entry in self.registry.all() {
            let _ = entry.control.try_send(SessionCommand::Stop(Ending::End(EndReason::ApplianceShutdown)));
        }
        while self.sessions.join_next().await.is_some() {}
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Start { channel, record, stream_key, peer, reply } => {
                self.start(*channel, record, &stream_key, peer, reply)
            }
            Command::End { channel, session, ending, reply } => {
                let entry = self.registry.get(&channel).filter(|e| session.as_ref().is_none_or(|s| *s == e.session));
                let sent = entry.is_some_and(|e| e.control.try_send(SessionCommand::Stop(ending)).is_ok());
                let _ = reply.send(sent);
            }
            Command::EndAll { reason, reply } => {
                for entry in self.registry.all() {
                    let _ = entry.control.try_send(SessionCommand::Stop(Ending::End(reason)));
                }
                if self.sessions.is_empty() {
                    let _ = reply.send(());
                } else {
                    self.waiting.push(reply);
                }
            }
            Command::Attach { channel, output, reply } => match self.registry.get(&channel) {
                Some(entry) => {
                    if let Err(
                        mpsc::error::TrySendError::Full(SessionCommand::Attach(_, reply))
                        | mpsc::error::TrySendError::Closed(SessionCommand::Attach(_, reply)),
                    ) = entry.control.try_send(SessionCommand::Attach(output, reply))
                    {
                        let _ = reply.send(Err(format!("channel {channel}'s session is busy or ending")));
                    }
                }
                None => {
                    let _ = reply.send(Err(format!("channel {channel} has no session in progress")));
                }
            },
            Command::AttachInput { channel, role, peer, reply } => match self.registry.get(&channel) {
                Some(entry) => {
                    if let Err(
                        mpsc::error::TrySendError::Full(SessionCommand::AttachInput { reply, .. })
                        | mpsc::error::TrySendError::Closed(SessionCommand::AttachInput { reply, .. }),
                    ) = entry.control.try_send(SessionCommand::AttachInput { role, peer, reply })
                    {
                        let text = format!("channel {channel}'s session is busy or ending; publish again");
                        let _ = reply.send(Err(Refusal::new(RefusalKind::Unavailable, text)));
                    }
                }
                None => {
                    let text = format!("channel {channel} is ending its session; publish again");
                    let _ = reply.send(Err(Refusal::new(RefusalKind::Unavailable, text)));
                }
            },
            Command::Ping { reply } => {
                let _ = reply.send(());
            }
            Command::Reprocess { channel, session, processing, reply } => {
                match self.registry.get(&channel).filter(|e| e.session == session) {
                    Some(entry) => {
                        if let Err(
                            mpsc::error::TrySendError::Full(SessionCommand::Reprocess(_, reply))
                            | mpsc::error::TrySendError::Closed(SessionCommand::Reprocess(_, reply)),
                        ) = entry.control.try_send(SessionCommand::Reprocess(Box::new(processing), reply))
                        {
                            let _ = reply.send(false);
                        }
                    }
                    None => {
                        let _ = reply.send(false);
                    }
                }
            }
            Command::InjectFault { channel, fault, reply } => match self.registry.get(&channel) {
                Some(entry) => {
                    if let Err(
                        mpsc::error::TrySendError::Full(SessionCommand::InjectFault(_, reply))
                        | mpsc::error::TrySendError::Closed(SessionCommand::InjectFault(_, reply)),
                    ) = entry.control.try_send(SessionCommand::InjectFault(fault, reply))
                    {
                        let _ = reply.send(false);
                    }
                }
                None => {
                    let _ = reply.send(false);
                }
            },
        }
    }

    /// Registers the session and starts its task; the task answers `reply`.
    fn start(
        &mut self,
        channel: Channel,
        record: Session,
        stream_key: &str,
        peer: SocketAddr,
        reply: oneshot::Sender<Result<UnitSender, Refusal>>,
    ) {
        let (control, commands) = mpsc::channel(SESSION_COMMANDS);
        let passthrough = channel.output == ChannelOutput::Passthrough;
        let figures = Arc::new(SessionFigures::new(&channel.name, &record.id, passthrough, Instant::now()));
        let mut renditions = rendition_names(&channel.output);
        if channel.records_hidden_source() {
            renditions.push("source".to_string());
        }
        let entry = LiveEntry::new(&channel.name, &record.id, peer, renditions.clone(), figures.clone(), control);
        let inputs = entry.inputs.clone();
        self.registry.insert(Arc::new(entry));
        let mode = channel.latency_mode;
        let packaging =
            PackagingConfig { mode, part_target: self.config.part_target, window_seconds: self.config.window_seconds };
        let mut packager = PackagerOutput::new(self.config.origin.clone(), &channel.name, &record.id, packaging);
        if channel.records_hidden_source() {
            packager = packager.with_hidden("source");
        }
        let recorded = channel.recording.enabled;
        let recording =
            recorded.then(|| self.config.recordings.catalog().layout().session_dir(&channel.name, &record.id));
        let thumbnails = thumbnails::plug(&self.config.thumbnails, &channel.name, &record.id, &renditions, recording);
        let (packager, recorder) = recorder::plug(packager, &channel, &record.id, renditions, &self.config.recordings);
        let mut outputs: Vec<Box<dyn Output>> = vec![Box::new(packager)];
        outputs.extend(recorder.map(|r| Box::new(r) as Box<dyn Output>));
        outputs.extend(thumbnails.map(|t| Box::new(t) as Box<dyn Output>));
        let spec = SessionSpec {
            keyframe_interval: mode.segment_target(),
            outputs,
            figures,
            peer,
            role: channel.input_role(stream_key).unwrap_or(InputRole::Primary),
            failover: self.config.failover,
            inputs,
            record,
            channel,
        };
        let deps = SessionDeps {
            store: self.config.store.clone(),
            transcoder: self.config.transcoder.clone(),
            registry: self.registry.clone(),
        };
        let (name, id) = (spec.channel.name.clone(), spec.record.id.clone());
        // A root span: every line of the session and its outputs names the channel and session, nothing more.
        let span = tracing::info_span!(parent: None, "session", channel = %name, session = %id);
        tracing::info!(parent: &span, %peer, %mode, "session starting");
        self.sessions.spawn(
            async move {
                super::session::run(spec, deps, commands, reply).await;
                (name, id)
            }
            .instrument(span),
        );
    }
}
