//! The state database: one redb file in the data directory holding channels,
//! stream keys, sessions, API tokens (hashed), webhook endpoints and the event
//! outbox with its deliveries. Every mutation is one write transaction that
//! also appends the events it causes, so a crash loses nothing committed and
//! never an event of a committed change.
//!
//! redb lets one process hold the file at a time. The server keeps it open
//! (`Store::open`: opening costs milliseconds, an operation on an open file
//! microseconds); the CLI opens it per operation (`Store::open_shared`). When
//! the CLI finds the file held, it leaves a handover request next to it
//! (`appliance.redb.handover`); the holder's watcher thread sees it within
//! 20 ms, closes the file and pauses its own operations until the request is
//! withdrawn (at most 5 s, then a request is treated as stale), and reopens
//! the file at its next operation. Inside a process operations take turns on
//! a mutex.

pub mod channels;
pub mod clock;
pub mod ids;
pub mod lifecycle;
pub mod outbox;
pub mod sessions;
pub mod tables;
pub mod tokens;
pub mod webhooks;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use redb::{Database, ReadTransaction, WriteTransaction};

pub use channels::{Channel, ChannelPatch, NewChannel, validate_name};
pub use lifecycle::{ChannelState, EndReason, Refusal, SessionState};
pub use outbox::{Delivery, DeliveryState, Event, EventType};
pub use sessions::{EncoderMoved, EncoderSlot, Session, SessionCheckpoint, SessionStats};
pub use tokens::{ApiToken, Scope};
pub use webhooks::WebhookEndpoint;

/// How long to keep retrying while another process holds the database.
const BUSY_RETRY: Duration = Duration::from_secs(5);
/// How often a holder looks for a handover request.
const HANDOVER_POLL: Duration = Duration::from_millis(20);
/// The longest a holder pauses for one request before treating it as stale.
const HANDOVER_MAX: Duration = Duration::from_secs(5);
/// redb's page cache. Its default (1 GiB) keeps every page the server has
/// read or written, so the process grew with the file (sessions and events
/// pile up: about 0.5 KB of heap per publish); the hot pages fit in far less.
const CACHE_BYTES: usize = 4 * 1024 * 1024;

/// Why a state operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("channel name {0:?} is invalid: use 1 to 64 of a-z, 0-9, '-' and '_'")]
    InvalidName(String),
    #[error("channel {0:?} already exists")]
    Exists(String),
    #[error("{what} {id:?} does not exist")]
    NotFound { what: &'static str, id: String },
    #[error("{what} {id:?}: {refusal}")]
    Refused { what: &'static str, id: String, refusal: Refusal },
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("state database {path}: {reason}")]
    Database { path: String, reason: String },
    /// The data disk is full: nothing was written; reads and other channels go on.
    #[error("state database {path}: the data disk is full ({reason}); nothing was changed")]
    StorageFull { path: String, reason: String },
    /// Reading or writing the file failed; the file is closed and reopened at the next operation.
    #[error("state database {path}: I/O error: {reason}")]
    Io { path: String, reason: String },
}

impl StoreError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> StoreError {
        StoreError::Invalid { field: field.into(), reason: reason.into() }
    }

    pub(crate) fn not_found(what: &'static str, id: &str) -> StoreError {
        StoreError::NotFound { what, id: id.to_string() }
    }

    fn database(reason: impl std::fmt::Display) -> StoreError {
        StoreError::Database { path: String::new(), reason: reason.to_string() }
    }

    /// Whether the file must be closed and reopened before the next operation
    /// (redb refuses every operation after an I/O error until then). Such a
    /// failure is transient: the same operation may succeed once there is room.
    pub fn needs_reopen(&self) -> bool {
        matches!(self, StoreError::StorageFull { .. } | StoreError::Io { .. })
    }
}

impl From<redb::Error> for StoreError {
    fn from(e: redb::Error) -> Self {
        let path = String::new();
        match e {
            redb::Error::Io(io) if is_disk_full(&io) => StoreError::StorageFull { path, reason: io.to_string() },
            redb::Error::Io(io) => StoreError::Io { path, reason: io.to_string() },
            redb::Error::PreviousIo => StoreError::Io { path, reason: "an earlier I/O error".into() },
            other => StoreError::database(other),
        }
    }
}

/// ENOSPC, or a quota (EDQUOT): the disk cannot take the write.
fn is_disk_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull || e.kind() == std::io::ErrorKind::QuotaExceeded
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                redb::Error::from(e).into()
            }
        }
    )*};
}
from_redb!(redb::DatabaseError, redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError);

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::database(e)
    }
}

/// Handle on the state database file; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    /// Keep the file open between operations (the server) or not (the CLI).
    hold: bool,
    /// Written into this handle's handover requests, so its watcher ignores them.
    id: String,
    /// The open file, when held; one operation at a time in this process.
    db: Mutex<Option<Database>>,
    /// Woken after every committed write: the webhook worker looks for new deliveries.
    changed: tokio::sync::Notify,
}

impl Store {
    /// Opens (creating if needed) the database in `data_dir`, creates missing
    /// tables, and keeps the file open, handing it over when another process asks.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let store = Self::new(data_dir, true)?;
        let watched = Arc::downgrade(&store.inner);
        std::thread::Builder::new()
            .name("state-handover".into())
            .spawn(move || watch_handover(watched))
            .map_err(|e| StoreError::database(format!("cannot start the handover watcher: {e}")))?;
        Ok(store)
    }

    /// Opens the database for a short-lived process (the CLI): the file is
    /// opened per operation and closed after it, asking a holder to hand it over.
    pub fn open_shared(data_dir: &Path) -> Result<Self, StoreError> {
        Self::new(data_dir, false)
    }

    fn new(data_dir: &Path, hold: bool) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Database {
            path: data_dir.display().to_string(),
            reason: format!("cannot create the data directory: {e}"),
        })?;
        let store = Self {
            inner: Arc::new(Inner {
                path: data_dir.join("appliance.redb"),
                hold,
                id: format!("{}-{}", std::process::id(), ids::secret()),
                db: Mutex::new(None),
                changed: tokio::sync::Notify::new(),
            }),
        };
        store.write(|tx| Ok(tables::create_all(tx)?))?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Notified after each committed write.
    pub fn changed(&self) -> &tokio::sync::Notify {
        &self.inner.changed
    }

    fn with_db<T>(&self, f: impl FnOnce(&Database) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut held = self.inner.db.lock().unwrap_or_else(|e| e.into_inner());
        let db = match held.take() {
            Some(db) => db,
            None => self.acquire()?,
        };
        let result = f(&db).map_err(|e| self.located(e));
        if let Err(e) = &result
            && e.needs_reopen()
        {
            // redb refuses everything after an I/O error until the file is reopened:
            // close it now, so the next operation (once the disk has room) works again.
            tracing::error!(alert = "state-io", error = %e, "state database closed after an I/O error; it reopens at the next operation");
            drop(db);
            return result;
        }
        if self.inner.hold {
            *held = Some(db);
        } else {
            drop(db);
            self.withdraw_request();
        }
        result
    }

    /// Opens the file, asking its holder (if any) to hand it over.
    fn acquire(&self) -> Result<Database, StoreError> {
        let deadline = Instant::now() + BUSY_RETRY;
        let mut requested = false;
        loop {
            match Database::builder().set_cache_size(CACHE_BYTES).create(&self.inner.path) {
                Ok(db) => {
                    if self.inner.hold && requested {
                        self.withdraw_request();
                    }
                    return Ok(db);
                }
                Err(redb::DatabaseError::DatabaseAlreadyOpen) if Instant::now() < deadline => {
                    if !requested {
                        requested = std::fs::write(self.handover_path(), &self.inner.id).is_ok();
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                    self.withdraw_request();
                    return Err(self.located(StoreError::database(
                        "another process has held the database for over 5 s (is a command stuck?)",
                    )));
                }
                Err(e) => {
                    self.withdraw_request();
                    return Err(self.located(e.into()));
                }
            }
        }
    }

    fn handover_path(&self) -> PathBuf {
        self.inner.path.with_extension("redb.handover")
    }

    /// Removes this handle's handover request, if it is the one there.
    fn withdraw_request(&self) {
        let path = self.handover_path();
        if std::fs::read_to_string(&path).is_ok_and(|id| id == self.inner.id) {
            let _ = std::fs::remove_file(path);
        }
    }

    fn located(&self, e: StoreError) -> StoreError {
        match e {
            StoreError::Database { path, reason } if path.is_empty() => {
                StoreError::Database { path: self.inner.path.display().to_string(), reason }
            }
            StoreError::StorageFull { path, reason } if path.is_empty() => {
                StoreError::StorageFull { path: self.inner.path.display().to_string(), reason }
            }
            StoreError::Io { path, reason } if path.is_empty() => {
                StoreError::Io { path: self.inner.path.display().to_string(), reason }
            }
            other => other,
        }
    }

    /// Runs `f` in a read transaction.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&ReadTransaction) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.with_db(|db| f(&db.begin_read()?))
    }

    /// Runs `f` in one write transaction, committed only if `f` succeeds.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let value = self.write_quietly(f)?;
        self.inner.changed.notify_one();
        Ok(value)
    }

    /// `write` for a change that appends no event: the webhook worker is not woken.
    pub(crate) fn write_quietly<T>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_db(|db| {
            let tx = db.begin_write()?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })
    }
}

/// The holder's side of the handover: closes the file when another handle
/// asks for it and pauses this handle's operations until the request goes.
fn watch_handover(inner: Weak<Inner>) {
    loop {
        std::thread::sleep(HANDOVER_POLL);
        let Some(inner) = inner.upgrade() else { return };
        let path = inner.path.with_extension("redb.handover");
        let Ok(request) = std::fs::read_to_string(&path) else { continue };
        if request == inner.id {
            continue;
        }
        let mut held = inner.db.lock().unwrap_or_else(|e| e.into_inner());
        if held.take().is_none() {
            continue;
        }
        tracing::debug!(path = %inner.path.display(), "state database handed over to another process");
        let since = Instant::now();
        while std::fs::read_to_string(&path).is_ok_and(|r| r == request) {
            if since.elapsed() > HANDOVER_MAX {
                tracing::warn!(path = %path.display(), "stale state database handover request removed");
                let _ = std::fs::remove_file(&path);
                break;
            }
            std::thread::sleep(HANDOVER_POLL);
        }
        drop(held);
    }
}

/// One page of a list, and the cursor of the next (absent on the last page).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// `items` holds up to `limit + 1` entries: one more than the page means another page follows.
    pub(crate) fn from_items(mut items: Vec<T>, limit: usize, cursor_of: impl Fn(&T) -> String) -> Page<T> {
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(cursor_of)
        } else {
            None
        };
        Page { items, next_cursor }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), next_cursor: self.next_cursor }
    }
}

/// Reads a JSON record.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    Ok(serde_json::from_slice(bytes)?)
}

/// Writes a JSON record.
pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("state records always serialise")
}
