//! The keys that sign playback tokens of private channels: the current one
//! (made at first need), and rotation, which makes a new current key and
//! leaves the older ones verifying for an overlap window (zero retires them
//! at once: every token they signed is refused from then on). Keys whose
//! window has passed are deleted at the next rotation.

use rand::Rng;
use redb::ReadableTable;

use super::error::StoreError;
use super::records::PlaybackKey;
use super::rows::{decode, encode};
use super::store::Store;
use super::tables::PLAYBACK_KEYS;
use super::{clock, ids};

fn new_key(now_ms: u64) -> PlaybackKey {
    let secret: [u8; 32] = rand::rng().random();
    PlaybackKey {
        id: ids::public_id("pk"),
        secret_hex: secret.iter().map(|b| format!("{b:02x}")).collect(),
        created_ms: now_ms,
        retired_at_ms: None,
    }
}

fn all_keys(table: &impl ReadableTable<&'static str, &'static [u8]>) -> Result<Vec<PlaybackKey>, StoreError> {
    let mut keys = Vec::new();
    for entry in table.iter()? {
        keys.push(decode::<PlaybackKey>(entry?.1.value())?);
    }
    keys.sort_by_key(|k| k.created_ms);
    Ok(keys)
}

impl Store {
    /// Every signing key, oldest first.
    pub fn playback_keys(&self) -> Result<Vec<PlaybackKey>, StoreError> {
        self.read(|tx| all_keys(&tx.open_table(PLAYBACK_KEYS)?))
    }

    /// Makes the first signing key when there is no current one; returns every key.
    pub fn ensure_playback_key(&self) -> Result<Vec<PlaybackKey>, StoreError> {
        let keys = self.playback_keys()?;
        if keys.iter().any(|k| k.retired_at_ms.is_none()) {
            return Ok(keys);
        }
        self.write_quietly(|tx| {
            let mut table = tx.open_table(PLAYBACK_KEYS)?;
            let mut keys = all_keys(&table)?;
            if !keys.iter().any(|k| k.retired_at_ms.is_none()) {
                let key = new_key(clock::now_ms());
                table.insert(key.id.as_str(), encode(&key).as_slice())?;
                keys.push(key);
            }
            Ok(keys)
        })
    }

    /// Makes a new current key; every other key verifies for `overlap_ms`
    /// more at most (a window already shorter is kept), and keys past their
    /// window are deleted. Returns the new key and the keys still verifying.
    pub fn rotate_playback_key(&self, overlap_ms: u64) -> Result<(PlaybackKey, Vec<PlaybackKey>), StoreError> {
        let now = clock::now_ms();
        self.write_quietly(|tx| {
            let mut table = tx.open_table(PLAYBACK_KEYS)?;
            let mut kept = Vec::new();
            for mut key in all_keys(&table)? {
                let until = now.saturating_add(overlap_ms);
                key.retired_at_ms = Some(key.retired_at_ms.map_or(until, |at| at.min(until)));
                if key.verifies_at(now) {
                    table.insert(key.id.as_str(), encode(&key).as_slice())?;
                    kept.push(key);
                } else {
                    table.remove(key.id.as_str())?;
                }
            }
            let key = new_key(now);
            table.insert(key.id.as_str(), encode(&key).as_slice())?;
            Ok((key, kept))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_the_old_key_for_its_overlap_and_zero_retires_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let first = store.ensure_playback_key().unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(store.ensure_playback_key().unwrap(), first, "made once");
        let (second, kept) = store.rotate_playback_key(3_600_000).unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].id, first[0].id);
        assert!(kept[0].verifies_at(clock::now_ms()), "overlap");
        assert!(second.retired_at_ms.is_none() && second.secret().is_some());
        let (third, kept) = store.rotate_playback_key(0).unwrap();
        assert!(kept.is_empty(), "zero overlap retires every older key: {kept:?}");
        let keys = store.playback_keys().unwrap();
        assert_eq!(keys.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(), [third.id.as_str()]);
    }
}
