//! An API token as stored: id, name, scope and the SHA-256 of its secret
//! (never the secret), and the check of its name.

use serde::{Deserialize, Serialize};

use crate::state::error::StoreError;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// GET routes only.
    Read,
    /// Everything (including managing tokens and webhooks).
    Write,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            _ => Err(format!("unknown scope {s:?} (expected read or write)")),
        }
    }
}

/// A stored token (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    pub scope: Scope,
    /// Hex SHA-256 of the secret part.
    pub secret_sha256: String,
    pub created_ms: u64,
}

/// What a token name may look like (also the OpenAPI pattern).
pub const TOKEN_NAME_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9 ._:@/+-]{0,63}$";

pub(crate) fn validate_token_name(name: &str) -> Result<(), StoreError> {
    static PATTERN: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(TOKEN_NAME_PATTERN).expect("valid pattern"));
    if !PATTERN.is_match(name) {
        return Err(StoreError::invalid(
            "name",
            "use 1 to 64 of letters, digits, space and ._:@/+- (starting with a letter or digit)",
        ));
    }
    Ok(())
}
