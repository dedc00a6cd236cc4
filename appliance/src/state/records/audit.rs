//! An audit log entry: who (a token id, `user:<name>`, `local`) did what to
//! which resource, and when. Written in the transaction of the change itself
//! (`state::audit_trail`), so a committed change always has its entry.

use serde::{Deserialize, Serialize};

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum AuditAction {
    #[serde(rename = "channel.created")]
    ChannelCreated,
    #[serde(rename = "channel.updated")]
    ChannelUpdated,
    #[serde(rename = "channel.deleted")]
    ChannelDeleted,
    #[serde(rename = "channel.started")]
    ChannelStarted,
    #[serde(rename = "channel.stopped")]
    ChannelStopped,
    #[serde(rename = "channel.key_rotated")]
    KeyRotated,
    #[serde(rename = "restream.created")]
    RestreamCreated,
    #[serde(rename = "restream.updated")]
    RestreamUpdated,
    #[serde(rename = "restream.deleted")]
    RestreamDeleted,
    #[serde(rename = "recording.deleted")]
    RecordingDeleted,
    #[serde(rename = "recording.locked")]
    RecordingLocked,
    #[serde(rename = "recording.unlocked")]
    RecordingUnlocked,
    #[serde(rename = "token.created")]
    TokenCreated,
    #[serde(rename = "token.revoked")]
    TokenRevoked,
    #[serde(rename = "webhook.created")]
    WebhookCreated,
    #[serde(rename = "webhook.deleted")]
    WebhookDeleted,
    #[serde(rename = "user.created")]
    UserCreated,
    #[serde(rename = "user.updated")]
    UserUpdated,
    #[serde(rename = "user.password_reset")]
    UserPasswordReset,
    #[serde(rename = "playback_key.rotated")]
    PlaybackKeyRotated,
}

/// Who is about to change what: handed to `Store::acting`, written with the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditNote {
    pub actor: String,
    pub action: AuditAction,
    /// The resource: a channel name, `channel/session`, a token or webhook id, a user name.
    pub target: String,
    /// What changed, where the action alone does not say (a user's new role, ...).
    pub detail: Option<String>,
}

impl AuditNote {
    pub fn with_detail(mut self, detail: impl Into<String>) -> AuditNote {
        self.detail = Some(detail.into());
        self
    }
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub sequence: u64,
    pub at_ms: u64,
    pub actor: String,
    pub action: AuditAction,
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}
