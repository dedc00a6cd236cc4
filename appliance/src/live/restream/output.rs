//! One restream destination as an output of a live session: its own thread
//! reads the rendition's feed and writes it through `accel::stream_out`
//! (blocking network I/O with deadlines). It connects at the session's first
//! keyframe; a destination that refuses or drops is retried with backoff,
//! the feed drained meanwhile, and the stream resumes at the next keyframe.
//! It never fails the session: its state is the link's, and `restream.*`
//! events report it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use accel::stream_out::{StreamOut, StreamOutError, Watchdog};
use media::{StreamEvent, TrackInfo, TrackKind, UnitReceiver};
use tokio::sync::oneshot;

use super::backoff::{Backoff, HEALTHY_AFTER};
use crate::live::events::SessionEvent;
use crate::live::link::Link;
use crate::live::ports::{Feed, Output, OutputError, OutputRun, Renditions, Reporter, Subscription, Tracks};
use crate::state::records::restream::RestreamDestination;

/// How long one blocking step (connect, handshake, one write) may take.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A restream destination, plugged into a session.
#[derive(Debug)]
pub struct RestreamOutput {
    name: String,
    destination: RestreamDestination,
    link: Arc<Link>,
}

impl RestreamOutput {
    pub fn new(destination: RestreamDestination) -> RestreamOutput {
        let link = Arc::new(Link::new(&destination.id, &destination.shown_url(), &destination.rendition));
        RestreamOutput { name: format!("restream-{}", destination.id), destination, link }
    }
}

impl Output for RestreamOutput {
    fn name(&self) -> &str {
        &self.name
    }

    fn subscription(&self) -> Subscription {
        Subscription { renditions: Renditions::Named(vec![self.destination.rendition.clone()]), tracks: Tracks::All }
    }

    fn link(&self) -> Option<Arc<Link>> {
        Some(self.link.clone())
    }

    fn start(self: Box<Self>, mut feeds: Vec<Feed>, reporter: Reporter) -> OutputRun {
        let Some(feed) = feeds.pop() else {
            return Box::pin(async { Err(OutputError::new("the session has no such rendition")) });
        };
        let watchdog = Watchdog::new();
        let (done, finished) = oneshot::channel();
        let span = tracing::Span::current();
        let sender =
            Sender { target: self.destination.target(), link: self.link.clone(), reporter, watchdog: watchdog.clone() };
        let spawned = std::thread::Builder::new()
            .name(accel::thread_name::truncate_thread_name(self.name.clone()))
            .spawn(move || {
                let _entered = span.enter();
                sender.run(feed.events);
                let _ = done.send(());
            });
        if let Err(e) = spawned {
            return Box::pin(async move { Err(OutputError::new(format!("cannot start its thread: {e}"))) });
        }
        Box::pin(async move {
            // Dropped when the session stops waiting for it: the blocking step in progress gives up at once.
            let stop_on_drop = StopOnDrop(watchdog);
            let _ = finished.await;
            drop(stop_on_drop);
            Ok(())
        })
    }
}

struct StopOnDrop(Arc<Watchdog>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// The thread's side.
struct Sender {
    target: String,
    link: Arc<Link>,
    reporter: Reporter,
    watchdog: Arc<Watchdog>,
}

/// How sending on one connection ended.
enum Ended {
    /// The session ended: the stream was closed.
    Feed,
    /// The codec configuration changed: connect again with the new tracks.
    Retrack(Arc<[TrackInfo]>),
    Failed(StreamOutError),
}

impl Sender {
    fn run(self, mut feed: UnitReceiver) {
        let mut tracks: Option<Arc<[TrackInfo]>> = None;
        let mut backoff = Backoff::default();
        loop {
            let Some(current) = next_tracks(&mut feed, &mut tracks) else { break };
            let attempt = self.link.connecting();
            let connected = Instant::now();
            let error = match StreamOut::open(&self.target, &current, self.watchdog.clone(), IO_TIMEOUT) {
                Ok(out) => {
                    self.link.live();
                    tracing::info!(attempt, "restream connected");
                    self.reporter.report(SessionEvent::LinkUp { output: self.reporter.output().to_string(), attempt });
                    match self.send(&mut feed, out, current) {
                        Ended::Feed => break,
                        Ended::Retrack(next) => {
                            tracks = Some(next);
                            continue;
                        }
                        Ended::Failed(error) => error,
                    }
                }
                Err(error) => error,
            };
            if self.watchdog.is_stopped() {
                break;
            }
            if connected.elapsed() >= HEALTHY_AFTER {
                backoff.reset();
            }
            let delay = backoff.next_delay();
            let reason = error.to_string();
            tracing::warn!(attempt, error = %reason, retry_in_ms = delay.as_millis() as u64, "restream failed; retrying");
            self.link.retrying(&reason, delay);
            let output = self.reporter.output().to_string();
            self.reporter.report(SessionEvent::LinkDown { output, attempt, error: reason, retry_in: delay });
            if !drain_until(&mut feed, &mut tracks, Instant::now() + delay, &self.watchdog) {
                break;
            }
        }
        self.link.ended();
        tracing::info!(attempts = self.link.attempts(), "restream ended");
    }

    /// Sends from the next video keyframe (or first unit, without video) until the feed ends or sending fails.
    fn send(&self, feed: &mut UnitReceiver, mut out: StreamOut, tracks: Arc<[TrackInfo]>) -> Ended {
        let mut started = false;
        let mut tracks = Some(tracks);
        let result = loop {
            let Some(event) = feed.blocking_recv() else { break Ended::Feed };
            match event {
                StreamEvent::Tracks(next) => {
                    // The same set again: the producer restarted; the timeline splices it on.
                    if tracks.as_ref().is_some_and(|t| *t != next) {
                        break Ended::Retrack(next);
                    }
                    tracks = Some(next);
                }
                StreamEvent::Unit(unit) => {
                    if !started {
                        let has_video = tracks.as_ref().is_none_or(|t| t.iter().any(|t| t.kind == TrackKind::Video));
                        if has_video && !(unit.kind == TrackKind::Video && unit.keyframe) {
                            continue;
                        }
                        started = true;
                    }
                    let before = out.bytes();
                    if let Err(error) = out.write(&unit) {
                        break Ended::Failed(error);
                    }
                    self.link.sent(out.bytes() - before);
                }
            }
        };
        if let Ended::Feed | Ended::Retrack(_) = result
            && let Err(e) = out.finish()
        {
            tracing::debug!(error = %e, "restream: closing the stream failed");
        }
        result
    }
}

/// The tracks to connect with: the last announcement seen, or the next one.
fn next_tracks(feed: &mut UnitReceiver, tracks: &mut Option<Arc<[TrackInfo]>>) -> Option<Arc<[TrackInfo]>> {
    loop {
        if let Some(current) = tracks.clone() {
            return Some(current);
        }
        match feed.blocking_recv()? {
            StreamEvent::Tracks(next) => *tracks = Some(next),
            StreamEvent::Unit(_) => {}
        }
    }
}

/// Reads and drops the feed until `until` (keeping its announcements), so
/// that the session's queue to this output does not fill while it waits.
/// False when the feed ended or the output was stopped.
fn drain_until(
    feed: &mut UnitReceiver,
    tracks: &mut Option<Arc<[TrackInfo]>>,
    until: Instant,
    watchdog: &Watchdog,
) -> bool {
    while Instant::now() < until {
        if watchdog.is_stopped() {
            return false;
        }
        match feed.blocking_recv() {
            None => return false,
            Some(StreamEvent::Tracks(next)) => *tracks = Some(next),
            Some(StreamEvent::Unit(_)) => {}
        }
    }
    true
}
