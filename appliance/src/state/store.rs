//! The handle on the state file: opens it (creating the tables), and runs
//! read and write transactions on it, one at a time in this process.
//!
//! redb lets one process hold the file at a time. The server keeps it open
//! for its whole life (opening costs milliseconds, an operation on an open
//! file microseconds); the CLI's commands go through the running server's
//! control socket and open the file themselves only when no server runs.
//! A second opener is refused at once with `StoreError::Busy`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use redb::{Database, ReadTransaction, WriteTransaction};

use super::audit_trail::{self, AuditRetention};
use super::error::StoreError;
use super::page::Page;
use super::records::{AuditEntry, AuditNote};
use super::tables;

/// redb's page cache. Its default (1 GiB) keeps every page the server has
/// read or written, so the process grew with the file (sessions and events
/// pile up: about 0.5 KB of heap per publish); the hot pages fit in far less.
const CACHE_BYTES: usize = 4 * 1024 * 1024;

/// Handle on the state database file; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
    /// Set on a handle `acting` for someone: the next committed write carries its audit entry.
    acting: Option<Arc<Acting>>,
}

#[derive(Debug)]
struct Acting {
    note: AuditNote,
    /// Whether a committed write carried the note (it is written once).
    written: AtomicBool,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    /// The open file; `None` after an I/O error closed it (reopened at the
    /// next operation). One operation at a time in this process.
    db: Mutex<Option<Database>>,
    /// Woken after every committed write: the webhook worker looks for new deliveries.
    changed: tokio::sync::Notify,
    /// How long and how many audit entries are kept.
    audit_retention: Mutex<AuditRetention>,
    /// Bumped after every committed write that may append events: the live event feeds look.
    written: tokio::sync::watch::Sender<u64>,
}

impl Store {
    /// Opens (creating if needed) the database in `data_dir`, creates missing
    /// tables, and keeps the file open until the last handle goes.
    /// `StoreError::Busy` when another process holds it.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Database {
            path: data_dir.display().to_string(),
            reason: format!("cannot create the data directory: {e}"),
        })?;
        let path = data_dir.join("appliance.redb");
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|e| StoreError::from(e).located(&path))?;
        let inner = Inner {
            path,
            db: Mutex::new(Some(db)),
            changed: tokio::sync::Notify::new(),
            written: tokio::sync::watch::Sender::new(0),
            audit_retention: Mutex::new(AuditRetention::default()),
        };
        let store = Self { inner: Arc::new(inner), acting: None };
        store.write(|tx| Ok(tables::create_all(tx)?))?;
        Ok(store)
    }

    /// A handle whose next committed write also appends `note` to the audit
    /// log, in the same transaction (a change that fails writes no entry).
    pub fn acting(&self, note: AuditNote) -> Store {
        Store { inner: self.inner.clone(), acting: Some(Arc::new(Acting { note, written: AtomicBool::new(false) })) }
    }

    /// Appends `note` on its own: for changes outside the state file (the admin's password file).
    pub fn record_audit(&self, note: AuditNote) -> Result<AuditEntry, StoreError> {
        let retention = self.audit_retention();
        self.write_quietly(|tx| audit_trail::append(tx, &note, retention))
    }

    /// The audit log after `after` (a sequence), oldest first.
    pub fn list_audit(&self, after: Option<u64>, limit: usize) -> Result<Page<AuditEntry>, StoreError> {
        self.read(|tx| audit_trail::list(tx, after, limit))
    }

    /// How long and how many audit entries are kept from now on.
    pub fn set_audit_retention(&self, retention: AuditRetention) {
        *self.inner.audit_retention.lock().unwrap_or_else(|e| e.into_inner()) = retention;
    }

    fn audit_retention(&self) -> AuditRetention {
        *self.inner.audit_retention.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Notified after each committed write.
    pub fn changed(&self) -> &tokio::sync::Notify {
        &self.inner.changed
    }

    fn with_db<T>(&self, f: impl FnOnce(&Database) -> Result<T, StoreError>) -> Result<T, StoreError> {
        // A panic inside an earlier operation leaves at worst an uncommitted
        // transaction, which redb rolls back: the file handle stays usable.
        let mut held = self.inner.db.lock().unwrap_or_else(|e| e.into_inner());
        let db = match held.take() {
            Some(db) => db,
            None => Database::builder()
                .set_cache_size(CACHE_BYTES)
                .create(&self.inner.path)
                .map_err(|e| StoreError::from(e).located(&self.inner.path))?,
        };
        let result = f(&db).map_err(|e| e.located(&self.inner.path));
        if let Err(e) = &result
            && e.needs_reopen()
        {
            // redb refuses everything after an I/O error until the file is reopened:
            // close it now, so the next operation (once the disk has room) works again.
            tracing::error!(alert = "state-io", error = %e, "state database closed after an I/O error; it reopens at the next operation");
            drop(db);
            return result;
        }
        *held = Some(db);
        result
    }

    /// Changes after every committed write that may have appended events (any number of watchers).
    pub fn watch_writes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.written.subscribe()
    }

    /// Runs `f` in a read transaction.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&ReadTransaction) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.with_db(|db| f(&db.begin_read()?))
    }

    /// Runs `f` in one write transaction, committed only if `f` succeeds.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let value = self.write_quietly(f)?;
        self.inner.changed.notify_one();
        self.inner.written.send_modify(|n| *n = n.wrapping_add(1));
        Ok(value)
    }

    /// `write` for a change that appends no event: the webhook worker is not woken.
    pub(crate) fn write_quietly<T>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pending = self.acting.as_ref().filter(|a| !a.written.load(Ordering::Acquire));
        let retention = pending.map(|_| self.audit_retention());
        self.with_db(|db| {
            let tx = db.begin_write()?;
            let value = f(&tx)?;
            if let (Some(acting), Some(retention)) = (pending, retention) {
                audit_trail::append(&tx, &acting.note, retention)?;
            }
            tx.commit()?;
            if let Some(acting) = pending {
                acting.written.store(true, Ordering::Release);
            }
            Ok(value)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_opener_is_refused_at_once_as_busy_until_the_first_goes() {
        let dir = tempfile::tempdir().unwrap();
        let first = Store::open(dir.path()).unwrap();
        let started = std::time::Instant::now();
        let second = Store::open(dir.path()).unwrap_err();
        assert!(second.is_busy(), "{second}");
        assert!(second.to_string().contains(&first.path().display().to_string()), "{second}");
        eprintln!("busy refusal took {:?}", started.elapsed());
        drop(first);
        Store::open(dir.path()).expect("free again once the holder closed it");
    }
}
