//! When a failed restream destination is tried again: exponential, capped,
//! with jitter so that destinations that failed together (the uplink went
//! down) do not all come back in the same instant.

use std::time::Duration;

use rand::Rng;

/// The first retry's delay.
pub const FIRST: Duration = Duration::from_secs(1);
/// The longest delay between two attempts.
pub const CAP: Duration = Duration::from_secs(60);
/// A connection that stayed up this long counts as healthy: the next failure starts over from `FIRST`.
pub const HEALTHY_AFTER: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: FIRST }
    }
}

impl Backoff {
    /// The delay before the next attempt: the current step with up to ±25% jitter; the step doubles up to `CAP`.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.next;
        self.next = (self.next * 2).min(CAP);
        let jitter = rand::rng().random_range(0.75..=1.25);
        step.mul_f64(jitter).min(CAP)
    }

    /// A connection stayed up long enough: start over.
    pub fn reset(&mut self) {
        self.next = FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_with_jitter_up_to_the_cap_and_start_over_after_a_reset() {
        let mut backoff = Backoff::default();
        let delays: Vec<Duration> = (0..10).map(|_| backoff.next_delay()).collect();
        assert!(delays[0] >= FIRST.mul_f64(0.75) && delays[0] <= FIRST.mul_f64(1.25));
        assert!(delays[3] >= Duration::from_secs(6) && delays[3] <= Duration::from_secs(10), "{delays:?}");
        assert!(delays.iter().all(|d| *d <= CAP));
        assert!(delays[9] >= CAP.mul_f64(0.75));
        backoff.reset();
        assert!(backoff.next_delay() <= FIRST.mul_f64(1.25));
    }
}
