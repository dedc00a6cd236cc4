//! The LL-HLS segmenter: turns a stream of `StreamEvent`s into init segments,
//! parts (one CMAF fragment each) and segments (a run of parts starting on a
//! keyframe). Pure and synchronous: the caller feeds events and applies the
//! outputs to a rendition store.
//!
//! Timing rules it guarantees (RFC 8216bis):
//! - the declared part target is a whole number of frames plus a small jitter
//!   allowance, so every part but an independent or final one lasts between
//!   85% and 100% of it;
//! - a part closes as soon as the next frame could not fit (one frame of
//!   look-ahead gives each sample its duration), so it is published about one
//!   frame after its last frame arrived;
//! - while it is made, each frame (two at 60 fps, two AAC frames) is written
//!   as a CMAF chunk (`moof`+`mdat`) the moment its duration is known, for
//!   origins that deliver parts while they are made; the part is its chunks;
//! - segments are cut on the first keyframe at or after the segment target,
//!   and closed as soon as their last part is when the next frame is that
//!   keyframe, so a preload hint never names a part that will not be made;
//! - a new track set starts a new init segment and a discontinuity; the same
//!   set announced again after media (its producer restarted: a transcode
//!   moved to another encoder) starts a discontinuity with the same init.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use media::codec::AAC_FRAME_SAMPLES;
use media::{Arrival, EncodedUnit, StreamEvent, Timebase, TrackInfo, TrackKind};

use crate::cmaf::{Sample, TrackRun, write_fragment, write_init};

/// Jitter allowance added to a whole number of frames when declaring the part
/// target: RTMP's millisecond clock makes frame durations wobble by a tick.
const PART_TARGET_SLACK: f64 = 1.03;
/// Frames looked at to estimate the frame duration when the source declared no rate.
const WARMUP_FRAMES: usize = 5;
/// A chunk of a part is written once it holds this much of the driver track:
/// every frame at 30 fps and below, every two at 60 fps or of AAC audio.
const CHUNK_TARGET: Duration = Duration::from_millis(30);
/// The wall-clock anchor of program date-time is moved when it drifts this far from arrival time.
const PDT_REANCHOR: Duration = Duration::from_secs(1);

/// Segmenter settings of one rendition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmenterConfig {
    /// Wanted part duration; rounded to a whole number of frames.
    pub part_target: Duration,
    /// Segments are cut on the first keyframe once they are this long.
    pub segment_target: Duration,
}

/// What the segmenter produced, in order.
#[derive(Debug, Clone)]
pub enum Output {
    /// The declared part target in seconds; emitted once, before the first segment.
    PartTarget(f64),
    /// A new init segment; segments after it refer to `version`.
    Init {
        version: u32,
        data: Bytes,
        tracks: Arc<[TrackInfo]>,
    },
    SegmentStart {
        msn: u64,
        program_date_time: SystemTime,
        discontinuity: bool,
        init_version: u32,
    },
    /// One CMAF chunk (`moof`+`mdat`) of the part `(msn, index)` being made,
    /// written as soon as its frames' durations are known; the part, when
    /// it closes, is exactly its chunks in order.
    Chunk {
        msn: u64,
        index: u32,
        data: Bytes,
        /// When the first frame of this chunk reached the appliance.
        first_arrival: Instant,
    },
    Part(PartOutput),
    SegmentEnd {
        msn: u64,
        duration: f64,
    },
    /// The track set cannot be packaged (audio that was not transcoded to
    /// AAC): nothing of it is written, and its media is dropped until a track
    /// set that can be.
    Refused {
        reason: String,
    },
    /// The stream ended; nothing follows.
    End,
}

/// One published part.
#[derive(Debug, Clone)]
pub struct PartOutput {
    pub msn: u64,
    pub index: u32,
    pub duration: f64,
    pub independent: bool,
    pub data: Bytes,
    /// When the first frame of this part reached the appliance.
    pub first_arrival: Instant,
}

#[derive(Debug, Clone)]
struct Pending {
    dts: i64,
    pts: i64,
    keyframe: bool,
    duration: u32,
    data: Bytes,
    arrival: Arrival,
}

impl Pending {
    fn from_unit(unit: EncodedUnit) -> Self {
        Self {
            dts: unit.dts,
            pts: unit.pts,
            keyframe: unit.keyframe,
            duration: 0,
            data: unit.data,
            arrival: unit.arrival,
        }
    }
}

#[derive(Debug)]
struct SegmentState {
    msn: u64,
    start_dts: i64,
    parts: u32,
    duration_ticks: i64,
}

#[derive(Debug, Default)]
struct PartState {
    /// Driver samples with known durations, not yet written into a chunk.
    driver: Vec<Pending>,
    /// Driver ticks of the whole part: chunks written and samples pending.
    duration_ticks: i64,
    /// Driver ticks of `driver`.
    chunk_ticks: i64,
    /// The part's CMAF chunks written so far (one `moof`+`mdat` each).
    chunks: Vec<Bytes>,
    first_arrival: Option<Instant>,
    independent: bool,
}

impl PartState {
    fn is_empty(&self) -> bool {
        self.driver.is_empty() && self.chunks.is_empty()
    }
}

/// Turns stream events into parts and segments for one rendition.
#[derive(Debug)]
pub struct Segmenter {
    config: SegmenterConfig,
    tracks: Option<Arc<[TrackInfo]>>,
    /// Index of the track whose samples decide cuts: video when present, else audio.
    driver: usize,
    init_version: Option<u32>,
    discontinuity_pending: bool,
    /// Declared part target in seconds, fixed for the stream's life once decided.
    declared_part_target: Option<f64>,
    part_target_ticks: i64,
    segment_threshold_ticks: i64,
    /// Driver units held until the frame duration is known.
    warmup: Vec<EncodedUnit>,
    /// The last driver sample; its duration is known when the next one arrives.
    held: Option<Pending>,
    last_driver_duration: u32,
    /// Non-driver samples waiting for the part that covers them, per track.
    side: Vec<Vec<Pending>>,
    part: PartState,
    segment: Option<SegmentState>,
    next_msn: u64,
    fragment_sequence: u32,
    pdt_anchor: Option<(SystemTime, i64)>,
    ended: bool,
}

impl Segmenter {
    pub fn new(config: SegmenterConfig) -> Self {
        Self {
            config,
            tracks: None,
            driver: 0,
            init_version: None,
            discontinuity_pending: false,
            declared_part_target: None,
            part_target_ticks: 0,
            segment_threshold_ticks: 0,
            warmup: Vec::new(),
            held: None,
            last_driver_duration: 0,
            side: Vec::new(),
            part: PartState::default(),
            segment: None,
            next_msn: 0,
            fragment_sequence: 1,
            pdt_anchor: None,
            ended: false,
        }
    }

    /// Feeds one event; outputs are appended to `out`.
    pub fn push(&mut self, event: StreamEvent, out: &mut Vec<Output>) {
        if self.ended {
            return;
        }
        match event {
            StreamEvent::Tracks(tracks) => self.on_tracks(tracks, out),
            StreamEvent::Unit(unit) => self.on_unit(unit, out),
        }
    }

    /// Ends the stream: flushes what is buffered as the final part and segment.
    pub fn finish(&mut self, out: &mut Vec<Output>) {
        if self.ended {
            return;
        }
        self.flush(out);
        self.ended = true;
        out.push(Output::End);
    }

    fn timebase(&self, track: usize) -> Timebase {
        self.tracks.as_ref().map_or(Timebase::VIDEO, |t| t[track].timebase)
    }

    fn on_tracks(&mut self, tracks: Arc<[TrackInfo]>, out: &mut Vec<Output>) {
        if tracks.is_empty() {
            return;
        }
        if self.tracks.as_deref() == Some(&tracks[..]) {
            // The same tracks announced again: the producer restarted (a
            // transcode moved to another encoder slot). The new encoder's
            // state is new and its timestamps may jump over what was lost, so
            // the next segment starts a discontinuity with the same init.
            self.flush(out);
            self.discontinuity_pending |= self.next_msn > 0;
            return;
        }
        if self.tracks.is_some() {
            self.flush(out);
            self.discontinuity_pending = true;
        }
        let data = match write_init(&tracks) {
            Ok(data) => data,
            Err(refusal) => {
                self.flush(out);
                self.discontinuity_pending |= self.next_msn > 0;
                self.tracks = None;
                out.push(Output::Refused { reason: refusal.to_string() });
                return;
            }
        };
        let version = self.init_version.map_or(0, |v| v + 1);
        self.init_version = Some(version);
        self.driver = tracks.iter().position(|t| t.kind == TrackKind::Video).unwrap_or(0);
        self.side = vec![Vec::new(); tracks.len()];
        out.push(Output::Init { version, data, tracks: tracks.clone() });
        self.tracks = Some(tracks);
        if self.declared_part_target.is_some() {
            self.derive_tick_targets(None);
        }
    }

    fn on_unit(&mut self, unit: EncodedUnit, out: &mut Vec<Output>) {
        let Some(tracks) = &self.tracks else { return };
        if unit.track >= tracks.len() {
            return;
        }
        if unit.track != self.driver {
            self.push_side(unit);
            return;
        }
        if self.declared_part_target.is_none() {
            self.warmup.push(unit);
            if let Some(frame) = self.frame_duration_estimate() {
                self.decide_part_target(frame, out);
            }
            return;
        }
        self.push_driver(unit, out);
    }

    fn push_side(&mut self, unit: EncodedUnit) {
        let list = &mut self.side[unit.track];
        if let Some(last) = list.last_mut() {
            if unit.dts <= last.dts {
                return; // ingest guarantees increasing dts; drop anything else
            }
            last.duration = (unit.dts - last.dts).min(u32::MAX as i64) as u32;
        }
        list.push(Pending::from_unit(unit));
    }

    /// The driver's nominal frame duration in its ticks, once it can be told.
    fn frame_duration_estimate(&self) -> Option<i64> {
        let track = &self.tracks.as_ref()?[self.driver];
        if track.kind == TrackKind::Audio {
            return Some(AAC_FRAME_SAMPLES as i64);
        }
        if let Some((num, den)) = track.frame_rate.filter(|(n, d)| *n > 0 && *d > 0) {
            let ticks = track.timebase.0 as i64 * den as i64 / num as i64;
            if ticks > 0 {
                return Some(ticks);
            }
        }
        if self.warmup.len() < WARMUP_FRAMES {
            return None;
        }
        let mut deltas: Vec<i64> = self.warmup.windows(2).map(|w| w[1].dts - w[0].dts).filter(|d| *d > 0).collect();
        deltas.sort_unstable();
        Some(deltas.get(deltas.len() / 2).copied().unwrap_or(track.timebase.0 as i64 / 30))
    }

    /// Decides the part target from the driver's frame duration and replays the warm-up units.
    fn decide_part_target(&mut self, frame: i64, out: &mut Vec<Output>) {
        self.derive_tick_targets(Some(frame));
        out.push(Output::PartTarget(self.declared_part_target.unwrap_or_default()));
        for unit in std::mem::take(&mut self.warmup) {
            self.push_driver(unit, out);
        }
    }

    /// Fixes the declared part target (first call) and the tick thresholds for the current driver.
    fn derive_tick_targets(&mut self, frame_ticks: Option<i64>) {
        let tb = self.timebase(self.driver);
        let declared = match self.declared_part_target {
            Some(declared) => declared,
            None => {
                let frame = frame_ticks.unwrap_or(tb.0 as i64 / 30).max(1);
                let wanted = tb.ticks(self.config.part_target);
                let frames = ((wanted as f64 / frame as f64).round() as i64).max(1);
                let declared = tb.seconds(frames * frame) * PART_TARGET_SLACK;
                // Round up to the 5 decimals the playlist prints, so the printed value is never below a part.
                let declared = (declared * 100_000.0).ceil() / 100_000.0;
                self.declared_part_target = Some(declared);
                declared
            }
        };
        self.part_target_ticks = (declared * tb.0 as f64).floor() as i64;
        let frame = frame_ticks.unwrap_or(self.part_target_ticks / 4).max(1);
        self.segment_threshold_ticks = (tb.ticks(self.config.segment_target) - frame / 2).max(1);
    }

    fn push_driver(&mut self, unit: EncodedUnit, out: &mut Vec<Output>) {
        let sample = Pending::from_unit(unit);
        if let Some(mut previous) = self.held.take() {
            if sample.dts <= previous.dts {
                // Not increasing (ingest prevents it): keep the earlier sample.
                self.held = Some(previous);
                return;
            }
            previous.duration = (sample.dts - previous.dts).min(u32::MAX as i64) as u32;
            self.last_driver_duration = previous.duration;
            self.place(previous, out);
            // The part just closed and the next frame opens a segment: close the
            // segment now, so the preload hint names part 0 of the next segment
            // rather than a part of this one that will never be made.
            if self.part.is_empty() && self.starts_segment(&sample) {
                self.close_segment(out);
            }
        }
        if self.segment.is_none() && self.part.is_empty() && !sample.keyframe {
            return; // a stream starts on a keyframe; skip to the first one
        }
        self.held = Some(sample);
    }

    /// Adds a driver sample whose duration is known, cutting parts and segments around it.
    fn place(&mut self, sample: Pending, out: &mut Vec<Output>) {
        if self.starts_segment(&sample) {
            self.close_part(out, Some(sample.dts));
            self.close_segment(out);
            self.open_segment(&sample, out);
        } else if !self.part.is_empty() && self.part.duration_ticks + sample.duration as i64 > self.part_target_ticks {
            self.close_part(out, Some(sample.dts));
        }
        let duration = sample.duration as i64;
        let end = sample.dts + duration;
        self.part.duration_ticks += duration;
        self.part.chunk_ticks += duration;
        self.part.driver.push(sample);
        // Close now if another frame of the same length would not fit: publish without waiting.
        if self.part.duration_ticks + duration > self.part_target_ticks {
            self.close_part(out, Some(end));
        } else if self.part.chunk_ticks >= self.timebase(self.driver).ticks(CHUNK_TARGET) {
            self.write_chunk(out, Some(end));
        }
    }

    /// Whether `sample` opens a new segment: the first keyframe at the segment target.
    fn starts_segment(&self, sample: &Pending) -> bool {
        match &self.segment {
            None => true,
            Some(segment) => sample.keyframe && sample.dts - segment.start_dts >= self.segment_threshold_ticks,
        }
    }

    fn open_segment(&mut self, first: &Pending, out: &mut Vec<Output>) {
        let tracks = self.tracks.clone().unwrap_or_else(|| Arc::from(Vec::new()));
        let driver_tb = self.timebase(self.driver);
        if self.next_msn == 0 || self.discontinuity_pending {
            // Side samples far older than the first keyframe would only delay the start.
            let slack = self.part_target_ticks;
            for (index, list) in self.side.iter_mut().enumerate() {
                if let Some(track) = tracks.get(index) {
                    let from = driver_tb.rescale(first.dts - slack, track.timebase);
                    list.retain(|s| s.dts >= from);
                }
            }
        }
        let msn = self.next_msn;
        self.next_msn += 1;
        // Anchored on a whole millisecond, so program date-times (printed to the
        // millisecond) step exactly with media time: a player that places
        // segments by them sees neither gaps nor overlaps.
        let arrival_ms = whole_millis(first.arrival.wall);
        let wall = match self.pdt_anchor {
            Some((anchor_wall, anchor_pts)) => {
                let offset_ns = i128::from(first.pts - anchor_pts) * 1_000_000_000 / i128::from(driver_tb.0.max(1));
                let offset = Duration::from_nanos(offset_ns.unsigned_abs().min(u64::MAX as u128) as u64);
                let computed = if offset_ns >= 0 { anchor_wall + offset } else { anchor_wall - offset };
                let drift = first.arrival.wall.duration_since(computed).unwrap_or_else(|e| e.duration());
                if drift > PDT_REANCHOR {
                    self.pdt_anchor = Some((arrival_ms, first.pts));
                    arrival_ms
                } else {
                    computed
                }
            }
            None => {
                self.pdt_anchor = Some((arrival_ms, first.pts));
                arrival_ms
            }
        };
        out.push(Output::SegmentStart {
            msn,
            program_date_time: wall,
            discontinuity: std::mem::take(&mut self.discontinuity_pending),
            init_version: self.init_version.unwrap_or(0),
        });
        self.segment = Some(SegmentState { msn, start_dts: first.dts, parts: 0, duration_ticks: 0 });
    }

    /// Writes what is pending as the part's last chunk and publishes the part.
    /// `end` is the driver time the part covers up to (see `write_chunk`).
    fn close_part(&mut self, out: &mut Vec<Output>, end: Option<i64>) {
        self.write_chunk(out, end);
        if self.part.chunks.is_empty() {
            return;
        }
        let part = std::mem::take(&mut self.part);
        let driver_tb = self.timebase(self.driver);
        let Some(segment) = self.segment.as_mut() else { return };
        let index = segment.parts;
        segment.parts += 1;
        segment.duration_ticks += part.duration_ticks;
        let data = match part.chunks.as_slice() {
            [only] => only.clone(),
            chunks => {
                let mut joined = bytes::BytesMut::with_capacity(chunks.iter().map(Bytes::len).sum());
                chunks.iter().for_each(|c| joined.extend_from_slice(c));
                joined.freeze()
            }
        };
        out.push(Output::Part(PartOutput {
            msn: segment.msn,
            index,
            duration: driver_tb.seconds(part.duration_ticks),
            independent: part.independent,
            data,
            first_arrival: part.first_arrival.unwrap_or_else(Instant::now),
        }));
    }

    /// Writes the pending driver samples as one CMAF chunk of the current
    /// part. `end` is the driver time they cover up to; side-track samples
    /// starting before it go in too (`None`: all of them, at the end of the stream).
    fn write_chunk(&mut self, out: &mut Vec<Output>, end: Option<i64>) {
        if self.part.driver.is_empty() {
            return;
        }
        let Some(tracks) = self.tracks.clone() else { return };
        let driver_tb = tracks[self.driver].timebase;
        let per_track: Vec<Vec<Pending>> = (0..tracks.len())
            .map(|index| {
                if index == self.driver {
                    return std::mem::take(&mut self.part.driver);
                }
                let track = &tracks[index];
                let list = &mut self.side[index];
                let take = match end {
                    Some(end) => {
                        let end_here = driver_tb.rescale(end, track.timebase);
                        list.iter().take_while(|s| s.dts < end_here).count()
                    }
                    None => list.len(),
                };
                let mut taken: Vec<Pending> = list.drain(..take).collect();
                if let Some(last) = taken.last_mut().filter(|l| l.duration == 0) {
                    last.duration = match list.first() {
                        Some(next) => (next.dts - last.dts).min(u32::MAX as i64) as u32,
                        None if track.kind == TrackKind::Audio => AAC_FRAME_SAMPLES,
                        None => driver_tb.rescale(self.last_driver_duration as i64, track.timebase).max(1) as u32,
                    };
                }
                taken
            })
            .collect();
        self.part.chunk_ticks = 0;
        let first = &per_track[self.driver][0];
        let first_arrival = first.arrival.instant;
        if self.part.chunks.is_empty() {
            self.part.first_arrival = Some(first_arrival);
            self.part.independent = first.keyframe;
        }
        let samples: Vec<Vec<Sample>> = per_track
            .iter()
            .map(|list| {
                list.iter()
                    .map(|s| Sample {
                        duration: s.duration.max(1),
                        size: s.data.len() as u32,
                        keyframe: s.keyframe,
                        composition_offset: (s.pts - s.dts).clamp(i32::MIN as i64, i32::MAX as i64) as i32,
                    })
                    .collect()
            })
            .collect();
        let data: Vec<Vec<Bytes>> = per_track.iter().map(|l| l.iter().map(|s| s.data.clone()).collect()).collect();
        let runs: Vec<TrackRun> = (0..per_track.len())
            .filter(|&i| !per_track[i].is_empty())
            .map(|i| TrackRun {
                track_id: i as u32 + 1,
                base_decode_time: per_track[i][0].dts.max(0) as u64,
                samples: &samples[i],
                data: &data[i],
            })
            .collect();
        let bytes = write_fragment(self.fragment_sequence, &runs);
        self.fragment_sequence = self.fragment_sequence.wrapping_add(1);
        let Some(segment) = self.segment.as_ref() else { return };
        self.part.chunks.push(bytes.clone());
        out.push(Output::Chunk { msn: segment.msn, index: segment.parts, data: bytes, first_arrival });
    }

    fn close_segment(&mut self, out: &mut Vec<Output>) {
        if let Some(segment) = self.segment.take() {
            let tb = self.timebase(self.driver);
            out.push(Output::SegmentEnd { msn: segment.msn, duration: tb.seconds(segment.duration_ticks) });
        }
    }

    fn flush(&mut self, out: &mut Vec<Output>) {
        if self.declared_part_target.is_none() && !self.warmup.is_empty() {
            let frame = self.frame_duration_estimate().unwrap_or(self.timebase(self.driver).0 as i64 / 30);
            self.decide_part_target(frame, out);
        }
        if let Some(mut last) = self.held.take() {
            last.duration = self.last_driver_duration.max(1);
            self.place(last, out);
        }
        self.close_part(out, None);
        self.close_segment(out);
    }
}

/// `time` cut down to a whole millisecond since the epoch.
fn whole_millis(time: SystemTime) -> SystemTime {
    let since = time.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    SystemTime::UNIX_EPOCH + Duration::from_millis(since.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use media::{AacConfig, AvcConfig, CodecConfig};

    use media::test_vectors::AVCC_640X360 as AVCC;

    fn video_track(frame_rate: Option<(u32, u32)>) -> TrackInfo {
        TrackInfo {
            kind: TrackKind::Video,
            timebase: Timebase::VIDEO,
            codec: CodecConfig::Avc(AvcConfig::from_record(Bytes::from_static(&AVCC)).unwrap()),
            frame_rate,
            bitrate: None,
        }
    }

    fn audio_track() -> TrackInfo {
        TrackInfo {
            kind: TrackKind::Audio,
            timebase: Timebase(48_000),
            codec: CodecConfig::Aac(AacConfig::from_asc(Bytes::from_static(&[0x11, 0x90])).unwrap()),
            frame_rate: None,
            bitrate: None,
        }
    }

    fn unit(track: usize, kind: TrackKind, dts: i64, pts: i64, keyframe: bool) -> StreamEvent {
        StreamEvent::Unit(EncodedUnit {
            track,
            kind,
            pts,
            dts,
            keyframe,
            data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
            arrival: Arrival::now(),
        })
    }

    /// 30 fps video with RTMP-millisecond jitter, a keyframe every `gop` frames, plus 48 kHz AAC.
    fn run(
        config: SegmenterConfig,
        frames: i64,
        gop: i64,
        with_audio: bool,
        frame_rate: Option<(u32, u32)>,
    ) -> Vec<Output> {
        let mut s = Segmenter::new(config);
        let mut out = Vec::new();
        let mut tracks = vec![video_track(frame_rate)];
        if with_audio {
            tracks.push(audio_track());
        }
        s.push(StreamEvent::Tracks(tracks.into()), &mut out);
        let mut audio_dts = 0;
        for i in 0..frames {
            let ms = i * 1000 / 30; // 0, 33, 66, 100, ...
            while with_audio && audio_dts * 1000 / 48_000 <= ms {
                s.push(unit(1, TrackKind::Audio, audio_dts, audio_dts, true), &mut out);
                audio_dts += 1024;
            }
            s.push(unit(0, TrackKind::Video, ms * 90, ms * 90 + 2 * 3000, i % gop == 0), &mut out);
        }
        s.finish(&mut out);
        out
    }

    fn parts(out: &[Output]) -> Vec<&PartOutput> {
        out.iter().filter_map(|o| if let Output::Part(p) = o { Some(p) } else { None }).collect()
    }

    #[test]
    fn parts_fill_85_to_100_percent_of_the_declared_target() {
        let cases = [
            (Duration::from_millis(200), None, 6),
            (Duration::from_millis(333), None, 10),
            (Duration::from_millis(250), Some((30, 1)), 8),
            (Duration::from_millis(200), Some((30_000, 1001)), 6),
        ];
        for (part_target, frame_rate, frames_per_part) in cases {
            let config = SegmenterConfig { part_target, segment_target: Duration::from_secs(1) };
            let out = run(config, 300, 30, true, frame_rate);
            let Some(Output::PartTarget(declared)) = out.iter().find(|o| matches!(o, Output::PartTarget(_))) else {
                panic!("no part target")
            };
            let expected = frames_per_part as f64 / 30.0;
            assert!(*declared >= expected && *declared < expected * 1.05, "{part_target:?}: declared {declared}");
            // A part may be short only when it starts on a keyframe or is the last of its segment.
            let mut last_of_segment = Vec::new();
            let mut previous_part: Option<&PartOutput> = None;
            for o in &out {
                match o {
                    Output::Part(p) => previous_part = Some(p),
                    Output::SegmentEnd { .. } => last_of_segment.extend(previous_part.map(|p| (p.msn, p.index))),
                    _ => {}
                }
            }
            for part in parts(&out) {
                assert!(
                    part.duration <= *declared,
                    "{part_target:?} part {} {} > {declared}",
                    part.index,
                    part.duration
                );
                if !part.independent && !last_of_segment.contains(&(part.msn, part.index)) {
                    assert!(
                        part.duration >= 0.85 * declared,
                        "{part_target:?} part {}.{} {} < 85% of {declared}",
                        part.msn,
                        part.index,
                        part.duration
                    );
                }
            }
        }
    }

    #[test]
    fn segments_start_on_keyframes_near_the_target() {
        let config =
            SegmenterConfig { part_target: Duration::from_millis(200), segment_target: Duration::from_secs(1) };
        // Keyframes every 0.5 s: segments of 1 s (two GOPs).
        let out = run(config, 300, 15, true, None);
        let durations: Vec<f64> = out
            .iter()
            .filter_map(|o| if let Output::SegmentEnd { duration, .. } = o { Some(*duration) } else { None })
            .collect();
        assert_eq!(durations.len(), 10, "{durations:?}");
        for d in &durations[..9] {
            assert!((d - 1.0).abs() < 0.01, "{durations:?}");
        }
        // Every segment's first part is independent, and a segment starts only with one.
        let mut expect_independent = false;
        for o in &out {
            match o {
                Output::SegmentStart { .. } => expect_independent = true,
                Output::Part(p) => {
                    if expect_independent {
                        assert!(p.independent && p.index == 0);
                    }
                    expect_independent = false;
                }
                _ => {}
            }
        }
        assert!(matches!(out.last(), Some(Output::End)));
    }

    /// Program date-times sit on whole milliseconds and step exactly with
    /// the segments' durations (RTMP's millisecond clock, 90 kHz ticks).
    #[test]
    fn program_date_times_step_with_media_time() {
        let config =
            SegmenterConfig { part_target: Duration::from_millis(200), segment_target: Duration::from_secs(1) };
        let mut s = Segmenter::new(config);
        let mut out = Vec::new();
        s.push(StreamEvent::Tracks(vec![video_track(None)].into()), &mut out);
        // Frames arrive in real time (a wall clock off a whole millisecond), stamped on RTMP's millisecond clock.
        let (instant, wall) = (Instant::now(), SystemTime::UNIX_EPOCH + Duration::from_micros(1_790_000_000_123_456));
        for i in 0..300i64 {
            let ms = i * 1000 / 30;
            let arrival = Arrival {
                instant: instant + Duration::from_millis(ms as u64),
                wall: wall + Duration::from_millis(ms as u64),
            };
            let data = Bytes::from_static(&[0, 0, 0, 1, 0x65]);
            let unit = EncodedUnit {
                track: 0,
                kind: TrackKind::Video,
                pts: ms * 90,
                dts: ms * 90,
                keyframe: i % 30 == 0,
                data,
                arrival,
            };
            s.push(StreamEvent::Unit(unit), &mut out);
        }
        s.finish(&mut out);
        let mut starts = Vec::new();
        let mut durations = Vec::new();
        for o in &out {
            match o {
                Output::SegmentStart { program_date_time, .. } => starts.push(*program_date_time),
                Output::SegmentEnd { duration, .. } => durations.push(*duration),
                _ => {}
            }
        }
        let millis = |t: &SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos() as f64 / 1e6;
        assert!(starts.iter().all(|t| millis(t).fract() == 0.0), "whole milliseconds: {starts:?}");
        for (pair, duration) in starts.windows(2).zip(&durations) {
            assert!((millis(&pair[1]) - millis(&pair[0]) - duration * 1000.0).abs() < 1e-6, "{starts:?} {durations:?}");
        }
    }

    #[test]
    fn waits_for_the_first_keyframe_and_keeps_audio_in_step() {
        let config =
            SegmenterConfig { part_target: Duration::from_millis(200), segment_target: Duration::from_secs(1) };
        let mut s = Segmenter::new(config);
        let mut out = Vec::new();
        s.push(StreamEvent::Tracks(vec![video_track(Some((30, 1))), audio_track()].into()), &mut out);
        s.push(unit(0, TrackKind::Video, 0, 0, false), &mut out);
        s.push(unit(0, TrackKind::Video, 3000, 3000, false), &mut out);
        for i in 2..20 {
            s.push(unit(1, TrackKind::Audio, (i - 2) * 1024, (i - 2) * 1024, true), &mut out);
            s.push(unit(0, TrackKind::Video, i * 3000, i * 3000, i == 2), &mut out);
        }
        let starts: Vec<u64> = out
            .iter()
            .filter_map(|o| if let Output::SegmentStart { msn, .. } = o { Some(*msn) } else { None })
            .collect();
        assert_eq!(starts, [0]);
        let first = parts(&out)[0];
        assert!(first.independent);
        assert_eq!(first.duration, 0.2);
        // Six chunks, one per frame, each with a video and an audio traf.
        assert_eq!(first.data.windows(4).filter(|w| w == b"moof").count(), 6);
        assert_eq!(first.data.windows(4).filter(|w| w == b"traf").count(), 12);
    }

    /// Each frame's chunk comes out as soon as its duration is known (the
    /// next frame arrived), before the part that closes with it; the part is
    /// exactly its chunks. At 60 fps a chunk holds two frames.
    #[test]
    fn parts_are_their_chunks_written_as_frames_arrive() {
        for (fps, frames_per_chunk) in [(30, 1), (60, 2)] {
            let config =
                SegmenterConfig { part_target: Duration::from_millis(200), segment_target: Duration::from_secs(1) };
            let mut s = Segmenter::new(config);
            let mut out = Vec::new();
            s.push(StreamEvent::Tracks(vec![video_track(Some((fps, 1)))].into()), &mut out);
            let frame = 90_000 / fps as i64;
            let mut chunks_per_push = Vec::new();
            for i in 0..(3 * fps as i64) {
                let before = out.len();
                s.push(unit(0, TrackKind::Video, i * frame, i * frame, i % fps as i64 == 0), &mut out);
                chunks_per_push.push(out[before..].iter().filter(|o| matches!(o, Output::Chunk { .. })).count());
            }
            // From the second frame on, every push (30 fps) or every other push (60 fps) writes a chunk.
            let written: usize = chunks_per_push.iter().sum();
            assert!(chunks_per_push.iter().all(|n| *n <= 1), "{fps} fps: {chunks_per_push:?}");
            assert_eq!(written, (3 * fps as usize - 1) / frames_per_chunk, "{fps} fps");
            let mut pending: Vec<u8> = Vec::new();
            let mut seen_parts = 0;
            for o in &out {
                match o {
                    Output::Chunk { msn, index, data, .. } => {
                        let (m, i) = parts(&out).get(seen_parts).map(|p| (p.msn, p.index)).unwrap_or((*msn, *index));
                        assert_eq!((*msn, *index), (m, i), "a chunk names the part it belongs to");
                        assert_eq!(data.windows(4).filter(|w| w == b"moof").count(), 1);
                        pending.extend_from_slice(data);
                    }
                    Output::Part(part) => {
                        assert_eq!(
                            part.data.as_ref(),
                            pending.as_slice(),
                            "part {}.{} is its chunks",
                            part.msn,
                            part.index
                        );
                        let samples = part.data.windows(4).filter(|w| w == b"moof").count();
                        assert_eq!(samples * frames_per_chunk, 6 * fps as usize / 30, "{fps} fps part {}", part.index);
                        pending.clear();
                        seen_parts += 1;
                    }
                    _ => {}
                }
            }
            assert!(seen_parts >= 10, "{fps} fps: {seen_parts} parts");
        }
    }

    #[test]
    fn new_tracks_start_a_discontinuity_with_a_new_init() {
        let config =
            SegmenterConfig { part_target: Duration::from_millis(200), segment_target: Duration::from_secs(1) };
        let mut s = Segmenter::new(config);
        let mut out = Vec::new();
        s.push(StreamEvent::Tracks(vec![audio_track()].into()), &mut out);
        for i in 0..100 {
            s.push(unit(0, TrackKind::Audio, i * 1024, i * 1024, true), &mut out);
        }
        s.push(StreamEvent::Tracks(vec![video_track(Some((30, 1))), audio_track()].into()), &mut out);
        for i in 0..40 {
            s.push(unit(0, TrackKind::Video, 200_000 + i * 3000, 200_000 + i * 3000, i % 30 == 0), &mut out);
        }
        s.finish(&mut out);
        let inits: Vec<u32> = out
            .iter()
            .filter_map(|o| if let Output::Init { version, .. } = o { Some(*version) } else { None })
            .collect();
        assert_eq!(inits, [0, 1]);
        let disc: Vec<(bool, u32)> = out
            .iter()
            .filter_map(|o| {
                if let Output::SegmentStart { discontinuity, init_version, .. } = o {
                    Some((*discontinuity, *init_version))
                } else {
                    None
                }
            })
            .collect();
        let first_video = disc.iter().position(|(_, v)| *v == 1).unwrap();
        assert!(disc[first_video].0, "{disc:?}");
        assert!(disc.iter().filter(|(d, _)| *d).count() == 1, "{disc:?}");
        // Audio-only parts are all independent.
        let audio_parts = parts(&out).into_iter().take(5).all(|p| p.independent);
        assert!(audio_parts);
    }

    #[test]
    fn the_same_tracks_again_start_a_discontinuity_with_the_same_init() {
        let config =
            SegmenterConfig { part_target: Duration::from_millis(200), segment_target: Duration::from_secs(1) };
        let tracks: Arc<[TrackInfo]> = vec![video_track(Some((30, 1))), audio_track()].into();
        let mut s = Segmenter::new(config);
        let mut out = Vec::new();
        // Announced twice before any media: nothing to break.
        s.push(StreamEvent::Tracks(tracks.clone()), &mut out);
        s.push(StreamEvent::Tracks(tracks.clone()), &mut out);
        let feed = |s: &mut Segmenter, out: &mut Vec<Output>, frames: std::ops::Range<i64>| {
            for i in frames {
                s.push(unit(1, TrackKind::Audio, i * 1600, i * 1600, true), out);
                s.push(unit(0, TrackKind::Video, i * 3000, i * 3000, i % 30 == 0), out);
            }
        };
        feed(&mut s, &mut out, 0..45);
        // The encoder restarts: re-announced, then resumes at the next source keyframe (frames 45..60 lost).
        s.push(StreamEvent::Tracks(tracks.clone()), &mut out);
        feed(&mut s, &mut out, 60..120);
        s.finish(&mut out);

        let inits = out.iter().filter(|o| matches!(o, Output::Init { .. })).count();
        assert_eq!(inits, 1, "the same init throughout");
        let starts: Vec<(u64, bool, u32)> = out
            .iter()
            .filter_map(|o| match o {
                Output::SegmentStart { msn, discontinuity, init_version, .. } => {
                    Some((*msn, *discontinuity, *init_version))
                }
                _ => None,
            })
            .collect();
        // 0..30 and 30..45 (cut short by the restart), then 60..90, 90..120.
        assert_eq!(starts, [(0, false, 0), (1, false, 0), (2, true, 0), (3, false, 0)]);
        let durations: Vec<f64> = out
            .iter()
            .filter_map(|o| if let Output::SegmentEnd { duration, .. } = o { Some(*duration) } else { None })
            .collect();
        assert_eq!(durations, [1.0, 0.5, 1.0, 1.0]);
        // No part outgrows the target across the gap: the last frame before it keeps the frame duration.
        let declared = out.iter().find_map(|o| if let Output::PartTarget(t) = o { Some(*t) } else { None }).unwrap();
        assert!(parts(&out).iter().all(|p| p.duration <= declared), "{declared}");
    }

    #[test]
    fn audio_that_is_not_aac_is_refused_not_written() {
        let config =
            SegmenterConfig { part_target: Duration::from_millis(200), segment_target: Duration::from_secs(1) };
        let mut s = Segmenter::new(config);
        let mut out = Vec::new();
        let feed = |s: &mut Segmenter, out: &mut Vec<Output>, frames: std::ops::Range<i64>| {
            for i in frames {
                s.push(unit(1, TrackKind::Audio, i * 1600, i * 1600, true), out);
                s.push(unit(0, TrackKind::Video, i * 3000, i * 3000, i % 30 == 0), out);
            }
        };
        let aac: Arc<[TrackInfo]> = vec![video_track(Some((30, 1))), audio_track()].into();
        let g711 = TrackInfo {
            codec: CodecConfig::OtherAudio(media::OtherAudioConfig::g711(media::AudioCodec::G711MuLaw, 1)),
            timebase: Timebase(8_000),
            ..audio_track()
        };
        s.push(StreamEvent::Tracks(aac.clone()), &mut out);
        feed(&mut s, &mut out, 0..45);
        s.push(StreamEvent::Tracks(vec![video_track(Some((30, 1))), g711].into()), &mut out);
        let refused: Vec<&str> = out
            .iter()
            .filter_map(|o| if let Output::Refused { reason } = o { Some(reason.as_str()) } else { None })
            .collect();
        assert_eq!(refused, ["audio codec G.711 mu-law must be transcoded to AAC first"]);
        let before = out.len();
        feed(&mut s, &mut out, 45..90);
        assert_eq!(out.len(), before, "nothing of the refused track set is packaged");
        // A track set that can be packaged again: a new init after a discontinuity.
        s.push(StreamEvent::Tracks(aac), &mut out);
        feed(&mut s, &mut out, 90..150);
        s.finish(&mut out);
        let inits: Vec<u32> = out
            .iter()
            .filter_map(|o| if let Output::Init { version, .. } = o { Some(*version) } else { None })
            .collect();
        assert_eq!(inits, [0, 1]);
        let starts: Vec<(u64, bool, u32)> = out
            .iter()
            .filter_map(|o| match o {
                Output::SegmentStart { msn, discontinuity, init_version, .. } => {
                    Some((*msn, *discontinuity, *init_version))
                }
                _ => None,
            })
            .collect();
        assert_eq!(starts, [(0, false, 0), (1, false, 0), (2, true, 1), (3, false, 1)]);
    }
}
