//! When an alert is raised and cleared: a pure state machine fed with
//! whether its condition holds at each evaluation and the time. It raises
//! once the condition has held for `raise_after`, and clears once it has
//! been gone for `clear_after`; a blip shorter than either changes nothing.

use std::time::{Duration, Instant};

/// Where an alert stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Clear,
    /// The condition holds since then; not raised yet.
    Holding(Instant),
    Raised,
    /// Raised, and the condition has been gone since then.
    Easing(Instant),
}

/// A change to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Raised after the condition held this long.
    Raised(Duration),
    /// Cleared after the condition was gone this long.
    Cleared(Duration),
}

/// One alert's hysteresis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hysteresis {
    pub raise_after: Duration,
    pub clear_after: Duration,
    pub phase: Phase,
}

impl Hysteresis {
    pub fn new(raise_after: Duration, clear_after: Duration) -> Hysteresis {
        Hysteresis { raise_after, clear_after, phase: Phase::Clear }
    }

    pub fn is_raised(&self) -> bool {
        matches!(self.phase, Phase::Raised | Phase::Easing(_))
    }

    /// The condition `holds` (or not) at `now`: the change, if any.
    pub fn observe(&mut self, holds: bool, now: Instant) -> Option<Change> {
        let (phase, change) = match (self.phase, holds) {
            (Phase::Clear, false) => (Phase::Clear, None),
            (Phase::Clear, true) => self.holding(now, now),
            (Phase::Holding(_), false) => (Phase::Clear, None),
            (Phase::Holding(since), true) => self.holding(since, now),
            (Phase::Raised, true) | (Phase::Easing(_), true) => (Phase::Raised, None),
            (Phase::Raised, false) => self.easing(now, now),
            (Phase::Easing(since), false) => self.easing(since, now),
        };
        self.phase = phase;
        change
    }

    fn holding(&self, since: Instant, now: Instant) -> (Phase, Option<Change>) {
        let held = now.saturating_duration_since(since);
        if held >= self.raise_after {
            (Phase::Raised, Some(Change::Raised(held)))
        } else {
            (Phase::Holding(since), None)
        }
    }

    fn easing(&self, since: Instant, now: Instant) -> (Phase, Option<Change>) {
        let gone = now.saturating_duration_since(since);
        if gone >= self.clear_after {
            (Phase::Clear, Some(Change::Cleared(gone)))
        } else {
            (Phase::Easing(since), None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_phase_and_observation() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let (raise, clear) = (Duration::from_millis(1000), Duration::from_millis(2000));
        // (phase before, holds, time, phase after, change)
        let table = [
            (Phase::Clear, false, at(0), Phase::Clear, None),
            (Phase::Clear, true, at(0), Phase::Holding(at(0)), None),
            (Phase::Holding(at(0)), true, at(999), Phase::Holding(at(0)), None),
            (Phase::Holding(at(0)), true, at(1000), Phase::Raised, Some(Change::Raised(raise))),
            (Phase::Holding(at(0)), false, at(500), Phase::Clear, None),
            (Phase::Raised, true, at(5000), Phase::Raised, None),
            (Phase::Raised, false, at(5000), Phase::Easing(at(5000)), None),
            (Phase::Easing(at(5000)), false, at(6999), Phase::Easing(at(5000)), None),
            (Phase::Easing(at(5000)), false, at(7000), Phase::Clear, Some(Change::Cleared(clear))),
            (Phase::Easing(at(5000)), true, at(6000), Phase::Raised, None),
        ];
        for (before, holds, now, after, change) in table {
            let mut h = Hysteresis { raise_after: raise, clear_after: clear, phase: before };
            assert_eq!(h.observe(holds, now), change, "{before:?} {holds}");
            assert_eq!(h.phase, after, "{before:?} {holds}");
        }
    }

    #[test]
    fn zero_times_raise_and_clear_at_once() {
        let now = Instant::now();
        let mut h = Hysteresis::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(h.observe(true, now), Some(Change::Raised(Duration::ZERO)));
        assert_eq!(h.observe(false, now), Some(Change::Cleared(Duration::ZERO)));
    }
}
