//! MP4 export of a finished recording: one rendition's init section and
//! segments streamed from disk into one fragmented MP4 in a private folder
//! of the recordings (`.exports/`, never listed as a recording), which
//! `accel::export` remuxes into a faststart MP4 beside it. Both files live
//! only as long as the returned `ExportFiles`.

use std::io;
use std::path::{Path, PathBuf};

use accel::export::{Exported, export_mp4};

use super::catalog::{Catalog, RecordingError};
use super::layout::{init_file, segment_file};

/// The folder of exports in progress, inside the recordings folder.
const EXPORTS_DIR: &str = ".exports";

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Recording(#[from] RecordingError),
    #[error("the recording is still in progress")]
    InProgress,
    #[error("{0}")]
    Unsupported(String),
    #[error("export: {0}")]
    Remux(#[from] accel::AccelError),
}

impl From<io::Error> for ExportError {
    fn from(e: io::Error) -> Self {
        ExportError::Recording(RecordingError::Io(e))
    }
}

/// What to export: a rendition (the top one when None) and a range in seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportRequest {
    pub rendition: Option<String>,
    pub start: f64,
    pub duration: Option<f64>,
}

/// An export's files; removed on drop.
pub struct ExportFiles {
    dir: tempfile::TempDir,
    pub exported: Exported,
    pub rendition: String,
}

impl ExportFiles {
    /// The faststart MP4.
    pub fn mp4(&self) -> PathBuf {
        self.dir.path().join("export.mp4")
    }
}

/// Exports `session` of `channel` as `request` says.
pub fn export(
    catalog: &Catalog,
    channel: &str,
    session: &str,
    request: &ExportRequest,
) -> Result<ExportFiles, ExportError> {
    let recording = catalog.get(channel, session)?;
    if !recording.meta.state.is_finished() {
        return Err(ExportError::InProgress);
    }
    let rendition = match &request.rendition {
        Some(name) => name.clone(),
        None => recording
            .rendition_names()
            .into_iter()
            .next()
            .ok_or_else(|| RecordingError::NotFound { channel: channel.into(), session: session.into() })?,
    };
    let (_, index) = catalog.rendition(channel, session, &rendition)?;
    let Some(first) = index.entries.first() else {
        return Err(ExportError::Unsupported("the rendition has no segment".into()));
    };
    if index.entries.iter().any(|e| e.init != first.init) {
        return Err(ExportError::Unsupported(
            "the rendition changes its tracks during the recording (a new init); export a range within one".into(),
        ));
    }
    let exports = catalog.layout().root().join(EXPORTS_DIR);
    std::fs::create_dir_all(&exports)?;
    let dir = tempfile::Builder::new().prefix("export-").tempdir_in(&exports)?;
    let source = catalog.layout().rendition_dir(channel, session, &rendition);
    let fragmented = dir.path().join("recording.mp4");
    concatenate(
        &source,
        std::iter::once(init_file(first.init)).chain(index.entries.iter().map(|e| segment_file(e.msn))),
        &fragmented,
    )?;
    let mp4 = dir.path().join("export.mp4");
    let exported = export_mp4(&fragmented, &mp4, request.start.max(0.0), request.duration)?;
    std::fs::remove_file(&fragmented)?;
    Ok(ExportFiles { dir, exported, rendition })
}

/// Removes exports a stop interrupted (at start, before anything exports).
pub fn remove_leftovers(catalog: &Catalog) -> io::Result<()> {
    match std::fs::remove_dir_all(catalog.layout().root().join(EXPORTS_DIR)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Streams the files named `names` of `dir` one after the other into `into`.
fn concatenate(dir: &Path, names: impl Iterator<Item = String>, into: &Path) -> io::Result<()> {
    let mut out = io::BufWriter::new(std::fs::File::create(into)?);
    for name in names {
        io::copy(&mut std::fs::File::open(dir.join(name))?, &mut out)?;
    }
    io::Write::flush(&mut out)
}
