//! A channel: where one broadcaster publishes (name, stream key, latency
//! mode, output, encoder policy, lifecycle state), what creating or changing
//! one takes, and the checks of those fields.

use media::{ChannelOutput, EncoderPolicy, LatencyMode};
use serde::{Deserialize, Serialize};

use super::dvr::DvrWindow;
use super::recording::RecordingSettings;
use crate::state::error::StoreError;
use crate::state::lifecycle::ChannelState;

/// Longest maximum session duration a channel may set (30 days).
pub const MAX_SESSION_SECONDS: u64 = 30 * 86_400;
/// Most rungs in a ladder.
pub const MAX_RUNGS: usize = 8;

/// A channel an operator created: where one broadcaster publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    pub name: String,
    pub stream_key: String,
    pub latency_mode: LatencyMode,
    #[serde(default)]
    pub output: ChannelOutput,
    #[serde(default)]
    pub encoder_policy: EncoderPolicy,
    /// A session is ended when it reaches this many seconds; none: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_session_seconds: Option<u64>,
    /// Recording of its sessions (off in records written before recording existed).
    #[serde(default)]
    pub recording: RecordingSettings,
    /// How far viewers can rewind a live session (2 h in records written before DVR existed).
    #[serde(default)]
    pub dvr_window_seconds: DvrWindow,
    #[serde(default = "ChannelState::before_states")]
    pub state: ChannelState,
    /// The session in progress (init, processing or live), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_session: Option<String>,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
    /// Milliseconds since the Unix epoch of the last change (0: none since creation).
    #[serde(default)]
    pub updated_ms: u64,
    /// The second stream key, for a backup encoder: a publish on it joins the
    /// session in progress as its second input (see `live::input`). None: the
    /// channel takes one publisher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_stream_key: Option<String>,
    /// The AES passphrase SRT callers must use (10 to 79 characters); none:
    /// unencrypted SRT. A secret like the stream keys: never shown by the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub srt_passphrase: Option<String>,
}

/// Which of a channel's stream keys a publish used: the input it becomes in the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum InputRole {
    /// The main encoder: on air whenever it delivers steadily.
    Primary,
    /// The backup encoder: on air while the primary does not deliver.
    Backup,
}

impl InputRole {
    /// The other input of the two.
    pub fn other(self) -> InputRole {
        match self {
            InputRole::Primary => InputRole::Backup,
            InputRole::Backup => InputRole::Primary,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            InputRole::Primary => "primary",
            InputRole::Backup => "backup",
        }
    }
}

impl std::fmt::Display for InputRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Channel {
    /// Whether its sessions package the source as a hidden rendition, for the recorder alone
    /// (a ladder that does not offer the source, with recording asking for it).
    pub fn records_hidden_source(&self) -> bool {
        match &self.output {
            ChannelOutput::Ladder { ladder } => self.recording.needs_hidden_source(ladder.include_source),
            ChannelOutput::Passthrough => false,
        }
    }

    /// The input a publish with `stream_key` is, when it is one of this channel's keys.
    pub fn input_role(&self, stream_key: &str) -> Option<InputRole> {
        if self.stream_key == stream_key {
            Some(InputRole::Primary)
        } else if self.backup_stream_key.as_deref() == Some(stream_key) {
            Some(InputRole::Backup)
        } else {
            None
        }
    }
}

/// What creating a channel takes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewChannel {
    pub name: String,
    pub latency_mode: LatencyMode,
    pub output: ChannelOutput,
    pub encoder_policy: EncoderPolicy,
    pub max_session_seconds: Option<u64>,
    pub recording: RecordingSettings,
    pub dvr_window_seconds: DvrWindow,
    /// Whether the channel gets a backup stream key as well.
    pub backup: bool,
    /// The SRT passphrase, if SRT callers must encrypt.
    pub srt_passphrase: Option<String>,
}

/// A partial update; `None` leaves a field as it is. Applies from the next session.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChannelPatch {
    pub latency_mode: Option<LatencyMode>,
    pub output: Option<ChannelOutput>,
    pub encoder_policy: Option<EncoderPolicy>,
    /// `Some(None)` removes the limit.
    pub max_session_seconds: Option<Option<u64>>,
    pub recording: Option<RecordingSettings>,
    pub dvr_window_seconds: Option<DvrWindow>,
    /// `Some(None)` removes the SRT passphrase.
    pub srt_passphrase: Option<Option<String>>,
}

/// Channel names appear in URLs and logs: a strict slug (checked by `validate_name`).
pub const NAME_PATTERN: &str = "^[a-z0-9_-]{1,64}$";

/// Channel names appear in URLs and logs: a strict slug.
pub fn validate_name(name: &str) -> Result<(), StoreError> {
    let ok = (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok { Ok(()) } else { Err(StoreError::InvalidName(name.to_string())) }
}

/// SRT passphrases are 10 to 79 characters (SRT's SRTO_PASSPHRASE).
pub(crate) fn validate_srt_passphrase(passphrase: Option<&str>) -> Result<(), StoreError> {
    match passphrase.map(|p| p.chars().count()) {
        Some(n) if !(10..=79).contains(&n) => {
            Err(StoreError::invalid("srt_passphrase", format!("must be 10 to 79 characters, not {n}")))
        }
        _ => Ok(()),
    }
}

pub(crate) fn validate_max_session(seconds: Option<u64>) -> Result<(), StoreError> {
    match seconds {
        Some(s) if !(1..=MAX_SESSION_SECONDS).contains(&s) => {
            Err(StoreError::invalid("max_session_seconds", format!("{s} is outside 1..={MAX_SESSION_SECONDS}")))
        }
        _ => Ok(()),
    }
}

pub(crate) fn validate_output(output: &ChannelOutput) -> Result<(), StoreError> {
    let ChannelOutput::Ladder { ladder } = output else { return Ok(()) };
    if ladder.rungs.is_empty() || ladder.rungs.len() > MAX_RUNGS {
        return Err(StoreError::invalid("output.ladder.rungs", format!("a ladder has 1 to {MAX_RUNGS} rungs")));
    }
    let mut names = std::collections::HashSet::new();
    for (i, rung) in ladder.rungs.iter().enumerate() {
        let field = |f: &str| format!("output.ladder.rungs[{i}].{f}");
        if !(64..=4320).contains(&rung.height) || rung.height % 2 != 0 {
            return Err(StoreError::invalid(
                field("height"),
                format!("{} is not an even number in 64..=4320", rung.height),
            ));
        }
        if !(64..=200_000).contains(&rung.bitrate_kbps) {
            return Err(StoreError::invalid(
                field("bitrate_kbps"),
                format!("{} is outside 64..=200000", rung.bitrate_kbps),
            ));
        }
        if let Some(fps) = rung.max_fps.filter(|f| !(1..=240).contains(f)) {
            return Err(StoreError::invalid(field("max_fps"), format!("{fps} is outside 1..=240")));
        }
        if !names.insert(rung.name()) {
            return Err(StoreError::invalid(
                format!("output.ladder.rungs[{i}]"),
                format!("rendition {} appears twice", rung.name()),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_slugs() {
        for good in ["a", "demo", "studio_2-main", &"x".repeat(64)] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Demo", "a b", "../x", "é", &"x".repeat(65), "a/b"] {
            assert_eq!(
                validate_name(bad).unwrap_err().to_string(),
                format!("channel name {bad:?} is invalid: use 1 to 64 of a-z, 0-9, '-' and '_'")
            );
        }
    }

    #[test]
    fn records_without_the_new_fields_read_back_active_and_passthrough() {
        let old = r#"{"name":"legacy","stream_key":"sk_x","latency_mode":"low","created_at":1700000000}"#;
        let channel: Channel = serde_json::from_str(old).unwrap();
        assert_eq!(channel.state, ChannelState::Active);
        assert_eq!(channel.output, ChannelOutput::Passthrough);
        assert_eq!(channel.encoder_policy, EncoderPolicy::PreferHardware);
        assert_eq!(channel.max_session_seconds, None);
        assert!(!channel.recording.enabled, "recording is off");
        assert_eq!(channel.backup_stream_key, None);
    }

    #[test]
    fn a_key_names_its_input() {
        let old = r#"{"name":"cam","stream_key":"sk_p","latency_mode":"low","created_at":1700000000}"#;
        let mut channel: Channel = serde_json::from_str(old).unwrap();
        assert_eq!(channel.input_role("sk_p"), Some(InputRole::Primary));
        assert_eq!(channel.input_role("sk_b"), None);
        channel.backup_stream_key = Some("sk_b".into());
        assert_eq!(channel.input_role("sk_b"), Some(InputRole::Backup));
        assert_eq!(channel.input_role(""), None);
        assert_eq!(InputRole::Backup.other(), InputRole::Primary);
    }
}
