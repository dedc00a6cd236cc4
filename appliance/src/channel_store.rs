//! Channels and their stream keys in one redb file. Every mutation is one
//! transaction. The file is opened per operation so the CLI and a running
//! server can both use it (redb allows one process at a time; a busy file is
//! retried briefly).

// redb::Error is large; it only travels on the rare failure path of a disk operation.
#![allow(clippy::result_large_err)]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use media::LatencyMode;
use rand::Rng;
use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

/// name -> channel (JSON).
const CHANNELS: TableDefinition<&str, &[u8]> = TableDefinition::new("channels");
/// stream key -> channel name.
const STREAM_KEYS: TableDefinition<&str, &str> = TableDefinition::new("stream_keys");

/// How long to keep retrying while another process holds the database.
const BUSY_RETRY: Duration = Duration::from_secs(5);

/// A channel an operator created: where one broadcaster publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    pub name: String,
    pub stream_key: String,
    pub latency_mode: LatencyMode,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("channel name {0:?} is invalid: use 1 to 64 of a-z, 0-9, '-' and '_'")]
    InvalidName(String),
    #[error("channel {0:?} already exists")]
    Exists(String),
    #[error("channel {0:?} does not exist")]
    NotFound(String),
    #[error("state database {path}: {reason}")]
    Database { path: String, reason: String },
}

/// Handle on the state database file.
#[derive(Debug, Clone)]
pub struct ChannelStore {
    path: PathBuf,
}

impl ChannelStore {
    /// Opens (creating if needed) the database in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Database {
            path: data_dir.display().to_string(),
            reason: format!("cannot create the data directory: {e}"),
        })?;
        let store = Self { path: data_dir.join("appliance.redb") };
        store.with_db(|db| {
            let tx = db.begin_write()?;
            tx.open_table(CHANNELS)?;
            tx.open_table(STREAM_KEYS)?;
            tx.commit()?;
            Ok(())
        })?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with_db<T>(&self, f: impl Fn(&Database) -> Result<T, redb::Error>) -> Result<T, StoreError> {
        let fail = |reason: String| StoreError::Database { path: self.path.display().to_string(), reason };
        let deadline = std::time::Instant::now() + BUSY_RETRY;
        let db = loop {
            match Database::create(&self.path) {
                Ok(db) => break db,
                Err(redb::DatabaseError::DatabaseAlreadyOpen) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(fail(e.to_string())),
            }
        };
        f(&db).map_err(|e| fail(e.to_string()))
    }

    /// Creates a channel with a fresh stream key.
    pub fn add(&self, name: &str, latency_mode: LatencyMode) -> Result<Channel, StoreError> {
        validate_name(name)?;
        let channel = Channel {
            name: name.to_string(),
            stream_key: new_stream_key(),
            latency_mode,
            created_at: SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        };
        let json = serde_json::to_vec(&channel).expect("a channel always serialises");
        let inserted = self.with_db(|db| {
            let tx = db.begin_write()?;
            {
                let mut channels = tx.open_table(CHANNELS)?;
                if channels.get(name)?.is_some() {
                    return Ok(false);
                }
                channels.insert(name, json.as_slice())?;
                tx.open_table(STREAM_KEYS)?.insert(channel.stream_key.as_str(), name)?;
            }
            tx.commit()?;
            Ok(true)
        })?;
        if inserted { Ok(channel) } else { Err(StoreError::Exists(name.to_string())) }
    }

    /// Removes a channel and its stream key.
    pub fn remove(&self, name: &str) -> Result<Channel, StoreError> {
        let removed = self.with_db(|db| {
            let tx = db.begin_write()?;
            let channel = {
                let mut channels = tx.open_table(CHANNELS)?;
                let Some(json) = channels.remove(name)? else { return Ok(None) };
                let channel: Option<Channel> = serde_json::from_slice(json.value()).ok();
                drop(json);
                if let Some(channel) = &channel {
                    tx.open_table(STREAM_KEYS)?.remove(channel.stream_key.as_str())?;
                }
                channel
            };
            tx.commit()?;
            Ok(channel)
        })?;
        removed.ok_or_else(|| StoreError::NotFound(name.to_string()))
    }

    pub fn list(&self) -> Result<Vec<Channel>, StoreError> {
        self.with_db(|db| {
            let tx = db.begin_read()?;
            let channels = tx.open_table(CHANNELS)?;
            let mut out = Vec::new();
            for entry in channels.iter()? {
                let (_, json) = entry?;
                out.extend(serde_json::from_slice::<Channel>(json.value()).ok());
            }
            Ok(out)
        })
    }

    pub fn get(&self, name: &str) -> Result<Option<Channel>, StoreError> {
        self.with_db(|db| {
            let tx = db.begin_read()?;
            let channels = tx.open_table(CHANNELS)?;
            Ok(channels.get(name)?.and_then(|json| serde_json::from_slice(json.value()).ok()))
        })
    }

    /// The channel a stream key publishes to.
    pub fn by_stream_key(&self, key: &str) -> Result<Option<Channel>, StoreError> {
        self.with_db(|db| {
            let tx = db.begin_read()?;
            let Some(name) = tx.open_table(STREAM_KEYS)?.get(key)?.map(|n| n.value().to_string()) else {
                return Ok(None);
            };
            let channels = tx.open_table(CHANNELS)?;
            Ok(channels.get(name.as_str())?.and_then(|json| serde_json::from_slice(json.value()).ok()))
        })
    }
}

/// Channel names appear in URLs and logs: a strict slug.
pub fn validate_name(name: &str) -> Result<(), StoreError> {
    let ok = (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok { Ok(()) } else { Err(StoreError::InvalidName(name.to_string())) }
}

/// 32 random alphanumerics (about 190 bits) behind a recognisable prefix.
fn new_stream_key() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let body: String = (0..32).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
    format!("sk_{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_survive_reopening_and_keys_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let store = ChannelStore::open(dir.path()).unwrap();
        let a = store.add("studio-1", LatencyMode::UltraLow).unwrap();
        let b = store.add("news", LatencyMode::Normal).unwrap();
        assert_ne!(a.stream_key, b.stream_key);
        assert!(matches!(store.add("news", LatencyMode::Low), Err(StoreError::Exists(_))));

        let reopened = ChannelStore::open(dir.path()).unwrap();
        let mut names: Vec<String> = reopened.list().unwrap().into_iter().map(|c| c.name).collect();
        names.sort();
        assert_eq!(names, ["news", "studio-1"]);
        assert_eq!(reopened.by_stream_key(&a.stream_key).unwrap(), Some(a.clone()));
        assert_eq!(reopened.by_stream_key("sk_wrong").unwrap(), None);

        reopened.remove("studio-1").unwrap();
        assert_eq!(reopened.by_stream_key(&a.stream_key).unwrap(), None);
        assert!(matches!(reopened.remove("studio-1"), Err(StoreError::NotFound(_))));
    }

    #[test]
    fn names_are_slugs() {
        for good in ["a", "demo", "studio_2-main", &"x".repeat(64)] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Demo", "a b", "../x", "é", &"x".repeat(65), "a/b"] {
            assert_eq!(
                validate_name(bad).unwrap_err().to_string(),
                format!("channel name {bad:?} is invalid: use 1 to 64 of a-z, 0-9, '-' and '_'")
            );
        }
    }
}
