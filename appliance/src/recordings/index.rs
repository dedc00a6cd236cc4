//! A rendition's index of recorded segments, crash-safe: an append-only
//! file, one line per segment (`<json>*<crc32 hex>\n`), appended and synced
//! only once the segment's file is on disk. At load a torn or corrupt last
//! entry (the process died or the disk filled mid-append) is dropped, and
//! the writer truncates the file back to its last good entry before it
//! appends again, so nothing after a tear is ever lost or misread.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// One recorded segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// The media sequence number it had live.
    pub msn: u64,
    /// Seconds of media.
    pub duration: f64,
    /// Program date-time, milliseconds since the Unix epoch.
    pub pdt_ms: u64,
    /// Size of its file.
    pub bytes: u64,
    /// Starts after a discontinuity: new tracks, a producer restart, or a gap
    /// in the recording (segments lost to a full queue or a full disk).
    pub discontinuity: bool,
    /// The init section it needs (`init<v>.mp4`).
    pub init: u32,
}

impl IndexEntry {
    pub fn program_date_time(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(self.pdt_ms)
    }
}

/// What a load found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoadedIndex {
    pub entries: Vec<IndexEntry>,
    /// Bytes of the file up to the end of the last good entry.
    pub good_len: u64,
    /// Whether anything after it was dropped (a torn or corrupt entry).
    pub dropped_tail: bool,
}

/// One entry as a line of the file.
pub fn encode(entry: &IndexEntry) -> Vec<u8> {
    let mut line = serde_json::to_vec(entry).unwrap_or_default();
    let crc = crc32fast::hash(&line);
    line.extend_from_slice(format!("*{crc:08x}\n").as_bytes());
    line
}

/// Reads entries from `bytes` up to the first line that is incomplete or
/// fails its checksum.
pub fn decode(bytes: &[u8]) -> LoadedIndex {
    let mut loaded = LoadedIndex::default();
    let mut offset = 0;
    while offset < bytes.len() {
        let Some(end) = bytes[offset..].iter().position(|&b| b == b'\n') else { break };
        let Some(entry) = decode_line(&bytes[offset..offset + end]) else { break };
        loaded.entries.push(entry);
        offset += end + 1;
    }
    loaded.good_len = offset as u64;
    loaded.dropped_tail = offset < bytes.len();
    loaded
}

fn decode_line(line: &[u8]) -> Option<IndexEntry> {
    let star = line.iter().rposition(|&b| b == b'*')?;
    let (json, crc) = (&line[..star], &line[star + 1..]);
    let crc = u32::from_str_radix(std::str::from_utf8(crc).ok()?, 16).ok()?;
    if crc != crc32fast::hash(json) {
        return None;
    }
    serde_json::from_slice(json).ok()
}

/// Loads the index at `path` (a missing file is an empty index).
pub fn load(path: &Path) -> io::Result<LoadedIndex> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut file) => {
            file.read_to_end(&mut bytes)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(LoadedIndex::default()),
        Err(e) => return Err(e),
    }
    Ok(decode(&bytes))
}

/// The appending end of one rendition's index.
#[derive(Debug)]
pub struct IndexWriter {
    file: File,
    /// Bytes of good entries: where the next one goes.
    len: u64,
}

impl IndexWriter {
    /// Opens (or creates) the index at `path`, dropping a torn tail first.
    pub fn open(path: &Path) -> io::Result<(IndexWriter, LoadedIndex)> {
        let loaded = load(path)?;
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(path)?;
        if loaded.dropped_tail {
            file.set_len(loaded.good_len)?;
            file.sync_data()?;
        }
        Ok((IndexWriter { file, len: loaded.good_len }, loaded))
    }

    /// Appends `entry` and syncs it. On failure the file is cut back to its
    /// last good entry (best effort; a load drops a tear anyway).
    pub fn append(&mut self, entry: &IndexEntry) -> io::Result<()> {
        let line = encode(entry);
        let written = self
            .file
            .seek(SeekFrom::Start(self.len))
            .and_then(|_| self.file.write_all(&line))
            .and_then(|()| self.file.sync_data());
        match written {
            Ok(()) => {
                self.len += line.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.len);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(msn: u64) -> IndexEntry {
        IndexEntry {
            msn,
            duration: 2.002,
            pdt_ms: 1_700_000_000_000 + msn * 2000,
            bytes: 1000 + msn,
            discontinuity: msn == 3,
            init: 0,
        }
    }

    #[test]
    fn entries_round_trip_and_a_torn_or_corrupt_tail_is_dropped() {
        let mut bytes: Vec<u8> = (0..4).flat_map(|m| encode(&entry(m))).collect();
        let whole = decode(&bytes);
        assert_eq!(whole.entries, (0..4).map(entry).collect::<Vec<_>>());
        assert_eq!((whole.good_len, whole.dropped_tail), (bytes.len() as u64, false));

        let good = bytes.len();
        let fifth = encode(&entry(4));
        // Every cut of the fifth line (a crash mid-append) loses that line alone.
        for cut in 0..fifth.len() {
            let mut torn = bytes.clone();
            torn.extend_from_slice(&fifth[..cut]);
            let loaded = decode(&torn);
            assert_eq!(loaded.entries.len(), 4, "cut at {cut}");
            assert_eq!((loaded.good_len, loaded.dropped_tail), (good as u64, cut > 0));
        }
        // A flipped byte inside an entry fails its checksum: it and what follows are not trusted.
        bytes[good - 20] ^= 0x01;
        let loaded = decode(&bytes);
        assert_eq!(loaded.entries.len(), 3);
        assert!(loaded.dropped_tail);
    }

    #[test]
    fn garbage_never_panics_and_never_yields_an_entry() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..2000 {
            let garbage: Vec<u8> = (0..len % 300)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed % 256) as u8
                })
                .collect();
            let loaded = decode(&garbage);
            assert!(loaded.entries.is_empty());
            assert!(loaded.good_len <= garbage.len() as u64);
        }
    }

    #[test]
    fn the_writer_cuts_a_torn_tail_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(crate::recordings::layout::INDEX_FILE);
        let (mut writer, loaded) = IndexWriter::open(&path).unwrap();
        assert!(loaded.entries.is_empty());
        writer.append(&entry(0)).unwrap();
        writer.append(&entry(1)).unwrap();
        drop(writer);
        // A crash mid-append leaves half a line.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&encode(&entry(2))[..10]).unwrap();
        drop(file);
        let (mut writer, loaded) = IndexWriter::open(&path).unwrap();
        assert_eq!((loaded.entries.len(), loaded.dropped_tail), (2, true));
        writer.append(&entry(2)).unwrap();
        let reloaded = load(&path).unwrap();
        assert_eq!(reloaded.entries, (0..3).map(entry).collect::<Vec<_>>());
        assert!(!reloaded.dropped_tail);
    }
}
