//! What the origin's playback gate looks up on every request, in memory (the
//! state file is the truth; reading it per request would serialise the
//! origin on its lock): the names of the private channels and the signing
//! keys with their windows. The API refreshes it after each change it makes
//! (a channel's playback, its deletion, a key rotation). Tokens whose MAC
//! checked out are remembered by their text (a viewer sends the same token
//! with every request): a repeat skips the parse and the HMAC, never the
//! checks of the claims and of the key's window.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{PoisonError, RwLock, RwLockReadGuard};

use super::token::{self, Claims, Refusal};
use crate::state::{Channel, Playback, PlaybackKey, Store, StoreError};

/// A key's secret and the instant (unix ms) it stops verifying.
#[derive(Debug, Clone)]
struct Key {
    id: String,
    secret: [u8; 32],
    retired_at_ms: Option<u64>,
}

#[derive(Debug, Default)]
struct Keys {
    all: Vec<Key>,
}

/// A token whose MAC checked out: its claims, and when its key stops verifying.
#[derive(Debug)]
struct Verified {
    claims: Claims,
    key_retired_at_ms: Option<u64>,
}

/// Tokens remembered at most; when full, they are all forgotten (and verified again).
const VERIFIED_MAX: usize = 16_384;

/// The private channels and the signing keys.
#[derive(Debug, Default)]
pub struct PlaybackAccess {
    private: RwLock<HashSet<String>>,
    keys: RwLock<Keys>,
    /// Emptied whenever the keys change (under the keys' lock: nothing verified
    /// with the old keys is remembered after).
    verified: RwLock<HashMap<String, Verified>>,
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    // Writers replace whole values: a panic elsewhere cannot leave one half-made.
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

impl PlaybackAccess {
    /// Loads the private channels and the keys (making the first key if there is none).
    pub fn load(store: &Store) -> Result<PlaybackAccess, StoreError> {
        let access = PlaybackAccess::default();
        access.set_keys(&store.ensure_playback_key()?);
        for channel in store.list()? {
            access.set_channel(&channel);
        }
        Ok(access)
    }

    /// Follows a channel created or changed.
    pub fn set_channel(&self, channel: &Channel) {
        self.set_private(&channel.name, channel.playback == Playback::Private);
    }

    /// Makes the channel `name` private or public.
    pub fn set_private(&self, name: &str, private: bool) {
        let mut names = self.private.write().unwrap_or_else(PoisonError::into_inner);
        if private {
            names.insert(name.to_string());
        } else {
            names.remove(name);
        }
    }

    /// Forgets a deleted channel.
    pub fn remove_channel(&self, name: &str) {
        self.private.write().unwrap_or_else(PoisonError::into_inner).remove(name);
    }

    /// Replaces the keys with `keys` (the state file's).
    pub fn set_keys(&self, keys: &[PlaybackKey]) {
        let all = keys
            .iter()
            .filter_map(|k| Some(Key { id: k.id.clone(), secret: k.secret()?, retired_at_ms: k.retired_at_ms }))
            .collect();
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        *keys = Keys { all };
        self.verified.write().unwrap_or_else(PoisonError::into_inner).clear();
    }

    pub fn is_private(&self, channel: &str) -> bool {
        read(&self.private).contains(channel)
    }

    /// Checks a request's token for `channel` from `client` at `now_ms`.
    pub fn check(&self, text: Option<&str>, channel: &str, client: IpAddr, now_ms: u64) -> Result<(), Refusal> {
        let (text, now) = (text.unwrap_or(""), now_ms / 1000);
        let in_window = |retired_at_ms: Option<u64>| retired_at_ms.is_none_or(|at| now_ms < at);
        if let Some(hit) = read(&self.verified).get(text) {
            if !in_window(hit.key_retired_at_ms) {
                return Err(Refusal::UnknownKey);
            }
            return token::check_claims(&hit.claims, channel, now, client);
        }
        // Held until the token is remembered, so a key change cannot slip in between.
        let keys = read(&self.keys);
        let parsed = token::parse(text)?;
        let key =
            keys.all.iter().find(|k| k.id == parsed.key_id && in_window(k.retired_at_ms)).ok_or(Refusal::UnknownKey)?;
        if !parsed.verify(&key.secret) {
            return Err(Refusal::BadSignature);
        }
        let verdict = token::check_claims(&parsed.claims, channel, now, client);
        let mut verified = self.verified.write().unwrap_or_else(PoisonError::into_inner);
        if verified.len() >= VERIFIED_MAX {
            verified.clear();
        }
        let remembered = Verified { claims: parsed.claims, key_retired_at_ms: key.retired_at_ms };
        verified.insert(text.to_string(), remembered);
        verdict
    }

    /// A token for `claims`, signed with the current key (with its id), or
    /// `None` when there is no current key.
    pub fn sign(&self, claims: &Claims) -> Option<(String, String)> {
        let keys = read(&self.keys);
        let key = keys.all.iter().rev().find(|k| k.retired_at_ms.is_none())?;
        Some((token::sign(claims, &key.id, &key.secret), key.id.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, fill: u8, retired_at_ms: Option<u64>) -> PlaybackKey {
        PlaybackKey { id: id.into(), secret_hex: format!("{fill:02x}").repeat(32), created_ms: 0, retired_at_ms }
    }

    #[test]
    fn signs_with_the_current_key_and_verifies_with_any_key_in_its_window() {
        let access = PlaybackAccess::default();
        let claims = Claims { channel: "studio".into(), expires: 2_000_000_000, network: None };
        assert_eq!(access.sign(&claims), None, "no key yet");
        access.set_keys(&[key("pk_old", 1, None)]);
        let (old_token, id) = access.sign(&claims).unwrap();
        assert_eq!(id, "pk_old");
        access.set_keys(&[key("pk_old", 1, Some(5_000)), key("pk_new", 2, None)]);
        let (new_token, id) = access.sign(&claims).unwrap();
        assert_eq!(id, "pk_new");
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(access.check(Some(&old_token), "studio", client, 4_999).is_ok(), "in the overlap");
        // Remembered now: a repeat still checks the key's window and the claims.
        assert_eq!(access.check(Some(&old_token), "studio", client, 5_000), Err(Refusal::UnknownKey));
        assert_eq!(access.check(Some(&old_token), "other", client, 4_999), Err(Refusal::OtherChannel));
        assert!(access.check(Some(&new_token), "studio", client, 5_000).is_ok());
        assert_eq!(access.check(Some(&new_token), "studio", client, 2_000_000_000_000), Err(Refusal::Expired));
        // A rotation that retires the old key at once forgets what it verified.
        access.set_keys(&[key("pk_old", 1, Some(0)), key("pk_new", 2, Some(0)), key("pk_3", 3, None)]);
        assert_eq!(access.check(Some(&new_token), "studio", client, 1), Err(Refusal::UnknownKey));
        let forged = format!("{}x", &new_token[..new_token.len() - 1]);
        assert!(access.check(Some(&forged), "studio", client, 1).is_err());
    }
}
