//! A recording's thumbnails and its scrubbing track. The thumbnail output
//! of a recorded session (`live::thumbnails`) stores each thumbnail as a
//! tile of a JPEG sprite sheet in `<session>/thumbnails/` (`sprite-<n>.jpg`,
//! `COLUMNS` x `ROWS` tiles, a sheet rewritten by write and rename as its
//! tiles come) and appends a line per tile to `tiles.log` (`<media ms>
//! <width> <height>`) once its sheet is on disk, so the log never names a
//! tile that is not there. `vtt` renders the WebVTT track whose cues point
//! into the sheets (`thumbnails/sprite-<n>.jpg#xywh=x,y,w,h`).

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

use accel::sprite::tile;

/// The folder of a recording's thumbnails.
pub const THUMBNAILS_DIR: &str = "thumbnails";
/// The tiles' log in it.
pub const TILES_FILE: &str = "tiles.log";
/// Tiles per sheet: five by five (about two minutes at 5 s).
pub const COLUMNS: u32 = 5;
pub const ROWS: u32 = 5;

pub fn sprite_file(sheet: u32) -> String {
    format!("sprite-{sheet}.jpg")
}

/// Whether `name` is a sprite sheet a request may ask for.
pub fn is_sprite_file(name: &str) -> bool {
    name.strip_prefix("sprite-")
        .and_then(|r| r.strip_suffix(".jpg"))
        .is_some_and(|n| !n.is_empty() && n.len() <= 10 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// One stored thumbnail: when it is (media time since the recording's
/// first thumbnail's keyframe is measured from it) and its tile's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileEntry {
    pub media_ms: u64,
    pub width: u32,
    pub height: u32,
}

/// Appends `entry` to the tiles' log of `dir` (synced: a crash keeps what was written).
pub fn append(dir: &Path, entry: TileEntry) -> io::Result<()> {
    let mut log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join(TILES_FILE))?;
    log.write_all(format!("{} {} {}\n", entry.media_ms, entry.width, entry.height).as_bytes())?;
    log.sync_data()
}

/// Reads a tiles' log: every complete, well-formed line in order; a torn
/// or garbled line (a crash, a bad disk) ends it there.
pub fn parse(text: &str) -> Vec<TileEntry> {
    let mut entries = Vec::new();
    for line in text.split_inclusive('\n') {
        let Some(line) = line.strip_suffix('\n') else { break };
        let mut fields = line.split(' ').map(str::parse::<u64>);
        let entry = match (fields.next(), fields.next(), fields.next(), fields.next()) {
            (Some(Ok(media_ms)), Some(Ok(width)), Some(Ok(height)), None)
                if (1..=u64::from(u16::MAX)).contains(&width) && (1..=u64::from(u16::MAX)).contains(&height) =>
            {
                TileEntry { media_ms, width: width as u32, height: height as u32 }
            }
            _ => break,
        };
        entries.push(entry);
    }
    entries
}

/// The tiles of the recording in `session_dir` (none when it has no thumbnails).
pub fn load(session_dir: &Path) -> io::Result<Vec<TileEntry>> {
    match std::fs::read_to_string(session_dir.join(THUMBNAILS_DIR).join(TILES_FILE)) {
        Ok(text) => Ok(parse(&text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The WebVTT scrubbing track of a recording of `duration` seconds: tile
/// `i` is the picture from its time (relative to the first tile's) until the
/// next tile's, the first from 0 and the last until the end, so the cues
/// cover the whole recording. Tiles at or past the end are left out.
pub fn vtt(tiles: &[TileEntry], duration: f64) -> String {
    let mut text = String::from("WEBVTT\n");
    let Some(first) = tiles.first() else { return text };
    let end_ms = (duration.max(0.0) * 1000.0).round() as u64;
    let starts: Vec<u64> = tiles.iter().map(|t| t.media_ms.saturating_sub(first.media_ms)).collect();
    for (i, entry) in tiles.iter().enumerate() {
        let start = if i == 0 { 0 } else { starts[i] };
        let end = starts.get(i + 1).copied().unwrap_or(end_ms).min(end_ms);
        if start >= end {
            continue;
        }
        let sheet = i as u32 / (COLUMNS * ROWS);
        let place = tile(i as u32 % (COLUMNS * ROWS), COLUMNS, entry.width, entry.height);
        let _ = write!(
            text,
            "\n{} --> {}\n{THUMBNAILS_DIR}/{}#xywh={},{},{},{}\n",
            timestamp(start),
            timestamp(end),
            sprite_file(sheet),
            place.x,
            place.y,
            place.width,
            place.height
        );
    }
    text
}

/// `hh:mm:ss.ttt`, as WebVTT writes cue times.
fn timestamp(ms: u64) -> String {
    format!("{:02}:{:02}:{:02}.{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(media_ms: u64) -> TileEntry {
        TileEntry { media_ms, width: 320, height: 180 }
    }

    #[test]
    fn the_log_reads_back_up_to_a_torn_or_garbled_line() {
        let table: [(&str, usize); 7] = [
            ("", 0),
            ("1000 320 180\n", 1),
            ("1000 320 180\n6000 320 180\n", 2),
            ("1000 320 180\n6000 32", 1),
            ("1000 320 180\nx 320 180\n6000 320 180\n", 1),
            ("1000 320 0\n", 0),
            ("1000 320 180 9\n", 0),
        ];
        for (text, count) in table {
            assert_eq!(parse(text).len(), count, "{text:?}");
        }
        assert_eq!(parse("1000 320 180\n"), [entry(1000)]);
    }

    #[test]
    fn cues_cover_the_recording_and_point_into_the_sheets() {
        let tiles: Vec<TileEntry> = (0..27).map(|i| entry(2_000 + i * 5_000)).collect();
        let text = vtt(&tiles, 133.5);
        assert!(
            text.starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:05.000\nthumbnails/sprite-0.jpg#xywh=0,0,320,180\n")
        );
        assert!(text.contains("00:00:05.000 --> 00:00:10.000\nthumbnails/sprite-0.jpg#xywh=320,0,320,180\n"));
        assert!(text.contains("00:02:05.000 --> 00:02:10.000\nthumbnails/sprite-1.jpg#xywh=0,0,320,180\n"), "{text}");
        assert!(
            text.ends_with("00:02:10.000 --> 00:02:13.500\nthumbnails/sprite-1.jpg#xywh=320,0,320,180\n"),
            "{text}"
        );
        assert_eq!(text.matches(" --> ").count(), 27);
        // A recording shorter than its thumbnails (its last segment lost): cues stop at its end.
        assert_eq!(vtt(&tiles, 7.0).matches(" --> ").count(), 2);
        assert_eq!(vtt(&[], 10.0), "WEBVTT\n");
        assert_eq!(timestamp(3_723_004), "01:02:03.004");
    }

    #[test]
    fn garbage_and_truncations_never_panic_and_never_invent_a_tile() {
        let good = "0 320 180\n5000 320 180\n10000 320 180\n";
        for cut in 0..=good.len() {
            let tiles = parse(&good[..cut]);
            assert_eq!(tiles.len(), good[..cut].matches('\n').count(), "cut at {cut}");
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..2000 {
            let garbage: Vec<u8> = (0..len % 200)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let alphabet = b"0123456789 \nx-";
                    alphabet[(seed % alphabet.len() as u64) as usize]
                })
                .collect();
            let text = String::from_utf8(garbage).unwrap();
            let tiles = parse(&text);
            assert!(tiles.len() <= text.matches('\n').count());
            assert!(tiles.iter().all(|t| t.width > 0 && t.height > 0));
            let _ = vtt(&tiles, 60.0);
        }
    }

    #[test]
    fn only_sprite_files_are_served() {
        for good in ["sprite-0.jpg", "sprite-12.jpg"] {
            assert!(is_sprite_file(good), "{good}");
        }
        for bad in ["sprite-.jpg", "sprite-1.jpg.tmp", "tiles.log", "../sprite-1.jpg", "sprite--1.jpg"] {
            assert!(!is_sprite_file(bad), "{bad}");
        }
    }
}
