//! Failures of `accept` (out of file descriptors, out of memory): the loop
//! backs off, doubling its pause up to a second, instead of spinning on an
//! error that will not go away by itself; and the log gets one line per
//! interval with the count, not one per failure. Failures that concern only
//! the one connection being accepted (it was reset before we took it) are
//! not the listener's: the loop goes straight on.

use std::io;
use std::time::{Duration, Instant};

/// The first pause, and the longest.
const FIRST_PAUSE: Duration = Duration::from_millis(5);
const LONGEST_PAUSE: Duration = Duration::from_secs(1);
/// One log line per this interval at most.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);

/// The accept loop's failures since its last success.
#[derive(Debug, Default)]
pub struct AcceptErrors {
    /// The pause after the last failure; zero after a success.
    pause: Duration,
    /// Failures not yet reported.
    unreported: u64,
    last_report: Option<Instant>,
}

/// What the loop does after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Accept again at once: only that connection failed.
    Retry,
    /// Pause this long; `out_of_descriptors`: shedding an idle connection frees one.
    Pause { pause: Duration, out_of_descriptors: bool },
}

/// Whether an accept failure concerns only the connection being accepted.
fn only_that_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// EMFILE (this process) or ENFILE (the whole system).
fn out_of_descriptors(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(24 | 23))
}

impl AcceptErrors {
    /// Counts a failure at `now`, logs the count when a report is due, and says what to do.
    pub fn failed(&mut self, error: &io::Error, now: Instant) -> AfterFailure {
        if only_that_connection(error) {
            return AfterFailure::Retry;
        }
        self.unreported += 1;
        self.pause = (self.pause * 2).clamp(FIRST_PAUSE, LONGEST_PAUSE);
        if self.last_report.is_none_or(|last| now.duration_since(last) >= REPORT_EVERY) {
            let failures = std::mem::take(&mut self.unreported);
            self.last_report = Some(now);
            tracing::warn!(%error, failures, pause_ms = self.pause.as_millis() as u64,
                "http: accept failed; backing off (failures counted since the last report)");
        }
        AfterFailure::Pause { pause: self.pause, out_of_descriptors: out_of_descriptors(error) }
    }

    /// A connection was accepted: the next failure starts from the first pause.
    pub fn succeeded(&mut self) {
        self.pause = Duration::ZERO;
    }

    /// Failures counted and not yet logged.
    pub fn unreported(&self) -> u64 {
        self.unreported
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emfile() -> io::Error {
        io::Error::from_raw_os_error(24)
    }

    #[test]
    fn failures_back_off_doubling_and_are_logged_once_per_interval() {
        let mut errors = AcceptErrors::default();
        let t0 = Instant::now();
        let pauses: Vec<Duration> = (0..12)
            .map(|i| match errors.failed(&emfile(), t0 + Duration::from_millis(i)) {
                AfterFailure::Pause { pause, out_of_descriptors } => {
                    assert!(out_of_descriptors);
                    pause
                }
                AfterFailure::Retry => panic!("EMFILE is the listener's failure"),
            })
            .collect();
        assert_eq!(pauses[0], FIRST_PAUSE);
        assert_eq!(pauses[1], FIRST_PAUSE * 2);
        assert_eq!(pauses[11], LONGEST_PAUSE, "capped at a second: {pauses:?}");
        assert_eq!(errors.unreported(), 11, "the first was logged, the rest are counted");
        errors.failed(&emfile(), t0 + REPORT_EVERY);
        assert_eq!(errors.unreported(), 0, "an interval later the count is logged");
        errors.succeeded();
        let after = errors.failed(&io::Error::from_raw_os_error(12), t0 + REPORT_EVERY);
        assert_eq!(after, AfterFailure::Pause { pause: FIRST_PAUSE, out_of_descriptors: false });
    }

    #[test]
    fn a_connection_reset_before_it_was_taken_is_not_the_listeners_failure() {
        let mut errors = AcceptErrors::default();
        let reset = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert_eq!(errors.failed(&reset, Instant::now()), AfterFailure::Retry);
        assert_eq!(errors.unreported(), 0);
    }
}
