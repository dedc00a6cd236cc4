//! The thumbnails of a recorded session kept with its recording, as tiles
//! of sprite sheets (`recordings::scrubbing` names the files and reads
//! them back). Written on the thumbnail output's thread; a failure (a full
//! disk) loses that tile alone, logged once, and the live thumbnail goes on.

use std::io;
use std::path::PathBuf;

use accel::sprite::SpriteSheet;
use accel::thumbnail::Thumbnail;

use crate::recordings::layout::META_FILE;
use crate::recordings::meta::sync_dir;
use crate::recordings::scrubbing::{self, COLUMNS, ROWS, THUMBNAILS_DIR, TileEntry};

/// Thumbnails held until the recorder has started the recording (its first
/// segment is written a segment after the first keyframe).
const PENDING_MAX: usize = 16;

/// One recorded session's thumbnails on disk.
pub struct StoredThumbnails {
    session_dir: PathBuf,
    /// Thumbnails made before the recording's record existed, oldest first.
    pending: Vec<(Thumbnail, u64)>,
    sheet: Option<SpriteSheet>,
    /// Tiles stored so far (the next one's number).
    tiles: u32,
    failing: bool,
}

impl StoredThumbnails {
    /// Thumbnails of the recording in `session_dir`.
    pub fn new(session_dir: PathBuf) -> StoredThumbnails {
        StoredThumbnails { session_dir, pending: Vec::new(), sheet: None, tiles: 0, failing: false }
    }

    /// Stores `thumbnail`, taken at `media_ms` of media time. Nothing is
    /// written before the recorder has started the recording (its record is
    /// on disk), so no folder outlives a session that recorded nothing:
    /// until then thumbnails wait (the first ones, up to `PENDING_MAX`).
    pub fn store(&mut self, thumbnail: &Thumbnail, media_ms: u64) {
        if !self.session_dir.join(META_FILE).exists() {
            if self.pending.len() < PENDING_MAX {
                self.pending.push((thumbnail.clone(), media_ms));
            }
            return;
        }
        for (waiting, at) in std::mem::take(&mut self.pending) {
            self.store_now(&waiting, at);
        }
        self.store_now(thumbnail, media_ms);
    }

    fn store_now(&mut self, thumbnail: &Thumbnail, media_ms: u64) {
        match self.try_store(thumbnail, media_ms) {
            Ok(()) => {
                if std::mem::take(&mut self.failing) {
                    tracing::info!("recording thumbnails resumed");
                }
            }
            Err(e) if !self.failing => {
                self.failing = true;
                tracing::warn!(error = %e, "cannot store a recording's thumbnail; the next is tried again");
            }
            Err(_) => {}
        }
    }

    fn try_store(&mut self, thumbnail: &Thumbnail, media_ms: u64) -> io::Result<()> {
        let dir = self.session_dir.join(THUMBNAILS_DIR);
        std::fs::create_dir_all(&dir)?;
        // A tile that failed is placed again by the next one: the log and the sheets keep in step.
        let index = self.tiles % (COLUMNS * ROWS);
        if index == 0 || self.sheet.is_none() {
            let sheet = SpriteSheet::new(thumbnail.width, thumbnail.height, COLUMNS, ROWS).map_err(io::Error::other)?;
            self.sheet = Some(sheet);
        }
        let sheet = self.sheet.as_mut().expect("made above");
        let tile = sheet.place(index, &thumbnail.picture).map_err(io::Error::other)?;
        let jpeg = sheet.encode().map_err(io::Error::other)?;
        // The sheet replaced whole (write, sync, rename): a reader never sees half of one.
        let name = scrubbing::sprite_file(self.tiles / (COLUMNS * ROWS));
        let temporary = dir.join(format!("{name}.tmp"));
        std::fs::write(&temporary, &jpeg)?;
        std::fs::File::open(&temporary)?.sync_data()?;
        std::fs::rename(&temporary, dir.join(&name))?;
        sync_dir(&dir)?;
        scrubbing::append(&dir, TileEntry { media_ms, width: tile.width, height: tile.height })?;
        self.tiles += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use accel::jpeg::Picture;
    use bytes::Bytes;

    use super::*;

    fn thumbnail() -> Thumbnail {
        let picture = Picture::black(160, 90);
        Thumbnail { jpeg: Bytes::from_static(b"jpeg"), picture, width: 160, height: 90, pts: 0 }
    }

    #[test]
    fn thumbnails_wait_for_the_recording_then_fill_sheets_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut stored = StoredThumbnails::new(dir.path().to_path_buf());
        stored.store(&thumbnail(), 0);
        stored.store(&thumbnail(), 5_000);
        assert!(!dir.path().join(THUMBNAILS_DIR).exists(), "nothing written before the recording exists");
        std::fs::write(dir.path().join(META_FILE), b"{}").unwrap();
        for i in 2..27 {
            stored.store(&thumbnail(), i * 5_000);
        }
        let tiles = scrubbing::load(dir.path()).unwrap();
        let times: Vec<u64> = tiles.iter().map(|t| t.media_ms).collect();
        assert_eq!(times, (0..27).map(|i| i * 5_000).collect::<Vec<_>>(), "the waiting ones first");
        let thumbnails = dir.path().join(THUMBNAILS_DIR);
        for sheet in ["sprite-0.jpg", "sprite-1.jpg"] {
            assert!(thumbnails.join(sheet).exists(), "{sheet}: 25 tiles a sheet");
        }
        assert!(!thumbnails.join("sprite-2.jpg").exists());
    }
}
