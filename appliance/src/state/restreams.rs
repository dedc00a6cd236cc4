//! Restream destinations of channels: added, changed and removed through
//! the API; read by a session when it starts (each enabled destination is an
//! output of it), and the `restream.*` events the sessions report.

use redb::ReadableTable;

use super::error::StoreError;
use super::records::restream::{
    MAX_PER_CHANNEL, NewRestream, RestreamDestination, RestreamPatch, RestreamReport, SOURCE, validate_description,
    validate_key, validate_rendition, validate_url,
};
use super::records::{Event, EventType, Snapshot};
use super::rows::{append_event, decode, encode};
use super::store::Store;
use super::tables::{CHANNELS, RESTREAMS};
use super::{clock, ids};

fn check_new(new: &NewRestream) -> Result<(), StoreError> {
    validate_url(&new.url)?;
    new.key.as_deref().map_or(Ok(()), validate_key)?;
    new.rendition.as_deref().map_or(Ok(()), validate_rendition)?;
    new.description.as_deref().map_or(Ok(()), validate_description)
}

fn check_patch(patch: &RestreamPatch) -> Result<(), StoreError> {
    patch.url.as_deref().map_or(Ok(()), validate_url)?;
    // An empty key removes the key.
    patch.key.as_deref().filter(|k| !k.is_empty()).map_or(Ok(()), validate_key)?;
    patch.rendition.as_deref().map_or(Ok(()), validate_rendition)?;
    patch.description.as_deref().map_or(Ok(()), validate_description)
}

impl Store {
    /// Adds a destination to `channel`; sessions that start from now on send to it.
    pub fn add_restream(&self, channel: &str, new: NewRestream) -> Result<RestreamDestination, StoreError> {
        check_new(&new)?;
        let destination = RestreamDestination {
            id: ids::public_id("rs"),
            channel: channel.to_string(),
            url: new.url,
            key: new.key.filter(|k| !k.is_empty()),
            rendition: new.rendition.unwrap_or_else(|| SOURCE.to_string()),
            enabled: new.enabled.unwrap_or(true),
            description: new.description,
            created_ms: clock::now_ms(),
        };
        self.write(|tx| {
            if tx.open_table(CHANNELS)?.get(channel)?.is_none() {
                return Err(StoreError::not_found("channel", channel));
            }
            let mut table = tx.open_table(RESTREAMS)?;
            let count = table
                .range((channel, "")..)?
                .take_while(|e| e.as_ref().is_ok_and(|(k, _)| k.value().0 == channel))
                .count();
            if count >= MAX_PER_CHANNEL {
                return Err(StoreError::invalid(
                    "url",
                    format!("a channel has at most {MAX_PER_CHANNEL} destinations"),
                ));
            }
            table.insert((channel, destination.id.as_str()), encode(&destination).as_slice())?;
            Ok(())
        })?;
        Ok(destination)
    }

    /// A channel's destinations, oldest first (by id within a millisecond).
    pub fn restreams(&self, channel: &str) -> Result<Vec<RestreamDestination>, StoreError> {
        self.read(|tx| {
            let table = tx.open_table(RESTREAMS)?;
            let mut destinations: Vec<RestreamDestination> = Vec::new();
            for entry in table.range((channel, "")..)? {
                let (key, value) = entry?;
                if key.value().0 != channel {
                    break;
                }
                destinations.push(decode(value.value())?);
            }
            destinations.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
            Ok(destinations)
        })
    }

    pub fn update_restream(
        &self,
        channel: &str,
        id: &str,
        patch: RestreamPatch,
    ) -> Result<RestreamDestination, StoreError> {
        check_patch(&patch)?;
        self.write(|tx| {
            let mut table = tx.open_table(RESTREAMS)?;
            let current: Option<RestreamDestination> =
                table.get((channel, id))?.map(|v| decode(v.value())).transpose()?;
            let mut destination = current.ok_or_else(|| StoreError::not_found("restream destination", id))?;
            if let Some(url) = patch.url {
                destination.url = url;
            }
            if let Some(key) = patch.key {
                destination.key = Some(key).filter(|k| !k.is_empty());
            }
            if let Some(rendition) = patch.rendition {
                destination.rendition = rendition;
            }
            if let Some(enabled) = patch.enabled {
                destination.enabled = enabled;
            }
            if let Some(description) = patch.description {
                destination.description = Some(description).filter(|d| !d.is_empty());
            }
            table.insert((channel, id), encode(&destination).as_slice())?;
            Ok(destination)
        })
    }

    pub fn delete_restream(&self, channel: &str, id: &str) -> Result<RestreamDestination, StoreError> {
        self.write(|tx| {
            let removed: Option<RestreamDestination> =
                tx.open_table(RESTREAMS)?.remove((channel, id))?.map(|v| decode(v.value())).transpose()?;
            removed.ok_or_else(|| StoreError::not_found("restream destination", id))
        })
    }

    /// Appends `restream.connected` or `restream.failed` for a session of `channel`.
    pub fn record_restream_event(
        &self,
        channel: &str,
        kind: EventType,
        report: RestreamReport,
    ) -> Result<Event, StoreError> {
        self.write(|tx| append_event(tx, kind, channel, Snapshot::Restream(Box::new(report))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use media::LatencyMode;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    fn new(url: &str) -> NewRestream {
        NewRestream { url: url.into(), key: Some("secret-key".into()), ..NewRestream::default() }
    }

    #[test]
    fn destinations_are_kept_per_channel_and_changed_in_place() {
        let (_dir, store) = store();
        store.add("show", LatencyMode::Low).unwrap();
        store.add("other", LatencyMode::Low).unwrap();
        let first = store.add_restream("show", new("rtmp://a.example/live")).unwrap();
        let second = store.add_restream("show", new("srt://10.0.0.2:9000")).unwrap();
        store.add_restream("other", new("rtmp://b.example/live")).unwrap();
        let listed = store.restreams("show").unwrap();
        let mut ids: Vec<&str> = listed.iter().map(|d| d.id.as_str()).collect();
        ids.sort();
        let mut wanted = [first.id.as_str(), second.id.as_str()];
        wanted.sort();
        assert_eq!(ids, wanted, "the channel's two, not the other channel's");
        assert!(listed.iter().all(|d| d.rendition == SOURCE && d.enabled));

        let patch = RestreamPatch { enabled: Some(false), rendition: Some("720p".into()), ..RestreamPatch::default() };
        let changed = store.update_restream("show", &first.id, patch).unwrap();
        assert!(!changed.enabled);
        assert_eq!(changed.key.as_deref(), Some("secret-key"), "a patch without a key keeps it");
        store.delete_restream("show", &second.id).unwrap();
        assert_eq!(store.restreams("show").unwrap().len(), 1);
        assert!(matches!(store.delete_restream("show", &second.id), Err(StoreError::NotFound { .. })));
    }

    #[test]
    fn bad_destinations_are_refused_and_unknown_channels_too() {
        let (_dir, store) = store();
        store.add("show", LatencyMode::Low).unwrap();
        assert!(matches!(store.add_restream("show", new("http://x/")), Err(StoreError::Invalid { .. })));
        assert!(matches!(store.add_restream("nope", new("rtmp://x/app")), Err(StoreError::NotFound { .. })));
        for _ in 0..MAX_PER_CHANNEL {
            store.add_restream("show", new("rtmp://x/app")).unwrap();
        }
        assert!(matches!(store.add_restream("show", new("rtmp://x/app")), Err(StoreError::Invalid { .. })));
    }
}
