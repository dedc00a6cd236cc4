//! A channel: where one broadcaster publishes (name, stream key, latency
//! mode, output, encoder policy, lifecycle state), what creating or changing
//! one takes, and the checks of those fields.

use media::{ChannelOutput, EncoderPolicy, LatencyMode, Processing};
use serde::{Deserialize, Serialize};

use super::dvr::DvrWindow;
use super::playback::Playback;
use super::recording::RecordingSettings;
use crate::state::error::StoreError;
use crate::state::lifecycle::ChannelState;

/// Longest maximum session duration a channel may set (30 days).
pub const MAX_SESSION_SECONDS: u64 = 30 * 86_400;
/// Most rungs in a ladder.
pub const MAX_RUNGS: usize = 8;
/// Most pixels cropped from one side of the picture.
pub const MAX_CROP: u32 = 4096;
/// Strongest sharpening (FFmpeg's `unsharp` amount 5.0).
pub const MAX_SHARPEN_PERCENT: u32 = 500;

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
    /// What the ladder does to the picture (identity in records written before processing existed).
    #[serde(default)]
    pub processing: Processing,
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
    /// Whether playback needs a signed token (public in records written before private channels).
    #[serde(default)]
    pub playback: Playback,
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
    pub processing: Processing,
    pub max_session_seconds: Option<u64>,
    pub recording: RecordingSettings,
    pub dvr_window_seconds: DvrWindow,
    /// Whether the channel gets a backup stream key as well.
    pub backup: bool,
    /// The SRT passphrase, if SRT callers must encrypt.
    pub srt_passphrase: Option<String>,
    pub playback: Playback,
}

/// A partial update; `None` leaves a field as it is. Applies from the next session.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChannelPatch {
    pub latency_mode: Option<LatencyMode>,
    pub output: Option<ChannelOutput>,
    pub encoder_policy: Option<EncoderPolicy>,
    pub processing: Option<Processing>,
    /// A processing change may restart a live session's pipeline now
    /// (otherwise it is refused while the channel is live).
    pub restart_now: bool,
    /// `Some(None)` removes the limit.
    pub max_session_seconds: Option<Option<u64>>,
    pub recording: Option<RecordingSettings>,
    pub dvr_window_seconds: Option<DvrWindow>,
    /// `Some(None)` removes the SRT passphrase.
    pub srt_passphrase: Option<Option<String>>,
    /// Applies at once, to the session in progress too.
    pub playback: Option<Playback>,
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

/// Picture processing needs a ladder (a passthrough channel decodes no
/// picture; sound it transcodes alone), and every value must be one FFmpeg can use.
pub(crate) fn validate_processing(processing: &Processing, output: &ChannelOutput) -> Result<(), StoreError> {
    let p = &processing.picture;
    if *p != media::PictureProcessing::default() && *output == ChannelOutput::Passthrough {
        return Err(StoreError::invalid(
            "processing.picture",
            "picture processing needs a ladder output (a passthrough channel does not decode the picture)",
        ));
    }
    for (side, value) in
        [("top", p.crop.top), ("bottom", p.crop.bottom), ("left", p.crop.left), ("right", p.crop.right)]
    {
        if value > MAX_CROP {
            return Err(StoreError::invalid(
                format!("processing.picture.crop.{side}"),
                format!("{value} is above {MAX_CROP}"),
            ));
        }
    }
    super::sound::validate_sound(&processing.sound)?;
    if p.sharpen_percent > MAX_SHARPEN_PERCENT {
        return Err(StoreError::invalid(
            "processing.picture.sharpen_percent",
            format!("{} is outside 0..={MAX_SHARPEN_PERCENT}", p.sharpen_percent),
        ));
    }
    if let Some(aspect) = p.aspect.as_deref().filter(|a| media::processing::parse_aspect(a).is_none()) {
        return Err(StoreError::invalid(
            "processing.picture.aspect",
            format!("{aspect:?} is not W:H with W and H in 1..=100 (e.g. \"16:9\")"),
        ));
    }
    if let ChannelOutput::Ladder { ladder } = output
        && let Some(name) = p.rung_scaling.keys().find(|n| !ladder.rungs.iter().any(|r| r.name() == **n))
    {
        return Err(StoreError::invalid(
            format!("processing.picture.rung_scaling.{name}"),
            format!("{name:?} is not a rendition of the ladder"),
        ));
    }
    if p.bar_color.to_ffmpeg().is_none() {
        return Err(StoreError::invalid(
            "processing.picture.bar_color",
            format!("{:?} is not a colour #rrggbb", p.bar_color.0),
        ));
    }
    Ok(())
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
        let when = &rung.when;
        for (name, value) in [
            ("min_width", when.min_width),
            ("max_width", when.max_width),
            ("min_height", when.min_height),
            ("max_height", when.max_height),
        ] {
            if let Some(v) = value.filter(|v| !(1..=8192).contains(v)) {
                return Err(StoreError::invalid(field(&format!("when.{name}")), format!("{v} is outside 1..=8192")));
            }
        }
        for (lo, hi, what) in [(when.min_width, when.max_width, "width"), (when.min_height, when.max_height, "height")]
        {
            if let (Some(lo), Some(hi)) = (lo, hi)
                && lo > hi
            {
                return Err(StoreError::invalid(
                    field(&format!("when.min_{what}")),
                    format!("{lo} is above max_{what} {hi}: the rung would never run"),
                ));
            }
        }
        if let Some(kbps) = when.min_source_kbps.filter(|k| !(1..=1_000_000).contains(k)) {
            return Err(StoreError::invalid(field("when.min_source_kbps"), format!("{kbps} is outside 1..=1000000")));
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
        assert!(channel.processing.is_identity(), "no processing");
    }

    #[test]
    fn processing_and_rung_conditions_are_checked_field_by_field() {
        let ladder: ChannelOutput =
            serde_json::from_str(r#"{"kind":"ladder","ladder":{"rungs":[{"height":360,"bitrate_kbps":800}]}}"#)
                .unwrap();
        let processing = |json: &str| serde_json::from_str::<Processing>(json).unwrap();
        let error = |p: &str, output: &ChannelOutput| {
            validate_processing(&processing(p), output).map_err(|e| e.to_string()).err().unwrap_or_default()
        };
        assert_eq!(
            error(r#"{"picture":{"rotate":"90","crop":{"top":8},"rung_scaling":{"360p":"fill"}}}"#, &ladder),
            ""
        );
        assert_eq!(error("{}", &ChannelOutput::Passthrough), "");
        assert_eq!(
            error(r#"{"sound":{"gain_db":6,"karaoke":true}}"#, &ChannelOutput::Passthrough),
            "",
            "sound on passthrough"
        );
        for (json, output, want) in [
            (
                r#"{"picture":{"flip":true}}"#,
                &ChannelOutput::Passthrough,
                "processing.picture: picture processing needs a ladder output (a passthrough channel does not decode the picture)",
            ),
            (r#"{"picture":{"crop":{"left":5000}}}"#, &ladder, "processing.picture.crop.left: 5000 is above 4096"),
            (
                r#"{"picture":{"sharpen_percent":501}}"#,
                &ladder,
                "processing.picture.sharpen_percent: 501 is outside 0..=500",
            ),
            (
                r#"{"picture":{"aspect":"16/9"}}"#,
                &ladder,
                r#"processing.picture.aspect: "16/9" is not W:H with W and H in 1..=100 (e.g. "16:9")"#,
            ),
            (
                r#"{"picture":{"bar_color":"black"}}"#,
                &ladder,
                r#"processing.picture.bar_color: "black" is not a colour #rrggbb"#,
            ),
        ] {
            assert_eq!(error(json, output), want, "{json}");
        }
        let rungs = |when: &str| {
            let json = format!(
                r#"{{"kind":"ladder","ladder":{{"rungs":[{{"height":360,"bitrate_kbps":800,"when":{when}}}]}}}}"#
            );
            validate_output(&serde_json::from_str(&json).unwrap()).map_err(|e| e.to_string()).err().unwrap_or_default()
        };
        assert_eq!(rungs(r#"{"min_height":1080,"min_source_kbps":3000}"#), "");
        assert_eq!(rungs(r#"{"min_width":0}"#), "output.ladder.rungs[0].when.min_width: 0 is outside 1..=8192");
        assert_eq!(
            rungs(r#"{"min_height":720,"max_height":480}"#),
            "output.ladder.rungs[0].when.min_height: 720 is above max_height 480: the rung would never run"
        );
        assert_eq!(
            rungs(r#"{"min_source_kbps":0}"#),
            "output.ladder.rungs[0].when.min_source_kbps: 0 is outside 1..=1000000"
        );
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
