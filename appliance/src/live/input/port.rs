//! The session's input port: it reads every connected input (so no
//! publisher is ever held back), meters each on its own, asks the
//! `Failover` which one is on air, rebases what goes on air onto the
//! output's one timeline, and puts the slate on air while no input
//! delivers. The session reads one stream of `PortEvent`s from it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use media::{StreamEvent, Timebase, TrackInfo, TrackKind, UnitReceiver};

use super::failover::{Failover, FailoverTimes, Switch, Tick, Verdict};
use super::meters::InputMeters;
use super::slate::{SlateFeed, Slates};
use super::timeline::Timeline;
use crate::live::figures::InputMeter;
use crate::state::{InputRole, OnAir};

/// What the port hands the session.
#[derive(Debug)]
pub enum PortEvent {
    /// Media of an input on air (tracks, then units), on the output's timeline.
    Media(StreamEvent),
    /// The slate's media, on the output's timeline (not the publisher's: not metered as input).
    Slate(StreamEvent),
    /// What is on air changed.
    Switched(Switch),
    /// No input delivered for the slate's grace time (or every input left before anything went on air).
    Ended,
}

/// Audio units an input not on air keeps, so that the audio interleaved just
/// before the keyframe it goes on air with goes along (no hole in the audio).
const RECENT_AUDIO: usize = 8;
/// How far before that keyframe kept audio may start.
const AUDIO_LEAD: std::time::Duration = std::time::Duration::from_millis(100);
/// Events an input not on air keeps since its latest keyframe, to go on air
/// from that keyframe at once when the input on air fails (instead of waiting
/// for its next one). Bounded below the ladder's input queue (64), which takes
/// them as one burst; a longer run is dropped and the next keyframe awaited.
const REPLAY: usize = 48;

/// One connected input.
struct Input {
    receiver: UnitReceiver,
    /// Its latest track announcement.
    tracks: Option<Arc<[TrackInfo]>>,
    meter: Arc<InputMeter>,
    /// Its latest audio units while it is not on air.
    recent_audio: VecDeque<media::EncodedUnit>,
    /// While it is not on air: its units since its latest video keyframe (up to `REPLAY`).
    since_keyframe: Vec<media::EncodedUnit>,
}

impl Input {
    /// Keeps a unit while not on air: the audio of the last moments, and the units since the latest keyframe.
    fn keep(&mut self, unit: media::EncodedUnit, keyframe: bool) {
        if keyframe {
            self.since_keyframe.clear();
            self.since_keyframe.push(unit);
            return;
        }
        if !self.since_keyframe.is_empty() {
            if self.since_keyframe.len() < REPLAY {
                self.since_keyframe.push(unit.clone());
            } else {
                self.since_keyframe.clear();
            }
        }
        if unit.kind == TrackKind::Audio {
            if self.recent_audio.len() == RECENT_AUDIO {
                self.recent_audio.pop_front();
            }
            self.recent_audio.push_back(unit);
        }
    }

    fn timebase(&self, track: usize) -> media::Timebase {
        self.tracks.as_ref().and_then(|t| t.get(track)).map_or(media::Timebase::VIDEO, |t| t.timebase)
    }

    fn has_video(&self) -> bool {
        self.tracks.as_ref().is_some_and(|t| t.iter().any(|t| t.kind == TrackKind::Video))
    }
}

/// A session's inputs and what it has on air.
pub struct InputPort {
    inputs: [Option<Input>; 2],
    failover: Failover,
    timeline: Timeline,
    meters: Arc<InputMeters>,
    slates: Slates,
    slate: Option<SlateFeed>,
    /// Events for the session in order; `next` hands them out one at a time, so it is cancel-safe.
    ready: VecDeque<PortEvent>,
    /// The failover's timer, and the moment it is armed for. Re-armed only
    /// for an earlier moment: a stall deadline moves with every unit, and a
    /// timer that fires early just ticks and is armed again.
    timer: std::pin::Pin<Box<tokio::time::Sleep>>,
    armed: Option<Instant>,
}

fn slot(role: InputRole) -> usize {
    match role {
        InputRole::Primary => 0,
        InputRole::Backup => 1,
    }
}

impl InputPort {
    /// A port for `channel`'s session (the slate shows its name).
    pub fn new(channel: &str, times: FailoverTimes, meters: Arc<InputMeters>) -> InputPort {
        InputPort {
            inputs: [None, None],
            failover: Failover::new(times),
            timeline: Timeline::default(),
            meters,
            slates: Slates::new(channel),
            slate: None,
            ready: VecDeque::new(),
            timer: Box::pin(tokio::time::sleep(std::time::Duration::ZERO)),
            armed: None,
        }
    }

    /// Whether `role` has a publisher now.
    pub fn is_connected(&self, role: InputRole) -> bool {
        self.inputs[slot(role)].is_some()
    }

    /// Plugs in the publish of `role` (its previous one has left).
    pub fn attach(&mut self, role: InputRole, receiver: UnitReceiver, peer: SocketAddr) {
        let meter = self.meters.connected(role, peer, receiver.stats());
        self.inputs[slot(role)] =
            Some(Input { receiver, tracks: None, meter, recent_audio: VecDeque::new(), since_keyframe: Vec::new() });
        self.failover.connected(role);
        tracing::info!(input = %role, %peer, "input connected");
    }

    /// What is on air now.
    pub fn on_air(&self) -> Option<OnAir> {
        self.failover.on_air()
    }

    /// The next event for the session.
    pub async fn next(&mut self) -> PortEvent {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return event;
            }
            if let Some(due) = self.failover.deadline()
                && self.armed.is_none_or(|armed| due < armed)
            {
                self.timer.as_mut().reset(tokio::time::Instant::from_std(due));
                self.armed = Some(due);
            }
            let [primary, backup] = &mut self.inputs;
            tokio::select! {
                event = recv(primary) => self.on_input(InputRole::Primary, event),
                event = recv(backup) => self.on_input(InputRole::Backup, event),
                (unit, timebase) = next_slate(&mut self.slate) => {
                    if let Some(unit) = self.timeline.map(unit, timebase) {
                        self.ready.push_back(PortEvent::Slate(StreamEvent::Unit(unit)));
                    }
                }
                _ = self.timer.as_mut(), if self.armed.is_some() => {
                    self.armed = None;
                    let tick = self.failover.tick(Instant::now());
                    self.on_tick(tick);
                    self.replay_pending();
                }
            }
        }
    }

    fn on_input(&mut self, role: InputRole, event: Option<StreamEvent>) {
        let Some(input) = self.inputs[slot(role)].as_mut() else { return };
        match event {
            None => {
                self.inputs[slot(role)] = None;
                self.meters.disconnected(role);
                tracing::info!(input = %role, "input disconnected");
                let tick = self.failover.disconnected(role, Instant::now());
                self.on_tick(tick);
            }
            Some(StreamEvent::Tracks(tracks)) => {
                input.tracks = Some(tracks.clone());
                if self.failover.on_air() == Some(OnAir::input(role)) {
                    self.slates.prepare(&tracks);
                    self.ready.push_back(PortEvent::Media(StreamEvent::Tracks(tracks)));
                }
            }
            Some(StreamEvent::Unit(unit)) => {
                input.meter.record(unit.kind, unit.data.len(), unit.arrival.instant);
                let starts = unit.keyframe && (unit.kind == TrackKind::Video || !input.has_video());
                let timebase = input.timebase(unit.track);
                match self.failover.unit(role, unit.arrival.instant, starts) {
                    Verdict::Drop => input.keep(unit, starts),
                    Verdict::Forward => self.forward(unit, timebase),
                    Verdict::SwitchHere(switch) => {
                        input.since_keyframe.clear();
                        self.go_on_air(role, switch, vec![unit]);
                    }
                }
            }
        }
        self.replay_pending();
    }

    /// When the input to go on air next kept its units since a keyframe, it goes on air now from there.
    fn replay_pending(&mut self) {
        let Some(role) = self.failover.pending() else { return };
        let Some(input) = self.inputs[slot(role)].as_mut() else { return };
        if input.since_keyframe.is_empty() {
            return;
        }
        let Some(switch) = self.failover.switch_now(role) else { return };
        let units = std::mem::take(&mut input.since_keyframe);
        tracing::debug!(input = %role, units = units.len(), "on air from its latest keyframe");
        self.go_on_air(role, switch, units);
    }

    /// `role` goes on air with `units`, the first a keyframe: the timeline
    /// rebased there, its tracks announced, the audio it sent just before.
    fn go_on_air(&mut self, role: InputRole, switch: Switch, units: Vec<media::EncodedUnit>) {
        let Some(input) = self.inputs[slot(role)].as_mut() else { return };
        let Some(first) = units.first() else { return };
        let tracks = input.tracks.clone();
        let timebase_of =
            |track: usize| tracks.as_ref().and_then(|t| t.get(track)).map_or(Timebase::VIDEO, |t| t.timebase);
        let (start_dts, start_tb) = (first.dts, timebase_of(first.track));
        let start = start_tb.rescale(start_dts, Timebase::VIDEO);
        let lead_from = start - Timebase::VIDEO.ticks(AUDIO_LEAD);
        // Audio from just before the keyframe (what came after it is among `units`).
        let audio: Vec<media::EncodedUnit> = input
            .recent_audio
            .drain(..)
            .filter(|a| (lead_from..start).contains(&timebase_of(a.track).rescale(a.dts, Timebase::VIDEO)))
            .collect();
        self.slate = None;
        self.timeline.switch_to(start_dts, start_tb);
        self.switched(switch);
        if let Some(tracks) = &tracks {
            self.slates.prepare(tracks);
            self.ready.push_back(PortEvent::Media(StreamEvent::Tracks(tracks.clone())));
        }
        for unit in audio.into_iter().chain(units) {
            let timebase = timebase_of(unit.track);
            self.forward(unit, timebase);
        }
    }

    fn forward(&mut self, unit: media::EncodedUnit, timebase: media::Timebase) {
        if let Some(unit) = self.timeline.map(unit, timebase) {
            self.ready.push_back(PortEvent::Media(StreamEvent::Unit(unit)));
        }
    }

    fn switched(&mut self, switch: Switch) {
        self.meters.on_air(switch.to, switch.from.is_some());
        if switch.from.is_some() {
            self.ready.push_back(PortEvent::Switched(switch));
        }
    }

    fn on_tick(&mut self, tick: Tick) {
        tracing::debug!(?tick, "failover tick");
        match tick {
            Tick::Nothing => {}
            Tick::End => self.ready.push_back(PortEvent::Ended),
            Tick::Slate(switch) => {
                self.switched(switch);
                match self.slates.ready() {
                    Some(slate) => {
                        let feed = SlateFeed::new(slate);
                        self.timeline.switch_to(0, media::Timebase::VIDEO);
                        self.ready.push_back(PortEvent::Slate(StreamEvent::Tracks(feed.tracks())));
                        self.slate = Some(feed);
                    }
                    None => tracing::warn!("no slate to put on air: the output pauses until an input delivers"),
                }
            }
        }
    }
}

async fn recv(input: &mut Option<Input>) -> Option<StreamEvent> {
    match input {
        Some(input) => input.receiver.recv().await,
        None => std::future::pending().await,
    }
}

async fn next_slate(feed: &mut Option<SlateFeed>) -> (media::EncodedUnit, media::Timebase) {
    match feed {
        Some(feed) => feed.next().await,
        None => std::future::pending().await,
    }
}
