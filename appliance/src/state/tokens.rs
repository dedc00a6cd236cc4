//! API tokens: bearer secrets with a role (`viewer`, `operator`, `admin`;
//! the legacy read and write scopes map to viewer and admin), optionally
//! restricted to named channels. Only the SHA-256 of
//! the secret is stored; the token text (`tok_<id>.<secret>`) is shown once,
//! at creation. Checking compares digests in constant time.

use std::ops::Bound;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::StoreError;
use super::page::Page;
use super::records::token::{validate_grant, validate_token_name};
use super::records::{ApiToken, TokenGrant};
use super::rows::{decode, encode};
use super::store::Store;
use super::tables::TOKENS;
use super::{clock, ids};

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl Store {
    /// Creates a token; returns it and its text, which is never shown again.
    pub fn create_token(&self, name: &str, grant: impl Into<TokenGrant>) -> Result<(ApiToken, String), StoreError> {
        validate_token_name(name)?;
        let grant = grant.into();
        let channels = validate_grant(&grant)?;
        let id = ids::public_id("tok");
        let secret = ids::secret();
        let token = ApiToken {
            id: id.clone(),
            name: name.to_string(),
            scope: grant.role.legacy_scope(),
            role: Some(grant.role),
            channels,
            secret_sha256: hex(&digest(&secret)),
            created_ms: clock::now_ms(),
        };
        self.write(|tx| {
            tx.open_table(TOKENS)?.insert(id.as_str(), encode(&token).as_slice())?;
            Ok(())
        })?;
        Ok((token, format!("{id}.{secret}")))
    }

    /// The token `text` stands for, if it is valid and not revoked.
    pub fn authenticate(&self, text: &str) -> Result<Option<ApiToken>, StoreError> {
        let (id, secret) = text.split_once('.').unwrap_or(("", text));
        let presented = digest(secret);
        let stored: Option<ApiToken> = if id.is_empty() || id.len() > 64 {
            None
        } else {
            self.read(|tx| tx.open_table(TOKENS)?.get(id)?.map(|v| decode(v.value())).transpose())?
        };
        // Compare against something even for an unknown id, so both paths cost the same.
        let expected = stored.as_ref().and_then(|t| unhex(&t.secret_sha256)).unwrap_or([0xa5; 32]);
        let matches: bool = presented.ct_eq(&expected).into();
        Ok(stored.filter(|_| matches))
    }

    /// Revokes a token at once.
    pub fn revoke_token(&self, id: &str) -> Result<ApiToken, StoreError> {
        self.write(|tx| {
            let removed = tx.open_table(TOKENS)?.remove(id)?.map(|v| decode(v.value())).transpose()?;
            removed.ok_or_else(|| StoreError::not_found("token", id))
        })
    }

    /// Tokens by id after the cursor (an id).
    pub fn list_tokens(&self, after: Option<&str>, limit: usize) -> Result<Page<ApiToken>, StoreError> {
        self.read(|tx| {
            let table = tx.open_table(TOKENS)?;
            let start = after.map_or(Bound::Unbounded, Bound::Excluded);
            let mut items = Vec::new();
            for entry in table.range::<&str>((start, Bound::Unbounded))?.take(limit + 1) {
                items.push(decode::<ApiToken>(entry?.1.value())?);
            }
            Ok(Page::from_items(items, limit, |t| t.id.clone()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Role, Scope};

    #[test]
    fn tokens_authenticate_until_revoked_and_store_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (token, text) = store.create_token("ci", Scope::Read).unwrap();
        assert!(text.starts_with(&format!("{}.", token.id)));
        let secret = text.split_once('.').unwrap().1;
        let raw = std::fs::read(store.path()).unwrap();
        assert!(!raw.windows(secret.len()).any(|w| w == secret.as_bytes()), "the secret is not in the file");

        assert_eq!(store.authenticate(&text).unwrap(), Some(token.clone()));
        for wrong in
            [format!("{}.{}x", token.id, secret), format!("tok_nothere.{secret}"), secret.to_string(), String::new()]
        {
            assert_eq!(store.authenticate(&wrong).unwrap(), None, "{wrong}");
        }
        store.revoke_token(&token.id).unwrap();
        assert_eq!(store.authenticate(&text).unwrap(), None);
        assert!(matches!(store.revoke_token(&token.id), Err(StoreError::NotFound { .. })));
        assert!(store.create_token("", Scope::Write).is_err());
    }

    #[test]
    fn roles_and_channel_restrictions_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let grant = TokenGrant { role: Role::Operator, channels: Some(vec!["studio-b".into(), "studio-a".into()]) };
        let (token, text) = store.create_token("studio", grant).unwrap();
        let read = store.authenticate(&text).unwrap().unwrap();
        assert_eq!((read.role(), read.scope), (Role::Operator, Scope::Write));
        assert_eq!(read.channels, Some(vec!["studio-a".to_string(), "studio-b".to_string()]));
        assert_eq!(read, token);
        let (legacy, _) = store.create_token("legacy", Scope::Read).unwrap();
        assert_eq!(legacy.role(), Role::Viewer);
    }
}
