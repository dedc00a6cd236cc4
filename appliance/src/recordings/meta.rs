//! A recording's record (`recording.json`): which session of which channel,
//! its state, when it began and ended, and what each rendition is (codecs,
//! resolution) for the catchup's multivariant playlist. Written whole to a
//! temporary file, synced and renamed over the old one, so a crash leaves
//! either the old record or the new one, never a mix.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::layout::META_FILE;
pub use crate::state::records::recording::RecordingState;

/// What a rendition of the recording is, from its first segment's tracks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenditionMeta {
    pub name: String,
    /// RFC 6381 codec strings.
    pub codecs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<(u32, u32)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_rate: Option<f64>,
}

/// The record of one session's recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordingMeta {
    pub channel: String,
    pub session: String,
    pub state: RecordingState,
    /// Milliseconds since the Unix epoch.
    pub started_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_ms: Option<u64>,
    /// In ladder order (the top rendition first).
    #[serde(default)]
    pub renditions: Vec<RenditionMeta>,
    /// Why recording stopped for a while (a full disk), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
}

/// Reads the record in `session_dir`.
pub fn read(session_dir: &Path) -> io::Result<RecordingMeta> {
    let bytes = std::fs::read(session_dir.join(META_FILE))?;
    serde_json::from_slice(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Replaces the record in `session_dir` atomically (write, sync, rename, sync the folder).
pub fn write(session_dir: &Path, meta: &RecordingMeta) -> io::Result<()> {
    let temporary = session_dir.join(format!("{META_FILE}.tmp"));
    let mut file = File::create(&temporary)?;
    file.write_all(&serde_json::to_vec_pretty(meta).map_err(io::Error::other)?)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, session_dir.join(META_FILE))?;
    sync_dir(session_dir)
}

/// Makes a folder's new entries (files created or renamed in it) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_is_replaced_whole_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut meta = RecordingMeta {
            channel: "cam".into(),
            session: "0190000000000abcd".into(),
            state: RecordingState::Recording,
            started_ms: 1_700_000_000_000,
            ended_ms: None,
            renditions: vec![RenditionMeta {
                name: "source".into(),
                codecs: vec!["avc1.64001f".into(), "mp4a.40.2".into()],
                resolution: Some((640, 360)),
                frame_rate: Some(30.0),
            }],
            last_failure: None,
        };
        write(dir.path(), &meta).unwrap();
        assert_eq!(read(dir.path()).unwrap(), meta);
        meta.state = RecordingState::Ready;
        meta.ended_ms = Some(1_700_000_060_000);
        write(dir.path(), &meta).unwrap();
        assert_eq!(read(dir.path()).unwrap(), meta);
        assert!(!dir.path().join("recording.json.tmp").exists());
    }
}
