//! Where recordings live on the data partition, and the names of their files:
//! `<data_dir>/recordings/<channel>/<session>/` holds `recording.json` (the
//! session's record, `meta`), `locked` while it is locked, and one folder per
//! rendition with `init<v>.mp4`, `seg<msn>.m4s` and `index.log`.

use std::path::{Path, PathBuf};

/// The session's record.
pub const META_FILE: &str = "recording.json";
/// Present while the recording is locked (never deleted by retention).
pub const LOCK_FILE: &str = "locked";
/// A rendition's append-only index of segments.
pub const INDEX_FILE: &str = "index.log";

/// The recordings folder of a data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(data_dir: &Path) -> Layout {
        Layout { root: data_dir.join("recordings") }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn channel_dir(&self, channel: &str) -> PathBuf {
        self.root.join(channel)
    }

    pub fn session_dir(&self, channel: &str, session: &str) -> PathBuf {
        self.root.join(channel).join(session)
    }

    pub fn rendition_dir(&self, channel: &str, session: &str, rendition: &str) -> PathBuf {
        self.session_dir(channel, session).join(rendition)
    }
}

pub fn init_file(version: u32) -> String {
    format!("init{version}.mp4")
}

pub fn segment_file(msn: u64) -> String {
    format!("seg{msn}.m4s")
}

/// Whether `name` is a file a catchup request may ask for (`init<v>.mp4`,
/// `seg<msn>.m4s`): nothing else of the folder is served.
pub fn is_media_file(name: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    name.strip_prefix("init").and_then(|r| r.strip_suffix(".mp4")).is_some_and(digits)
        || name.strip_prefix("seg").and_then(|r| r.strip_suffix(".m4s")).is_some_and(digits)
}

/// Whether `name` can be a path component we made (a channel, session or
/// rendition name): no separators, dots or anything a URL could smuggle.
pub fn is_plain_name(name: &str) -> bool {
    (1..=128).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_media_files_and_plain_names_pass() {
        for good in ["init0.mp4", "init12.mp4", "seg0.m4s", "seg123456.m4s"] {
            assert!(is_media_file(good), "{good}");
        }
        for bad in
            ["index.log", "recording.json", "locked", "seg.m4s", "init.mp4", "seg1.m4s.tmp", "../seg1.m4s", "seg-1.m4s"]
        {
            assert!(!is_media_file(bad), "{bad}");
        }
        for good in ["demo", "s_abc-12", "720p", "source"] {
            assert!(is_plain_name(good), "{good}");
        }
        for bad in ["", "..", ".", "a/b", "a.b", "a b", &"x".repeat(129)] {
            assert!(!is_plain_name(bad), "{bad}");
        }
    }
}
