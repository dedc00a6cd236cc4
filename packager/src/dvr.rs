//! The DVR window of a rendition: what its DVR playlist (`dvr.m3u8`) lists
//! beyond the short live window. Segments that left memory are listed from
//! metadata alone (msn, duration, date-time, discontinuity, init), about 50
//! bytes each, under their usual URIs, which the origin answers with a
//! permanent redirect into the session's recording on disk: the media of a
//! 2 h window is never held in memory, and a segment's URI never changes
//! while it is listed (hls.js drops a playlist where one did).

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

/// A rendition's DVR window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DvrConfig {
    /// How much media the DVR playlist lists, live window included.
    pub window: Duration,
    /// Where segments that left memory are read, relative to the
    /// rendition's URIs and ending in `/`: `{archive_uri}seg{msn}.m4s` and
    /// `{archive_uri}init{v}.mp4` (the recorder's files, same names).
    pub archive_uri: String,
}

/// A segment no longer in the live window: listed from metadata only.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ArchivedSegment {
    pub msn: u64,
    pub duration: f64,
    pub program_date_time: SystemTime,
    pub discontinuity: bool,
    pub init_version: u32,
}

/// The archived part of the DVR window, trimmed to the window's duration.
#[derive(Debug)]
pub(crate) struct DvrArchive {
    pub config: DvrConfig,
    pub segments: VecDeque<ArchivedSegment>,
    seconds: f64,
    /// Discontinuities that left the DVR window, for its `EXT-X-DISCONTINUITY-SEQUENCE`.
    pub discontinuity_sequence: u64,
}

impl DvrArchive {
    pub fn new(config: DvrConfig) -> DvrArchive {
        DvrArchive { config, segments: VecDeque::new(), seconds: 0.0, discontinuity_sequence: 0 }
    }

    /// Adds a segment that left memory (`trim` then keeps the window).
    pub fn push(&mut self, segment: ArchivedSegment) {
        self.seconds += segment.duration;
        self.segments.push_back(segment);
    }

    /// Drops the oldest segments while the archive and `live_seconds` (the
    /// complete segments memory still holds) exceed the window.
    pub fn trim(&mut self, live_seconds: f64) {
        let window = self.config.window.as_secs_f64();
        while let Some(front) = self.segments.front() {
            if self.seconds + live_seconds <= window {
                break;
            }
            self.seconds -= front.duration;
            if front.discontinuity {
                self.discontinuity_sequence += 1;
            }
            self.segments.pop_front();
        }
        if self.segments.is_empty() {
            self.seconds = 0.0;
        }
    }

    /// Seconds of media archived (listed from disk).
    pub fn seconds(&self) -> f64 {
        self.seconds
    }

    pub fn segment_uri(&self, msn: u64) -> String {
        format!("{}seg{msn}.m4s", self.config.archive_uri)
    }

    pub fn init_uri(&self, version: u32) -> String {
        format!("{}init{version}.mp4", self.config.archive_uri)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(msn: u64, discontinuity: bool) -> ArchivedSegment {
        ArchivedSegment {
            msn,
            duration: 2.0,
            program_date_time: SystemTime::UNIX_EPOCH,
            discontinuity,
            init_version: 0,
        }
    }

    #[test]
    fn keeps_the_window_less_what_memory_lists() {
        let config = DvrConfig { window: Duration::from_secs(20), archive_uri: "../../recordings/s/r/".into() };
        let mut archive = DvrArchive::new(config);
        for msn in 0..20 {
            archive.push(seg(msn, msn == 3));
            archive.trim(8.0);
        }
        // 20 s window, 8 s in memory: 6 segments of 2 s archived, the newest.
        let msns: Vec<u64> = archive.segments.iter().map(|s| s.msn).collect();
        assert_eq!(msns, (14..20).collect::<Vec<_>>());
        assert_eq!(archive.seconds(), 12.0);
        assert_eq!(archive.discontinuity_sequence, 1);
        assert_eq!(archive.segment_uri(14), "../../recordings/s/r/seg14.m4s");
        assert_eq!(archive.init_uri(2), "../../recordings/s/r/init2.mp4");
    }
}
