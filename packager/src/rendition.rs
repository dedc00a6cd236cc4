//! One rendition's live state in RAM: init segments, a sliding window of
//! segments and their parts, the rendered playlists, and a `watch` of progress
//! that blocking playlist reloads and preload-hinted part requests wait on.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use media::{LatencyMode, TrackInfo};
use tokio::sync::watch;

use crate::dvr::{ArchivedSegment, DvrArchive, DvrConfig};
use crate::playlist::{CompleteSegment, MediaPlaylist, PartEntry, RenditionReport, SegmentEntry};
use crate::segment_tap::{SealedSegment, SegmentTap};
use crate::segmenter::Output;

/// Retention and window settings of a rendition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowConfig {
    pub mode: LatencyMode,
    /// Segments listed in the playlist.
    pub window_segments: usize,
    /// The nominal segment duration, the floor of `EXT-X-TARGETDURATION`.
    pub segment_target: Duration,
}

/// Where a rendition stands; what blocking requests wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// The last published part as (msn, index).
    pub last_part: Option<(u64, u32)>,
    /// The last complete segment.
    pub last_complete: Option<u64>,
    pub ended: bool,
}

impl Progress {
    /// Whether `_HLS_msn=msn&_HLS_part=part` can be answered.
    pub fn has_part(&self, msn: u64, part: u32) -> bool {
        self.ended || self.last_part.is_some_and(|last| last >= (msn, part))
    }

    /// Whether `_HLS_msn=msn` alone can be answered.
    pub fn has_segment(&self, msn: u64) -> bool {
        self.ended || self.last_complete.is_some_and(|last| last >= msn)
    }

    /// The msn of the segment being filled (or the next one).
    pub fn live_msn(&self) -> u64 {
        match (self.last_part, self.last_complete) {
            (Some((msn, _)), Some(done)) if done >= msn => msn + 1,
            (Some((msn, _)), _) => msn,
            (None, Some(done)) => done + 1,
            (None, None) => 0,
        }
    }
}

#[derive(Debug)]
struct Part {
    duration: f64,
    independent: bool,
    data: Bytes,
}

#[derive(Debug)]
struct Segment {
    msn: u64,
    program_date_time: SystemTime,
    discontinuity: bool,
    init_version: u32,
    parts: Vec<Part>,
    /// The CMAF chunks of the part being made, until it is published.
    pending: Vec<Bytes>,
    /// Duration and the whole segment (its parts concatenated) once complete.
    complete: Option<(f64, Bytes)>,
    /// When it left the playlist window; dropped from memory a retention later.
    retired_at: Option<Instant>,
}

#[derive(Debug, Default)]
struct State {
    part_target: Option<f64>,
    inits: VecDeque<(u32, Bytes, Arc<[TrackInfo]>)>,
    segments: VecDeque<Segment>,
    target_duration: u64,
    /// Discontinuities that left memory, for `EXT-X-DISCONTINUITY-SEQUENCE`.
    discontinuity_sequence: u64,
    ended: bool,
    /// Bytes and seconds of media published, for `BANDWIDTH`.
    total_bytes: u64,
    total_seconds: f64,
    peak_bps: u64,
    version: u64,
    /// Where complete segments are also handed (the recorder); dropped at the end.
    tap: Option<SegmentTap>,
    /// The DVR window's segments that left memory, when the rendition has one.
    dvr: Option<DvrArchive>,
}

/// A rendered playlist and its gzip form.
#[derive(Debug, Default)]
pub struct RenderedPlaylist {
    pub text: Bytes,
    pub gzip: Bytes,
}

/// Which playlist of a rendition: the short live window or the DVR window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaylistView {
    /// `index.m3u8`: the live window.
    Live,
    /// `dvr.m3u8`: the whole DVR window, its old part from the recording.
    Dvr,
}

/// What a rendered playlist depends on: (version, view, skip, reports).
type RenderKey = (u64, PlaylistView, bool, Vec<RenditionReport>);

/// The latest rendering of each (view, skip) pair, so that live, DVR and
/// delta-update readers of one version do not evict each other.
#[derive(Debug, Default)]
struct RenderCache {
    entries: Vec<(RenderKey, Arc<RenderedPlaylist>)>,
}

/// Live state of one rendition.
#[derive(Debug)]
pub struct Rendition {
    pub name: String,
    config: WindowConfig,
    state: RwLock<State>,
    progress: watch::Sender<Progress>,
    /// Bumped whenever anything is made, chunks included: what readers of
    /// parts and segments in progress wait on.
    made: watch::Sender<u64>,
    cache: Mutex<RenderCache>,
    /// Packaged for a tap alone (the recorder): in no multivariant playlist, no rendition report.
    hidden: bool,
}

/// A part or segment as far as it is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SoFar {
    /// Its bytes so far, in order (whole parts and chunks); `complete` once nothing more comes.
    Made { pieces: Vec<Bytes>, complete: bool },
    /// Not begun, but next: worth waiting for.
    Coming,
    /// Gone from memory, never to be made, or the stream ended without it.
    Gone,
}

/// Summary used by the multivariant playlist.
#[derive(Debug, Clone)]
pub struct RenditionSummary {
    pub tracks: Arc<[TrackInfo]>,
    pub average_bps: u64,
    pub peak_bps: u64,
}

impl Rendition {
    pub fn new(name: impl Into<String>, config: WindowConfig) -> Self {
        let state =
            State { target_duration: config.segment_target.as_secs_f64().round().max(1.0) as u64, ..State::default() };
        Self {
            name: name.into(),
            config,
            state: RwLock::new(state),
            progress: watch::Sender::new(Progress::default()),
            made: watch::Sender::new(0),
            cache: Mutex::new(RenderCache::default()),
            hidden: false,
        }
    }

    /// Hands every segment this rendition completes to `tap` as well, until it ends.
    pub fn tapped(self, tap: SegmentTap) -> Self {
        self.state.write().unwrap_or_else(|e| e.into_inner()).tap = Some(tap);
        self
    }

    pub fn config(&self) -> WindowConfig {
        self.config
    }

    /// Leaves the rendition out of multivariant playlists and rendition
    /// reports: it is packaged for its tap (the recorder) alone.
    pub fn hidden(mut self) -> Self {
        self.hidden = true;
        self
    }

    pub fn is_hidden(&self) -> bool {
        self.hidden
    }

    /// Gives the rendition a DVR window (`dvr.m3u8`) besides its live window.
    pub fn with_dvr(self, config: DvrConfig) -> Self {
        self.state.write().unwrap_or_else(|e| e.into_inner()).dvr = Some(DvrArchive::new(config));
        self
    }

    /// Whether the rendition has a DVR playlist.
    pub fn has_dvr(&self) -> bool {
        self.read().dvr.is_some()
    }

    /// Where a file of the DVR window that left memory lies (`archive_uri`
    /// and its name, relative to the rendition's URIs): `None` when it is in
    /// memory, out of the window, or the rendition has no DVR window.
    pub fn archived_location(&self, file: ArchivedFile) -> Option<String> {
        let state = self.read();
        let archive = state.dvr.as_ref()?;
        match file {
            ArchivedFile::Segment(msn) => {
                let found = archive.segments.binary_search_by_key(&msn, |s| s.msn).is_ok();
                (found && find_segment(&state, msn).is_none()).then(|| archive.segment_uri(msn))
            }
            ArchivedFile::Init(version) => {
                let listed = archive.segments.iter().any(|s| s.init_version == version);
                let in_memory = state.inits.iter().any(|(v, _, _)| *v == version);
                (listed && !in_memory).then(|| archive.init_uri(version))
            }
        }
    }

    /// Segments and seconds of the DVR window listed from the recording (none without DVR).
    pub fn dvr_archived(&self) -> (usize, f64) {
        self.read().dvr.as_ref().map_or((0, 0.0), |a| (a.segments.len(), a.seconds()))
    }

    /// Applies segmenter outputs under one lock, then wakes waiters once.
    pub fn apply(&self, outputs: &[Output]) {
        self.apply_at(outputs, Instant::now());
    }

    /// `apply` with an explicit clock for retention (tests drive time).
    pub fn apply_at(&self, outputs: &[Output], now: Instant) {
        if outputs.is_empty() {
            return;
        }
        // Chunks change neither the playlist nor what blocking requests wait for.
        let listed = outputs.iter().any(|o| !matches!(o, Output::Chunk { .. }));
        let progress = {
            let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
            for output in outputs {
                self.apply_one(&mut state, output);
            }
            if listed {
                self.evict(&mut state, now);
                state.version += 1;
            }
            listed.then(|| progress_of(&state))
        };
        if let Some(progress) = progress {
            self.progress.send_replace(progress);
        }
        self.made.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn apply_one(&self, state: &mut State, output: &Output) {
        match output {
            Output::PartTarget(target) => {
                if self.config.mode.has_parts() {
                    state.part_target = Some(*target);
                }
            }
            Output::Init { version, data, tracks } => {
                state.inits.push_back((*version, data.clone(), tracks.clone()));
            }
            Output::SegmentStart { msn, program_date_time, discontinuity, init_version } => {
                state.segments.push_back(Segment {
                    msn: *msn,
                    program_date_time: *program_date_time,
                    discontinuity: *discontinuity,
                    init_version: *init_version,
                    parts: Vec::new(),
                    pending: Vec::new(),
                    complete: None,
                    retired_at: None,
                });
            }
            Output::Chunk { msn, index, data, .. } => {
                if let Some(segment) = state.segments.back_mut().filter(|s| s.msn == *msn)
                    && segment.parts.len() == *index as usize
                {
                    segment.pending.push(data.clone());
                }
            }
            Output::Part(part) => {
                if let Some(segment) = state.segments.back_mut().filter(|s| s.msn == part.msn) {
                    segment.pending.clear();
                    segment.parts.push(Part {
                        duration: part.duration,
                        independent: part.independent,
                        data: part.data.clone(),
                    });
                }
                state.total_bytes += part.data.len() as u64;
                state.total_seconds += part.duration;
            }
            Output::SegmentEnd { msn, duration } => {
                let Some(segment) = state.segments.back_mut().filter(|s| s.msn == *msn) else { return };
                let mut whole = BytesMut::with_capacity(segment.parts.iter().map(|p| p.data.len()).sum());
                for part in &segment.parts {
                    whole.extend_from_slice(&part.data);
                }
                let whole = whole.freeze();
                // Parts become views into the segment: the media is held once.
                let mut offset = 0;
                for part in &mut segment.parts {
                    let len = part.data.len();
                    part.data = whole.slice(offset..offset + len);
                    offset += len;
                }
                let bps = if *duration > 0.0 { (whole.len() as f64 * 8.0 / duration) as u64 } else { 0 };
                segment.complete = Some((*duration, whole.clone()));
                let sealed = (segment.msn, segment.program_date_time, segment.discontinuity, segment.init_version);
                state.peak_bps = state.peak_bps.max(bps);
                state.target_duration = state.target_duration.max(duration.round() as u64);
                self.offer_to_tap(state, sealed, *duration, whole);
            }
            Output::Refused { .. } => {}
            Output::End => {
                state.ended = true;
                // The subscriber's stream ends once every rendition has ended.
                state.tap = None;
            }
        }
    }

    /// Hands a segment just completed to the tap, if any (never waits).
    fn offer_to_tap(&self, state: &State, sealed: (u64, SystemTime, bool, u32), duration: f64, data: Bytes) {
        let Some(tap) = &state.tap else { return };
        let (msn, program_date_time, discontinuity, init_version) = sealed;
        let Some((_, init, tracks)) = state.inits.iter().find(|(v, _, _)| *v == init_version) else { return };
        let segment = SealedSegment {
            rendition: Arc::from(self.name.as_str()),
            msn,
            duration,
            program_date_time,
            discontinuity,
            init_version,
            init: init.clone(),
            tracks: tracks.clone(),
            data,
        };
        if !tap.offer(segment) {
            tracing::debug!(rendition = %self.name, msn, "segment not handed to the tap (its queue is full or gone)");
        }
    }

    /// Slides the window: retires segments beyond it and frees retired ones
    /// after three target durations (parts stay downloadable that long at least).
    fn evict(&self, state: &mut State, now: Instant) {
        let complete = state.segments.iter().filter(|s| s.complete.is_some() && s.retired_at.is_none()).count();
        let mut to_retire = complete.saturating_sub(self.config.window_segments);
        for segment in state.segments.iter_mut() {
            if to_retire == 0 {
                break;
            }
            if segment.retired_at.is_none() && segment.complete.is_some() {
                segment.retired_at = Some(now);
                to_retire -= 1;
            }
        }
        let retention = Duration::from_secs(3 * state.target_duration);
        while let Some(front) = state.segments.front() {
            match front.retired_at {
                Some(at) if now.duration_since(at) >= retention => {
                    if front.discontinuity {
                        state.discontinuity_sequence += 1;
                    }
                    if let (Some(archive), Some((duration, _))) = (state.dvr.as_mut(), &front.complete) {
                        let archived = ArchivedSegment {
                            msn: front.msn,
                            duration: *duration,
                            program_date_time: front.program_date_time,
                            discontinuity: front.discontinuity,
                            init_version: front.init_version,
                        };
                        archive.push(archived);
                    }
                    state.segments.pop_front();
                }
                _ => break,
            }
        }
        let in_memory: f64 = state.segments.iter().filter_map(|s| s.complete.as_ref().map(|(d, _)| *d)).sum();
        if let Some(archive) = state.dvr.as_mut() {
            archive.trim(in_memory);
        }
        let oldest_init = state.segments.front().map(|s| s.init_version);
        while state.inits.len() > 1 && oldest_init.is_some_and(|v| state.inits[0].0 < v) {
            state.inits.pop_front();
        }
    }

    /// Segments held in memory (listed and retired) and their bytes.
    pub fn memory(&self) -> (usize, usize) {
        let state = self.read();
        let bytes = state
            .segments
            .iter()
            .map(|s| match &s.complete {
                Some((_, data)) => data.len(),
                None => s.parts.iter().map(|p| p.data.len()).chain(s.pending.iter().map(Bytes::len)).sum(),
            })
            .sum();
        (state.segments.len(), bytes)
    }

    pub fn progress(&self) -> Progress {
        *self.progress.borrow()
    }

    pub fn subscribe(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// Changes whenever anything is made (a chunk, a part, a segment, the end).
    pub fn subscribe_made(&self) -> watch::Receiver<u64> {
        self.made.subscribe()
    }

    /// How many watchers wait on this rendition now (each held blocking
    /// reload or hinted part is one), so that a test can make a part once
    /// its requests are held rather than after a guessed sleep.
    pub fn watchers(&self) -> usize {
        self.progress.receiver_count() + self.made.receiver_count()
    }

    /// The part `(msn, index)` as far as it is made, in one look under the
    /// lock: whole, its chunks so far (when `chunks`; otherwise a part in
    /// progress is `Coming`), coming (the hinted next part: the segmenter
    /// hints only parts it will make), or gone.
    pub fn part_so_far(&self, msn: u64, index: u32, chunks: bool) -> SoFar {
        let state = self.read();
        if let Some(segment) = find_segment(&state, msn) {
            if let Some(part) = segment.parts.get(index as usize) {
                return SoFar::Made { pieces: vec![part.data.clone()], complete: true };
            }
            let in_progress = segment.complete.is_none() && segment.parts.len() == index as usize && !state.ended;
            if in_progress && chunks && !segment.pending.is_empty() {
                return SoFar::Made { pieces: segment.pending.clone(), complete: false };
            }
            if in_progress {
                return SoFar::Coming;
            }
        }
        if !state.ended && next_part_of(&state) == Some((msn, index)) {
            return SoFar::Coming;
        }
        SoFar::Gone
    }

    /// The segment `msn` as far as it is made: whole, its parts (and, when
    /// `chunks`, the chunks of the part in progress) so far, coming (the next
    /// one), or gone.
    pub fn segment_so_far(&self, msn: u64, chunks: bool) -> SoFar {
        let state = self.read();
        match find_segment(&state, msn) {
            Some(Segment { complete: Some((_, data)), .. }) => {
                SoFar::Made { pieces: vec![data.clone()], complete: true }
            }
            Some(segment) if !state.ended => {
                let parts = segment.parts.iter().map(|p| p.data.clone());
                let pending = segment.pending.iter().filter(|_| chunks).cloned();
                SoFar::Made { pieces: parts.chain(pending).collect(), complete: false }
            }
            Some(_) => SoFar::Gone,
            None if !state.ended && next_part_of(&state) == Some((msn, 0)) => SoFar::Coming,
            None => SoFar::Gone,
        }
    }

    /// Marks the rendition ended (publisher gone) and releases every waiter.
    pub fn end(&self) {
        self.apply(&[Output::End]);
    }

    pub fn target_duration(&self) -> u64 {
        self.read().target_duration
    }

    pub fn part_target(&self) -> Option<f64> {
        self.read().part_target
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn init(&self, version: u32) -> Option<Bytes> {
        self.read().inits.iter().find(|(v, _, _)| *v == version).map(|(_, data, _)| data.clone())
    }

    pub fn segment(&self, msn: u64) -> Option<Bytes> {
        let state = self.read();
        find_segment(&state, msn).and_then(|s| s.complete.as_ref().map(|(_, data)| data.clone()))
    }

    pub fn part(&self, msn: u64, index: u32) -> Option<Bytes> {
        let state = self.read();
        find_segment(&state, msn).and_then(|s| s.parts.get(index as usize)).map(|p| p.data.clone())
    }

    /// The part a preload hint points at now: (msn, index).
    pub fn next_part(&self) -> Option<(u64, u32)> {
        let state = self.read();
        next_part_of(&state)
    }

    /// The latest track set and bitrates, once media has been published.
    pub fn summary(&self) -> Option<RenditionSummary> {
        let state = self.read();
        let (_, _, tracks) = state.inits.back()?;
        let average =
            if state.total_seconds > 0.0 { (state.total_bytes as f64 * 8.0 / state.total_seconds) as u64 } else { 0 };
        Some(RenditionSummary { tracks: tracks.clone(), average_bps: average, peak_bps: state.peak_bps.max(average) })
    }

    /// The live media playlist (delta update when `skip`), cached until the next change.
    pub fn playlist(&self, skip: bool, reports: Vec<RenditionReport>) -> Arc<RenderedPlaylist> {
        self.playlist_of(PlaylistView::Live, skip, reports).unwrap_or_default()
    }

    /// The media playlist of `view` (delta update when `skip`), cached until
    /// the next change; `None` for the DVR view of a rendition without one.
    pub fn playlist_of(
        &self,
        view: PlaylistView,
        skip: bool,
        reports: Vec<RenditionReport>,
    ) -> Option<Arc<RenderedPlaylist>> {
        let state = self.read();
        if view == PlaylistView::Dvr && state.dvr.is_none() {
            return None;
        }
        let key = (state.version, view, skip, reports);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, value)) = cache.entries.iter().find(|(k, _)| *k == key) {
            return Some(value.clone());
        }
        let text = self.build_playlist(&state, view, skip, key.3.clone()).render();
        drop(state);
        let rendered = Arc::new(RenderedPlaylist { gzip: gzip(text.as_bytes()), text: Bytes::from(text) });
        // One entry per (view, skip): older versions are of no use any more.
        cache.entries.retain(|(k, _)| (k.1, k.2) != (view, skip));
        cache.entries.push((key, rendered.clone()));
        Some(rendered)
    }

    /// The typed media playlist of `view` (what `playlist_of` renders).
    pub fn media_playlist(&self, view: PlaylistView, skip: bool, reports: Vec<RenditionReport>) -> MediaPlaylist {
        self.build_playlist(&self.read(), view, skip, reports)
    }

    fn build_playlist(
        &self,
        state: &State,
        view: PlaylistView,
        skip: bool,
        reports: Vec<RenditionReport>,
    ) -> MediaPlaylist {
        let rows = rows_of(state, view);
        let ll = state.part_target.filter(|_| self.config.mode.has_parts());
        let target = state.target_duration;
        let can_skip_until = ll.map(|_| 6.0 * target as f64);
        // Parts are listed for segments within three target durations of the live edge.
        let mut from_end = 0.0;
        let mut list_parts_from = rows.len();
        for (i, row) in rows.iter().enumerate().rev() {
            if from_end >= 3.0 * target as f64 {
                break;
            }
            list_parts_from = i;
            from_end += row.duration.unwrap_or_else(|| row.parts.iter().map(|p| p.duration).sum());
        }
        let mut skipped = 0;
        if let Some(until) = can_skip_until.filter(|_| skip) {
            let mut remaining: f64 = rows.iter().filter_map(|r| r.duration).sum();
            for row in &rows {
                let Some(duration) = row.duration else { break };
                if remaining <= until {
                    break;
                }
                remaining -= duration;
                skipped += 1;
            }
        }
        let mut segments = Vec::with_capacity(rows.len() - skipped);
        let mut previous_init = None;
        for (i, row) in rows.iter().enumerate() {
            let map_changed = previous_init.is_some_and(|v| v != row.init_version);
            previous_init = Some(row.init_version);
            if i < skipped {
                continue;
            }
            if row.duration.is_none() && (ll.is_none() || row.parts.is_empty()) {
                continue;
            }
            let parts = if ll.is_some() && i >= list_parts_from {
                row.parts
                    .iter()
                    .enumerate()
                    .map(|(index, p)| PartEntry {
                        duration: p.duration,
                        uri: format!("part{}.{index}.m4s", row.msn),
                        independent: p.independent,
                    })
                    .collect()
            } else {
                Vec::new()
            };
            // The same URIs whether a segment is in memory or not: players
            // (hls.js) require a segment's URI to stay as it was listed.
            segments.push(SegmentEntry {
                map_uri: format!("init{}.mp4", row.init_version),
                map_changed,
                discontinuity: row.discontinuity,
                program_date_time: Some(row.program_date_time),
                parts,
                complete: row.duration.map(|duration| CompleteSegment { duration, uri: format!("seg{}.m4s", row.msn) }),
            });
        }
        let preload_hint = match (ll, state.ended) {
            (Some(_), false) => next_part_of(state).map(|(msn, index)| format!("part{msn}.{index}.m4s")),
            _ => None,
        };
        let retired_discontinuities =
            state.segments.iter().filter(|s| s.retired_at.is_some() && s.discontinuity).count() as u64;
        let discontinuity_sequence = match (view, &state.dvr) {
            (PlaylistView::Dvr, Some(archive)) => archive.discontinuity_sequence,
            _ => state.discontinuity_sequence + retired_discontinuities,
        };
        MediaPlaylist {
            target_duration: target,
            part_target: ll,
            media_sequence: rows.first().map_or(0, |r| r.msn),
            discontinuity_sequence,
            skipped_segments: skipped as u64,
            can_skip_until,
            segments,
            preload_hint,
            rendition_reports: reports,
            ended: state.ended,
        }
    }
}

/// A file of the DVR window that may have left memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchivedFile {
    Segment(u64),
    Init(u32),
}

/// One segment as a playlist lists it, from memory or from the DVR archive.
struct Row<'a> {
    msn: u64,
    program_date_time: SystemTime,
    discontinuity: bool,
    init_version: u32,
    /// `Some` once complete.
    duration: Option<f64>,
    parts: &'a [Part],
}

/// The segments `view` lists, oldest first: the live window, or the DVR
/// window (archived metadata, then segments retired from the live window
/// but still in memory, then the live window).
fn rows_of(state: &State, view: PlaylistView) -> Vec<Row<'_>> {
    let dvr = view == PlaylistView::Dvr && state.dvr.is_some();
    let archived = state.dvr.iter().filter(|_| dvr).flat_map(|a| a.segments.iter()).map(|s| Row {
        msn: s.msn,
        program_date_time: s.program_date_time,
        discontinuity: s.discontinuity,
        init_version: s.init_version,
        duration: Some(s.duration),
        parts: &[],
    });
    let in_memory = state.segments.iter().filter(|s| dvr || s.retired_at.is_none()).map(|s| Row {
        msn: s.msn,
        program_date_time: s.program_date_time,
        discontinuity: s.discontinuity,
        init_version: s.init_version,
        duration: s.complete.as_ref().map(|(d, _)| *d),
        parts: &s.parts,
    });
    archived.chain(in_memory).collect()
}

fn find_segment(state: &State, msn: u64) -> Option<&Segment> {
    let first = state.segments.front()?.msn;
    let segment = state.segments.get(msn.checked_sub(first)? as usize)?;
    (segment.msn == msn).then_some(segment)
}

fn next_part_of(state: &State) -> Option<(u64, u32)> {
    let last = state.segments.back()?;
    Some(match last.complete {
        Some(_) => (last.msn + 1, 0),
        None => (last.msn, last.parts.len() as u32),
    })
}

fn progress_of(state: &State) -> Progress {
    let last_part =
        state.segments.iter().rev().find(|s| !s.parts.is_empty()).map(|s| (s.msn, s.parts.len() as u32 - 1));
    let last_complete = state.segments.iter().rev().find(|s| s.complete.is_some()).map(|s| s.msn);
    Progress { last_part, last_complete, ended: state.ended }
}

fn gzip(data: &[u8]) -> Bytes {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 3), flate2::Compression::fast());
    let _ = encoder.write_all(data);
    Bytes::from(encoder.finish().unwrap_or_default())
}
