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

/// One connected input.
struct Input {
    receiver: UnitReceiver,
    /// Its latest track announcement.
    tracks: Option<Arc<[TrackInfo]>>,
    meter: Arc<InputMeter>,
    /// Its latest audio units while it is not on air.
    recent_audio: VecDeque<media::EncodedUnit>,
}

impl Input {
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
        }
    }

    /// Whether `role` has a publisher now.
    pub fn is_connected(&self, role: InputRole) -> bool {
        self.inputs[slot(role)].is_some()
    }

    /// Plugs in the publish of `role` (its previous one has left).
    pub fn attach(&mut self, role: InputRole, receiver: UnitReceiver, peer: SocketAddr) {
        let meter = self.meters.connected(role, peer, receiver.stats());
        self.inputs[slot(role)] = Some(Input { receiver, tracks: None, meter, recent_audio: VecDeque::new() });
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
            let deadline = self.failover.deadline().map(tokio::time::Instant::from_std);
            let [primary, backup] = &mut self.inputs;
            tokio::select! {
                event = recv(primary) => self.on_input(InputRole::Primary, event),
                event = recv(backup) => self.on_input(InputRole::Backup, event),
                (unit, timebase) = next_slate(&mut self.slate) => {
                    if let Some(unit) = self.timeline.map(unit, timebase) {
                        self.ready.push_back(PortEvent::Slate(StreamEvent::Unit(unit)));
                    }
                }
                _ = sleep_until(deadline) => {
                    let tick = self.failover.tick(Instant::now());
                    self.on_tick(tick);
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
                    Verdict::Drop => {
                        if unit.kind == TrackKind::Audio {
                            if input.recent_audio.len() == RECENT_AUDIO {
                                input.recent_audio.pop_front();
                            }
                            input.recent_audio.push_back(unit);
                        }
                    }
                    Verdict::Forward => self.forward(unit, timebase),
                    Verdict::SwitchHere(switch) => {
                        let tracks = input.tracks.clone();
                        let lead = Timebase::VIDEO.ticks(AUDIO_LEAD);
                        let start = timebase.rescale(unit.dts, Timebase::VIDEO) - lead;
                        let audio: Vec<(media::EncodedUnit, Timebase)> = input
                            .recent_audio
                            .drain(..)
                            .map(|a| {
                                let tb = input
                                    .tracks
                                    .as_ref()
                                    .and_then(|t| t.get(a.track))
                                    .map_or(Timebase::VIDEO, |t| t.timebase);
                                (a, tb)
                            })
                            .filter(|(a, tb)| tb.rescale(a.dts, Timebase::VIDEO) >= start)
                            .collect();
                        self.slate = None;
                        self.timeline.switch_to(unit.dts, timebase);
                        self.switched(switch);
                        if let Some(tracks) = tracks {
                            self.slates.prepare(&tracks);
                            self.ready.push_back(PortEvent::Media(StreamEvent::Tracks(tracks)));
                        }
                        for (audio, tb) in audio {
                            self.forward(audio, tb);
                        }
                        self.forward(unit, timebase);
                    }
                }
            }
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

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
