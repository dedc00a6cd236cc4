//! Console passwords: argon2id hashes (PHC strings). The built-in admin's
//! is in `<data_dir>/admin-password`, mode 0600, created with a random
//! password on first start (printed once), replaced by `appliance admin
//! set-password`, read on every sign-in, so a change from the CLI applies at
//! once; other users' hashes are in the state file (`state::users`).

use std::io::Write;
use std::path::{Path, PathBuf};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::Rng;

/// Shortest and longest password accepted, in characters.
pub const MIN_CHARS: usize = 8;
pub const MAX_CHARS: usize = 1024;

/// The file that holds the hash.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin-password")
}

/// The argon2id hash (PHC string) of `password`, with a fresh salt.
pub fn hash(password: &str) -> anyhow::Result<String> {
    anyhow::ensure!(password.chars().count() >= MIN_CHARS, "the password must be at least 8 characters");
    let salt = SaltString::encode_b64(&rand::rng().random::<[u8; 16]>()).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing the password failed: {e}"))?
        .to_string())
}

/// Whether `password` matches the PHC string `stored` (false when `stored` is not one).
pub fn matches(stored: &str, password: &str) -> bool {
    PasswordHash::new(stored.trim())
        .is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
}

/// Spends what a check costs without a hash to check against (an unknown
/// user), so the answer's time does not tell which user names exist.
pub fn waste_a_check(password: &str) {
    static DECOY: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| hash("a decoy password").expect("hashing works"));
    let _ = matches(&DECOY, password);
}

/// Hashes `password` and stores it, replacing any earlier one.
pub fn set(data_dir: &Path, password: &str) -> anyhow::Result<()> {
    let hash = hash(password)?;
    std::fs::create_dir_all(data_dir)?;
    let target = path(data_dir);
    let temporary = target.with_extension("new");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary)?;
    file.write_all(hash.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, &target)?;
    Ok(())
}

/// On first start: creates the admin password and returns it (to print once).
pub fn ensure(data_dir: &Path) -> anyhow::Result<Option<String>> {
    if path(data_dir).exists() {
        return Ok(None);
    }
    let password = generate();
    set(data_dir, &password)?;
    Ok(Some(password))
}

/// A random password of 20 characters from an unambiguous alphabet.
pub fn generate() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

/// Whether `password` is the admin's. False when no password is set.
pub fn verify(data_dir: &Path, password: &str) -> bool {
    let Ok(stored) = std::fs::read_to_string(path(data_dir)) else {
        return false;
    };
    if PasswordHash::new(stored.trim()).is_err() {
        tracing::error!(
            "console: the admin password file is not a valid hash; set it with `appliance admin set-password`"
        );
        return false;
    }
    matches(&stored, password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_then_verify() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!verify(dir.path(), "anything-at-all"));
        set(dir.path(), "correct horse").unwrap();
        assert!(verify(dir.path(), "correct horse"));
        assert!(!verify(dir.path(), "correct horsE"));
        assert!(set(dir.path(), "short").is_err());
        assert_eq!(ensure(dir.path()).unwrap(), None);
        let stored = hash("another secret").unwrap();
        assert!(matches(&stored, "another secret") && !matches(&stored, "another secreT") && !matches("x", "x"));
    }
}
