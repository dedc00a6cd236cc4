//! Recording events in the outbox: `recording.ready`, `recording.deleted`
//! and `recording.failed`, each one transaction. The recordings themselves
//! (segments, indexes, locks) live on disk, their own source of truth.

use super::error::StoreError;
use super::records::{Event, EventType, RecordingNotice, Snapshot};
use super::rows::append_event;
use super::store::Store;

impl Store {
    /// Appends a `recording.*` event about a recording of `channel`.
    pub fn record_recording_event(
        &self,
        channel: &str,
        kind: EventType,
        notice: RecordingNotice,
    ) -> Result<Event, StoreError> {
        debug_assert!(matches!(
            kind,
            EventType::RecordingReady | EventType::RecordingDeleted | EventType::RecordingFailed
        ));
        self.write(|tx| append_event(tx, kind, channel, Snapshot::Recording(Box::new(notice))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::RecordingState;

    #[test]
    fn recording_events_go_into_the_outbox() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let notice = RecordingNotice {
            session: "0190000000000abcd".into(),
            state: RecordingState::Ready,
            bytes: 12_345,
            duration_seconds: 8.0,
            renditions: vec!["source".into()],
            locked: false,
            reason: None,
        };
        let event = store.record_recording_event("cam", EventType::RecordingReady, notice.clone()).unwrap();
        assert_eq!((event.kind, event.channel.as_str()), (EventType::RecordingReady, "cam"));
        assert_eq!(store.event(event.sequence).unwrap().unwrap().snapshot, Snapshot::Recording(Box::new(notice)));
    }
}
