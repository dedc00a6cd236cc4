//! The owner of every session in progress. Each granted publish gets a relay
//! task between ingest and its pipeline that records the session's steps
//! (`processing`, `live` at the first part, the end with its reason and
//! stats), enforces the channel's maximum duration, and is the kill switch:
//! when it stops, the publisher's queue closes, so ingest drops the RTMP
//! connection, and the pipeline's input ends, so the playlists get ENDLIST.
//!
//! Stop, delete and shutdown end sessions through `end` (the CLI's stop and
//! delete too: they go through the API on the control socket).
//! A checkpointer writes the figures of every session in progress into their
//! records periodically (one transaction for all), so a crash keeps them.
//!
//! Each session in progress has a `LiveSession`: the relay meters its input
//! there (atomics only), the transcoder reports where the ladder runs and its
//! moves (a move is also recorded as a `session.encoder_moved` event), and
//! the API reads the figures.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use accel::{Backend, DeviceId};
use media::{ChannelOutput, DropStats, StreamEvent, UnitReceiver, UnitSender, unit_channel};
use packager::{LiveStream, Progress};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::live::figures::LiveSession;
use crate::live::transcode::LadderMove;
use crate::state::lifecycle::{EndReason, Event};
use crate::state::{Channel, EncoderMoved, EncoderSlot, Session, SessionCheckpoint, SessionStats, Store, StoreError};

/// How long the end of a session is retried after transient failures (a full
/// disk); past it a restart records it (`appliance-restart`).
const END_RETRY_FOR: Duration = Duration::from_secs(3600);

/// How a session in progress is to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    End(EndReason),
    /// The pipeline failed; the session goes to `error` with this text.
    Fail(String),
}

#[derive(Debug)]
struct Running {
    session: String,
    live: Arc<LiveSession>,
    /// The renditions the session is packaged into.
    renditions: Vec<String>,
    stop: Option<oneshot::Sender<Ending>>,
    task: Option<JoinHandle<()>>,
}

/// Sessions in progress, by channel.
#[derive(Debug)]
pub struct SessionSupervisor {
    store: Store,
    running: Mutex<HashMap<String, Running>>,
}

/// Runs a blocking store operation off the runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(StoreError::Database { path: String::new(), reason: format!("task failed: {e}") }))
}

impl SessionSupervisor {
    pub fn new(store: Store) -> Arc<Self> {
        Arc::new(Self { store, running: Mutex::new(HashMap::new()) })
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wires a granted session: returns the sink ingest feeds and the receiver
    /// the pipeline (packager or transcoder) consumes, with the relay between
    /// them. `queue` bounds each side.
    pub fn attach(
        self: &Arc<Self>,
        channel: &Channel,
        session: &Session,
        stream: Arc<LiveStream>,
        queue: usize,
    ) -> (UnitSender, UnitReceiver) {
        let (sink, input) = unit_channel(queue);
        let (output, events) = unit_channel(queue);
        let (stop, stopped) = oneshot::channel();
        let max = channel.max_session_seconds.map(Duration::from_secs);
        // The channel as the session began: a later change of its output applies from the next session.
        let passthrough = channel.output == ChannelOutput::Passthrough;
        let live = Arc::new(LiveSession::new(&channel.name, &session.id, passthrough, Instant::now()));
        live.count_drops(input.stats());
        live.count_drops(output.stats());
        let relay = Relay {
            supervisor: self.clone(),
            channel: channel.name.clone(),
            session: session.id.clone(),
            stream,
            max,
            live: live.clone(),
        };
        let renditions = relay.renditions();
        let mut running = self.running();
        let task = tokio::spawn(relay.run(input, output, stopped));
        running.insert(
            channel.name.clone(),
            Running { session: session.id.clone(), live, renditions, stop: Some(stop), task: Some(task) },
        );
        (sink, events)
    }

    /// The live figures of `channel`'s session in progress here, if any.
    pub fn live(&self, channel: &str) -> Option<Arc<LiveSession>> {
        self.running().get(channel).map(|r| r.live.clone())
    }

    /// `channel`'s session in progress if it is `session`.
    fn live_session(&self, channel: &str, session: &str) -> Option<Arc<LiveSession>> {
        self.live(channel).filter(|live| live.session == session)
    }

    /// A queue of the session (the audio stage's, the transcoder's input): its drops count as the session's.
    pub fn count_drops(&self, channel: &str, session: &str, stats: Arc<DropStats>) {
        if let Some(live) = self.live_session(channel, session) {
            live.count_drops(stats);
        }
    }

    /// A session's ladder runs `kept` (`dropped`: above the source) on `backend`/`device`.
    pub fn encoder_placed(
        &self,
        channel: &str,
        session: &str,
        backend: Backend,
        device: &DeviceId,
        kept: Vec<String>,
        dropped: Vec<String>,
    ) {
        if let Some(live) = self.live_session(channel, session) {
            live.placed(backend, device, kept, dropped);
        }
    }

    /// A session's ladder moved to `backend` on `moved.to` after a failure: the
    /// placement follows, and `session.encoder_moved` goes into the outbox.
    pub fn encoder_moved(&self, moved: &LadderMove, backend: Backend) {
        let to = EncoderSlot::new(backend, &moved.to);
        let Some(live) = self.live_session(&moved.channel, &moved.session) else { return };
        let change = live.moved(&moved.from, to, &moved.error, moved.at);
        let (kept, moves) = live.placement().map_or((Vec::new(), 1), |p| (p.kept, p.moves));
        let record = EncoderMoved {
            session: moved.session.clone(),
            from: change.from,
            to: change.to,
            reason: change.reason,
            kept,
            moves,
        };
        let (store, channel) = (self.store.clone(), moved.channel.clone());
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        runtime.spawn(async move {
            let session = record.session.clone();
            match blocking(move || store.record_encoder_move(&channel, record)).await {
                Ok(event) => tracing::info!(channel = %event.channel, %session, sequence = event.sequence, "session.encoder_moved recorded"),
                Err(e) => tracing::error!(%session, error = %e, "cannot record the encoder move"),
            }
        });
    }

    /// Ends a channel's session in progress (if it is `session`, when given).
    /// Returns whether one was running here.
    pub fn end(&self, channel: &str, session: Option<&str>, ending: Ending) -> bool {
        let mut running = self.running();
        let Some(entry) = running.get_mut(channel) else { return false };
        if session.is_some_and(|s| s != entry.session) {
            return false;
        }
        match entry.stop.take() {
            Some(stop) => stop.send(ending).is_ok(),
            None => false,
        }
    }

    /// (channel, session) of every session in progress here.
    pub fn sessions(&self) -> Vec<(String, String)> {
        self.running().iter().map(|(c, r)| (c.clone(), r.session.clone())).collect()
    }

    /// Ends every session with `reason` and waits (bounded) for their records.
    pub async fn end_all(&self, reason: EndReason, deadline: Duration) {
        let tasks: Vec<JoinHandle<()>> = {
            let mut running = self.running();
            running
                .values_mut()
                .filter_map(|r| {
                    if let Some(stop) = r.stop.take() {
                        let _ = stop.send(Ending::End(reason));
                    }
                    r.task.take()
                })
                .collect()
        };
        let all = async {
            for task in tasks {
                let _ = task.await;
            }
        };
        if tokio::time::timeout(deadline, all).await.is_err() {
            tracing::warn!("sessions still ending after the shutdown deadline");
        }
    }

    /// Checkpoints the figures of every session in progress every `every`
    /// (see `checkpoint`), until shutdown.
    pub fn spawn_checkpointer(
        self: &Arc<Self>,
        every: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let supervisor = self.clone();
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
                supervisor.checkpoint(&mut written).await;
            }
        })
    }

    /// Writes the stats so far of the sessions in progress whose figures
    /// moved since their last checkpoint (`written`: what each got last), in
    /// one transaction. The relay's unit path is not touched: the figures are
    /// read from the atomics it already keeps.
    async fn checkpoint(&self, written: &mut HashMap<String, SessionStats>) {
        let all: Vec<SessionCheckpoint> = self
            .running()
            .iter()
            .map(|(channel, r)| SessionCheckpoint {
                channel: channel.clone(),
                session: r.session.clone(),
                stats: r.live.stats(r.renditions.clone()),
            })
            .collect();
        written.retain(|session, _| all.iter().any(|c| &c.session == session));
        let due: Vec<SessionCheckpoint> =
            all.into_iter().filter(|c| c.stats.units_in > 0 && written.get(&c.session) != Some(&c.stats)).collect();
        if due.is_empty() {
            return;
        }
        let store = self.store.clone();
        let sessions = due.len();
        let started = Instant::now();
        let (result, due) = match tokio::task::spawn_blocking(move || (store.checkpoint_sessions(&due), due)).await {
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

    fn forget(&self, channel: &str, session: &str) {
        let mut running = self.running();
        if running.get(channel).is_some_and(|r| r.session == session) {
            running.remove(channel);
        }
    }
}

/// One session's relay between ingest and its pipeline.
struct Relay {
    supervisor: Arc<SessionSupervisor>,
    channel: String,
    session: String,
    stream: Arc<LiveStream>,
    max: Option<Duration>,
    live: Arc<LiveSession>,
}

impl Relay {
    async fn run(self, mut input: UnitReceiver, mut output: UnitSender, mut stopped: oneshot::Receiver<Ending>) {
        let store = self.supervisor.store.clone();
        let (channel, session) = (self.channel.clone(), self.session.clone());
        let _ = self.step(Event::PipelineStarting).await;
        let mut first_part = tokio::task::JoinSet::new();
        for rendition in &self.stream.renditions {
            let mut progress = rendition.subscribe();
            first_part.spawn(async move {
                let has_part = |p: &Progress| p.last_part.is_some() || p.ended;
                progress.wait_for(has_part).await.is_ok_and(|p| p.last_part.is_some())
            });
        }
        let mut live = false;
        let deadline = self.max.map(|max| tokio::time::Instant::now() + max);
        let ending = loop {
            tokio::select! {
                ending = &mut stopped => break ending.unwrap_or(Ending::End(EndReason::ApplianceShutdown)),
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)), if deadline.is_some() => {
                    break Ending::End(EndReason::MaxDuration);
                }
                event = input.recv() => match event {
                    None => break Ending::End(EndReason::PublisherLeft),
                    Some(StreamEvent::Tracks(tracks)) => {
                        self.live.announce(&tracks);
                        if output.send_tracks(tracks).await.is_err() {
                            break Ending::Fail("the pipeline stopped taking media".into());
                        }
                    }
                    Some(StreamEvent::Unit(unit)) => {
                        self.live.record(&unit);
                        if output.send_unit(unit).is_err() {
                            break Ending::Fail("the pipeline stopped taking media".into());
                        }
                    }
                },
                Some(done) = first_part.join_next(), if !live => {
                    if done.unwrap_or(false) && self.step(Event::FirstPart).await.is_ok() {
                        live = true;
                        tracing::info!(%channel, %session, "session live");
                    }
                }
            }
        };
        // The kill switch: closing the publisher's queue ends the RTMP session;
        // closing the pipeline's input ends every rendition with ENDLIST.
        drop(input);
        drop(output);
        first_part.abort_all();
        let stats = self.live.stats(self.renditions());
        let (bytes_in, units_in, dropped_units) = (stats.bytes_in, stats.units_in, stats.dropped_units);
        let (event, error) = match &ending {
            Ending::End(reason) => (Event::End(*reason), None),
            Ending::Fail(text) => (Event::Fail, Some(text.clone())),
        };
        self.supervisor.forget(&channel, &session);
        // Until its end is recorded the channel counts as live and refuses a new
        // publish, so a transient failure (a full disk) is retried until it clears.
        let mut wait = Duration::from_secs(1);
        let given_up = Instant::now() + END_RETRY_FOR;
        loop {
            let (store, c, s, stats, error) =
                (store.clone(), channel.clone(), session.clone(), stats.clone(), error.clone());
            match blocking(move || store.end_session(&c, &s, event, stats, error)).await {
                Ok(Some(ended)) => {
                    tracing::info!(%channel, %session, state = ?ended.state, reason = ?ended.end_reason, bytes_in, units_in, dropped_units, duration_ms = ended.duration_ms(), "session over");
                }
                Ok(None) => tracing::debug!(%channel, %session, "session was already recorded as over"),
                Err(e) if e.needs_reopen() && Instant::now() < given_up => {
                    tracing::warn!(%channel, %session, error = %e, retry_in_s = wait.as_secs(), "cannot record the end of a session yet; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(30));
                    continue;
                }
                Err(e) => tracing::error!(%channel, %session, error = %e, "cannot record the end of a session"),
            }
            return;
        }
    }

    fn renditions(&self) -> Vec<String> {
        self.stream.renditions.iter().map(|r| r.name.clone()).collect()
    }

    async fn step(&self, event: Event) -> Result<Session, StoreError> {
        let store = self.supervisor.store.clone();
        let (c, s) = (self.channel.clone(), self.session.clone());
        let result = blocking(move || store.advance_session(&c, &s, event)).await;
        if let Err(e) = &result {
            tracing::warn!(channel = %self.channel, session = %self.session, ?event, error = %e, "session step not recorded");
        }
        result
    }
}
