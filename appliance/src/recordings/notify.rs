//! `recording.*` events into the outbox (webhooks), with what the recording
//! is on disk at that moment. Called from the recorder's thread and the
//! retention sweep (blocking calls, never on the async runtime). An event
//! that cannot be written (the disk is full) is logged and reported as not
//! sent; the recorder tries it again after its next segment is written.

use super::catalog::{Catalog, Recording};
use crate::state::{EventType, RecordingNotice, RecordingState, Store};

/// Writes recording events.
#[derive(Debug, Clone)]
pub struct Notifier {
    store: Store,
    catalog: Catalog,
}

impl Notifier {
    pub fn new(store: Store, catalog: Catalog) -> Notifier {
        Notifier { store, catalog }
    }

    /// A `kind` event about the recording of `session`, as it is on disk now;
    /// `false` when it could not be written.
    pub fn notify(&self, channel: &str, session: &str, kind: EventType, reason: Option<String>) -> bool {
        let notice = match self.catalog.get(channel, session) {
            Ok(recording) => notice(&recording, reason),
            Err(_) => RecordingNotice {
                session: session.to_string(),
                state: RecordingState::Recording,
                bytes: 0,
                duration_seconds: 0.0,
                renditions: Vec::new(),
                locked: false,
                reason,
            },
        };
        self.send(channel, kind, notice)
    }

    /// `recording.deleted` about `recording`, which is gone from disk.
    pub fn deleted(&self, recording: &Recording, reason: &str) -> bool {
        self.send(&recording.meta.channel, EventType::RecordingDeleted, notice(recording, Some(reason.to_string())))
    }

    fn send(&self, channel: &str, kind: EventType, notice: RecordingNotice) -> bool {
        let session = notice.session.clone();
        match self.store.record_recording_event(channel, kind, notice) {
            Ok(event) => {
                tracing::debug!(sequence = event.sequence, kind = kind.as_str(), %session, "recording event recorded");
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, kind = kind.as_str(), %session, "cannot record a recording event");
                false
            }
        }
    }
}

fn notice(recording: &Recording, reason: Option<String>) -> RecordingNotice {
    RecordingNotice {
        session: recording.meta.session.clone(),
        state: recording.meta.state,
        bytes: recording.bytes,
        duration_seconds: recording.duration_seconds(),
        renditions: recording.rendition_names(),
        locked: recording.locked,
        reason,
    }
}
