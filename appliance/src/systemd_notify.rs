//! systemd integration: the sd_notify protocol (READY, STATUS, STOPPING,
//! WATCHDOG) through the pure-Rust `sd-notify` crate, and the watchdog
//! supervisor that pings systemd only while the main loop answers.
//!
//! The watchdog runs on its own OS thread, not on the async runtime: every
//! tick it sends a [`Probe`] to the main loop and waits a bounded time for the
//! answer (a [`ServiceStatus`]). Only an answer earns `WATCHDOG=1` (with the
//! answer as the new `STATUS=`); a wedged main loop gets no ping, so systemd's
//! `WatchdogSec=` kills and restarts the service, even though the process, its
//! listeners and its other threads are still alive.
//!
//! Outside systemd (no `NOTIFY_SOCKET`) every call here is a no-op and no
//! thread is started.

use std::fmt;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::sync::mpsc;

/// Longest time between two STATUS updates when the watchdog is off or slow.
const MAX_TICK: Duration = Duration::from_secs(5);

/// Environment variable that arms the hidden debug trigger: with it set to `1`,
/// SIGUSR2 wedges the main loop (see [`wedge_forever`]) so a test can show the
/// watchdog restarting the service. Never set in the shipped unit.
pub const DEBUG_WEDGE_ENV: &str = "APPLIANCE_DEBUG_WEDGE";

/// What the service tells systemd in `STATUS=` (shown by `systemctl status`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceStatus {
    /// Channels with a live publish.
    pub channels_live: usize,
    /// Live sessions (publishes being packaged).
    pub sessions: usize,
    /// Encoder sessions leased and available over the healthy devices;
    /// `None` until the encoder probe has run.
    pub encoders: Option<(usize, usize)>,
}

impl fmt::Display for ServiceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        write!(
            f,
            "{} channel{} live, {} session{}, ",
            self.channels_live,
            plural(self.channels_live),
            self.sessions,
            plural(self.sessions)
        )?;
        match self.encoders {
            Some((used, total)) => write!(f, "encoder slots {used}/{total} in use"),
            None => write!(f, "encoders not probed yet"),
        }
    }
}

/// A question from the watchdog thread to the main loop: "are you there, and how are things?"
#[derive(Debug)]
pub struct Probe(std_mpsc::SyncSender<ServiceStatus>);

impl Probe {
    /// The main loop's answer; proves it is turning.
    pub fn answer(self, status: ServiceStatus) {
        let _ = self.0.try_send(status);
    }
}

/// Sends notifications to systemd; cheap to copy, silent outside systemd.
#[derive(Debug, Clone, Copy)]
pub struct Notifier {
    enabled: bool,
}

impl Notifier {
    /// Enabled when systemd gave us a notification socket (`Type=notify`).
    pub fn from_env() -> Notifier {
        Notifier { enabled: std::env::var_os("NOTIFY_SOCKET").is_some() }
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// `READY=1`: configuration validated and every listener bound.
    pub fn ready(&self, status: &ServiceStatus) {
        self.send(&[NotifyState::Ready, NotifyState::Status(&status.to_string())]);
    }

    /// `STOPPING=1`: graceful stop begun (sessions are being ended).
    pub fn stopping(&self, why: &str) {
        self.send(&[NotifyState::Stopping, NotifyState::Status(why)]);
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        if !self.enabled {
            return;
        }
        if let Err(e) = sd_notify::notify(states) {
            tracing::warn!(error = %e, "cannot notify systemd");
        }
    }

    /// Starts the watchdog thread; the main loop must answer the probes that
    /// arrive on the returned receiver. Returns `None` outside systemd.
    pub fn spawn_watchdog(&self) -> Option<(mpsc::Receiver<Probe>, JoinHandle<()>)> {
        if !self.enabled {
            return None;
        }
        let watchdog = sd_notify::watchdog_enabled();
        let tick = tick_for(watchdog);
        // Capacity 1: a probe still queued at the next tick means the loop is not reading.
        let (probes, receiver) = mpsc::channel(1);
        let notifier = *self;
        let thread = std::thread::Builder::new()
            .name("sd-watchdog".into())
            .spawn(move || notifier.watchdog_loop(probes, tick, watchdog.is_some()))
            .ok()?;
        tracing::info!(watchdog = ?watchdog, tick = ?tick, "systemd watchdog supervisor started");
        Some((receiver, thread))
    }

    fn watchdog_loop(self, probes: mpsc::Sender<Probe>, tick: Duration, watchdog: bool) {
        let mut unanswered = 0u32;
        loop {
            std::thread::sleep(tick);
            let (reply, answer) = std_mpsc::sync_channel(1);
            let asked = match probes.try_send(Probe(reply)) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => false,
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            };
            match asked.then(|| answer.recv_timeout(tick / 2)) {
                Some(Ok(status)) => {
                    if unanswered > 0 {
                        tracing::warn!(missed = unanswered, "main loop answers again");
                        unanswered = 0;
                    }
                    let status = status.to_string();
                    if watchdog {
                        self.send(&[NotifyState::Watchdog, NotifyState::Status(&status)]);
                    } else {
                        self.send(&[NotifyState::Status(&status)]);
                    }
                }
                // The loop ended while we waited: shutdown, not a hang.
                Some(Err(std_mpsc::RecvTimeoutError::Disconnected)) if probes.is_closed() => return,
                _ => {
                    unanswered += 1;
                    if unanswered == 1 {
                        tracing::error!("main loop did not answer the watchdog probe; withholding WATCHDOG=1");
                    }
                }
            }
        }
    }
}

/// How often to probe: twice per watchdog period, at least every [`MAX_TICK`].
fn tick_for(watchdog: Option<Duration>) -> Duration {
    match watchdog {
        Some(period) => (period / 2).min(MAX_TICK).max(Duration::from_millis(100)),
        None => MAX_TICK,
    }
}

/// Whether the hidden debug trigger is armed ([`DEBUG_WEDGE_ENV`]` = 1`).
pub fn debug_wedge_armed(env: impl Fn(&str) -> Option<String>) -> bool {
    env(DEBUG_WEDGE_ENV).is_some_and(|v| v.trim() == "1")
}

/// Debug only: blocks the calling thread for good, as a deadlocked or spinning
/// main loop would. The rest of the process keeps serving; only the watchdog
/// notices.
pub fn wedge_forever() -> ! {
    tracing::warn!(
        "debug: main loop wedged on request (SIGUSR2 with {DEBUG_WEDGE_ENV}=1); the watchdog must restart us"
    );
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        let cases = [
            (ServiceStatus::default(), "0 channels live, 0 sessions, encoders not probed yet"),
            (
                ServiceStatus { channels_live: 1, sessions: 1, encoders: Some((3, 8)) },
                "1 channel live, 1 session, encoder slots 3/8 in use",
            ),
        ];
        for (status, want) in cases {
            assert_eq!(status.to_string(), want);
        }
    }

    #[test]
    fn probe_ticks() {
        assert_eq!(tick_for(None), MAX_TICK);
        assert_eq!(tick_for(Some(Duration::from_secs(20))), Duration::from_secs(5));
        assert_eq!(tick_for(Some(Duration::from_secs(4))), Duration::from_secs(2));
        assert_eq!(tick_for(Some(Duration::from_millis(10))), Duration::from_millis(100));
    }

    #[test]
    fn wedge_trigger_needs_the_variable() {
        assert!(!debug_wedge_armed(|_| None));
        assert!(!debug_wedge_armed(|_| Some("0".into())));
        assert!(debug_wedge_armed(|name| (name == DEBUG_WEDGE_ENV).then(|| "1".into())));
    }
}
