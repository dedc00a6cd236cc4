//! Who may play a channel (`Playback`: public, or private with signed
//! tokens) and the keys that sign those tokens: a random 256-bit secret
//! with its id, when it was made, and when it stops verifying (set when a
//! newer key replaces it, after the rotation's overlap window).

use serde::{Deserialize, Serialize};

/// Whether a channel's playlists and media need a signed playback token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Playback {
    /// Anyone with the URL plays it (tokens are ignored).
    #[default]
    Public,
    /// Every playlist, part and segment needs a valid token for the channel.
    Private,
}

impl Playback {
    pub fn as_str(self) -> &'static str {
        match self {
            Playback::Public => "public",
            Playback::Private => "private",
        }
    }
}

/// A key that signs playback tokens (its secret is in the state file only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaybackKey {
    pub id: String,
    /// The 32-byte secret, hex.
    pub secret_hex: String,
    pub created_ms: u64,
    /// From then on it verifies nothing; `None`: the key tokens are signed with now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at_ms: Option<u64>,
}

impl PlaybackKey {
    /// Whether tokens it signed are accepted at `now_ms`.
    pub fn verifies_at(&self, now_ms: u64) -> bool {
        self.retired_at_ms.is_none_or(|at| now_ms < at)
    }

    /// The secret's bytes (`None` for a record that is not 64 hex digits).
    pub fn secret(&self) -> Option<[u8; 32]> {
        let text = self.secret_hex.as_bytes();
        if text.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(text.chunks(2)) {
            *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_records_are_public_and_keys_retire_at_their_time() {
        assert_eq!(serde_json::from_str::<Playback>("\"private\"").unwrap(), Playback::Private);
        assert_eq!(Playback::default(), Playback::Public);
        let key =
            PlaybackKey { id: "pk_a".into(), secret_hex: "0f".repeat(32), created_ms: 1, retired_at_ms: Some(10) };
        assert!(key.verifies_at(9) && !key.verifies_at(10));
        assert_eq!(key.secret(), Some([0x0f; 32]));
        assert_eq!(PlaybackKey { secret_hex: "zz".repeat(32), ..key.clone() }.secret(), None);
        assert!(PlaybackKey { retired_at_ms: None, ..key }.verifies_at(u64::MAX));
    }
}
