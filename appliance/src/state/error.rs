//! Why a state operation failed: one error type for every transaction, with
//! the classifiers (`is_busy`, `needs_reopen`) that callers choose their
//! answer by.

use super::lifecycle::Refusal;

/// Why a state operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("channel name {0:?} is invalid: use 1 to 64 of a-z, 0-9, '-' and '_'")]
    InvalidName(String),
    #[error("channel {0:?} already exists")]
    Exists(String),
    #[error("{what} {id:?} does not exist")]
    NotFound { what: &'static str, id: String },
    /// Another record of that kind has the name (a user, ...).
    #[error("{what} {id:?} already exists")]
    Duplicate { what: &'static str, id: String },
    #[error("{what} {id:?}: {refusal}")]
    Refused { what: &'static str, id: String, refusal: Refusal },
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// A change that would alter a live session's pipeline, asked without restarting it.
    #[error(
        "channel {channel:?} is live: {field} would change its running pipeline; it applies from the next session, or add ?restart=now to restart the pipeline now (a discontinuity, no end of stream)"
    )]
    LiveChange { channel: String, field: &'static str },
    /// Another process holds the file (redb lets one process open it at a
    /// time): a running `appliance serve` that did not answer on its control
    /// socket, or another command. Nothing was read or changed.
    #[error(
        "state database {path} is held by another process (an `appliance serve` that does not answer on its control socket, or another command); nothing was changed"
    )]
    Busy { path: String },
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

    pub(crate) fn database(reason: impl std::fmt::Display) -> StoreError {
        StoreError::Database { path: String::new(), reason: reason.to_string() }
    }

    /// Whether another process holds the file: retrying later (or asking
    /// that process) may work; nothing is wrong with the file.
    pub fn is_busy(&self) -> bool {
        matches!(self, StoreError::Busy { .. })
    }

    /// Whether the file must be closed and reopened before the next operation
    /// (redb refuses every operation after an I/O error until then). Such a
    /// failure is transient: the same operation may succeed once there is room.
    pub fn needs_reopen(&self) -> bool {
        matches!(self, StoreError::StorageFull { .. } | StoreError::Io { .. })
    }

    /// The error with the database file's path filled in where it was left empty.
    pub(crate) fn located(self, file: &std::path::Path) -> StoreError {
        let here = || file.display().to_string();
        match self {
            StoreError::Busy { path } if path.is_empty() => StoreError::Busy { path: here() },
            StoreError::Database { path, reason } if path.is_empty() => StoreError::Database { path: here(), reason },
            StoreError::StorageFull { path, reason } if path.is_empty() => {
                StoreError::StorageFull { path: here(), reason }
            }
            StoreError::Io { path, reason } if path.is_empty() => StoreError::Io { path: here(), reason },
            other => other,
        }
    }
}

impl From<redb::Error> for StoreError {
    fn from(e: redb::Error) -> Self {
        let path = String::new();
        match e {
            redb::Error::DatabaseAlreadyOpen => StoreError::Busy { path },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_held_elsewhere_is_busy_and_says_where() {
        let busy = StoreError::from(redb::DatabaseError::DatabaseAlreadyOpen).located("/data/appliance.redb".as_ref());
        assert!(busy.is_busy() && !busy.needs_reopen());
        assert!(
            busy.to_string().starts_with("state database /data/appliance.redb is held by another process"),
            "{busy}"
        );
        let other = StoreError::database("x");
        assert!(!other.is_busy());
    }
}
