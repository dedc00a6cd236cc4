//! The audit log in the state file: an entry appended inside the write
//! transaction of the change it records (`Store::acting` gives a handle whose
//! next committed write carries the note), with a bounded retention (the
//! oldest entries go past `max_entries` or `max_age_days`, trimmed a few at
//! each append), and its list, oldest first. Changes that are not in the
//! state file (the admin's password file) get an entry of their own
//! (`Store::record_audit`) once they are made.

use std::ops::Bound;

use redb::{ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::clock;
use super::error::StoreError;
use super::page::Page;
use super::records::audit::{AuditEntry, AuditNote};
use super::rows::{decode, encode, next_sequence};
use super::tables::AUDIT;

/// How long and how many entries are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditRetention {
    pub max_entries: u64,
    pub max_age_ms: u64,
}

impl Default for AuditRetention {
    fn default() -> Self {
        AuditRetention { max_entries: 10_000, max_age_ms: 90 * 86_400_000 }
    }
}

/// Entries removed at most per append: trimming never makes one change slow
/// (after a retention cut, the excess goes over the next changes).
const TRIM_PER_APPEND: usize = 64;

/// Appends `note` inside `tx` and trims what the retention no longer keeps.
pub(crate) fn append(
    tx: &WriteTransaction,
    note: &AuditNote,
    retention: AuditRetention,
) -> Result<AuditEntry, StoreError> {
    let now = clock::now_ms();
    let sequence = next_sequence(tx, "next_audit_sequence")?;
    let entry = AuditEntry {
        sequence,
        at_ms: now,
        actor: note.actor.clone(),
        action: note.action,
        target: note.target.clone(),
        detail: note.detail.clone(),
    };
    let mut table = tx.open_table(AUDIT)?;
    table.insert(sequence, encode(&entry).as_slice())?;
    let mut excess = table.len()?.saturating_sub(retention.max_entries);
    let oldest_kept = now.saturating_sub(retention.max_age_ms);
    let mut doomed = Vec::new();
    for item in table.iter()?.take(TRIM_PER_APPEND) {
        let (key, value) = item?;
        let old: AuditEntry = decode(value.value())?;
        if excess == 0 && old.at_ms >= oldest_kept {
            break;
        }
        excess = excess.saturating_sub(1);
        doomed.push(key.value());
    }
    for key in doomed {
        table.remove(key)?;
    }
    Ok(entry)
}

/// Entries after `after` (a sequence), oldest first.
pub(crate) fn list(
    tx: &redb::ReadTransaction,
    after: Option<u64>,
    limit: usize,
) -> Result<Page<AuditEntry>, StoreError> {
    let table = tx.open_table(AUDIT)?;
    let start = after.map_or(Bound::Unbounded, Bound::Excluded);
    let mut items = Vec::new();
    for entry in table.range::<u64>((start, Bound::Unbounded))?.take(limit + 1) {
        items.push(decode::<AuditEntry>(entry?.1.value())?);
    }
    Ok(Page::from_items(items, limit, |e| e.sequence.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Store;
    use crate::state::records::AuditAction;

    fn note(target: &str) -> AuditNote {
        AuditNote { actor: "tok_a".into(), action: AuditAction::ChannelCreated, target: target.into(), detail: None }
    }

    #[test]
    fn an_acting_handle_writes_its_entry_with_its_first_committed_change_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let acting = store.acting(note("cam"));
        // A change that fails writes nothing.
        assert!(
            acting
                .create_channel(crate::state::NewChannel { name: "Bad Name".into(), ..Default::default() }, false)
                .is_err()
        );
        assert!(store.list_audit(None, 10).unwrap().items.is_empty());
        acting.add("cam", media::LatencyMode::Low).unwrap();
        acting.stop_channel("cam").unwrap();
        let entries = store.list_audit(None, 10).unwrap().items;
        assert_eq!(entries.len(), 1, "one entry for the handle: {entries:?}");
        assert_eq!((entries[0].sequence, entries[0].target.as_str(), entries[0].actor.as_str()), (1, "cam", "tok_a"));
        // A plain handle writes none.
        store.start_channel("cam").unwrap();
        assert_eq!(store.list_audit(None, 10).unwrap().items.len(), 1);
    }

    #[test]
    fn retention_keeps_the_newest_entries_by_count_and_by_age() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.set_audit_retention(AuditRetention { max_entries: 3, max_age_ms: 86_400_000 });
        for i in 0..5 {
            store.record_audit(note(&format!("c{i}"))).unwrap();
        }
        let kept: Vec<u64> = store.list_audit(None, 10).unwrap().items.iter().map(|e| e.sequence).collect();
        assert_eq!(kept, [3, 4, 5]);
        let page = store.list_audit(Some(3), 1).unwrap();
        assert_eq!((page.items[0].sequence, page.next_cursor.as_deref()), (4, Some("4")));
        // By age: entries older than a millisecond go at the next append.
        std::thread::sleep(std::time::Duration::from_millis(5));
        store.set_audit_retention(AuditRetention { max_entries: 100, max_age_ms: 1 });
        store.record_audit(note("newest")).unwrap();
        let kept: Vec<u64> = store.list_audit(None, 10).unwrap().items.iter().map(|e| e.sequence).collect();
        assert_eq!(kept, [6]);
    }
}
