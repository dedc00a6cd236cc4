//! One live session's task: it owns the session's input port, its
//! processing (the audio stage when the audio is not AAC; a ladder or
//! passthrough) and its outputs, each stage a task or thread it joins. It
//! reads the input (metering it: atomics only), takes each unit through the
//! processing and fans every rendition out to the outputs that subscribed,
//! each through its own bounded queue. It records the session's steps in the
//! store (`processing`, `live` at the first part, the end with its reason and
//! stats), enforces the channel's maximum duration, and is the kill switch:
//! when it stops, the publisher's queue closes (ingest drops the connection)
//! and every output's feeds end (the playlists get ENDLIST).
//!
//! A passthrough unit crosses two queues: ingest to this task, and this task
//! to each output.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use accel::pipeline::{FaultSwitch, Rendition};
use futures_util::stream::{SelectAll, StreamExt};
use ingest::{Refusal, RefusalKind};
use media::{ChannelOutput, DropStats, SendError, StreamEvent, UnitSender, unit_channel};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::audio::{self, AudioStage};
pub use super::control::{Ending, SessionCommand};
use super::events::SessionEvent;
use super::fanout::Fanout;
use super::figures::{OutputFigures, OutputState, SessionFigures};
use super::input::failover::{FailoverTimes, Switch};
use super::input::meters::InputMeters;
use super::input::port::{InputPort, PortEvent};
use super::link::Link;
use super::ports::{OUTPUT_QUEUE, Output, Renditions, Reporter};
use super::registry::Registry;
use super::restream;
use super::transcode::{LadderStage, Transcoder};
use crate::state::blocking::blocking;
use crate::state::lifecycle::{EndReason, Event};
use crate::state::records::restream::RestreamReport;
use crate::state::{
    Channel, EncoderMoved, EncoderSlot, EventType, InputRole, InputSwitched, Session, SessionStats, Store, StoreError,
};

/// Events buffered between ingest and the session (about 6 s of 30 fps video with audio).
pub const INPUT_QUEUE: usize = 512;
/// Typed events from the session's stages and outputs.
const EVENT_QUEUE: usize = 64;
/// How often drops on the session's queues are reported (when there were any).
const DROP_REPORT_INTERVAL: Duration = Duration::from_secs(10);
/// After a fade-out, for the audio still in the stage (its queue, the
/// loudness meter's 100 ms blocks) to have passed it before the end.
const FADE_OUT_MARGIN: Duration = Duration::from_millis(300);

/// How long the processing gets to hand over what it still holds at the end.
const DRAIN_DEADLINE: Duration = Duration::from_secs(2);
/// How long the outputs get to finish after their feeds end.
const OUTPUT_DEADLINE: Duration = Duration::from_secs(5);
/// How long the end of a session is retried after transient failures (a full
/// disk); past it a restart records it (`appliance-restart`).
const END_RETRY_FOR: Duration = Duration::from_secs(3600);

/// What a session is started with.
pub struct SessionSpec {
    /// The channel as the session began: a later change of its output applies from the next session.
    pub channel: Channel,
    pub record: Session,
    pub peer: SocketAddr,
    /// The outputs it starts with (the LL-HLS packager).
    pub outputs: Vec<Box<dyn Output>>,
    /// Keyframe cadence of a ladder: the segment target.
    pub keyframe_interval: Duration,
    pub figures: Arc<SessionFigures>,
    /// The input the publish that starts the session is (its stream key's).
    pub role: InputRole,
    pub failover: FailoverTimes,
    /// The inputs' figures, which the port writes.
    pub inputs: Arc<InputMeters>,
}

/// What a session shares with the rest of the appliance.
#[derive(Clone)]
pub struct SessionDeps {
    pub store: Store,
    pub transcoder: Arc<Transcoder>,
    pub registry: Arc<Registry>,
}

/// The session's processing of its (audio-staged) source.
enum Processing {
    /// The source is the one rendition, `source`.
    Passthrough,
    Ladder {
        /// The pipeline's input; `None` once the session is ending.
        input: Option<UnitSender>,
        tracks: tokio::sync::watch::Sender<super::transcode::Announced>,
        faults: FaultSwitch,
        /// New picture processing restarts the running ladder with it.
        picture: tokio::sync::watch::Sender<media::PictureProcessing>,
        /// Whether the ladder offers the source as a rendition too.
        source: bool,
    },
}

/// One output plugged into the session.
struct OutputSlot {
    name: String,
    state: OutputState,
    error: Option<String>,
    /// Its queues' counters, and what was last reported of them.
    queues: Vec<Arc<DropStats>>,
    reported: (u64, u64),
    /// Its connection, when it sends to another server.
    link: Option<Arc<Link>>,
}

impl OutputSlot {
    fn drops(&self) -> (u64, u64) {
        self.queues.iter().fold((0, 0), |(u, e), s| (u + s.dropped_units(), e + s.drop_episodes()))
    }

    fn figures(&self) -> OutputFigures {
        let (dropped_units, drop_episodes) = self.drops();
        OutputFigures {
            name: self.name.clone(),
            state: self.state,
            error: self.error.clone(),
            dropped_units,
            drop_episodes,
            link: self.link.as_ref().map(|link| link.figures()),
        }
    }
}

/// What the session's task joins.
enum Stage {
    Output(usize),
    Ladder,
}

/// A rung's stream as a stream of (rendition, event).
type RungStream = futures_util::stream::BoxStream<'static, (String, StreamEvent)>;

fn rung_stream(rendition: Rendition) -> RungStream {
    let Rendition { name, stream } = rendition;
    futures_util::stream::unfold((name, stream), |(name, mut stream)| async move {
        let event = stream.recv().await?;
        Some(((name.clone(), event), (name, stream)))
    })
    .boxed()
}

/// The running session.
struct Running {
    channel: String,
    session: String,
    deps: SessionDeps,
    figures: Arc<SessionFigures>,
    processing: Processing,
    /// The audio stage, once the source's audio needed it.
    audio: Option<AudioStage>,
    /// The channel's sound processing (the audio stage runs for AAC too when
    /// it does something), watched by the audio stage: `?restart=now` changes it.
    sound: watch::Sender<media::SoundProcessing>,
    /// The source's last announcement (to start the audio stage when new sound processing needs it).
    source_tracks: Option<Arc<[media::TrackInfo]>>,
    fanouts: Vec<Fanout>,
    outputs: Vec<OutputSlot>,
    stages: JoinSet<(Stage, Result<(), String>)>,
    events: mpsc::Sender<SessionEvent>,
    renditions: Vec<String>,
}

/// Runs a session: answers `granted` with the publisher's sink (or the
/// refusal), then relays until it ends, and records the end.
pub async fn run(
    spec: SessionSpec,
    deps: SessionDeps,
    commands: mpsc::Receiver<SessionCommand>,
    granted: oneshot::Sender<Result<UnitSender, Refusal>>,
) {
    let channel = spec.channel.name.clone();
    let session = spec.record.id.clone();
    let (events, stage_events) = mpsc::channel(EVENT_QUEUE);
    let mut stages = JoinSet::new();
    let (processing, rungs, renditions) = match &spec.channel.output {
        ChannelOutput::Passthrough => (Processing::Passthrough, Vec::new(), vec!["source".to_string()]),
        ChannelOutput::Ladder { ladder } => {
            let started = match deps.transcoder.lease(ladder, spec.channel.encoder_policy).await {
                Ok(lease) => {
                    let picture = spec.channel.processing.picture.clone();
                    lease.start(&channel, spec.keyframe_interval, picture, events.clone())
                }
                Err(e) => Err(e),
            };
            let stage = match started {
                Ok(stage) => stage,
                Err(e) => {
                    let reason = e.to_string();
                    if e.is_capacity() {
                        tracing::warn!(%reason, "publish refused: no encoder slot");
                    } else {
                        tracing::error!(%reason, "publish refused: the ladder cannot run");
                    }
                    // Recorded while the publisher waits for its answer, so nothing else can record it first.
                    deps.registry.remove(&channel, &session);
                    record_end(&deps.store, &channel, &session, &Ending::Fail(reason.clone()), SessionStats::default())
                        .await;
                    let _ = granted.send(Err(Refusal::new(RefusalKind::Unavailable, reason)));
                    return;
                }
            };
            let LadderStage { input, tracks, renditions, faults, picture, run } = stage;
            spec.figures.count_drops(input.stats());
            stages.spawn(async move { (Stage::Ladder, run.await) }.instrument(tracing::info_span!("ladder")));
            let mut names: Vec<String> = renditions.iter().map(|r| r.name.clone()).collect();
            // Offered to viewers, or hidden and packaged for the recorder alone.
            let source = ladder.include_source || spec.channel.records_hidden_source();
            if source {
                names.push("source".to_string());
            }
            let processing = Processing::Ladder { input: Some(input), tracks, faults, picture, source };
            (processing, renditions, names)
        }
    };
    let (sink, receiver) = unit_channel(INPUT_QUEUE);
    spec.figures.count_drops(sink.stats());
    let mut input = InputPort::new(&channel, spec.failover, spec.inputs.clone());
    input.attach(spec.role, receiver, spec.peer);
    let mut running = Running {
        channel: channel.clone(),
        session: session.clone(),
        fanouts: renditions.iter().map(Fanout::new).collect(),
        deps,
        figures: spec.figures,
        processing,
        audio: None,
        sound: watch::Sender::new(spec.channel.processing.sound.clone()),
        source_tracks: None,
        outputs: Vec::new(),
        stages,
        events,
        renditions,
    };
    for output in spec.outputs {
        if let Err(reason) = running.attach(output) {
            tracing::error!(%reason, "an output could not be plugged in");
        }
    }
    if granted.send(Ok(sink)).is_err() {
        // The publisher went away while the session was being set up.
        running.finish(input, Ending::End(EndReason::PublisherLeft), SelectAll::new(), stage_events).await;
        return;
    }
    // After the grant, so a publish never waits for them; they start at a keyframe.
    running.attach_restreams().await;
    let _ = running.step(Event::PipelineStarting).await;
    let rungs: SelectAll<RungStream> = rungs.into_iter().map(rung_stream).collect();
    let max = spec.channel.max_session_seconds.map(Duration::from_secs);
    running.relay(input, rungs, commands, stage_events, max).await;
}

impl Running {
    /// Relays until the session ends, then ends it.
    async fn relay(
        mut self,
        mut input: InputPort,
        mut rungs: SelectAll<RungStream>,
        mut commands: mpsc::Receiver<SessionCommand>,
        mut stage_events: mpsc::Receiver<SessionEvent>,
        max: Option<Duration>,
    ) {
        let deadline = max.map(|max| tokio::time::Instant::now() + max);
        let mut drop_report =
            tokio::time::interval_at(tokio::time::Instant::now() + DROP_REPORT_INTERVAL, DROP_REPORT_INTERVAL);
        let mut live = false;
        // The operator's stop while the sound fades out: when it ends, and how.
        let mut fading: Option<(tokio::time::Instant, Ending)> = None;
        let ending = loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(SessionCommand::Stop(ending)) => match self.fade_out(&ending) {
                        Some(wait) if fading.is_none() => fading = Some((tokio::time::Instant::now() + wait, ending)),
                        _ => break ending,
                    },
                    Some(SessionCommand::Attach(output, reply)) => {
                        let _ = reply.send(self.attach(output));
                    }
                    Some(SessionCommand::AttachInput { role, peer, reply }) => {
                        let _ = reply.send(self.attach_input(&mut input, role, peer));
                    }
                    Some(SessionCommand::InjectFault(fault, reply)) => {
                        let tripped = match &self.processing {
                            Processing::Ladder { faults, .. } => {
                                tracing::warn!(?fault, "fault injected into the ladder");
                                faults.trip(fault);
                                true
                            }
                            Processing::Passthrough => false,
                        };
                        let _ = reply.send(tripped);
                    }
                    Some(SessionCommand::Reprocess(processing, reply)) => {
                        let resounded = self.resound(processing.sound.clone());
                        let restarted = match &self.processing {
                            Processing::Ladder { picture, .. } => {
                                tracing::info!(picture = ?processing.picture, "restarting the ladder with new processing");
                                picture.send_replace(processing.picture);
                                true
                            }
                            Processing::Passthrough => false,
                        };
                        let _ = reply.send(restarted || resounded);
                    }
                    None => break Ending::End(EndReason::ApplianceShutdown),
                },
                _ = sleep_until(deadline), if deadline.is_some() => break Ending::End(EndReason::MaxDuration),
                _ = sleep_until(fading.as_ref().map(|(at, _)| *at)), if fading.is_some() => {
                    break fading.take().expect("fading").1;
                }
                event = input.next() => match event {
                    PortEvent::Ended => break Ending::End(EndReason::PublisherLeft),
                    PortEvent::Switched(switch) => self.on_switch(switch),
                    PortEvent::Media(event) => {
                        match &event {
                            StreamEvent::Tracks(tracks) => self.figures.announce(tracks),
                            StreamEvent::Unit(unit) => self.figures.record(unit),
                        }
                        if let Err(reason) = self.source(event) {
                            break Ending::Fail(reason);
                        }
                    }
                    PortEvent::Slate(event) => {
                        if let Err(reason) = self.source(event) {
                            break Ending::Fail(reason);
                        }
                    }
                },
                Some(event) = recv_audio(&mut self.audio) => {
                    if let Err(reason) = self.process(event) {
                        break Ending::Fail(reason);
                    }
                }
                Some((rendition, event)) = rungs.next(), if !rungs.is_empty() => self.fan_out(&rendition, &event),
                Some(event) = stage_events.recv() => {
                    if let SessionEvent::Viewable = event
                        && !live
                    {
                        live = self.step(Event::FirstPart).await.is_ok();
                        if live {
                            tracing::info!("session live");
                        }
                    }
                    if let Some(ending) = self.on_event(event) {
                        break ending;
                    }
                }
                Some(joined) = self.stages.join_next() => {
                    if let Some(ending) = self.on_joined(joined) {
                        break ending;
                    }
                }
                _ = drop_report.tick() => self.report_drops(),
            }
        };
        self.finish(input, ending, rungs, stage_events).await;
    }

    /// Plugs `output` in: a queue for each rendition it wants, started in the session's JoinSet.
    fn attach(&mut self, output: Box<dyn Output>) -> Result<(), String> {
        let index = self.outputs.len();
        let name = output.name().to_string();
        let subscription = output.subscription();
        let link = output.link();
        let mut feeds = Vec::new();
        let mut queues = Vec::new();
        for fanout in &mut self.fanouts {
            if let Some((feed, stats)) = fanout.subscribe(index, &subscription, OUTPUT_QUEUE) {
                self.figures.count_drops(stats.clone());
                feeds.push(feed);
                queues.push(stats);
            }
        }
        if feeds.is_empty() && subscription.renditions != Renditions::NoUnits {
            return Err(format!("output {name}: the session has none of the renditions it wants"));
        }
        let reporter = Reporter { output: name.clone(), events: self.events.clone() };
        let span = tracing::info_span!("output", output = %name);
        let run = output.start(feeds, reporter);
        self.stages.spawn(async move { (Stage::Output(index), run.await.map_err(|e| e.to_string())) }.instrument(span));
        tracing::info!(output = %name, "output attached");
        if let (Some(link), Some(entry)) = (&link, self.deps.registry.session(&self.channel, &self.session)) {
            entry.add_link(&name, link.clone());
        }
        self.outputs.push(OutputSlot {
            name,
            state: OutputState::Running,
            error: None,
            queues,
            reported: (0, 0),
            link,
        });
        self.publish_outputs();
        Ok(())
    }

    /// Plugs in an output for each enabled restream destination of the channel.
    async fn attach_restreams(&mut self) {
        let (store, channel) = (self.deps.store.clone(), self.channel.clone());
        match blocking(move || store.restreams(&channel)).await {
            Ok(destinations) => {
                for output in restream::outputs(destinations) {
                    if let Err(reason) = self.attach(output) {
                        tracing::warn!(%reason, "a restream destination was left out");
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "restream destinations cannot be read; the session goes on without them")
            }
        }
    }

    /// A second publish of the channel (the other stream key) joins as `role`.
    fn attach_input(&mut self, port: &mut InputPort, role: InputRole, peer: SocketAddr) -> Result<UnitSender, Refusal> {
        if port.is_connected(role) {
            let text = format!("channel {}'s {role} input is already publishing", self.channel);
            return Err(Refusal::new(RefusalKind::AlreadyLive, text));
        }
        let (sink, receiver) = unit_channel(INPUT_QUEUE);
        self.figures.count_drops(sink.stats());
        port.attach(role, receiver, peer);
        Ok(sink)
    }

    /// What is on air changed: logged, an event for watchers, and `session.input_switched` in the outbox.
    fn on_switch(&self, switch: Switch) {
        let Some(from) = switch.from else { return };
        let inputs = self.deps.registry.session(&self.channel, &self.session).map(|e| e.inputs.switches());
        let switches = inputs.unwrap_or(1);
        tracing::warn!(alert = "input-switched", %from, to = %switch.to, reason = switch.reason.as_str(), switches, "on air: {}", switch.to);
        let event = SessionEvent::InputSwitched { from, to: switch.to, reason: switch.reason };
        self.deps.registry.publish(&self.channel, &self.session, event);
        let record =
            InputSwitched { session: self.session.clone(), from, to: switch.to, reason: switch.reason, switches };
        let (store, channel, session) = (self.deps.store.clone(), self.channel.clone(), self.session.clone());
        tokio::spawn(
            async move {
                match blocking(move || store.record_input_switch(&channel, record)).await {
                    Ok(event) => tracing::info!(sequence = event.sequence, "session.input_switched recorded"),
                    Err(e) => tracing::error!(%session, error = %e, "cannot record the input switch"),
                }
            }
            .in_current_span(),
        );
    }

    /// A source event (after metering): into the audio stage when it runs (or
    /// must start now), else straight to the processing.
    fn source(&mut self, event: StreamEvent) -> Result<(), String> {
        if let StreamEvent::Tracks(tracks) = &event {
            self.source_tracks = Some(tracks.clone());
        }
        if self.audio.is_none()
            && let StreamEvent::Tracks(tracks) = &event
            && audio::needs_transcode(tracks, &self.sound.borrow())
        {
            let stage = audio::start(&self.channel, self.sound.subscribe())
                .map_err(|e| format!("cannot start the audio stage: {e}"))?;
            self.figures.count_drops(stage.input.stats());
            self.figures.count_drops(stage.output.stats());
            self.audio = Some(stage);
        }
        match &mut self.audio {
            Some(stage) => send(&mut stage.input, event).map_err(|_| "the audio stage stopped".to_string()),
            None => self.process(event),
        }
    }

    /// The operator stopped the channel and its sound fades out: the audio
    /// stage starts the fade, and the session ends after it (how long to wait).
    fn fade_out(&mut self, ending: &Ending) -> Option<Duration> {
        let millis = self.sound.borrow().fade_out_ms;
        let stage = self.audio.as_ref()?;
        if *ending != Ending::End(EndReason::ChannelStopped) || millis == 0 {
            return None;
        }
        tracing::info!(millis, "the channel stops after its sound fades out");
        stage.fade_out.send_replace(true);
        Some(Duration::from_millis(u64::from(millis)) + FADE_OUT_MARGIN)
    }

    /// New sound processing (`?restart=now`): the audio stage follows it at
    /// its next event, or starts now when the audio needs it only now.
    /// Whether it changed anything.
    fn resound(&mut self, sound: media::SoundProcessing) -> bool {
        if *self.sound.borrow() == sound {
            return false;
        }
        tracing::info!(?sound, "the audio follows new sound processing");
        self.sound.send_replace(sound);
        let Some(tracks) = self.source_tracks.clone() else { return true };
        let needed = audio::needs_transcode(&tracks, &self.sound.borrow());
        if self.audio.is_none()
            && needed
            && let Err(error) = self.source(StreamEvent::Tracks(tracks))
        {
            tracing::warn!(%error, "the audio stage could not start for the new sound processing");
        }
        true
    }

    /// An event with AAC audio (or none): fanned out as the source, and/or into the ladder.
    fn process(&mut self, event: StreamEvent) -> Result<(), String> {
        match &mut self.processing {
            Processing::Passthrough => {
                self.fan_out("source", &event);
                Ok(())
            }
            Processing::Ladder { input, tracks, source, .. } => {
                let offer_source = *source;
                if let StreamEvent::Tracks(announced) = &event {
                    tracks.send_replace(Some(announced.clone()));
                }
                let sent = match input {
                    Some(input) => send(input, event.clone()),
                    None => Ok(()),
                };
                if offer_source {
                    self.fan_out("source", &event);
                }
                sent.map_err(|_| "the ladder stopped taking media".to_string())
            }
        }
    }

    fn fan_out(&mut self, rendition: &str, event: &StreamEvent) {
        let Some(fanout) = self.fanouts.iter_mut().find(|f| f.rendition == rendition) else { return };
        for gone in fanout.send(event) {
            // Its feed closed without the output ending: it will be joined and reported.
            tracing::debug!(output = %self.outputs[gone].name, rendition, "an output closed its feed");
        }
    }

    /// A typed event from a stage or output; returns an ending when it ends the session.
    fn on_event(&mut self, event: SessionEvent) -> Option<Ending> {
        let ending = match &event {
            SessionEvent::EncoderPlaced { backend, device, kept, dropped } => {
                self.figures.placed(*backend, device, kept.clone(), dropped.clone());
                None
            }
            SessionEvent::FilterGraph { graph, cpu_steps } => {
                self.figures.filter_graph(graph, cpu_steps);
                None
            }
            SessionEvent::EncoderMoved { from, to, backend, error, at } => {
                self.record_move(from, EncoderSlot::new(*backend, to), error, *at);
                None
            }
            SessionEvent::ProcessingFailed { reason } => Some(Ending::Fail(reason.clone())),
            SessionEvent::LinkUp { output, attempt } => {
                self.record_link(output, EventType::RestreamConnected, *attempt, None, None);
                None
            }
            SessionEvent::LinkDown { output, attempt, error, retry_in } => {
                self.record_link(output, EventType::RestreamFailed, *attempt, Some(error.clone()), Some(*retry_in));
                None
            }
            SessionEvent::Viewable
            | SessionEvent::OutputFailed { .. }
            | SessionEvent::Dropped { .. }
            | SessionEvent::InputSwitched { .. } => None,
        };
        self.deps.registry.publish(&self.channel, &self.session, event);
        ending
    }

    /// A stage or output ended.
    fn on_joined(&mut self, joined: Result<(Stage, Result<(), String>), tokio::task::JoinError>) -> Option<Ending> {
        let (stage, result) = match joined {
            Ok(done) => done,
            Err(e) => return Some(Ending::Fail(format!("a stage of the session failed: {e}"))),
        };
        match (stage, result) {
            (Stage::Ladder, Ok(())) => None,
            (Stage::Ladder, Err(reason)) => {
                tracing::error!(alert = "transcode-failed", %reason, "ladder stopped: the session ends");
                Some(Ending::Fail(reason))
            }
            (Stage::Output(index), result) => {
                for fanout in &mut self.fanouts {
                    fanout.unsubscribe(index);
                }
                let slot = &mut self.outputs[index];
                match result {
                    Ok(()) => slot.state = OutputState::Ended,
                    Err(reason) => {
                        tracing::error!(alert = "output-failed", output = %slot.name, %reason, "output failed; the session goes on without it");
                        slot.state = OutputState::Failed;
                        slot.error = Some(reason.clone());
                        let event = SessionEvent::OutputFailed { output: slot.name.clone(), reason };
                        self.deps.registry.publish(&self.channel, &self.session, event);
                    }
                }
                self.publish_outputs();
                None
            }
        }
    }

    fn publish_outputs(&self) {
        if let Some(entry) = self.deps.registry.session(&self.channel, &self.session) {
            entry.set_outputs(self.outputs.iter().map(OutputSlot::figures).collect());
        }
    }

    /// Drops on the outputs' queues since the last report: one line and one event per output.
    fn report_drops(&mut self) {
        let mut changed = false;
        for slot in &mut self.outputs {
            let (units, episodes) = slot.drops();
            let (last_units, last_episodes) = slot.reported;
            if units > last_units {
                changed = true;
                slot.reported = (units, episodes);
                let (units, episodes) = (units - last_units, episodes - last_episodes);
                tracing::warn!(output = %slot.name, dropped_units = units, episodes, "output fell behind: its queue dropped to the next keyframe");
                let event = SessionEvent::Dropped { queue: format!("output {}", slot.name), units, episodes };
                self.deps.registry.publish(&self.channel, &self.session, event);
            }
        }
        if changed {
            self.publish_outputs();
        }
    }

    /// `restream.connected` / `restream.failed` into the outbox, for the output's destination.
    fn record_link(
        &self,
        output: &str,
        kind: EventType,
        attempt: u32,
        error: Option<String>,
        retry_in: Option<Duration>,
    ) {
        let Some(link) = self.outputs.iter().find(|o| o.name == output).and_then(|o| o.link.clone()) else { return };
        let report = RestreamReport {
            destination: link.destination.clone(),
            url: link.url.clone(),
            rendition: link.rendition.clone(),
            session: self.session.clone(),
            attempt,
            error,
            retry_in_ms: retry_in.map(|d| d.as_millis() as u64),
        };
        let (store, channel) = (self.deps.store.clone(), self.channel.clone());
        tokio::spawn(
            async move {
                if let Err(e) = blocking(move || store.record_restream_event(&channel, kind, report)).await {
                    tracing::error!(error = %e, event = kind.as_str(), "cannot record the restream event");
                }
            }
            .in_current_span(),
        );
    }

    /// The ladder moved: the placement follows, and `session.encoder_moved` goes into the outbox.
    fn record_move(&self, from: &accel::DeviceId, to: EncoderSlot, error: &str, at: std::time::SystemTime) {
        let change = self.figures.moved(from, to, error, at);
        let (kept, moves) = self.figures.placement().map_or((Vec::new(), 1), |p| (p.kept, p.moves));
        let record = EncoderMoved {
            session: self.session.clone(),
            from: change.from,
            to: change.to,
            reason: change.reason,
            kept,
            moves,
        };
        let (store, channel, session) = (self.deps.store.clone(), self.channel.clone(), self.session.clone());
        tokio::spawn(
            async move {
                match blocking(move || store.record_encoder_move(&channel, record)).await {
                    Ok(event) => tracing::info!(sequence = event.sequence, "session.encoder_moved recorded"),
                    Err(e) => tracing::error!(%session, error = %e, "cannot record the encoder move"),
                }
            }
            .in_current_span(),
        );
    }

    async fn step(&self, event: Event) -> Result<Session, StoreError> {
        let store = self.deps.store.clone();
        let (c, s) = (self.channel.clone(), self.session.clone());
        let result = blocking(move || store.advance_session(&c, &s, event)).await;
        if let Err(e) = &result {
            tracing::warn!(?event, error = %e, "session step not recorded");
        }
        result
    }

    /// Ends the session: the publisher's queue closes, the processing hands
    /// over what it holds (bounded), the outputs' feeds end and they finish
    /// (bounded), and the end is recorded.
    async fn finish(
        mut self,
        input: InputPort,
        ending: Ending,
        mut rungs: SelectAll<RungStream>,
        mut stage_events: mpsc::Receiver<SessionEvent>,
    ) {
        // Not live any more for the API and the status line, whatever the store says while the end is written.
        self.deps.registry.remove(&self.channel, &self.session);
        drop(input);
        let stats = self.figures.stats(self.renditions.clone());
        // The processing's inputs close, the audio stage's first: what it
        // still holds goes on into the ladder, whose outputs then close.
        let (mut audio_output, audio_thread) = match self.audio.take() {
            Some(AudioStage { input, output, thread, .. }) => {
                drop(input);
                (Some(output), Some(thread))
            }
            None => (None, None),
        };
        let drain = tokio::time::sleep(DRAIN_DEADLINE);
        tokio::pin!(drain);
        loop {
            if audio_output.is_none() {
                self.close_ladder_input();
                if rungs.is_empty() {
                    break;
                }
            }
            tokio::select! {
                event = async { audio_output.as_mut()?.recv().await }, if audio_output.is_some() => match event {
                    Some(event) => {
                        let _ = self.process(event);
                    }
                    None => audio_output = None,
                },
                event = rungs.next(), if !rungs.is_empty() => {
                    if let Some((rendition, event)) = event {
                        self.fan_out(&rendition, &event);
                    }
                }
                Some(event) = stage_events.recv() => {
                    self.on_event(event);
                }
                _ = &mut drain => break,
            }
        }
        // Every output's feeds end: the packager publishes ENDLIST.
        self.fanouts.clear();
        self.close_ladder_input();
        drop(rungs);
        let outputs = async {
            loop {
                tokio::select! {
                    joined = self.stages.join_next() => match joined {
                        Some(joined) => {
                            let _ = self.on_joined(joined);
                        }
                        None => return,
                    },
                    Some(event) = stage_events.recv() => {
                        self.on_event(event);
                    }
                }
            }
        };
        if tokio::time::timeout(OUTPUT_DEADLINE, outputs).await.is_err() {
            tracing::warn!("outputs still running after the session ended; stopped");
            self.stages.abort_all();
        }
        if let Some(thread) = audio_thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        record_end(&self.deps.store, &self.channel, &self.session, &ending, stats).await;
    }

    fn close_ladder_input(&mut self) {
        if let Processing::Ladder { input, .. } = &mut self.processing {
            *input = None;
        }
    }
}

/// Sends an event without waiting (a full queue drops to the next keyframe, counted).
fn send(queue: &mut UnitSender, event: StreamEvent) -> Result<(), SendError> {
    match event {
        StreamEvent::Tracks(tracks) => queue.announce(tracks).map(|_| ()),
        StreamEvent::Unit(unit) => queue.send_unit(unit).map(|_| ()),
    }
}

async fn recv_audio(audio: &mut Option<AudioStage>) -> Option<StreamEvent> {
    match audio {
        Some(stage) => stage.output.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Records the end of a session. Until it is recorded the channel counts as
/// live and refuses a new publish, so a transient failure (a full disk) is
/// retried until it clears.
async fn record_end(store: &Store, channel: &str, session: &str, ending: &Ending, stats: SessionStats) {
    let (event, error) = match ending {
        Ending::End(reason) => (Event::End(*reason), None),
        Ending::Fail(text) => (Event::Fail, Some(text.clone())),
    };
    let (bytes_in, units_in, dropped_units) = (stats.bytes_in, stats.units_in, stats.dropped_units);
    let mut wait = Duration::from_secs(1);
    let given_up = Instant::now() + END_RETRY_FOR;
    loop {
        let (store, c, s, stats, error) =
            (store.clone(), channel.to_string(), session.to_string(), stats.clone(), error.clone());
        match blocking(move || store.end_session(&c, &s, event, stats, error)).await {
            Ok(Some(ended)) => {
                tracing::info!(state = ?ended.state, reason = ?ended.end_reason, bytes_in, units_in, dropped_units, duration_ms = ended.duration_ms(), "session over");
            }
            Ok(None) => tracing::debug!("session was already recorded as over"),
            Err(e) if e.needs_reopen() && Instant::now() < given_up => {
                tracing::warn!(error = %e, retry_in_s = wait.as_secs(), "cannot record the end of a session yet; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(30));
                continue;
            }
            Err(e) => tracing::error!(error = %e, "cannot record the end of a session"),
        }
        return;
    }
}
