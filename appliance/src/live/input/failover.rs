//! Which input a session has on air: a pure state machine fed with what the
//! inputs do (a unit arrived, an input connected or left) and the time, with
//! an exhaustive table test. The primary is on air while it delivers; when
//! the input on air delivers nothing for `switch_after` or disconnects, the
//! other input goes on air at its next keyframe if it delivers (or at once
//! from the keyframe it already delivered: `switch_now`), else the slate at
//! once; the primary goes back on air at a keyframe once it has
//! delivered steadily for `return_after`; the slate ends the session after
//! `slate_grace` unless an input delivers again.

use std::time::{Duration, Instant};

use crate::state::{InputRole, OnAir, SwitchReason};

/// The failover times (`[failover]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailoverTimes {
    /// An input that delivers nothing for this long is off air.
    pub switch_after: Duration,
    /// The primary goes back on air once it has delivered steadily for this long.
    pub return_after: Duration,
    /// How long the slate stays on air with no input delivering before the session ends.
    pub slate_grace: Duration,
}

impl Default for FailoverTimes {
    fn default() -> Self {
        FailoverTimes {
            switch_after: Duration::from_secs(1),
            return_after: Duration::from_secs(10),
            slate_grace: Duration::from_secs(30),
        }
    }
}

/// A change of what is on air.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch {
    /// None at the session's start: its first input goes on air.
    pub from: Option<OnAir>,
    pub to: OnAir,
    pub reason: SwitchReason,
}

/// What to do with a unit an input delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Its input is on air: on to the processing.
    Forward,
    /// Its input is not on air: read and dropped, so its publisher is never held back.
    Drop,
    /// Its input goes on air with this unit (a keyframe).
    SwitchHere(Switch),
}

/// What the passing of time decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    Nothing,
    /// No input delivers: the slate goes on air now.
    Slate(Switch),
    /// Nothing has been on air for the grace time (or nothing ever went on air and every input left).
    End,
}

/// How one input delivers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Health {
    connected: bool,
    last_delivery: Option<Instant>,
    /// Start of its current run of deliveries without a gap of `switch_after`.
    steady_since: Option<Instant>,
}

/// The failover of one session.
#[derive(Debug, Clone)]
pub struct Failover {
    times: FailoverTimes,
    on_air: Option<OnAir>,
    /// The input to put on air at its next keyframe, and why.
    pending: Option<(InputRole, SwitchReason)>,
    inputs: [Health; 2],
    slate_since: Option<Instant>,
    /// The time of the last tick: moments up to it are decided.
    ticked: Option<Instant>,
}

fn index(role: InputRole) -> usize {
    match role {
        InputRole::Primary => 0,
        InputRole::Backup => 1,
    }
}

impl Failover {
    pub fn new(times: FailoverTimes) -> Failover {
        Failover { times, on_air: None, pending: None, inputs: [Health::default(); 2], slate_since: None, ticked: None }
    }

    pub fn on_air(&self) -> Option<OnAir> {
        self.on_air
    }

    pub fn is_connected(&self, role: InputRole) -> bool {
        self.inputs[index(role)].connected
    }

    fn delivering(&self, role: InputRole, now: Instant) -> bool {
        let input = &self.inputs[index(role)];
        input.connected
            && input.last_delivery.is_some_and(|at| now.saturating_duration_since(at) < self.times.switch_after)
    }

    fn steady(&self, role: InputRole, now: Instant) -> bool {
        self.delivering(role, now)
            && self.inputs[index(role)]
                .steady_since
                .is_some_and(|since| now.saturating_duration_since(since) >= self.times.return_after)
    }

    /// An input connected (again): it has to deliver before it counts.
    pub fn connected(&mut self, role: InputRole) {
        self.inputs[index(role)] = Health { connected: true, last_delivery: None, steady_since: None };
    }

    /// An input left. When it was on air this may put the slate on air at once.
    pub fn disconnected(&mut self, role: InputRole, now: Instant) -> Tick {
        self.inputs[index(role)] = Health::default();
        self.tick(now)
    }

    /// A unit arrived from `role` at `now`; `keyframe` when a decoder can start
    /// on it (a video keyframe, or any unit of an input without video).
    pub fn unit(&mut self, role: InputRole, now: Instant, keyframe: bool) -> Verdict {
        let input = &mut self.inputs[index(role)];
        let gap = input.last_delivery.is_none_or(|at| now.saturating_duration_since(at) >= self.times.switch_after);
        if gap {
            input.steady_since = Some(now);
        }
        input.last_delivery = Some(input.last_delivery.map_or(now, |at| at.max(now)));
        // Only the time can put the slate on air; a delivery never does.
        let _ = self.decide(now);
        if keyframe && self.pending.is_some_and(|(target, _)| target == role) {
            let (_, reason) = self.pending.take().expect("checked above");
            let switch = Switch { from: self.on_air, to: OnAir::input(role), reason };
            self.on_air = Some(switch.to);
            self.slate_since = None;
            return Verdict::SwitchHere(switch);
        }
        if self.on_air == Some(OnAir::input(role)) { Verdict::Forward } else { Verdict::Drop }
    }

    /// Puts the input that is to go on air after a stall or a disconnect on
    /// air now, from the keyframe it already delivered (the caller replays
    /// what it kept since): the output need not wait for its next one. Not
    /// for the primary's return, which waits for a keyframe while the backup
    /// is still on air.
    pub fn switch_now(&mut self, role: InputRole) -> Option<Switch> {
        let (target, reason) = self.pending?;
        if target != role || reason == SwitchReason::PrimaryReturned {
            return None;
        }
        self.pending = None;
        let switch = Switch { from: self.on_air, to: OnAir::input(role), reason };
        self.on_air = Some(switch.to);
        self.slate_since = None;
        Some(switch)
    }

    /// The input that goes on air at its next keyframe, if one is to.
    pub fn pending(&self) -> Option<InputRole> {
        self.pending.map(|(role, _)| role)
    }

    /// The time passed `now` (at `deadline` or later).
    pub fn tick(&mut self, now: Instant) -> Tick {
        self.ticked = Some(self.ticked.map_or(now, |at| at.max(now)));
        if let Some(switch) = self.decide(now) {
            // No grace time: the session ends as a publisher's end always did, without a slate.
            return if self.times.slate_grace.is_zero() { Tick::End } else { Tick::Slate(switch) };
        }
        let nothing_connected = !self.inputs.iter().any(|i| i.connected);
        match (self.on_air, self.slate_since) {
            (None, _) if nothing_connected => Tick::End,
            (Some(OnAir::Slate), Some(since))
                if self.pending.is_none() && now.saturating_duration_since(since) >= self.times.slate_grace =>
            {
                Tick::End
            }
            _ => Tick::Nothing,
        }
    }

    /// Sets what goes on air at the next keyframe; returns a switch to the slate when nothing delivers.
    fn decide(&mut self, now: Instant) -> Option<Switch> {
        let preferred = [InputRole::Primary, InputRole::Backup].into_iter().find(|r| self.delivering(*r, now));
        match self.on_air {
            None => {
                self.pending = preferred.map(|role| (role, SwitchReason::InputReturned));
                None
            }
            Some(OnAir::Slate) => {
                self.pending = preferred.map(|role| (role, SwitchReason::InputReturned));
                None
            }
            Some(on_air) => {
                let role = on_air.role().expect("an input is on air");
                if self.delivering(role, now) {
                    let back = role == InputRole::Backup && self.steady(InputRole::Primary, now);
                    self.pending = back.then_some((InputRole::Primary, SwitchReason::PrimaryReturned));
                    return None;
                }
                let reason =
                    if self.inputs[index(role)].connected { SwitchReason::Stalled } else { SwitchReason::Disconnected };
                if self.delivering(role.other(), now) {
                    self.pending = Some((role.other(), reason));
                    return None;
                }
                self.pending = None;
                self.on_air = Some(OnAir::Slate);
                self.slate_since = Some(now);
                Some(Switch { from: Some(on_air), to: OnAir::Slate, reason })
            }
        }
    }

    /// The next moment the time alone can change something that no tick has
    /// decided yet: it may be past (a caller that missed it ticks at once).
    pub fn deadline(&self) -> Option<Instant> {
        let stall = |i: &Health| i.last_delivery.filter(|_| i.connected).map(|at| at + self.times.switch_after);
        let primary = &self.inputs[index(InputRole::Primary)];
        let steady = primary.steady_since.filter(|_| self.on_air == Some(OnAir::Backup));
        let moments = [
            stall(primary),
            stall(&self.inputs[index(InputRole::Backup)]),
            steady.map(|since| since + self.times.return_after),
            self.slate_since.map(|since| since + self.times.slate_grace),
        ];
        moments.into_iter().flatten().filter(|at| self.ticked.is_none_or(|ticked| *at > ticked)).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMES: FailoverTimes = FailoverTimes {
        switch_after: Duration::from_millis(1000),
        return_after: Duration::from_millis(10_000),
        slate_grace: Duration::from_millis(30_000),
    };

    /// One step of a scenario: what happens at a time (ms), and what the machine must answer.
    #[derive(Debug, Clone, Copy)]
    enum Step {
        Connect(InputRole),
        /// A unit of `role` at `ms` (`true`: a keyframe), and the verdict.
        Unit(InputRole, u64, bool, Verdict),
        /// The time passes to `ms`.
        At(u64, Tick),
        Leave(InputRole, u64, Tick),
    }

    use InputRole::{Backup as B, Primary as P};
    use Step::*;

    const FORWARD: Verdict = Verdict::Forward;
    const DROP: Verdict = Verdict::Drop;

    fn switch(from: Option<OnAir>, to: OnAir, reason: SwitchReason) -> Switch {
        Switch { from, to, reason }
    }

    fn run(name: &str, steps: &[Step], on_air: Option<OnAir>) {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut failover = Failover::new(TIMES);
        for (i, step) in steps.iter().enumerate() {
            match *step {
                Connect(role) => failover.connected(role),
                Unit(role, ms, key, want) => {
                    assert_eq!(failover.unit(role, at(ms), key), want, "{name}: step {i} {step:?}")
                }
                At(ms, want) => assert_eq!(failover.tick(at(ms)), want, "{name}: step {i} {step:?}"),
                Leave(role, ms, want) => {
                    assert_eq!(failover.disconnected(role, at(ms)), want, "{name}: step {i} {step:?}")
                }
            }
        }
        assert_eq!(failover.on_air(), on_air, "{name}: on air at the end");
    }

    #[test]
    fn scenarios() {
        use OnAir::{Backup as OB, Primary as OP, Slate as OS};
        use SwitchReason::*;
        let start = |role| Verdict::SwitchHere(switch(None, OnAir::input(role), InputReturned));
        let table: &[(&str, &[Step], Option<OnAir>)] = &[
            (
                "the first input goes on air at its first keyframe",
                &[Connect(P), Unit(P, 0, false, DROP), Unit(P, 33, true, start(P)), Unit(P, 66, false, FORWARD)],
                Some(OP),
            ),
            (
                "a backup that publishes first goes on air",
                &[Connect(B), Unit(B, 0, true, start(B)), Unit(B, 33, false, FORWARD)],
                Some(OB),
            ),
            (
                "the backup is read and dropped while the primary delivers",
                &[
                    Connect(P),
                    Unit(P, 0, true, start(P)),
                    Connect(B),
                    Unit(B, 10, true, DROP),
                    Unit(P, 500, false, FORWARD),
                    Unit(B, 510, true, DROP),
                    At(900, Tick::Nothing),
                ],
                Some(OP),
            ),
            (
                "a stalled primary: the backup at its next keyframe",
                &[
                    Connect(P),
                    Connect(B),
                    Unit(P, 0, true, start(P)),
                    Unit(B, 0, true, DROP),
                    Unit(B, 900, false, DROP),
                    At(1000, Tick::Nothing),
                    Unit(B, 1100, false, DROP),
                    Unit(B, 1200, true, Verdict::SwitchHere(switch(Some(OP), OB, Stalled))),
                    Unit(B, 1233, false, FORWARD),
                ],
                Some(OB),
            ),
            (
                "a primary that comes back before the backup's keyframe stays on air",
                &[
                    Connect(P),
                    Connect(B),
                    Unit(P, 0, true, start(P)),
                    Unit(B, 900, false, DROP),
                    At(1000, Tick::Nothing),
                    Unit(P, 1050, false, FORWARD),
                    Unit(B, 1100, true, DROP),
                ],
                Some(OP),
            ),
            (
                "a disconnected primary: the backup at its next keyframe",
                &[
                    Connect(P),
                    Connect(B),
                    Unit(P, 0, true, start(P)),
                    Unit(B, 10, false, DROP),
                    Leave(P, 100, Tick::Nothing),
                    Unit(B, 200, true, Verdict::SwitchHere(switch(Some(OP), OB, Disconnected))),
                ],
                Some(OB),
            ),
            (
                "nothing delivers: the slate at once, then the end after the grace time",
                &[
                    Connect(P),
                    Connect(B),
                    Unit(P, 0, true, start(P)),
                    Unit(B, 0, false, DROP),
                    At(999, Tick::Nothing),
                    At(1000, Tick::Slate(switch(Some(OP), OS, Stalled))),
                    At(30_999, Tick::Nothing),
                    At(31_000, Tick::End),
                ],
                Some(OS),
            ),
            (
                "both leave: the slate, and the session ends after the grace time",
                &[
                    Connect(P),
                    Connect(B),
                    Unit(P, 0, true, start(P)),
                    Unit(B, 0, false, DROP),
                    Leave(B, 100, Tick::Nothing),
                    Leave(P, 200, Tick::Slate(switch(Some(OP), OS, Disconnected))),
                    At(30_200, Tick::End),
                ],
                Some(OS),
            ),
            (
                "an input back while the slate is on air goes on air at its keyframe",
                &[
                    Connect(P),
                    Unit(P, 0, true, start(P)),
                    Leave(P, 100, Tick::Slate(switch(Some(OP), OS, Disconnected))),
                    Connect(B),
                    Unit(B, 5000, false, DROP),
                    Unit(B, 5100, true, Verdict::SwitchHere(switch(Some(OS), OB, InputReturned))),
                    At(40_000, Tick::Slate(switch(Some(OB), OS, Stalled))),
                ],
                Some(OS),
            ),
            (
                "the primary is preferred when both come back to the slate",
                &[
                    Connect(P),
                    Unit(P, 0, true, start(P)),
                    Leave(P, 100, Tick::Slate(switch(Some(OP), OS, Disconnected))),
                    Connect(B),
                    Connect(P),
                    Unit(B, 1000, false, DROP),
                    Unit(P, 1000, false, DROP),
                    Unit(B, 1100, true, DROP),
                    Unit(P, 1200, true, Verdict::SwitchHere(switch(Some(OS), OP, InputReturned))),
                ],
                Some(OP),
            ),
            (
                "a publish that leaves before any keyframe ends the session at once",
                &[Connect(P), Unit(P, 0, false, DROP), Leave(P, 50, Tick::End)],
                None,
            ),
            (
                "a stalled backup with the primary delivering but not yet steady: back to the primary",
                &[
                    Connect(B),
                    Unit(B, 0, true, start(B)),
                    Connect(P),
                    Unit(P, 500, true, DROP),
                    Unit(B, 900, false, FORWARD),
                    Unit(P, 1400, false, DROP),
                    At(1900, Tick::Nothing),
                    Unit(P, 2000, true, Verdict::SwitchHere(switch(Some(OB), OP, Stalled))),
                ],
                Some(OP),
            ),
        ];
        for (name, steps, on_air) in table {
            run(name, steps, *on_air);
        }
    }

    /// Both inputs deliver every 500 ms from `from` to `to` (ms), the
    /// primary's frames at `key_every` ms keyframes; returns the verdicts of the primary's units.
    fn deliver(failover: &mut Failover, t0: Instant, from: u64, to: u64, key_every: u64) -> Vec<(u64, Verdict)> {
        let mut primary = Vec::new();
        for ms in (from..=to).step_by(500) {
            let at = t0 + Duration::from_millis(ms);
            let backup = failover.unit(B, at, false);
            assert!(backup == Verdict::Forward || backup == Verdict::Drop, "{ms}: {backup:?}");
            primary.push((ms, failover.unit(P, at, ms % key_every == 0)));
        }
        primary
    }

    #[test]
    fn the_primary_returns_at_a_keyframe_once_steady_for_the_return_time() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut failover = Failover::new(TIMES);
        failover.connected(B);
        assert!(matches!(failover.unit(B, at(0), true), Verdict::SwitchHere(_)));
        failover.connected(P);
        // Steady from 1 s: not back before 11 s, and then at the first keyframe (12 s).
        let verdicts = deliver(&mut failover, t0, 1000, 13_000, 3000);
        let switched: Vec<_> = verdicts.iter().filter(|(_, v)| matches!(v, Verdict::SwitchHere(_))).collect();
        let want = Switch { from: Some(OnAir::Backup), to: OnAir::Primary, reason: SwitchReason::PrimaryReturned };
        assert_eq!(switched, [&(12_000, Verdict::SwitchHere(want))]);
        assert!(verdicts.iter().filter(|(ms, _)| *ms > 12_000).all(|(_, v)| *v == Verdict::Forward));
        assert_eq!(failover.unit(B, at(13_100), true), Verdict::Drop, "the backup is off air again");
    }

    #[test]
    fn a_gap_in_the_primary_starts_its_steady_time_again() {
        let t0 = Instant::now();
        let mut failover = Failover::new(TIMES);
        failover.connected(B);
        assert!(matches!(failover.unit(B, t0, true), Verdict::SwitchHere(_)));
        failover.connected(P);
        deliver(&mut failover, t0, 500, 8000, 500);
        // The primary stalls for 2 s while the backup goes on; steady again from 10.5 s.
        for ms in (8500..=10_000).step_by(500) {
            assert_eq!(failover.unit(B, t0 + Duration::from_millis(ms), false), Verdict::Forward);
        }
        let verdicts = deliver(&mut failover, t0, 10_500, 21_000, 500);
        let first = verdicts.iter().find(|(_, v)| matches!(v, Verdict::SwitchHere(_))).map(|(ms, _)| *ms);
        assert_eq!(first, Some(20_500), "10 s after the gap ended, not 10 s after the first delivery");
    }

    #[test]
    fn a_failover_may_start_from_the_keyframe_already_delivered_but_a_return_may_not() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut failover = Failover::new(TIMES);
        failover.connected(P);
        failover.connected(B);
        assert!(matches!(failover.unit(P, at(0), true), Verdict::SwitchHere(_)));
        assert_eq!(failover.unit(B, at(10), true), Verdict::Drop);
        assert_eq!(failover.switch_now(B), None, "nothing pending while the primary delivers");
        assert_eq!(failover.disconnected(P, at(400)), Tick::Nothing);
        assert_eq!(failover.pending(), Some(B));
        let want = Switch { from: Some(OnAir::Primary), to: OnAir::Backup, reason: SwitchReason::Disconnected };
        assert_eq!(failover.switch_now(B), Some(want));
        assert_eq!((failover.on_air(), failover.pending()), (Some(OnAir::Backup), None));
        assert_eq!(failover.unit(B, at(433), false), Verdict::Forward);
        // The primary returns steady: that switch waits for its next keyframe.
        failover.connected(P);
        for ms in (500..=11_000).step_by(500) {
            failover.unit(B, at(ms), false);
            failover.unit(P, at(ms), false);
        }
        assert_eq!(failover.pending(), Some(P));
        assert_eq!(failover.switch_now(P), None);
    }

    #[test]
    fn without_a_grace_time_the_session_ends_when_nothing_delivers() {
        let t0 = Instant::now();
        let mut failover = Failover::new(FailoverTimes { slate_grace: Duration::ZERO, ..TIMES });
        failover.connected(P);
        assert!(matches!(failover.unit(P, t0, true), Verdict::SwitchHere(_)));
        assert_eq!(failover.disconnected(P, t0 + Duration::from_millis(10)), Tick::End, "no slate, no switch");
    }

    #[test]
    fn the_deadline_is_the_next_moment_time_alone_decides() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut failover = Failover::new(TIMES);
        assert_eq!(failover.deadline(), None, "nothing to wait for");
        failover.connected(P);
        failover.unit(P, at(0), true);
        assert_eq!(failover.deadline(), Some(at(1000)), "the on-air input's stall");
        assert_eq!(failover.tick(at(500)), Tick::Nothing);
        assert_eq!(failover.deadline(), Some(at(1000)), "not decided yet");
        // A caller that wakes late still gets the moment it missed.
        assert!(matches!(failover.tick(at(1200)), Tick::Slate(_)));
        assert_eq!(failover.deadline(), Some(at(31_200)), "the slate's grace from when it went on air");
        assert_eq!(failover.tick(at(40_000)), Tick::End, "ticking late ends it all the same");
    }
}
