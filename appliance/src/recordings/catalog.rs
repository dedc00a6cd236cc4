//! The recordings on disk as the API, catchup and retention see them: list
//! (per channel or all), read one with its renditions' indexes, lock and
//! unlock (a `locked` file: atomic, and never touched by the writer), and
//! delete. The files are the source of truth; nothing is cached.

use std::io;
use std::path::{Path, PathBuf};

use super::index::{self, LoadedIndex};
use super::layout::{INDEX_FILE, LOCK_FILE, Layout, is_plain_name};
use super::meta::{self, RecordingMeta, sync_dir};

/// Why a recording operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("channel {channel:?} has no recording of session {session:?}")]
    NotFound { channel: String, session: String },
    #[error("the recording of session {0:?} is locked: unlock it first")]
    Locked(String),
    #[error("session {0:?} is still being recorded")]
    InProgress(String),
    #[error("recordings: {0}")]
    Io(#[from] io::Error),
}

/// One rendition of a recording, from its index.
#[derive(Debug, Clone, PartialEq)]
pub struct RenditionSummary {
    pub name: String,
    pub segments: usize,
    pub duration_seconds: f64,
    pub discontinuities: usize,
    /// Bytes of its segments (from the index).
    pub bytes: u64,
}

/// A recording as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    pub meta: RecordingMeta,
    pub locked: bool,
    /// Bytes of every file of the recording.
    pub bytes: u64,
    /// In the record's order (the top rendition first).
    pub renditions: Vec<RenditionSummary>,
}

impl Recording {
    /// Seconds of media of its top rendition.
    pub fn duration_seconds(&self) -> f64 {
        self.renditions.first().map_or(0.0, |r| r.duration_seconds)
    }

    pub fn rendition_names(&self) -> Vec<String> {
        self.renditions.iter().map(|r| r.name.clone()).collect()
    }
}

/// The recordings folder of the data directory.
#[derive(Debug, Clone)]
pub struct Catalog {
    layout: Layout,
}

impl Catalog {
    pub fn new(layout: Layout) -> Catalog {
        Catalog { layout }
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// A channel's recordings, newest first.
    pub fn list(&self, channel: &str) -> Result<Vec<Recording>, RecordingError> {
        let mut sessions = plain_children(&self.layout.channel_dir(channel))?;
        sessions.sort_by(|a, b| b.cmp(a));
        Ok(sessions.iter().filter_map(|s| self.get(channel, s).ok()).collect())
    }

    /// Every recording of every channel, oldest first (session ids sort by start time).
    pub fn all(&self) -> Result<Vec<Recording>, RecordingError> {
        let mut all = Vec::new();
        for channel in plain_children(self.layout.root())? {
            for session in plain_children(&self.layout.channel_dir(&channel))? {
                if let Ok(recording) = self.get(&channel, &session) {
                    all.push(recording);
                }
            }
        }
        all.sort_by(|a, b| (&a.meta.session, &a.meta.channel).cmp(&(&b.meta.session, &b.meta.channel)));
        Ok(all)
    }

    /// One recording with its renditions' indexes summed up.
    pub fn get(&self, channel: &str, session: &str) -> Result<Recording, RecordingError> {
        let dir = self.session_dir(channel, session)?;
        let meta = meta::read(&dir).map_err(|e| not_found_or(e, channel, session))?;
        let mut renditions = Vec::new();
        for rendition in &meta.renditions {
            let loaded = index::load(&dir.join(&rendition.name).join(INDEX_FILE))?;
            renditions.push(RenditionSummary {
                name: rendition.name.clone(),
                segments: loaded.entries.len(),
                duration_seconds: loaded.entries.iter().map(|e| e.duration).sum(),
                discontinuities: loaded.entries.iter().skip(1).filter(|e| e.discontinuity).count(),
                bytes: loaded.entries.iter().map(|e| e.bytes).sum(),
            });
        }
        Ok(Recording { locked: dir.join(LOCK_FILE).exists(), bytes: disk_bytes(&dir)?, renditions, meta })
    }

    /// The record and the index of one rendition (for its catchup playlist).
    pub fn rendition(
        &self,
        channel: &str,
        session: &str,
        rendition: &str,
    ) -> Result<(RecordingMeta, LoadedIndex), RecordingError> {
        let dir = self.session_dir(channel, session)?;
        let meta = meta::read(&dir).map_err(|e| not_found_or(e, channel, session))?;
        if !meta.renditions.iter().any(|r| r.name == rendition) {
            return Err(RecordingError::NotFound { channel: channel.into(), session: session.into() });
        }
        Ok((meta, index::load(&dir.join(rendition).join(INDEX_FILE))?))
    }

    /// The file of a rendition (`init<v>.mp4`, `seg<msn>.m4s`), when the names are plain.
    pub fn media_path(&self, channel: &str, session: &str, rendition: &str, file: &str) -> Option<PathBuf> {
        let plain = [channel, session, rendition].iter().all(|n| is_plain_name(n));
        (plain && super::layout::is_media_file(file))
            .then(|| self.layout.rendition_dir(channel, session, rendition).join(file))
    }

    /// Locks (`true`) or unlocks a recording; returns it as it is now.
    pub fn set_locked(&self, channel: &str, session: &str, locked: bool) -> Result<Recording, RecordingError> {
        let dir = self.session_dir(channel, session)?;
        meta::read(&dir).map_err(|e| not_found_or(e, channel, session))?;
        let lock = dir.join(LOCK_FILE);
        if locked {
            std::fs::File::create(&lock)?.sync_all()?;
        } else if let Err(e) = std::fs::remove_file(&lock)
            && e.kind() != io::ErrorKind::NotFound
        {
            return Err(e.into());
        }
        sync_dir(&dir)?;
        self.get(channel, session)
    }

    /// Deletes a finished, unlocked recording; returns what it was.
    pub fn delete(&self, channel: &str, session: &str) -> Result<Recording, RecordingError> {
        let recording = self.get(channel, session)?;
        if recording.locked {
            return Err(RecordingError::Locked(session.into()));
        }
        if !recording.meta.state.is_finished() {
            return Err(RecordingError::InProgress(session.into()));
        }
        let dir = self.layout.session_dir(channel, session);
        // Renamed out of the way first: a crash mid-delete leaves no half recording listed.
        let doomed = self.layout.channel_dir(channel).join(format!(".deleting-{session}"));
        std::fs::rename(&dir, &doomed)?;
        std::fs::remove_dir_all(&doomed)?;
        let _ = std::fs::remove_dir(self.layout.channel_dir(channel));
        Ok(recording)
    }

    /// Bytes of every recording on disk.
    pub fn total_bytes(&self) -> Result<u64, RecordingError> {
        Ok(disk_bytes(self.layout.root())?)
    }

    /// Leftovers of deletes a crash interrupted.
    pub fn remove_leftovers(&self) -> Result<(), RecordingError> {
        for channel in plain_children(self.layout.root())? {
            let dir = self.layout.channel_dir(&channel);
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                if entry.file_name().to_string_lossy().starts_with(".deleting-") {
                    std::fs::remove_dir_all(entry.path())?;
                }
            }
        }
        Ok(())
    }

    fn session_dir(&self, channel: &str, session: &str) -> Result<PathBuf, RecordingError> {
        if is_plain_name(channel) && is_plain_name(session) {
            Ok(self.layout.session_dir(channel, session))
        } else {
            Err(RecordingError::NotFound { channel: channel.into(), session: session.into() })
        }
    }
}

fn not_found_or(e: io::Error, channel: &str, session: &str) -> RecordingError {
    if e.kind() == io::ErrorKind::NotFound {
        RecordingError::NotFound { channel: channel.into(), session: session.into() }
    } else {
        RecordingError::Io(e)
    }
}

/// The plainly named sub-folders of `dir` (none when it does not exist).
fn plain_children(dir: &Path) -> io::Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_plain_name(&name) && entry.file_type()?.is_dir() {
            names.push(name);
        }
    }
    Ok(names)
}

/// Bytes of the files under `dir` (recursively; none when it does not exist).
fn disk_bytes(dir: &Path) -> io::Result<u64> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut total = 0;
    for entry in entries {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            total += disk_bytes(&entry.path())?;
        } else if kind.is_file() {
            total += entry.metadata()?.len();
        }
    }
    Ok(total)
}
