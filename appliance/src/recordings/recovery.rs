//! At start-up, before any publish: recordings whose session was in progress
//! when the last process stopped (a crash, a power cut, SIGKILL) are closed.
//! Each rendition's index loses its torn last entry, segment files the index
//! does not name (written, never indexed) are removed, and the record says
//! `interrupted`: playable up to the last sealed segment. `recording.ready`
//! goes out for each.

use std::collections::HashSet;
use std::io;

use super::catalog::{Catalog, RecordingError};
use super::index::IndexWriter;
use super::layout::{INDEX_FILE, segment_file};
use super::meta::{self, RecordingState};
use super::notify::Notifier;
use crate::state::EventType;

/// Closes every recording left `recording`; returns how many.
pub fn recover(catalog: &Catalog, notifier: &Notifier) -> Result<usize, RecordingError> {
    catalog.remove_leftovers()?;
    super::export::remove_leftovers(catalog)?;
    let mut closed = 0;
    for recording in catalog.all()? {
        if recording.meta.state != RecordingState::Recording {
            continue;
        }
        let (channel, session) = (recording.meta.channel.clone(), recording.meta.session.clone());
        let dir = catalog.layout().session_dir(&channel, &session);
        let mut meta = recording.meta;
        let mut segments = 0;
        let mut last_end_ms = None;
        for rendition in &meta.renditions {
            let rendition_dir = dir.join(&rendition.name);
            let (_, loaded) = IndexWriter::open(&rendition_dir.join(INDEX_FILE))?;
            remove_unindexed(&rendition_dir, &loaded.entries.iter().map(|e| segment_file(e.msn)).collect())?;
            segments += loaded.entries.len();
            if let Some(last) = loaded.entries.last() {
                let end = last.pdt_ms + (last.duration * 1000.0) as u64;
                last_end_ms = Some(last_end_ms.map_or(end, |e: u64| e.max(end)));
            }
        }
        if segments == 0 {
            tracing::warn!(%channel, %session, "recording interrupted before its first segment; removed");
            std::fs::remove_dir_all(&dir)?;
            continue;
        }
        meta.state = RecordingState::Interrupted;
        meta.ended_ms = Some(last_end_ms.unwrap_or(meta.started_ms));
        meta::write(&dir, &meta)?;
        tracing::warn!(%channel, %session, segments, "recording was in progress when the appliance stopped; closed as interrupted, playable up to its last segment");
        let _ = notifier.notify(&channel, &session, EventType::RecordingReady, Some("interrupted".into()));
        closed += 1;
    }
    Ok(closed)
}

/// Removes `seg*.m4s` files of `dir` that are not in `indexed`.
fn remove_unindexed(dir: &std::path::Path, indexed: &HashSet<String>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.starts_with("seg") && name.ends_with(".m4s") && !indexed.contains(&name) {
            std::fs::remove_file(dir.join(&name))?;
        }
    }
    Ok(())
}
