//! Sessions: one per accepted publish, never reused. Created `init` when a
//! publish is accepted, then `processing`, `live` at the first part, and
//! finally `ended` (with the reason) or `error`; ended sessions stay listed
//! with their stats. Sessions in progress when the process died are ended
//! with `appliance-restart` at the next start-up.
//!
//! The stats are written at the end, and also checkpointed while the session
//! is in progress (`checkpoint_sessions`, every `sessions.checkpoint_seconds`,
//! one transaction for every live session), so a crash or a power loss keeps
//! them up to the last checkpoint.

use std::ops::Bound;

use redb::ReadableTable;

use super::error::StoreError;
use super::lifecycle::{self, EndReason, Event, SessionState};
use super::page::Page;
use super::records::{
    Channel, EncoderMoved, Event as OutboxEvent, EventType, InputSwitched, Session, SessionCheckpoint, SessionStats,
    Snapshot,
};
use super::rows::{
    append_event, decode, finish_session as finish, lifecycle_of, load_channel, load_session as load, save_channel,
    save_session as save, session_refused as refused,
};
use super::store::Store;
use super::tables::{CHANNELS, SESSIONS, STREAM_KEYS};
use super::{clock, ids};

impl Store {
    /// Accepts a publish on `stream_key` if its channel takes one: creates the
    /// session (`init`) and appends `session.init`. Refuses unknown keys
    /// (`NotFound`), channels not active and channels with a session in
    /// progress (`Refused`).
    pub fn begin_session(&self, stream_key: &str, peer: &str) -> Result<(Channel, Session), StoreError> {
        self.write(|tx| {
            let name = tx.open_table(STREAM_KEYS)?.get(stream_key)?.map(|n| n.value().to_string());
            let Some(name) = name else { return Err(StoreError::not_found("stream key", "(redacted)")) };
            let mut channel = load_channel(tx, &name)?;
            let (now, _) = lifecycle_of(tx, &channel)?;
            lifecycle::transition(now, Event::Publish).map_err(|refusal| StoreError::Refused {
                what: "channel",
                id: name.clone(),
                refusal,
            })?;
            let started = clock::now_ms();
            let session = Session {
                id: ids::session_id(started),
                channel: name.clone(),
                state: SessionState::Init,
                peer: peer.to_string(),
                started_ms: started,
                live_ms: None,
                ended_ms: None,
                end_reason: None,
                error: None,
                bytes_in: 0,
                units_in: 0,
                dropped_units: 0,
                renditions: Vec::new(),
                checkpoint_ms: None,
            };
            save(tx, &session)?;
            channel.current_session = Some(session.id.clone());
            save_channel(tx, &channel)?;
            append_event(tx, EventType::SessionInit, &name, Snapshot::Session(Box::new(session.clone())))?;
            Ok((channel, session))
        })
    }

    /// Moves the current session on: `PipelineStarting` (to `processing`) or
    /// `FirstPart` (to `live`, appending `session.live`).
    pub fn advance_session(&self, channel: &str, id: &str, event: Event) -> Result<Session, StoreError> {
        self.write(|tx| {
            let channel = load_channel(tx, channel)?;
            let current = channel.current_session.as_deref() == Some(id);
            let session = load(tx, &channel.name, id)?.ok_or_else(|| StoreError::not_found("session", id))?;
            let now = lifecycle::Lifecycle { channel: channel.state, session: current.then_some(session.state) };
            let step = lifecycle::transition(now, event).map_err(|r| refused(id, r))?;
            let mut session = session;
            session.state = step.next.session.unwrap_or(session.state);
            if event == Event::FirstPart {
                session.live_ms = Some(clock::now_ms());
            }
            save(tx, &session)?;
            if event == Event::FirstPart {
                append_event(tx, EventType::SessionLive, &channel.name, Snapshot::Session(Box::new(session.clone())))?;
            }
            Ok(session)
        })
    }

    /// Ends (`End(reason)`) or fails (`Fail`) a session in progress with its
    /// stats. `None` when it was already over or its channel is gone.
    pub fn end_session(
        &self,
        channel: &str,
        id: &str,
        ending: Event,
        stats: SessionStats,
        error: Option<String>,
    ) -> Result<Option<Session>, StoreError> {
        self.write(|tx| {
            let mut channel = match load_channel(tx, channel) {
                Ok(channel) => channel,
                Err(StoreError::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(e),
            };
            if channel.current_session.as_deref() != Some(id) {
                return Ok(None);
            }
            let Some(session) = load(tx, &channel.name, id)? else { return Ok(None) };
            finish(tx, &mut channel, session, ending, Some(stats), error).map(Some)
        })
    }

    /// Writes the stats so far of sessions in progress into their records, all
    /// in one transaction and without events (nothing changed state). Sessions
    /// already over, or gone, are left alone. Returns how many were written.
    pub fn checkpoint_sessions(&self, checkpoints: &[SessionCheckpoint]) -> Result<usize, StoreError> {
        if checkpoints.is_empty() {
            return Ok(0);
        }
        let now = clock::now_ms();
        self.write_quietly(|tx| {
            let mut written = 0;
            for checkpoint in checkpoints {
                let Some(mut session) = load(tx, &checkpoint.channel, &checkpoint.session)? else { continue };
                if session.state.is_final() {
                    continue;
                }
                checkpoint.stats.clone().apply(&mut session);
                session.checkpoint_ms = Some(now);
                save(tx, &session)?;
                written += 1;
            }
            Ok(written)
        })
    }

    /// At start-up: ends every session that was in progress when the process
    /// stopped, with `appliance-restart`, its end time being its last
    /// checkpoint (if it had one) and its stats those of that checkpoint.
    pub fn recover_sessions(&self) -> Result<Vec<Session>, StoreError> {
        self.write(|tx| {
            let interrupted: Vec<Channel> = {
                let table = tx.open_table(CHANNELS)?;
                let mut out = Vec::new();
                for entry in table.iter()? {
                    let channel: Channel = decode(entry?.1.value())?;
                    if channel.current_session.is_some() {
                        out.push(channel);
                    }
                }
                out
            };
            let mut ended = Vec::new();
            for mut channel in interrupted {
                let id = channel.current_session.clone().unwrap_or_default();
                match load(tx, &channel.name, &id)? {
                    Some(session) if !session.state.is_final() => {
                        let ending = Event::End(EndReason::ApplianceRestart);
                        ended.push(finish(tx, &mut channel, session, ending, None, None)?);
                    }
                    _ => {
                        channel.current_session = None;
                        save_channel(tx, &channel)?;
                    }
                }
            }
            Ok(ended)
        })
    }

    /// Appends `session.encoder_moved` for a session of `channel` (in progress
    /// or just over: the move happened either way).
    pub fn record_encoder_move(&self, channel: &str, moved: EncoderMoved) -> Result<OutboxEvent, StoreError> {
        self.write(|tx| {
            if load(tx, channel, &moved.session)?.is_none() {
                return Err(StoreError::not_found("session", &moved.session));
            }
            append_event(tx, EventType::SessionEncoderMoved, channel, Snapshot::EncoderMoved(Box::new(moved)))
        })
    }

    /// Appends `session.input_switched` for a session of `channel` (in
    /// progress or just over: the switch happened either way).
    pub fn record_input_switch(&self, channel: &str, switched: InputSwitched) -> Result<OutboxEvent, StoreError> {
        self.write(|tx| {
            if load(tx, channel, &switched.session)?.is_none() {
                return Err(StoreError::not_found("session", &switched.session));
            }
            append_event(tx, EventType::SessionInputSwitched, channel, Snapshot::InputSwitched(Box::new(switched)))
        })
    }

    pub fn session(&self, channel: &str, id: &str) -> Result<Option<Session>, StoreError> {
        self.read(|tx| tx.open_table(SESSIONS)?.get((channel, id))?.map(|v| decode(v.value())).transpose())
    }

    /// A channel's sessions, newest first, older than the cursor (a session id).
    pub fn list_sessions(
        &self,
        channel: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Page<Session>, StoreError> {
        self.read(|tx| {
            if tx.open_table(CHANNELS)?.get(channel)?.is_none() {
                return Err(StoreError::not_found("channel", channel));
            }
            let table = tx.open_table(SESSIONS)?;
            let end = before.map_or(Bound::Excluded((channel, "\u{10FFFF}")), |b| Bound::Excluded((channel, b)));
            let mut items = Vec::new();
            for entry in table.range::<(&str, &str)>((Bound::Included((channel, "")), end))?.rev().take(limit + 1) {
                items.push(decode::<Session>(entry?.1.value())?);
            }
            Ok(Page::from_items(items, limit, |s| s.id.clone()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::EncoderSlot;
    use crate::state::EventType as E;
    use media::LatencyMode;

    #[test]
    fn a_session_runs_init_processing_live_ended_and_stays_listed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let channel = store.add("cam", LatencyMode::UltraLow).unwrap();
        let (_, session) = store.begin_session(&channel.stream_key, "127.0.0.1:5000").unwrap();
        assert_eq!(session.state, SessionState::Init);
        let second = store.begin_session(&channel.stream_key, "127.0.0.1:5001").unwrap_err();
        assert_eq!(second.to_string(), "channel \"cam\": the channel already has a session in progress");
        assert!(matches!(store.begin_session("sk_nope", "x"), Err(StoreError::NotFound { .. })));
        assert!(store.advance_session("cam", &session.id, Event::FirstPart).is_err(), "init cannot go live directly");
        store.advance_session("cam", &session.id, Event::PipelineStarting).unwrap();
        let live = store.advance_session("cam", &session.id, Event::FirstPart).unwrap();
        assert_eq!(live.state, SessionState::Live);
        let stats = SessionStats { bytes_in: 1234, units_in: 20, dropped_units: 1, renditions: vec!["source".into()] };
        let ending = Event::End(EndReason::PublisherLeft);
        let ended = store.end_session("cam", &session.id, ending, stats.clone(), None).unwrap().unwrap();
        assert_eq!(
            (ended.state, ended.end_reason, ended.bytes_in),
            (SessionState::Ended, Some(EndReason::PublisherLeft), 1234)
        );
        assert_eq!(store.end_session("cam", &session.id, ending, stats, None).unwrap(), None, "ends once");
        assert_eq!(store.get("cam").unwrap().unwrap().current_session, None);

        // A new publish is a new session, listed first.
        let (_, next) = store.begin_session(&channel.stream_key, "127.0.0.1:5002").unwrap();
        let page = store.list_sessions("cam", None, 1).unwrap();
        assert_eq!(page.items[0].id, next.id);
        let rest = store.list_sessions("cam", page.next_cursor.as_deref(), 10).unwrap();
        assert_eq!(rest.items.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), [session.id.as_str()]);
        assert_eq!(rest.next_cursor, None);

        // The process dies: the next start-up ends what was in progress.
        drop(store);
        let reopened = Store::open(dir.path()).unwrap();
        let recovered = reopened.recover_sessions().unwrap();
        assert_eq!(recovered.len(), 1);
        assert_eq!(recovered[0].end_reason, Some(EndReason::ApplianceRestart));
        let kinds: Vec<EventType> =
            reopened.list_events(None, 100).unwrap().items.into_iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                E::ChannelCreated,
                E::ChannelStarted,
                E::SessionInit,
                E::SessionLive,
                E::SessionEnded,
                E::SessionInit,
                E::SessionEnded
            ]
        );
    }

    #[test]
    fn checkpoints_keep_the_stats_of_sessions_in_progress_through_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut checkpoints = Vec::new();
        for name in ["cam-a", "cam-b", "cam-c"] {
            let channel = store.add(name, LatencyMode::UltraLow).unwrap();
            let (_, session) = store.begin_session(&channel.stream_key, "peer").unwrap();
            store.advance_session(name, &session.id, Event::PipelineStarting).unwrap();
            let stats =
                SessionStats { bytes_in: 5000, units_in: 77, dropped_units: 2, renditions: vec!["source".into()] };
            checkpoints.push(SessionCheckpoint { channel: name.into(), session: session.id, stats });
        }
        let events_before = store.list_events(None, 100).unwrap().items.len();
        // cam-c ends before the checkpoint is written: its final stats stay.
        let final_stats = SessionStats { bytes_in: 9000, units_in: 100, dropped_units: 0, renditions: vec![] };
        let (c, ended) = (&checkpoints[2].channel, &checkpoints[2].session);
        store.end_session(c, ended, Event::End(EndReason::PublisherLeft), final_stats, None).unwrap().unwrap();
        let events_before = events_before + 1;
        assert_eq!(store.checkpoint_sessions(&checkpoints).unwrap(), 2);
        assert_eq!(store.checkpoint_sessions(&[]).unwrap(), 0);
        assert_eq!(store.list_events(None, 100).unwrap().items.len(), events_before, "a checkpoint is no event");
        let a = store.session("cam-a", &checkpoints[0].session).unwrap().unwrap();
        assert_eq!((a.state, a.bytes_in, a.units_in, a.dropped_units), (SessionState::Processing, 5000, 77, 2));
        let checkpoint_ms = a.checkpoint_ms.expect("checkpointed");
        let c = store.session("cam-c", ended).unwrap().unwrap();
        assert_eq!((c.bytes_in, c.units_in, c.checkpoint_ms), (9000, 100, None), "an ended session is left alone");

        // The process dies; the next start-up ends the sessions at their last
        // checkpoint, with its stats.
        drop(store);
        let reopened = Store::open(dir.path()).unwrap();
        let recovered = reopened.recover_sessions().unwrap();
        assert_eq!(recovered.len(), 2);
        for session in &recovered {
            assert_eq!(session.end_reason, Some(EndReason::ApplianceRestart));
            assert_eq!((session.bytes_in, session.units_in, session.dropped_units), (5000, 77, 2));
            assert_eq!(session.ended_ms, Some(checkpoint_ms), "ended at its last checkpoint");
            assert_eq!(session.renditions, ["source"]);
        }
    }

    /// What one checkpoint of many live sessions costs (a measurement, printed; not a timed assertion).
    #[test]
    fn a_checkpoint_of_many_sessions_is_one_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut checkpoints = Vec::new();
        for i in 0..32 {
            let channel = store.add(&format!("cam-{i}"), LatencyMode::UltraLow).unwrap();
            let (_, session) = store.begin_session(&channel.stream_key, "peer").unwrap();
            let stats = SessionStats { bytes_in: i, units_in: i, dropped_units: 0, renditions: vec!["source".into()] };
            checkpoints.push(SessionCheckpoint { channel: channel.name, session: session.id, stats });
        }
        let rounds = 20;
        let started = std::time::Instant::now();
        for _ in 0..rounds {
            assert_eq!(store.checkpoint_sessions(&checkpoints).unwrap(), 32);
        }
        eprintln!("checkpoint of 32 sessions: {:?} per transaction", started.elapsed() / rounds);
    }

    #[test]
    fn an_encoder_move_is_an_event_of_its_session() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let channel = store.add("cam", LatencyMode::UltraLow).unwrap();
        let (_, session) = store.begin_session(&channel.stream_key, "peer").unwrap();
        let slot = |backend: &str, device: &str| EncoderSlot { backend: backend.into(), device: device.into() };
        let moved = EncoderMoved {
            session: session.id.clone(),
            from: slot("nvenc", "cuda:0"),
            to: slot("software", "cpu"),
            reason: "device cuda:0 was lost: gone".into(),
            kept: vec!["360p".into()],
            moves: 1,
        };
        let event = store.record_encoder_move("cam", moved.clone()).unwrap();
        assert_eq!((event.kind, event.channel.as_str()), (E::SessionEncoderMoved, "cam"));
        assert_eq!(event.snapshot, Snapshot::EncoderMoved(Box::new(moved.clone())));
        assert_eq!(store.event(event.sequence).unwrap(), Some(event), "in the outbox");
        let unknown = EncoderMoved { session: "s_unknown".into(), ..moved };
        assert!(matches!(store.record_encoder_move("cam", unknown), Err(StoreError::NotFound { .. })));
    }

    #[test]
    fn an_input_switch_is_an_event_of_its_session() {
        use crate::state::{OnAir, SwitchReason};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let channel = store.add("cam", LatencyMode::UltraLow).unwrap();
        let (_, session) = store.begin_session(&channel.stream_key, "peer").unwrap();
        let switched = InputSwitched {
            session: session.id.clone(),
            from: OnAir::Primary,
            to: OnAir::Backup,
            reason: SwitchReason::Stalled,
            switches: 1,
        };
        let event = store.record_input_switch("cam", switched.clone()).unwrap();
        assert_eq!((event.kind, event.channel.as_str()), (E::SessionInputSwitched, "cam"));
        assert_eq!(event.snapshot, Snapshot::InputSwitched(Box::new(switched.clone())));
        assert_eq!(store.event(event.sequence).unwrap(), Some(event), "in the outbox");
        let unknown = InputSwitched { session: "s_unknown".into(), ..switched };
        assert!(matches!(store.record_input_switch("cam", unknown), Err(StoreError::NotFound { .. })));
    }

    #[test]
    fn stopping_and_deleting_end_the_session_in_progress() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let channel = store.add("cam", LatencyMode::UltraLow).unwrap();
        let (_, session) = store.begin_session(&channel.stream_key, "peer").unwrap();
        let (_, end) = store.stop_channel("cam").unwrap();
        assert_eq!(end, Some((session.id.clone(), EndReason::ChannelStopped)));
        let refused = store.begin_session(&channel.stream_key, "peer").unwrap_err();
        assert_eq!(refused.to_string(), "channel \"cam\": the channel is stopped, not active: publishes are refused");
        // The stop leaves the end to the session's relay, which records it with its stats.
        let stats = SessionStats { bytes_in: 10, units_in: 2, dropped_units: 0, renditions: vec!["source".into()] };
        let end = Event::End(EndReason::ChannelStopped);
        let ended = store.end_session("cam", &session.id, end, stats, None).unwrap().unwrap();
        assert_eq!((ended.end_reason, ended.bytes_in, ended.units_in), (Some(EndReason::ChannelStopped), 10, 2));

        store.start_channel("cam").unwrap();
        let (_, second) = store.begin_session(&channel.stream_key, "peer").unwrap();
        let (_, ended) = store.delete_channel("cam").unwrap();
        assert_eq!(ended, Some(second.id));
        let events = store.list_events(None, 100).unwrap().items;
        let last: Vec<EventType> = events.iter().rev().take(2).map(|e| e.kind).collect();
        assert_eq!(last, [E::ChannelDeleted, E::SessionEnded]);
        assert!(matches!(store.list_sessions("cam", None, 10), Err(StoreError::NotFound { .. })));
    }
}
