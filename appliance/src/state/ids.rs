//! Identifiers: stream keys, token and endpoint ids, secrets, event ids, and
//! session ids that sort by start time and never repeat across restarts.

use rand::Rng;

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

fn random(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    (0..len).map(|_| alphabet[rng.random_range(0..alphabet.len())] as char).collect()
}

/// 32 random alphanumerics (about 190 bits) behind a recognisable prefix.
pub fn stream_key() -> String {
    format!("sk_{}", random(ALPHANUMERIC, 32))
}

/// A short public id such as `tok_k3j9x2m1qz8w` (lower case: safe in URLs and logs).
pub fn public_id(prefix: &str) -> String {
    format!("{prefix}_{}", random(LOWER, 12))
}

/// A secret of 40 alphanumerics (about 238 bits).
pub fn secret() -> String {
    random(ALPHANUMERIC, 40)
}

/// Milliseconds since the epoch in 11 hex digits, then 4 random hex digits:
/// sorts by start time, unique across channels, restarts and machines in practice.
pub fn session_id(now_ms: u64) -> String {
    format!("{now_ms:011x}{:04x}", rand::rng().random::<u16>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert!(stream_key().starts_with("sk_") && stream_key().len() == 35);
        let id = public_id("tok");
        assert!(id.len() == 16 && id[4..].bytes().all(|b| LOWER.contains(&b)), "{id}");
        assert_eq!(secret().len(), 40);
        let (a, b) = (session_id(1_700_000_000_000), session_id(1_700_000_000_001));
        assert_eq!(a.len(), 15);
        assert!(a < b, "{a} sorts before {b}");
    }
}
