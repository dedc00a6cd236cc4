//! An API token as stored: id, name, role (with the legacy scope it maps
//! from), the channels it is restricted to, and the SHA-256 of its secret
//! (never the secret), with the checks of its fields.

use serde::{Deserialize, Serialize};

use super::channel::validate_name;
use crate::state::error::StoreError;

/// What a token may do: the legacy scopes, kept so that tokens made before
/// roles existed (and clients that still send `scope`) keep working. A
/// scope maps to a role: `read` is `viewer`, `write` is `admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// GET routes only (the `viewer` role).
    Read,
    /// Everything (the `admin` role).
    Write,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
        }
    }

    /// The role a token of this scope has.
    pub fn role(self) -> Role {
        match self {
            Scope::Read => Role::Viewer,
            Scope::Write => Role::Admin,
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

/// What an identity (API token, console user) may do; each role may do
/// everything the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Reads everything but tokens and users; changes nothing.
    Viewer,
    /// Channels, sessions, recordings, restreams: create, change, start, stop,
    /// rotate keys, delete; sees stream keys. No users, tokens or webhooks.
    Operator,
    /// Everything, users, tokens and webhooks included.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// The legacy scope written beside the role, so an older appliance reading
    /// the file grants no more than the role (a viewer reads, others write).
    pub fn legacy_scope(self) -> Scope {
        if self == Role::Viewer { Scope::Read } else { Scope::Write }
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            _ => Err(format!("unknown role {s:?} (expected viewer, operator or admin)")),
        }
    }
}

/// A stored token (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    /// The legacy scope: the role of tokens written before roles existed.
    pub scope: Scope,
    /// The token's role; absent in records written before roles (see `role()`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The only channels the token may see; absent: every channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<String>>,
    /// Hex SHA-256 of the secret part.
    pub secret_sha256: String,
    pub created_ms: u64,
}

impl ApiToken {
    /// What the token may do (its role, or the one its legacy scope maps to).
    pub fn role(&self) -> Role {
        self.role.unwrap_or_else(|| self.scope.role())
    }
}

/// What a new token may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    pub role: Role,
    /// Restricts the token to these channels (by name); `None`: every channel.
    pub channels: Option<Vec<String>>,
}

impl From<Scope> for TokenGrant {
    fn from(scope: Scope) -> Self {
        TokenGrant { role: scope.role(), channels: None }
    }
}

/// Most channels one token may be restricted to.
pub const MAX_TOKEN_CHANNELS: usize = 64;

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

/// Checks a grant: channel names valid, 1 to `MAX_TOKEN_CHANNELS` of them,
/// and never with the admin role (an admin makes tokens and users, which
/// would lift the restriction). Returns the names sorted without repeats.
pub(crate) fn validate_grant(grant: &TokenGrant) -> Result<Option<Vec<String>>, StoreError> {
    let Some(channels) = &grant.channels else { return Ok(None) };
    if grant.role == Role::Admin {
        return Err(StoreError::invalid("channels", "an admin token cannot be restricted to channels"));
    }
    if channels.is_empty() || channels.len() > MAX_TOKEN_CHANNELS {
        return Err(StoreError::invalid("channels", format!("name 1 to {MAX_TOKEN_CHANNELS} channels")));
    }
    for (i, name) in channels.iter().enumerate() {
        validate_name(name).map_err(|_| StoreError::invalid(format!("channels[{i}]"), "not a channel name"))?;
    }
    let mut sorted = channels.clone();
    sorted.sort();
    sorted.dedup();
    Ok(Some(sorted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_written_before_roles_reads_with_its_scopes_role() {
        let old = br#"{"id":"tok_a","name":"ci","scope":"read","secret_sha256":"00","created_ms":1}"#;
        let token: ApiToken = serde_json::from_slice(old).unwrap();
        assert_eq!((token.role(), token.channels), (Role::Viewer, None));
        let old = br#"{"id":"tok_b","name":"ci","scope":"write","secret_sha256":"00","created_ms":1}"#;
        assert_eq!(serde_json::from_slice::<ApiToken>(old).unwrap().role(), Role::Admin);
    }

    #[test]
    fn roles_order_and_grants() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
        let restricted =
            |role, names: &[&str]| TokenGrant { role, channels: Some(names.iter().map(|n| n.to_string()).collect()) };
        assert_eq!(
            validate_grant(&restricted(Role::Operator, &["b", "a", "b"])).unwrap(),
            Some(vec!["a".into(), "b".into()])
        );
        assert!(validate_grant(&restricted(Role::Admin, &["a"])).is_err());
        assert!(validate_grant(&restricted(Role::Viewer, &[])).is_err());
        assert!(validate_grant(&restricted(Role::Viewer, &["Not a name"])).is_err());
        assert_eq!(validate_grant(&TokenGrant::from(Scope::Write)).unwrap(), None);
    }
}
