//! Channels and their stream keys: create, update, start, stop, rotate the
//! key, delete. Each operation is one transaction that runs the lifecycle
//! transition and appends its events.

use std::ops::Bound;

use media::LatencyMode;
use redb::{ReadTransaction, ReadableTable};

use super::error::StoreError;
use super::lifecycle::{self, ChannelState, EndReason, Event, Lifecycle};
use super::page::Page;
use super::records::channel::{validate_max_session, validate_output, validate_processing, validate_srt_passphrase};
use super::records::{Channel, ChannelPatch, EventType, NewChannel, Snapshot, validate_name};
use super::rows::{append_event, decode, finish_session, lifecycle_of, load_channel as load, save_channel as save};
use super::store::Store;
use super::tables::{CHANNELS, RESTREAMS, SESSIONS, STREAM_KEYS};
use super::{clock, ids};

fn refused(channel: &str, refusal: lifecycle::Refusal) -> StoreError {
    StoreError::Refused { what: "channel", id: channel.to_string(), refusal }
}

fn read_channel(tx: &ReadTransaction, name: &str) -> Result<Option<Channel>, StoreError> {
    tx.open_table(CHANNELS)?.get(name)?.map(|json| decode(json.value())).transpose()
}

impl Store {
    /// Creates a channel with a fresh stream key, idle unless `start`.
    pub fn create_channel(&self, new: NewChannel, start: bool) -> Result<Channel, StoreError> {
        validate_name(&new.name)?;
        validate_output(&new.output)?;
        validate_processing(&new.processing, &new.output)?;
        validate_max_session(new.max_session_seconds)?;
        validate_srt_passphrase(new.srt_passphrase.as_deref())?;
        new.recording.validate()?;
        new.dvr_window_seconds.validate()?;
        let now = clock::now_ms();
        let mut channel = Channel {
            name: new.name,
            stream_key: ids::stream_key(),
            latency_mode: new.latency_mode,
            output: new.output,
            encoder_policy: new.encoder_policy,
            processing: new.processing,
            max_session_seconds: new.max_session_seconds,
            recording: new.recording,
            dvr_window_seconds: new.dvr_window_seconds,
            state: ChannelState::Idle,
            current_session: None,
            created_at: now / 1000,
            updated_ms: now,
            backup_stream_key: new.backup.then(ids::stream_key),
            srt_passphrase: new.srt_passphrase,
            playback: new.playback,
        };
        self.write(|tx| {
            if tx.open_table(CHANNELS)?.get(channel.name.as_str())?.is_some() {
                return Err(StoreError::Exists(channel.name.clone()));
            }
            let mut keys = tx.open_table(STREAM_KEYS)?;
            keys.insert(channel.stream_key.as_str(), channel.name.as_str())?;
            if let Some(backup) = &channel.backup_stream_key {
                keys.insert(backup.as_str(), channel.name.as_str())?;
            }
            drop(keys);
            save(tx, &channel)?;
            append_event(tx, EventType::ChannelCreated, &channel.name, Snapshot::Channel(Box::new(channel.clone())))?;
            if start {
                let step = lifecycle::transition(Lifecycle { channel: channel.state, session: None }, Event::Start)
                    .map_err(|r| refused(&channel.name, r))?;
                channel.state = step.next.channel;
                save(tx, &channel)?;
                append_event(
                    tx,
                    EventType::ChannelStarted,
                    &channel.name,
                    Snapshot::Channel(Box::new(channel.clone())),
                )?;
            }
            Ok(channel.clone())
        })
    }

    /// Creates an active channel with default settings (the CLI's and the demo's way).
    pub fn add(&self, name: &str, latency_mode: LatencyMode) -> Result<Channel, StoreError> {
        self.create_channel(NewChannel { name: name.to_string(), latency_mode, ..NewChannel::default() }, true)
    }

    pub fn get(&self, name: &str) -> Result<Option<Channel>, StoreError> {
        self.read(|tx| read_channel(tx, name))
    }

    /// Every channel, by name.
    pub fn list(&self) -> Result<Vec<Channel>, StoreError> {
        self.read(|tx| {
            let mut out = Vec::new();
            for entry in tx.open_table(CHANNELS)?.iter()? {
                out.push(decode(entry?.1.value())?);
            }
            Ok(out)
        })
    }

    /// Channels by name after the cursor (a name).
    pub fn list_channels(&self, after: Option<&str>, limit: usize) -> Result<Page<Channel>, StoreError> {
        self.read(|tx| {
            let table = tx.open_table(CHANNELS)?;
            let start = after.map_or(Bound::Unbounded, Bound::Excluded);
            let mut items = Vec::new();
            for entry in table.range::<&str>((start, Bound::Unbounded))?.take(limit + 1) {
                items.push(decode::<Channel>(entry?.1.value())?);
            }
            Ok(Page::from_items(items, limit, |c| c.name.clone()))
        })
    }

    /// The channels of `names` (sorted, the ones that exist) after the cursor: the list of a
    /// caller restricted to those channels, paged like `list_channels`.
    pub fn list_named_channels(
        &self,
        names: &[String],
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Channel>, StoreError> {
        let mut names: Vec<&str> = names.iter().map(String::as_str).filter(|n| after.is_none_or(|a| *n > a)).collect();
        names.sort_unstable();
        self.read(|tx| {
            let table = tx.open_table(CHANNELS)?;
            let mut items = Vec::new();
            for name in names {
                if items.len() > limit {
                    break;
                }
                if let Some(json) = table.get(name)? {
                    items.push(decode::<Channel>(json.value())?);
                }
            }
            Ok(Page::from_items(items, limit, |c| c.name.clone()))
        })
    }

    /// The channel a stream key publishes to.
    pub fn by_stream_key(&self, key: &str) -> Result<Option<Channel>, StoreError> {
        self.read(|tx| {
            let Some(name) = tx.open_table(STREAM_KEYS)?.get(key)?.map(|n| n.value().to_string()) else {
                return Ok(None);
            };
            read_channel(tx, &name)
        })
    }

    /// Changes settings; they apply from the next session.
    pub fn update_channel(&self, name: &str, patch: ChannelPatch) -> Result<Channel, StoreError> {
        if let Some(output) = &patch.output {
            validate_output(output)?;
        }
        if let Some(max) = patch.max_session_seconds {
            validate_max_session(max)?;
        }
        if let Some(recording) = &patch.recording {
            recording.validate()?;
        }
        if let Some(passphrase) = &patch.srt_passphrase {
            validate_srt_passphrase(passphrase.as_deref())?;
        }
        if let Some(window) = patch.dvr_window_seconds {
            window.validate()?;
        }
        self.write(|tx| {
            let mut channel = load(tx, name)?;
            if let Some(mode) = patch.latency_mode {
                channel.latency_mode = mode;
            }
            if let Some(output) = patch.output {
                channel.output = output;
            }
            if let Some(policy) = patch.encoder_policy {
                channel.encoder_policy = policy;
            }
            if let Some(max) = patch.max_session_seconds {
                channel.max_session_seconds = max;
            }
            if let Some(recording) = patch.recording {
                channel.recording = recording;
            }
            if let Some(passphrase) = patch.srt_passphrase {
                channel.srt_passphrase = passphrase;
            }
            if let Some(playback) = patch.playback {
                channel.playback = playback;
            }
            if let Some(processing) = patch.processing {
                // A live ladder runs the processing it started with: changing
                // it means restarting the pipeline, which the caller must ask for.
                if processing != channel.processing && channel.current_session.is_some() && !patch.restart_now {
                    return Err(StoreError::LiveChange { channel: name.to_string(), field: "processing" });
                }
                channel.processing = processing;
            }
            validate_processing(&channel.processing, &channel.output)?;
            if let Some(window) = patch.dvr_window_seconds {
                channel.dvr_window_seconds = window;
            }
            channel.updated_ms = clock::now_ms();
            save(tx, &channel)?;
            append_event(tx, EventType::ChannelUpdated, name, Snapshot::Channel(Box::new(channel.clone())))?;
            Ok(channel)
        })
    }

    /// Starts a channel: publishes are accepted from now on.
    pub fn start_channel(&self, name: &str) -> Result<Channel, StoreError> {
        self.write(|tx| {
            let mut channel = load(tx, name)?;
            let (now, _) = lifecycle_of(tx, &channel)?;
            let step = lifecycle::transition(now, Event::Start).map_err(|r| refused(name, r))?;
            channel.state = step.next.channel;
            channel.updated_ms = clock::now_ms();
            save(tx, &channel)?;
            append_event(tx, EventType::ChannelStarted, name, Snapshot::Channel(Box::new(channel.clone())))?;
            Ok(channel)
        })
    }

    /// Stops a channel: publishes are refused from now on. Returns the session
    /// in progress, which the caller must end (its pipeline records the end).
    pub fn stop_channel(&self, name: &str) -> Result<(Channel, Option<(String, EndReason)>), StoreError> {
        self.write(|tx| {
            let mut channel = load(tx, name)?;
            let (now, _) = lifecycle_of(tx, &channel)?;
            let step = lifecycle::transition(now, Event::Stop).map_err(|r| refused(name, r))?;
            channel.state = step.next.channel;
            channel.updated_ms = clock::now_ms();
            save(tx, &channel)?;
            append_event(tx, EventType::ChannelStopped, name, Snapshot::Channel(Box::new(channel.clone())))?;
            let end = step.end_session.zip(channel.current_session.clone()).map(|(reason, id)| (id, reason));
            Ok((channel, end))
        })
    }

    /// Replaces the stream key; the old one is refused from this moment.
    pub fn rotate_stream_key(&self, name: &str) -> Result<Channel, StoreError> {
        self.write(|tx| {
            let mut channel = load(tx, name)?;
            let mut keys = tx.open_table(STREAM_KEYS)?;
            keys.remove(channel.stream_key.as_str())?;
            channel.stream_key = ids::stream_key();
            keys.insert(channel.stream_key.as_str(), name)?;
            drop(keys);
            channel.updated_ms = clock::now_ms();
            save(tx, &channel)?;
            append_event(tx, EventType::ChannelUpdated, name, Snapshot::Channel(Box::new(channel.clone())))?;
            Ok(channel)
        })
    }

    /// Gives the channel a backup stream key, or replaces it; the old one is
    /// refused from this moment (an input already publishing on it goes on).
    pub fn rotate_backup_key(&self, name: &str) -> Result<Channel, StoreError> {
        self.write(|tx| {
            let mut channel = load(tx, name)?;
            let mut keys = tx.open_table(STREAM_KEYS)?;
            if let Some(old) = &channel.backup_stream_key {
                keys.remove(old.as_str())?;
            }
            let key = ids::stream_key();
            keys.insert(key.as_str(), name)?;
            drop(keys);
            channel.backup_stream_key = Some(key);
            channel.updated_ms = clock::now_ms();
            save(tx, &channel)?;
            append_event(tx, EventType::ChannelUpdated, name, Snapshot::Channel(Box::new(channel.clone())))?;
            Ok(channel)
        })
    }

    /// Deletes a channel, its key and its sessions. A session in progress is
    /// recorded as ended (`channel-deleted`); its id is returned so the caller
    /// can tear its pipeline down.
    pub fn delete_channel(&self, name: &str) -> Result<(Channel, Option<String>), StoreError> {
        self.write(|tx| {
            let mut channel = load(tx, name)?;
            let (now, session) = lifecycle_of(tx, &channel)?;
            let step = lifecycle::transition(now, Event::Delete).map_err(|r| refused(name, r))?;
            let mut ended = None;
            if let (Some(reason), Some(session)) = (step.end_session, session) {
                ended = channel.current_session.clone();
                finish_session(tx, &mut channel, session, Event::End(reason), None, None)?;
            }
            let mut keys = tx.open_table(STREAM_KEYS)?;
            keys.remove(channel.stream_key.as_str())?;
            if let Some(backup) = &channel.backup_stream_key {
                keys.remove(backup.as_str())?;
            }
            drop(keys);
            tx.open_table(CHANNELS)?.remove(name)?;
            tx.open_table(SESSIONS)?.retain_in((name, "")..(name, "\u{10FFFF}"), |_, _| false)?;
            tx.open_table(RESTREAMS)?.retain_in((name, "")..(name, "\u{10FFFF}"), |_, _| false)?;
            append_event(tx, EventType::ChannelDeleted, name, Snapshot::Channel(Box::new(channel.clone())))?;
            Ok((channel, ended))
        })
    }

    /// `delete_channel` for callers that only need the channel.
    pub fn remove(&self, name: &str) -> Result<Channel, StoreError> {
        self.delete_channel(name).map(|(channel, _)| channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::EventType as E;
    use crate::state::InputRole;

    fn kinds(store: &Store) -> Vec<EventType> {
        store.list_events(None, 1000).unwrap().items.into_iter().map(|e| e.kind).collect()
    }

    #[test]
    fn channels_survive_reopening_and_keys_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = store.add("studio-1", LatencyMode::UltraLow).unwrap();
        let b = store.add("news", LatencyMode::Normal).unwrap();
        assert_ne!(a.stream_key, b.stream_key);
        assert_eq!(a.state, ChannelState::Active);
        assert!(matches!(store.add("news", LatencyMode::Low), Err(StoreError::Exists(_))));

        drop(store);
        let reopened = Store::open(dir.path()).unwrap();
        let names: Vec<String> = reopened.list().unwrap().into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["news", "studio-1"]);
        assert_eq!(reopened.by_stream_key(&a.stream_key).unwrap(), Some(a.clone()));
        assert_eq!(reopened.by_stream_key("sk_wrong").unwrap(), None);

        reopened.remove("studio-1").unwrap();
        assert_eq!(reopened.by_stream_key(&a.stream_key).unwrap(), None);
        assert!(matches!(reopened.remove("studio-1"), Err(StoreError::NotFound { .. })));
        assert_eq!(
            kinds(&reopened),
            [E::ChannelCreated, E::ChannelStarted, E::ChannelCreated, E::ChannelStarted, E::ChannelDeleted]
        );
    }

    #[test]
    fn start_stop_rotate_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let new = NewChannel { name: "cam".into(), max_session_seconds: Some(60), ..NewChannel::default() };
        let channel = store.create_channel(new, false).unwrap();
        assert_eq!(channel.state, ChannelState::Idle);
        assert_eq!(store.start_channel("cam").unwrap().state, ChannelState::Active);
        let again = store.start_channel("cam").unwrap_err();
        assert_eq!(again.to_string(), "channel \"cam\": the channel is already active");
        let (stopped, end) = store.stop_channel("cam").unwrap();
        assert_eq!((stopped.state, end), (ChannelState::Stopped, None));
        assert!(store.stop_channel("cam").is_err());

        let rotated = store.rotate_stream_key("cam").unwrap();
        assert_ne!(rotated.stream_key, channel.stream_key);
        assert_eq!(store.by_stream_key(&channel.stream_key).unwrap(), None);
        assert_eq!(store.by_stream_key(&rotated.stream_key).unwrap().unwrap().name, "cam");

        let patch = ChannelPatch { max_session_seconds: Some(None), ..ChannelPatch::default() };
        assert_eq!(store.update_channel("cam", patch).unwrap().max_session_seconds, None);
        let bad = ChannelPatch { max_session_seconds: Some(Some(0)), ..ChannelPatch::default() };
        assert_eq!(
            store.update_channel("cam", bad).unwrap_err().to_string(),
            "max_session_seconds: 0 is outside 1..=2592000"
        );
        assert_eq!(
            kinds(&store),
            [E::ChannelCreated, E::ChannelStarted, E::ChannelStopped, E::ChannelUpdated, E::ChannelUpdated]
        );
    }

    #[test]
    fn a_backup_key_resolves_rotates_and_goes_with_its_channel() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let plain = store.add("plain", LatencyMode::Low).unwrap();
        assert_eq!(plain.backup_stream_key, None, "a channel takes one publisher unless asked");
        let new = NewChannel { name: "cam".into(), backup: true, ..NewChannel::default() };
        let cam = store.create_channel(new, true).unwrap();
        let backup = cam.backup_stream_key.clone().unwrap();
        assert_ne!(backup, cam.stream_key);
        assert_eq!(store.by_stream_key(&backup).unwrap().unwrap().input_role(&backup), Some(InputRole::Backup));

        let rotated = store.rotate_backup_key("cam").unwrap();
        let new_backup = rotated.backup_stream_key.clone().unwrap();
        assert_ne!(new_backup, backup);
        assert_eq!(rotated.stream_key, cam.stream_key, "the primary key stays");
        assert_eq!(store.by_stream_key(&backup).unwrap(), None, "the old backup key is refused at once");
        assert_eq!(store.by_stream_key(&new_backup).unwrap().unwrap().name, "cam");
        // A channel without one gets one by rotation.
        let added = store.rotate_backup_key("plain").unwrap().backup_stream_key.unwrap();
        assert_eq!(store.by_stream_key(&added).unwrap().unwrap().name, "plain");

        store.remove("cam").unwrap();
        assert_eq!(store.by_stream_key(&new_backup).unwrap(), None, "deleted with its channel");
    }
}
