//! Recording as the state database knows it: a channel's recording settings
//! (off by default; which renditions; how long recordings are kept), the
//! states of a recording, and what a `recording.*` webhook carries. The
//! recordings themselves live on disk (`crate::recordings`).

use serde::{Deserialize, Serialize};

use crate::state::error::StoreError;

/// Longest retention a channel may set, in days (10 years).
pub const MAX_RETAIN_DAYS: u32 = 3650;

/// Which renditions of a session are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RecordRenditions {
    /// Every rendition (a ladder's rungs, and the source when the ladder offers it).
    #[default]
    All,
    /// The top rung and the source (when offered); a pass-through channel's source.
    TopAndSource,
    /// The source alone, as received: a ladder channel records it instead of its rungs (as a
    /// hidden rendition when the ladder does not offer it).
    Source,
}

/// A channel's recording settings. Records written before recording existed read back as off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RecordingSettings {
    /// Record every session of the channel (from its next session).
    pub enabled: bool,
    pub renditions: RecordRenditions,
    /// Delete the channel's recordings this many days after they end
    /// (unless locked); none: keep them until the disk quota needs room.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retain_days: Option<u32>,
    /// Record the source as received besides the rungs, for a ladder channel whose ladder does
    /// not offer it: it is packaged as a hidden rendition, in no multivariant playlist.
    pub source: bool,
}

impl RecordingSettings {
    pub fn validate(&self) -> Result<(), StoreError> {
        match self.retain_days {
            Some(days) if !(1..=MAX_RETAIN_DAYS).contains(&days) => {
                Err(StoreError::invalid("recording.retain_days", format!("{days} is outside 1..={MAX_RETAIN_DAYS}")))
            }
            _ => Ok(()),
        }
    }

    /// Whether a ladder channel's sessions must package the source for the recorder alone (a
    /// hidden rendition): recording on, asking for the source, and `offered` (the ladder's
    /// `include_source`) false.
    pub fn needs_hidden_source(&self, offered: bool) -> bool {
        self.enabled && !offered && (self.source || self.renditions == RecordRenditions::Source)
    }

    /// Whether `rendition` (of a session whose renditions are `all`, top first) is recorded.
    pub fn records(&self, rendition: &str, all: &[String]) -> bool {
        match self.renditions {
            RecordRenditions::All => true,
            RecordRenditions::TopAndSource => {
                rendition == "source" || all.iter().find(|r| *r != "source").is_some_and(|top| top == rendition)
            }
            RecordRenditions::Source => rendition == "source",
        }
    }
}

/// Where a recording stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RecordingState {
    /// Its session is in progress: segments are still being added.
    Recording,
    /// The session ended; the catchup is complete and playable.
    Ready,
    /// The appliance stopped during the session (a crash, a power cut): the
    /// recording holds every segment sealed before it, and is playable.
    Interrupted,
}

impl RecordingState {
    /// Whether its catchup can be played (and retention may delete it).
    pub fn is_finished(self) -> bool {
        !matches!(self, RecordingState::Recording)
    }
}

/// What a `recording.ready`, `recording.deleted` or `recording.failed` event carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecordingNotice {
    pub session: String,
    pub state: RecordingState,
    /// Bytes on disk (when deleted: what was freed).
    pub bytes: u64,
    /// Seconds of media of its top rendition.
    pub duration_seconds: f64,
    pub renditions: Vec<String>,
    pub locked: bool,
    /// Why: what failed (`recording.failed`), or why it was deleted
    /// (`retention-days`, `disk-quota`, `api`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_and_source_keeps_the_first_rung_and_the_source() {
        let ladder: Vec<String> = ["720p", "480p", "source"].map(String::from).to_vec();
        let settings =
            RecordingSettings { enabled: true, renditions: RecordRenditions::TopAndSource, ..Default::default() };
        let kept: Vec<&String> = ladder.iter().filter(|r| settings.records(r, &ladder)).collect();
        assert_eq!(kept, ["720p", "source"]);
        let passthrough = vec!["source".to_string()];
        assert!(settings.records("source", &passthrough));
        let all = RecordingSettings { renditions: RecordRenditions::All, ..settings };
        assert!(ladder.iter().all(|r| all.records(r, &ladder)));
    }

    #[test]
    fn the_source_alone_or_besides_the_rungs_needs_a_hidden_rendition_unless_offered() {
        let ladder: Vec<String> = ["720p", "480p", "source"].map(String::from).to_vec();
        let source = RecordingSettings { enabled: true, renditions: RecordRenditions::Source, ..Default::default() };
        let kept: Vec<&String> = ladder.iter().filter(|r| source.records(r, &ladder)).collect();
        assert_eq!(kept, ["source"]);
        let besides = RecordingSettings { enabled: true, source: true, ..Default::default() };
        let cases = [
            (source, false, true),
            (source, true, false),
            (besides, false, true),
            (besides, true, false),
            (RecordingSettings { enabled: false, ..besides }, false, false),
            (RecordingSettings { enabled: true, ..Default::default() }, false, false),
        ];
        for (settings, offered, hidden) in cases {
            assert_eq!(settings.needs_hidden_source(offered), hidden, "{settings:?} offered={offered}");
        }
        // Records written before the setting existed read back without it.
        let old: RecordingSettings = serde_json::from_str(r#"{"enabled": true, "renditions": "all"}"#).unwrap();
        assert!(!old.source);
    }

    #[test]
    fn retention_days_are_checked() {
        let ok = RecordingSettings { enabled: true, retain_days: Some(7), ..Default::default() };
        assert!(ok.validate().is_ok());
        for days in [0, MAX_RETAIN_DAYS + 1] {
            let bad = RecordingSettings { retain_days: Some(days), ..ok };
            assert_eq!(
                bad.validate().unwrap_err().to_string(),
                format!("recording.retain_days: {days} is outside 1..={MAX_RETAIN_DAYS}")
            );
        }
    }
}
