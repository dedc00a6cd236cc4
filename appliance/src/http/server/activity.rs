//! One HTTP connection's activity, and the deadline that follows from it: a
//! request is in progress from the moment its head is parsed until its
//! response body has been handed over in full (a held blocking playlist
//! reload and a part delivered while it is made are in progress, so they
//! have no deadline); between requests the connection is idle, with the
//! idle (keep-alive) timeout, until the first byte of the next head arrives,
//! which starts the header timeout. A new connection is reading its first
//! head from the moment it is accepted.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// The timeouts of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From the first byte of a request's head to its end (slowloris).
    pub header: Duration,
    /// From the end of a response to the first byte of the next request.
    pub idle: Duration,
    /// From a request's head to the end of its body (`body_deadline`).
    pub body: Duration,
}

/// What a connection is doing, shared by its reader, its requests and the
/// registry that picks connections to shed.
#[derive(Debug)]
pub struct Activity {
    /// When the connection was accepted; the times below count from it.
    accepted: Instant,
    /// Requests whose response body has not been handed over in full.
    in_flight: AtomicU32,
    /// Milliseconds since `accepted` when the connection last became idle.
    idle_since_ms: AtomicU64,
    /// Milliseconds since `accepted` plus one when the next head began to
    /// arrive while idle; 0 when no byte of it has arrived.
    head_started_ms: AtomicU64,
    /// Woken on every change, so the connection's task recomputes its deadline.
    changed: Notify,
}

impl Activity {
    /// A connection accepted at `now`: it is reading its first head.
    pub fn new(now: Instant) -> Activity {
        Activity {
            accepted: now,
            in_flight: AtomicU32::new(0),
            idle_since_ms: AtomicU64::new(0),
            head_started_ms: AtomicU64::new(1),
            changed: Notify::new(),
        }
    }

    fn ms(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.accepted).as_millis() as u64
    }

    /// Bytes were read from the client at `now`.
    pub fn read(&self, now: Instant) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.head_started_ms.compare_exchange(0, self.ms(now) + 1, Ordering::AcqRel, Ordering::Relaxed).is_ok()
        {
            self.changed.notify_one();
        }
    }

    /// A request's head was parsed: the connection is busy until the returned guard goes.
    pub fn begin_request(self: &std::sync::Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_started_ms.store(0, Ordering::Release);
        self.changed.notify_one();
        Busy(self.clone())
    }

    /// No request is in progress.
    pub fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    /// Idle, with part of the next request's head received (closing it loses no response).
    pub fn is_reading_head(&self) -> bool {
        self.is_idle() && self.head_started_ms.load(Ordering::Acquire) != 0
    }

    /// When the connection last became idle (its acceptance, for a new one).
    pub fn idle_since(&self) -> Instant {
        self.accepted + Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire))
    }

    /// When the connection is to be closed unless something happens; none while a request is in progress.
    pub fn deadline(&self, timeouts: &Timeouts) -> Option<Instant> {
        if !self.is_idle() {
            return None;
        }
        match self.head_started_ms.load(Ordering::Acquire) {
            0 => Some(self.idle_since() + timeouts.idle),
            started => Some(self.accepted + Duration::from_millis(started - 1) + timeouts.header),
        }
    }

    /// Resolves at the next change of state.
    pub async fn changed(&self) {
        self.changed.notified().await
    }
}

/// A request in progress; the connection is idle again when the last one goes.
#[derive(Debug)]
pub struct Busy(std::sync::Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let activity = &self.0;
        if activity.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            activity.idle_since_ms.store(activity.ms(Instant::now()), Ordering::Release);
            activity.changed.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const TIMEOUTS: Timeouts =
        Timeouts { header: Duration::from_secs(10), idle: Duration::from_secs(60), body: Duration::from_secs(30) };

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_new_connection_has_the_header_timeout_from_its_acceptance() {
        let t0 = Instant::now();
        let activity = Activity::new(t0);
        assert_eq!(activity.deadline(&TIMEOUTS), Some(t0 + secs(10)));
        activity.read(t0 + secs(5));
        assert_eq!(activity.deadline(&TIMEOUTS), Some(t0 + secs(10)), "dribbled bytes do not extend it");
        assert!(activity.is_reading_head());
    }

    #[test]
    fn a_request_in_progress_has_no_deadline_and_then_the_idle_timeout_applies() {
        let t0 = Instant::now();
        let activity = Arc::new(Activity::new(t0));
        let busy = activity.begin_request();
        assert_eq!(activity.deadline(&TIMEOUTS), None);
        activity.read(t0 + secs(1));
        assert_eq!(activity.deadline(&TIMEOUTS), None, "a request body being read is part of the request");
        assert!(!activity.is_idle() && !activity.is_reading_head());
        let second = activity.begin_request();
        drop(busy);
        assert_eq!(activity.deadline(&TIMEOUTS), None, "pipelined: one request is still in progress");
        drop(second);
        let idle_since = activity.idle_since();
        assert!(idle_since >= t0 && activity.is_idle() && !activity.is_reading_head());
        assert_eq!(activity.deadline(&TIMEOUTS), Some(idle_since + secs(60)));
    }

    #[test]
    fn the_first_byte_of_the_next_head_starts_the_header_timeout() {
        let t0 = Instant::now();
        let activity = Arc::new(Activity::new(t0));
        drop(activity.begin_request());
        let idle_since = activity.idle_since();
        let first_byte = idle_since + secs(30);
        activity.read(first_byte);
        let deadline = activity.deadline(&TIMEOUTS).unwrap();
        assert!(deadline <= first_byte + secs(10) && deadline > first_byte + secs(9), "{deadline:?}");
        activity.read(first_byte + secs(3));
        assert_eq!(activity.deadline(&TIMEOUTS), Some(deadline), "only the first byte starts it");
        assert!(activity.is_reading_head());
    }

    #[tokio::test]
    async fn every_change_wakes_the_connection() {
        let activity = Arc::new(Activity::new(Instant::now()));
        let busy = activity.begin_request();
        tokio::time::timeout(secs(5), activity.changed()).await.expect("woken by the request");
        drop(busy);
        tokio::time::timeout(secs(5), activity.changed()).await.expect("woken by becoming idle");
        activity.read(Instant::now());
        tokio::time::timeout(secs(5), activity.changed()).await.expect("woken by the next head");
    }
}
