//! The connection of an output that sends to another server (a restream
//! destination): its state, attempts and bytes, written by the output's
//! thread and read by the API through the registry. Atomics and a small lock,
//! never on the media path of another output.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use utoipa::ToSchema;

use crate::state::clock::rfc3339;

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LinkState {
    /// Waiting for the session's first keyframe, or connecting.
    Connecting,
    /// The destination takes the stream.
    Live,
    /// The last attempt failed; the next one is scheduled (`retry_at`).
    Retrying,
    /// The session ended and the stream was closed.
    Ended,
}

#[derive(Debug)]
struct Status {
    state: LinkState,
    live_since: Option<SystemTime>,
    last_error: Option<String>,
    retry_at: Option<SystemTime>,
}

/// One connection's live figures.
#[derive(Debug)]
pub struct Link {
    pub destination: String,
    /// The URL as shown (no key).
    pub url: String,
    pub rendition: String,
    status: Mutex<Status>,
    attempts: AtomicU32,
    bytes: AtomicU64,
}

/// A connection as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LinkFigures {
    /// The restream destination's id.
    pub destination: String,
    /// The destination's URL, without its key.
    pub url: String,
    pub rendition: String,
    pub state: LinkState,
    /// Connection attempts in this session.
    pub attempts: u32,
    /// Media bytes sent in this session.
    pub bytes: u64,
    #[schema(format = DateTime)]
    pub live_since: Option<String>,
    /// Why the last attempt failed or the connection dropped.
    pub last_error: Option<String>,
    #[schema(format = DateTime)]
    pub retry_at: Option<String>,
}

impl Link {
    pub fn new(destination: &str, url: &str, rendition: &str) -> Link {
        Link {
            destination: destination.to_string(),
            url: url.to_string(),
            rendition: rendition.to_string(),
            status: Mutex::new(Status {
                state: LinkState::Connecting,
                live_since: None,
                last_error: None,
                retry_at: None,
            }),
            attempts: AtomicU32::new(0),
            bytes: AtomicU64::new(0),
        }
    }

    fn update(&self, change: impl FnOnce(&mut Status)) {
        // A poisoned lock only means a panic between two plain field writes: the status is usable.
        change(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// A new attempt starts; returns its number (1 for the first).
    pub fn connecting(&self) -> u32 {
        self.update(|s| {
            s.state = LinkState::Connecting;
            s.retry_at = None;
        });
        self.attempts.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn live(&self) {
        self.update(|s| {
            s.state = LinkState::Live;
            s.live_since = Some(SystemTime::now());
        });
    }

    pub fn retrying(&self, error: &str, after: Duration) {
        self.update(|s| {
            s.state = LinkState::Retrying;
            s.live_since = None;
            s.last_error = Some(error.to_string());
            s.retry_at = Some(SystemTime::now() + after);
        });
    }

    pub fn ended(&self) {
        self.update(|s| {
            s.state = LinkState::Ended;
            s.live_since = None;
            s.retry_at = None;
        });
    }

    pub fn sent(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn attempts(&self) -> u32 {
        self.attempts.load(Ordering::Relaxed)
    }

    pub fn figures(&self) -> LinkFigures {
        let status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        let ms = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        LinkFigures {
            destination: self.destination.clone(),
            url: self.url.clone(),
            rendition: self.rendition.clone(),
            state: status.state,
            attempts: self.attempts(),
            bytes: self.bytes.load(Ordering::Relaxed),
            live_since: status.live_since.map(|t| rfc3339(ms(t))),
            last_error: status.last_error.clone(),
            retry_at: status.retry_at.map(|t| rfc3339(ms(t))),
        }
    }
}
