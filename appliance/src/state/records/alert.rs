//! An alert as the outbox keeps it: which rule, about which session, raised
//! or cleared, and how long its condition had held (or been gone).

use serde::{Deserialize, Serialize};

/// The rules the alert engine evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AlertRule {
    /// A live session's input delivers no media.
    InputLost,
}

impl AlertRule {
    pub const ALL: [AlertRule; 1] = [AlertRule::InputLost];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertRule::InputLost => "input-lost",
        }
    }
}

/// `alert.raised` / `alert.cleared`: the body's `data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlertNotice {
    pub rule: AlertRule,
    /// The session the alert is about.
    pub session: String,
    /// Milliseconds the condition had held (raised) or been gone (cleared) when it changed.
    pub for_ms: u64,
    /// What happened, for people.
    pub detail: String,
}
