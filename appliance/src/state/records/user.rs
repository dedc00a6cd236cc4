//! A console user as stored: name, role, whether disabled, and the argon2id
//! hash of the password (a PHC string; never the password), with the check
//! of the name. The built-in `admin` is not a record: its hash stays in the
//! `admin-password` file (`http::console::password`), so `appliance admin
//! set-password` works with or without a running server.

use serde::{Deserialize, Serialize};

use super::token::Role;
use crate::state::error::StoreError;

/// The built-in administrator's name.
pub const ADMIN_USER: &str = "admin";

/// What a user name may look like (also the OpenAPI pattern).
pub const USER_NAME_PATTERN: &str = "^[a-z0-9][a-z0-9_-]{0,31}$";

/// A console user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// A disabled user cannot sign in; its sessions ended when it was disabled.
    pub disabled: bool,
    /// argon2id PHC string.
    pub password_hash: String,
    pub created_ms: u64,
    pub updated_ms: u64,
}

/// What an admin may change on a user (absent fields stay).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserPatch {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    /// A new argon2id PHC string.
    pub password_hash: Option<String>,
}

pub(crate) fn validate_user_name(name: &str) -> Result<(), StoreError> {
    static PATTERN: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(USER_NAME_PATTERN).expect("valid pattern"));
    if !PATTERN.is_match(name) {
        return Err(StoreError::invalid(
            "name",
            "use 1 to 32 of a-z, 0-9, '_' and '-' (starting with a letter or digit)",
        ));
    }
    if name == ADMIN_USER {
        return Err(StoreError::Duplicate { what: "user", id: name.to_string() });
    }
    Ok(())
}
