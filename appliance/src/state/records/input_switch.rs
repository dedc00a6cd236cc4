//! A session's switch of what it has on air (its primary input, its backup,
//! or the slate), with the reason: the `session.input_switched` event's data.

use serde::{Deserialize, Serialize};

use super::channel::InputRole;

/// What a session has on air.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnAir {
    Primary,
    Backup,
    /// The generated card with the channel's name and silence, while no input delivers.
    Slate,
}

impl OnAir {
    pub fn input(role: InputRole) -> OnAir {
        match role {
            InputRole::Primary => OnAir::Primary,
            InputRole::Backup => OnAir::Backup,
        }
    }

    /// The input on air, if an input is.
    pub fn role(self) -> Option<InputRole> {
        match self {
            OnAir::Primary => Some(InputRole::Primary),
            OnAir::Backup => Some(InputRole::Backup),
            OnAir::Slate => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OnAir::Primary => "primary",
            OnAir::Backup => "backup",
            OnAir::Slate => "slate",
        }
    }
}

impl std::fmt::Display for OnAir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a session switched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SwitchReason {
    /// The input on air delivered no frame for the failover time.
    Stalled,
    /// The input on air disconnected.
    Disconnected,
    /// The primary delivered steadily for the return time while the backup was on air.
    PrimaryReturned,
    /// An input delivers again while the slate was on air.
    InputReturned,
}

impl SwitchReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SwitchReason::Stalled => "stalled",
            SwitchReason::Disconnected => "disconnected",
            SwitchReason::PrimaryReturned => "primary-returned",
            SwitchReason::InputReturned => "input-returned",
        }
    }
}

/// A session switched what it has on air.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InputSwitched {
    pub session: String,
    pub from: OnAir,
    pub to: OnAir,
    pub reason: SwitchReason,
    /// Switches of this session so far, this one included.
    pub switches: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_kebab_case_as_the_api_shows_them() {
        let switched = InputSwitched {
            session: "s1".into(),
            from: OnAir::Primary,
            to: OnAir::Backup,
            reason: SwitchReason::PrimaryReturned,
            switches: 2,
        };
        assert_eq!(
            serde_json::to_string(&switched).unwrap(),
            r#"{"session":"s1","from":"primary","to":"backup","reason":"primary-returned","switches":2}"#
        );
        for reason in [
            SwitchReason::Stalled,
            SwitchReason::Disconnected,
            SwitchReason::PrimaryReturned,
            SwitchReason::InputReturned,
        ] {
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
        }
        assert_eq!(OnAir::input(InputRole::Backup).role(), Some(InputRole::Backup));
        assert_eq!(OnAir::Slate.role(), None);
    }
}
