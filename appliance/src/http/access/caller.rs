//! Who a request acts as, once authenticated: an id for logs and the audit
//! log, a role, and the channels it is restricted to (none: every channel).

use std::sync::Arc;

use crate::state::{ApiToken, AuditAction, AuditNote, Role};

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's id, `user:<name>` for a console user, `local` for the control socket.
    pub id: String,
    pub role: Role,
    /// The only channels the caller may see; `None`: every channel.
    pub channels: Option<Arc<[String]>>,
}

impl Caller {
    /// Whether the caller may see (and, with the role for it, change) the channel `name`.
    pub fn may_see(&self, name: &str) -> bool {
        self.channels.as_ref().is_none_or(|allowed| allowed.iter().any(|c| c == name))
    }

    /// The audit log's note of this caller doing `action` to `target`.
    pub fn note(&self, action: AuditAction, target: impl Into<String>) -> AuditNote {
        AuditNote { actor: self.id.clone(), action, target: target.into(), detail: None }
    }

    /// Whether the caller is restricted to some channels.
    pub fn is_restricted(&self) -> bool {
        self.channels.is_some()
    }
}

impl From<&ApiToken> for Caller {
    fn from(token: &ApiToken) -> Self {
        Caller { id: token.id.clone(), role: token.role(), channels: token.channels.as_deref().map(Arc::from) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restricted_caller_sees_only_its_channels() {
        let all = Caller { id: "a".into(), role: Role::Viewer, channels: None };
        assert!(all.may_see("anything") && !all.is_restricted());
        let one = Caller { channels: Some(Arc::from(vec!["studio".to_string()])), ..all };
        assert!(one.may_see("studio") && !one.may_see("studio-2") && one.is_restricted());
    }
}
