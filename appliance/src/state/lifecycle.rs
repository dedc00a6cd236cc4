//! The channel and session state machine as one pure transition function:
//! given a channel's state and its current session's state, an event either
//! moves them on (possibly asking for the live session to be ended) or is
//! refused with a reason. The store applies it inside each write transaction.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a channel stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ChannelState {
    /// Created, never started: publishes are refused.
    Idle,
    /// Enabled: ready to take a session, or taking one.
    Active,
    /// An operator stopped it: publishes are refused, a live session is ended.
    Stopped,
}

impl ChannelState {
    pub const ALL: [ChannelState; 3] = [ChannelState::Idle, ChannelState::Active, ChannelState::Stopped];

    /// Channels stored before states existed took publishes: they read back as active.
    pub fn before_states() -> ChannelState {
        ChannelState::Active
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ChannelState::Idle => "idle",
            ChannelState::Active => "active",
            ChannelState::Stopped => "stopped",
        }
    }
}

impl fmt::Display for ChannelState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where one session stands. `Ended` and `Error` are final: a session is never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SessionState {
    /// The publish was accepted.
    Init,
    /// The pipeline is starting.
    Processing,
    /// The first part was published.
    Live,
    /// Over: see the end reason.
    Ended,
    /// Failed: see the error.
    Error,
}

impl SessionState {
    pub const ALL: [SessionState; 5] =
        [SessionState::Init, SessionState::Processing, SessionState::Live, SessionState::Ended, SessionState::Error];

    pub fn is_final(self) -> bool {
        matches!(self, SessionState::Ended | SessionState::Error)
    }
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EndReason {
    PublisherLeft,
    MaxDuration,
    ChannelStopped,
    ChannelDeleted,
    /// The process died with the session live; found at the next start-up.
    ApplianceRestart,
    /// The appliance was shut down (SIGTERM) while the session was live.
    ApplianceShutdown,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::PublisherLeft => "publisher-left",
            EndReason::MaxDuration => "max-duration",
            EndReason::ChannelStopped => "channel-stopped",
            EndReason::ChannelDeleted => "channel-deleted",
            EndReason::ApplianceRestart => "appliance-restart",
            EndReason::ApplianceShutdown => "appliance-shutdown",
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A channel's state with its current session's (`None`: no session yet, or
/// the last one is over and no longer current).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    pub channel: ChannelState,
    pub session: Option<SessionState>,
}

/// What happens to a channel or its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Operator: start the channel.
    Start,
    /// Operator: stop the channel.
    Stop,
    /// Operator: delete the channel.
    Delete,
    /// A publisher with the channel's key asks to publish.
    Publish,
    /// The session's pipeline is being wired.
    PipelineStarting,
    /// The session's first part was published.
    FirstPart,
    /// The session is over.
    End(EndReason),
    /// The session's pipeline failed.
    Fail,
}

/// A refused event; each maps to a stable API problem (409) or publish refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the channel is already active")]
    AlreadyActive,
    #[error("the channel is already stopped")]
    AlreadyStopped,
    #[error("the channel is {0}, not active: publishes are refused")]
    NotActive(ChannelState),
    #[error("the channel already has a session in progress")]
    SessionInProgress,
    #[error("the channel has no session in progress")]
    NoSession,
    #[error("a session cannot go from {from:?} on {event:?}")]
    InvalidStep { from: SessionState, event: Event },
}

/// The outcome of an allowed event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub next: Lifecycle,
    /// The live session must be ended for this reason (its pipeline torn down,
    /// the publisher disconnected); its `End` event follows when that is done.
    pub end_session: Option<EndReason>,
}

/// The state machine.
pub fn transition(now: Lifecycle, event: Event) -> Result<Step, Refusal> {
    use ChannelState as C;
    use SessionState as S;
    let in_progress = now.session.filter(|s| !s.is_final());
    let step = |channel, session| Step { next: Lifecycle { channel, session }, end_session: None };
    match event {
        Event::Start => match now.channel {
            C::Active => Err(Refusal::AlreadyActive),
            C::Idle | C::Stopped => Ok(step(C::Active, now.session)),
        },
        Event::Stop => match now.channel {
            C::Stopped => Err(Refusal::AlreadyStopped),
            C::Idle | C::Active => Ok(Step {
                next: Lifecycle { channel: C::Stopped, session: now.session },
                end_session: in_progress.map(|_| EndReason::ChannelStopped),
            }),
        },
        Event::Delete => Ok(Step { next: now, end_session: in_progress.map(|_| EndReason::ChannelDeleted) }),
        Event::Publish => match (now.channel, in_progress) {
            (C::Active, None) => Ok(step(C::Active, Some(S::Init))),
            (C::Active, Some(_)) => Err(Refusal::SessionInProgress),
            (other, _) => Err(Refusal::NotActive(other)),
        },
        Event::PipelineStarting | Event::FirstPart | Event::End(_) | Event::Fail => {
            let Some(from) = in_progress else { return Err(Refusal::NoSession) };
            let to = match (from, event) {
                (S::Init, Event::PipelineStarting) => S::Processing,
                (S::Processing, Event::FirstPart) => S::Live,
                (S::Init | S::Processing | S::Live, Event::End(_)) => S::Ended,
                (S::Init | S::Processing | S::Live, Event::Fail) => S::Error,
                _ => return Err(Refusal::InvalidStep { from, event }),
            };
            Ok(step(now.channel, Some(to)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ChannelState as C;
    use SessionState as S;

    const EVENTS: [Event; 8] = [
        Event::Start,
        Event::Stop,
        Event::Delete,
        Event::Publish,
        Event::PipelineStarting,
        Event::FirstPart,
        Event::End(EndReason::PublisherLeft),
        Event::Fail,
    ];

    type From = (C, Option<S>, Event);
    type To = (C, Option<S>, Option<EndReason>);

    /// Every allowed transition: (channel, session, event) -> (channel, session, end_session).
    /// Anything not listed must be refused.
    fn allowed() -> Vec<(From, To)> {
        let mut table = Vec::new();
        let sessions = [None, Some(S::Init), Some(S::Processing), Some(S::Live), Some(S::Ended), Some(S::Error)];
        for channel in C::ALL {
            for session in sessions {
                let live = session.is_some_and(|s| !s.is_final());
                // Start: from idle or stopped, whatever the session.
                if channel != C::Active {
                    table.push(((channel, session, Event::Start), (C::Active, session, None)));
                }
                // Stop: from idle or active; a session in progress must end.
                if channel != C::Stopped {
                    let end = live.then_some(EndReason::ChannelStopped);
                    table.push(((channel, session, Event::Stop), (C::Stopped, session, end)));
                }
                // Delete: always; a session in progress must end.
                let end = live.then_some(EndReason::ChannelDeleted);
                table.push(((channel, session, Event::Delete), (channel, session, end)));
                // Publish: an active channel with no session in progress.
                if channel == C::Active && !live {
                    table.push(((channel, session, Event::Publish), (C::Active, Some(S::Init), None)));
                }
                // Session steps, in whatever channel state (a stopped channel's session winds down).
                match session {
                    Some(S::Init) => {
                        table.push(((channel, session, Event::PipelineStarting), (channel, Some(S::Processing), None)));
                    }
                    Some(S::Processing) => {
                        table.push(((channel, session, Event::FirstPart), (channel, Some(S::Live), None)));
                    }
                    _ => {}
                }
                if live {
                    let end = Event::End(EndReason::PublisherLeft);
                    table.push(((channel, session, end), (channel, Some(S::Ended), None)));
                    table.push(((channel, session, Event::Fail), (channel, Some(S::Error), None)));
                }
            }
        }
        table
    }

    #[test]
    fn every_transition_is_allowed_or_refused_as_the_table_says() {
        let table = allowed();
        let mut checked = 0;
        for channel in C::ALL {
            for session in std::iter::once(None).chain(S::ALL.map(Some)) {
                for event in EVENTS {
                    let got = transition(Lifecycle { channel, session }, event);
                    let want = table.iter().find(|(k, _)| *k == (channel, session, event)).map(|(_, v)| *v);
                    match (got, want) {
                        (Ok(step), Some((c, s, end))) => {
                            assert_eq!(
                                (step.next.channel, step.next.session, step.end_session),
                                (c, s, end),
                                "{channel:?} {session:?} {event:?}"
                            );
                        }
                        (Err(_), None) => {}
                        (got, want) => panic!("{channel:?} {session:?} {event:?}: got {got:?}, want {want:?}"),
                    }
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 3 * 6 * 8);
    }

    #[test]
    fn refusals_name_the_conflict() {
        let at = |channel, session| Lifecycle { channel, session };
        let cases = [
            (at(C::Active, None), Event::Start, Refusal::AlreadyActive),
            (at(C::Stopped, None), Event::Stop, Refusal::AlreadyStopped),
            (at(C::Idle, None), Event::Publish, Refusal::NotActive(C::Idle)),
            (at(C::Stopped, Some(S::Ended)), Event::Publish, Refusal::NotActive(C::Stopped)),
            (at(C::Active, Some(S::Live)), Event::Publish, Refusal::SessionInProgress),
            (at(C::Active, None), Event::FirstPart, Refusal::NoSession),
            (at(C::Active, Some(S::Ended)), Event::End(EndReason::MaxDuration), Refusal::NoSession),
            (
                at(C::Active, Some(S::Init)),
                Event::FirstPart,
                Refusal::InvalidStep { from: S::Init, event: Event::FirstPart },
            ),
            (
                at(C::Active, Some(S::Live)),
                Event::PipelineStarting,
                Refusal::InvalidStep { from: S::Live, event: Event::PipelineStarting },
            ),
        ];
        for (now, event, want) in cases {
            assert_eq!(transition(now, event), Err(want), "{now:?} {event:?}");
        }
        assert_eq!(
            Refusal::NotActive(C::Stopped).to_string(),
            "the channel is stopped, not active: publishes are refused"
        );
    }
}
