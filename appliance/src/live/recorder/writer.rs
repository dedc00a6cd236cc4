//! The recorder's disk writer, on its own thread (never the async runtime,
//! never the live path): for each sealed segment of a recorded rendition it
//! writes the init section once per version, the segment to its own file
//! (synced), makes the folder entry durable, then appends the index entry
//! (synced). A crash at any point leaves the index naming only complete
//! files. A write that fails (a full disk) loses that segment alone: the
//! recording is marked failing (`recording.failed`), the next segment is
//! tried again and, once one is written, recording has resumed, with a
//! discontinuity where the gap is. At the end the record says `ready` and
//! `recording.ready` goes out.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use media::TrackKind;
use packager::{SealedSegment, SegmentReceiver, TapStats};

use crate::live::events::SessionEvent;
use crate::live::ports::Reporter;

use crate::recordings::index::{IndexEntry, IndexWriter};
use crate::recordings::layout::{INDEX_FILE, Layout, init_file, segment_file};
use crate::recordings::meta::{self, RecordingMeta, RecordingState, RenditionMeta, sync_dir};
use crate::recordings::notify::Notifier;
use crate::state::clock;
use crate::state::{EventType, RecordingSettings};

/// What one session's recording is.
#[derive(Debug, Clone)]
pub struct RecordingPlan {
    pub layout: Layout,
    pub channel: String,
    pub session: String,
    pub settings: RecordingSettings,
    /// Every rendition of the session, the top one first.
    pub renditions: Vec<String>,
}

/// One recorded rendition's open files.
#[derive(Debug)]
struct RenditionFiles {
    dir: PathBuf,
    index: IndexWriter,
    inits: Vec<u32>,
    /// The msn that follows the last one recorded.
    next_msn: Option<u64>,
    /// A segment was lost since the last one written: the next one starts a discontinuity.
    gap: bool,
    segments: u64,
}

/// The writer of one session's recording.
pub struct Writer {
    plan: RecordingPlan,
    notifier: Notifier,
    dir: PathBuf,
    meta: RecordingMeta,
    meta_written: bool,
    renditions: HashMap<String, RenditionFiles>,
    /// Why writing fails now, while it does.
    failing: Option<String>,
    /// Events that could not be written yet (the disk was full), oldest first.
    unsent: Vec<(EventType, Option<String>)>,
}

impl Writer {
    pub fn new(plan: RecordingPlan, notifier: Notifier) -> Writer {
        let dir = plan.layout.session_dir(&plan.channel, &plan.session);
        let meta = RecordingMeta {
            channel: plan.channel.clone(),
            session: plan.session.clone(),
            state: RecordingState::Recording,
            started_ms: clock::now_ms(),
            ended_ms: None,
            renditions: Vec::new(),
            last_failure: None,
        };
        let renditions = HashMap::new();
        Writer { plan, notifier, dir, meta, meta_written: false, renditions, failing: None, unsent: Vec::new() }
    }

    /// Writes every segment that comes until the stream ends, then closes the recording.
    /// Segments the tap dropped (the recorder fell behind) go up as
    /// `Dropped` events to `reporter`, at most once per `DROP_REPORT_INTERVAL`.
    pub fn run(mut self, mut segments: SegmentReceiver, reporter: Option<Reporter>) {
        let stats = segments.stats();
        let mut drops = DropReport { reported: 0, at: Instant::now() };
        while let Some(segment) = segments.blocking_recv() {
            drops.report_due(&stats, reporter.as_ref(), false);
            if !self.plan.settings.records(&segment.rendition, &self.plan.renditions) {
                continue;
            }
            match self.write(&segment) {
                Ok(()) => {
                    if let Some(reason) = self.failing.take() {
                        tracing::info!(%reason, "recording resumed");
                    }
                    self.send_unsent();
                }
                Err(e) => self.failed(&segment, e),
            }
        }
        drops.report_due(&stats, reporter.as_ref(), true);
        self.finish();
    }

    fn write(&mut self, segment: &SealedSegment) -> io::Result<()> {
        if !self.meta_written {
            std::fs::create_dir_all(&self.dir)?;
            meta::write(&self.dir, &self.meta)?;
            self.meta_written = true;
        }
        if !self.renditions.contains_key(&*segment.rendition) {
            let files = self.open_rendition(segment)?;
            self.renditions.insert(segment.rendition.to_string(), files);
        }
        let files = self.renditions.get_mut(&*segment.rendition).expect("opened above");
        if !files.inits.contains(&segment.init_version) {
            write_synced(&files.dir.join(init_file(segment.init_version)), &segment.init)?;
            sync_dir(&files.dir)?;
            files.inits.push(segment.init_version);
        }
        let path = files.dir.join(segment_file(segment.msn));
        let written = write_synced(&path, &segment.data).and_then(|()| sync_dir(&files.dir)).and_then(|()| {
            let skipped = files.next_msn.is_some_and(|next| next != segment.msn);
            files.index.append(&IndexEntry {
                msn: segment.msn,
                duration: segment.duration,
                pdt_ms: millis(segment.program_date_time),
                bytes: segment.data.len() as u64,
                discontinuity: segment.discontinuity || files.gap || skipped,
                init: segment.init_version,
            })
        });
        if let Err(e) = written {
            // Not in the index: the file is garbage; freeing its room helps the next one.
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        files.next_msn = Some(segment.msn + 1);
        files.gap = false;
        files.segments += 1;
        Ok(())
    }

    /// A rendition's first segment: its folder, its index, and its place in the record.
    fn open_rendition(&mut self, segment: &SealedSegment) -> io::Result<RenditionFiles> {
        let dir = self.dir.join(&*segment.rendition);
        std::fs::create_dir_all(&dir)?;
        let (index, _) = IndexWriter::open(&dir.join(INDEX_FILE))?;
        let video = segment.tracks.iter().find(|t| t.kind == TrackKind::Video);
        // A first try that failed (a full disk) may have listed it already.
        self.meta.renditions.retain(|r| *r.name != *segment.rendition);
        self.meta.renditions.push(RenditionMeta {
            name: segment.rendition.to_string(),
            codecs: segment.tracks.iter().map(|t| t.codec.rfc6381()).collect(),
            resolution: video.and_then(|t| t.resolution()),
            frame_rate: video.and_then(|t| t.frame_rate).filter(|(_, d)| *d > 0).map(|(n, d)| n as f64 / d as f64),
        });
        let order = |name: &str| self.plan.renditions.iter().position(|r| r == name).unwrap_or(usize::MAX);
        self.meta.renditions.sort_by_key(|r| order(&r.name));
        // Listed before any of its segments is indexed, so recovery and catchup always see it.
        meta::write(&self.dir, &self.meta)?;
        Ok(RenditionFiles { dir, index, inits: Vec::new(), next_msn: None, gap: false, segments: 0 })
    }

    fn failed(&mut self, segment: &SealedSegment, error: io::Error) {
        if let Some(files) = self.renditions.get_mut(&*segment.rendition) {
            files.gap = true;
        }
        if self.failing.is_some() {
            return;
        }
        let reason = format!("cannot write segment {} of {}: {error}", segment.msn, segment.rendition);
        tracing::error!(alert = "recording-failed", %reason, "recording stopped; it resumes when a segment can be written again (the live channel goes on)");
        self.meta.last_failure = Some(reason.clone());
        self.failing = Some(reason.clone());
        self.notify(EventType::RecordingFailed, Some(reason));
    }

    /// Sends an event, or keeps it to send once something can be written again.
    fn notify(&mut self, kind: EventType, reason: Option<String>) {
        self.send_unsent();
        let (channel, session) = (&self.plan.channel, &self.plan.session);
        if !self.unsent.is_empty() || !self.notifier.notify(channel, session, kind, reason.clone()) {
            self.unsent.push((kind, reason));
        }
    }

    fn send_unsent(&mut self) {
        while let Some((kind, reason)) = self.unsent.first().cloned() {
            if !self.notifier.notify(&self.plan.channel, &self.plan.session, kind, reason) {
                return;
            }
            self.unsent.remove(0);
        }
    }

    /// The session ended: the record says `ready` and the catchup is announced.
    fn finish(mut self) {
        if self.renditions.values().all(|r| r.segments == 0) {
            // Nothing was recorded: no empty recording is left behind.
            if self.meta_written {
                let _ = std::fs::remove_dir_all(&self.dir);
            }
            tracing::info!("session ended with nothing recorded");
            return;
        }
        self.meta.state = RecordingState::Ready;
        self.meta.ended_ms = Some(clock::now_ms());
        if let Err(e) = retry_briefly(|| meta::write(&self.dir, &self.meta)) {
            // Still `recording` on disk: the next start closes it as interrupted, with every segment.
            tracing::error!(error = %e, "cannot mark the recording ready; the next start will close it");
            return;
        }
        tracing::info!(renditions = self.renditions.len(), "recording ready");
        self.notify(EventType::RecordingReady, None);
        if !self.unsent.is_empty() {
            tracing::warn!(
                events = self.unsent.len(),
                "recording events could not be recorded (the data disk is full)"
            );
        }
    }
}

/// How often segments the tap dropped are reported (as the session's other queues).
const DROP_REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// What was last reported of the tap's drops.
struct DropReport {
    reported: u64,
    at: Instant,
}

impl DropReport {
    /// Reports drops since the last report when the interval has passed (or `now`).
    fn report_due(&mut self, stats: &TapStats, reporter: Option<&Reporter>, now: bool) {
        let dropped = stats.dropped();
        if dropped == self.reported || !(now || self.at.elapsed() >= DROP_REPORT_INTERVAL) {
            return;
        }
        let segments = dropped - self.reported;
        tracing::warn!(segments, offered = stats.offered(), "the recorder fell behind: segments were not recorded");
        if let Some(reporter) = reporter {
            reporter.report(SessionEvent::Dropped {
                queue: "recorder tap".into(),
                units: segments,
                episodes: segments,
            });
        }
        self.reported = dropped;
        self.at = Instant::now();
    }
}

/// Writes `data` to a new file at `path` and syncs it.
fn write_synced(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(data)?;
    file.sync_data()
}

fn millis(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH).unwrap_or(Duration::ZERO).as_millis() as u64
}

/// Tries `op` a few times over about a second (room may be freed meanwhile).
fn retry_briefly(mut op: impl FnMut() -> io::Result<()>) -> io::Result<()> {
    let mut last = Ok(());
    for attempt in 0..4 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(250));
        }
        last = op();
        if last.is_ok() {
            return last;
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use packager::segment_tap;

    use super::*;
    use crate::recordings::{Catalog, Recordings};
    use crate::state::{RecordRenditions, Store};

    fn segment(rendition: &str, msn: u64) -> SealedSegment {
        SealedSegment {
            rendition: Arc::from(rendition),
            msn,
            duration: 2.0,
            program_date_time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + msn * 2),
            discontinuity: false,
            init_version: 0,
            init: Bytes::from_static(b"init"),
            tracks: Arc::from(Vec::new()),
            data: Bytes::from(format!("{rendition} segment {msn}")),
        }
    }

    fn plan(dir: &Path, renditions: RecordRenditions) -> RecordingPlan {
        RecordingPlan {
            layout: Layout::new(dir),
            channel: "cam".into(),
            session: "0190000000000abcd".into(),
            settings: RecordingSettings { enabled: true, renditions, ..RecordingSettings::default() },
            renditions: ["720p", "480p", "source"].map(String::from).to_vec(),
        }
    }

    /// The recordings of a data directory (no quota), with its open store.
    fn recordings_in(dir: &Path) -> (Recordings, Store) {
        let store = Store::open(dir).unwrap();
        let quota = crate::recordings::retention::Quota { keep_free_percent: 0.0, max_bytes: None };
        (Recordings::new(dir, store.clone(), quota), store)
    }

    #[test]
    fn the_writer_records_what_the_plan_says_marks_gaps_and_ends_ready() {
        let dir = tempfile::tempdir().unwrap();
        let (recordings, store) = recordings_in(dir.path());
        let (tap, segments) = segment_tap(16);
        for s in [segment("480p", 0), segment("720p", 0), segment("source", 0), segment("720p", 1)] {
            assert!(tap.offer(s));
        }
        // Segment 2 never reached the recorder (a full tap): 3 starts a discontinuity.
        assert!(tap.offer(segment("720p", 3)));
        drop(tap);
        Writer::new(plan(dir.path(), RecordRenditions::TopAndSource), recordings.notifier().clone())
            .run(segments, None);

        let catalog: &Catalog = recordings.catalog();
        let recording = catalog.get("cam", "0190000000000abcd").unwrap();
        assert_eq!(recording.meta.state, RecordingState::Ready);
        assert_eq!(recording.rendition_names(), ["720p", "source"], "the top rung and the source, top first");
        let (_, index) = catalog.rendition("cam", "0190000000000abcd", "720p").unwrap();
        let flags: Vec<(u64, bool)> = index.entries.iter().map(|e| (e.msn, e.discontinuity)).collect();
        assert_eq!(flags, [(0, false), (1, false), (3, true)]);
        let path = catalog.media_path("cam", "0190000000000abcd", "720p", "seg3.m4s").unwrap();
        assert_eq!(std::fs::read(path).unwrap(), b"720p segment 3", "the segment's bytes, as handed over");
        let events = store.list_events(None, 10).unwrap().items;
        assert_eq!(events.iter().map(|e| e.kind).collect::<Vec<_>>(), [EventType::RecordingReady]);
    }

    #[test]
    fn a_session_with_nothing_recorded_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (recordings, _store) = recordings_in(dir.path());
        let (tap, segments) = segment_tap(4);
        drop(tap);
        Writer::new(plan(dir.path(), RecordRenditions::All), recordings.notifier().clone()).run(segments, None);
        assert!(recordings.catalog().all().unwrap().is_empty());
    }

    #[test]
    fn segments_the_tap_dropped_are_reported_as_the_sessions_other_drops() {
        let dir = tempfile::tempdir().unwrap();
        let (recordings, _store) = recordings_in(dir.path());
        let (tap, segments) = segment_tap(1);
        assert!(tap.offer(segment("720p", 0)));
        assert!(!tap.offer(segment("720p", 1)), "the recorder is behind: dropped");
        drop(tap);
        let (events, mut reported) = tokio::sync::mpsc::channel(4);
        let reporter = Reporter { output: "recorder".into(), events };
        Writer::new(plan(dir.path(), RecordRenditions::All), recordings.notifier().clone())
            .run(segments, Some(reporter));
        let event = reported.try_recv().expect("a drop report");
        assert_eq!(event, SessionEvent::Dropped { queue: "recorder tap".into(), units: 1, episodes: 1 });
        let recording = recordings.catalog().get("cam", "0190000000000abcd").unwrap();
        assert_eq!(recording.renditions[0].segments, 1);
    }
}
