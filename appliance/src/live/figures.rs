//! What a session in progress looks like now, for the API and the console:
//! its input as measured where the session reads it (codecs,
//! picture size, frame rate and bitrate over the last complete seconds, units
//! dropped on the way), and where it is encoded (pass-through, or the ladder's
//! backend, device and rungs, with its moves after failures).
//!
//! The session's task is the meter's only writer: a unit costs a few relaxed atomic
//! loads and stores (no lock, no allocation, no clock read: the unit carries
//! its arrival instant). Readers sum the window's per-second buckets. Track
//! announcements and placements are rare and sit behind mutexes the unit path
//! never takes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use accel::{Backend, DeviceId};
use media::{AudioCodec, CodecConfig, DropStats, EncodedUnit, TrackInfo, TrackKind};
use serde::Serialize;
use utoipa::ToSchema;

pub use crate::state::EncoderSlot;
use crate::state::{InputRole, OnAir, SessionStats};

/// Complete seconds the measured rates average over.
pub const WINDOW_SECONDS: u64 = 5;
/// One bucket per second: the window, the second being written, and slack,
/// so the writer never reuses a bucket a reader is summing.
const BUCKETS: u64 = 8;

/// One second's counts.
#[derive(Debug, Default)]
struct Bucket {
    /// The second (since the meter started, plus one; 0: never written) these counts are of.
    second: AtomicU64,
    bytes: AtomicU64,
    video_units: AtomicU64,
}

/// Rates over the last complete seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// Media payload (video and audio) in bits per second.
    pub bitrate_bps: u64,
    /// Video units (frames) per second.
    pub fps: f64,
    /// Complete seconds averaged (up to `WINDOW_SECONDS`; fewer at the start).
    pub seconds: u64,
}

/// Units and bytes per second of one input, over a sliding window of whole seconds.
#[derive(Debug)]
pub struct InputMeter {
    started: Instant,
    buckets: [Bucket; BUCKETS as usize],
    /// The second of the first unit (0: none yet), so a slow start does not dilute the rates.
    first_second: AtomicU64,
    units: AtomicU64,
    bytes: AtomicU64,
}

impl InputMeter {
    pub fn new(started: Instant) -> InputMeter {
        InputMeter {
            started,
            buckets: Default::default(),
            first_second: AtomicU64::new(0),
            units: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }

    fn second_of(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.started).as_secs() + 1
    }

    /// Counts a unit of `len` bytes that arrived at `arrival`. One writer only
    /// (the session's relay): it reads and stores without read-modify-write.
    pub fn record(&self, kind: TrackKind, len: usize, arrival: Instant) {
        let second = self.second_of(arrival);
        let bucket = &self.buckets[(second % BUCKETS) as usize];
        if bucket.second.load(Ordering::Relaxed) != second {
            // A new second: zero the counts before the second is published.
            bucket.bytes.store(0, Ordering::Relaxed);
            bucket.video_units.store(0, Ordering::Relaxed);
            bucket.second.store(second, Ordering::Release);
            if self.first_second.load(Ordering::Relaxed) == 0 {
                self.first_second.store(second, Ordering::Release);
            }
        }
        let add = |counter: &AtomicU64, n: u64| counter.store(counter.load(Ordering::Relaxed) + n, Ordering::Relaxed);
        add(&bucket.bytes, len as u64);
        if kind == TrackKind::Video {
            add(&bucket.video_units, 1);
        }
        add(&self.units, 1);
        add(&self.bytes, len as u64);
    }

    /// Units and payload bytes so far.
    pub fn totals(&self) -> (u64, u64) {
        (self.units.load(Ordering::Relaxed), self.bytes.load(Ordering::Relaxed))
    }

    /// Rates over the complete seconds before `now` (up to `WINDOW_SECONDS`);
    /// `None` before the first complete second with media.
    pub fn rates(&self, now: Instant) -> Option<Rates> {
        let current = self.second_of(now);
        let first = self.first_second.load(Ordering::Acquire);
        if first == 0 || current <= first {
            return None;
        }
        let from = current.saturating_sub(WINDOW_SECONDS).max(first);
        let (mut bytes, mut frames) = (0, 0);
        for second in from..current {
            let bucket = &self.buckets[(second % BUCKETS) as usize];
            if bucket.second.load(Ordering::Acquire) != second {
                continue; // nothing arrived in that second
            }
            let (b, f) = (bucket.bytes.load(Ordering::Relaxed), bucket.video_units.load(Ordering::Relaxed));
            if bucket.second.load(Ordering::Acquire) == second {
                bytes += b;
                frames += f;
            }
        }
        let seconds = current - from;
        Some(Rates { bitrate_bps: bytes * 8 / seconds, fps: frames as f64 / seconds as f64, seconds })
    }
}

/// The live figures of a session in progress.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LiveFigures {
    /// The session these figures are of.
    pub session: String,
    pub input: InputFigures,
    /// Where the session is encoded; null until a ladder has started on its slot (at the first video frame).
    pub encoder: Option<EncoderPlacement>,
    /// Distinct players (client address and User-Agent) that fetched the channel's playlists or media
    /// in the last 30 s. A CDN edge or proxy in front of the appliance counts as one viewer.
    pub viewers: u32,
    /// The session's outputs (the LL-HLS packager, and any other plugged in).
    pub outputs: Vec<OutputFigures>,
    /// What is on air: `primary`, `backup` or `slate`; null until the first input's first keyframe.
    pub on_air: Option<OnAir>,
    /// Switches between the inputs and the slate so far.
    pub switches: u32,
    /// The inputs connected now (the primary and the backup), each measured where the session reads
    /// it, on air or not. `input` above is what went on air.
    pub inputs: Vec<InputFigure>,
}

/// One input of a session in progress.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct InputFigure {
    pub role: InputRole,
    pub on_air: bool,
    /// The publisher's address.
    pub peer: String,
    /// Measured media bitrate in bit/s over the last complete seconds.
    pub bitrate_bps: Option<u64>,
    /// Measured video frames per second over the last complete seconds.
    pub fps: Option<f64>,
    /// Media units (frames) received from this input so far.
    pub units: u64,
    /// Media payload bytes received from this input so far.
    pub bytes: u64,
    /// Units its queue from ingest dropped because the session fell behind.
    pub dropped_units: u64,
    /// The SRT link (RTT, loss, retransmits, receive rate) when this input is an SRT caller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub srt: Option<super::srt_links::SrtLinkFigures>,
}

/// The publisher's input as the appliance receives it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InputFigures {
    /// The video track, once announced.
    pub video: Option<VideoInput>,
    /// The audio track, once announced.
    pub audio: Option<AudioInput>,
    /// Measured media bitrate (video and audio payload) in bit/s over the last `window_seconds`.
    pub bitrate_bps: Option<u64>,
    /// Complete seconds the measured rates average over (up to 5).
    pub window_seconds: u64,
    /// Media units (frames) received so far.
    pub units: u64,
    /// Media payload bytes received so far.
    pub bytes: u64,
    /// Units dropped because a stage fell behind (each drop skips to the next keyframe).
    pub dropped_units: u64,
}

/// The input's video track.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VideoInput {
    /// `h264` or `hevc`.
    pub codec: String,
    /// RFC 6381 codec string, e.g. `avc1.64001f`.
    pub codec_string: String,
    pub width: u32,
    pub height: u32,
    /// Measured frames per second over the window.
    pub fps: Option<f64>,
    /// The frame rate the publisher declared, if any.
    pub declared_fps: Option<f64>,
}

/// The input's audio track.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AudioInput {
    /// `aac`, or what the appliance transcodes to AAC: `mp3`, `pcm-alaw`, `pcm-mulaw`, `opus`.
    pub codec: String,
    /// RFC 6381 codec string, e.g. `mp4a.40.2`.
    pub codec_string: String,
    pub sample_rate: u32,
    pub channels: u8,
}

/// How a session is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PlacementMode {
    /// Packaged as published: nothing is decoded or encoded.
    Passthrough,
    /// A ladder transcoded on an encoder slot.
    Transcode,
}

/// Where a session is encoded.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EncoderPlacement {
    pub mode: PlacementMode,
    /// `software`, `nvenc`, `qsv` or `vaapi` (null for pass-through).
    pub backend: Option<String>,
    /// The device's id: `cpu`, `cuda:0`, `vaapi:/dev/dri/renderD128`, ... (null for pass-through).
    pub device: Option<String>,
    /// The rungs running (rendition names).
    pub kept: Vec<String>,
    /// The rungs dropped (rendition names): above the source's height, or a condition of the rung
    /// that the source does not meet.
    pub dropped: Vec<String>,
    /// Why each rung in `dropped` was dropped, in the same order.
    pub dropped_why: Vec<DroppedRung>,
    /// The filter graph the ladder runs now (FFmpeg syntax: the channel's processing, the split,
    /// each rung's scaling); null for pass-through and until the first frame.
    pub filter_graph: Option<String>,
    /// Processing steps that run on the CPU although the ladder runs on a device: their cost is CPU
    /// time (empty on the CPU backend, where everything does).
    pub cpu_steps: Vec<String>,
    /// Moves to another slot after encoder or device failures in this session.
    pub moves: u32,
    /// The latest such move.
    pub last_move: Option<EncoderMove>,
}

/// A rung the ladder does not run in this session, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DroppedRung {
    pub rendition: String,
    /// E.g. `above the source's 360 lines`, `source height 480 is below the minimum 1080`.
    pub reason: String,
}

/// A ladder moved to another slot after an encoder or device failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct EncoderMove {
    pub from: EncoderSlot,
    pub to: EncoderSlot,
    /// The failure that caused it.
    pub reason: String,
    #[schema(format = DateTime)]
    pub at: String,
}

/// What an output of a session is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OutputState {
    Running,
    /// Stopped with an error; the session went on without it.
    Failed,
    /// Its feeds ended with the session.
    Ended,
}

/// One output of a session in progress, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OutputFigures {
    /// `packager`, `recorder`, ...
    pub name: String,
    pub state: OutputState,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// Units dropped on its queues because it fell behind (each drop skips to the next keyframe).
    pub dropped_units: u64,
    /// Times it fell behind.
    pub drop_episodes: u64,
    /// Its connection, for an output that sends to another server (a restream destination).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<super::link::LinkFigures>,
}

/// One session in progress: written by its task (input, placement) and read by the API.
#[derive(Debug)]
pub struct SessionFigures {
    pub channel: String,
    pub session: String,
    meter: InputMeter,
    tracks: Mutex<Option<Arc<[TrackInfo]>>>,
    /// The drop counters of every queue on the session's path.
    drops: Mutex<Vec<Arc<DropStats>>>,
    placement: Mutex<Option<EncoderPlacement>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl SessionFigures {
    /// A session of `channel`; a pass-through one is placed at once.
    pub fn new(channel: &str, session: &str, passthrough: bool, started: Instant) -> SessionFigures {
        let placement = passthrough.then(|| EncoderPlacement {
            mode: PlacementMode::Passthrough,
            backend: None,
            device: None,
            kept: vec!["source".into()],
            dropped: Vec::new(),
            dropped_why: Vec::new(),
            filter_graph: None,
            cpu_steps: Vec::new(),
            moves: 0,
            last_move: None,
        });
        SessionFigures {
            channel: channel.to_string(),
            session: session.to_string(),
            meter: InputMeter::new(started),
            tracks: Mutex::new(None),
            drops: Mutex::new(Vec::new()),
            placement: Mutex::new(placement),
        }
    }

    /// Counts an input unit (the hot path: atomics only).
    pub fn record(&self, unit: &EncodedUnit) {
        self.meter.record(unit.kind, unit.data.len(), unit.arrival.instant);
    }

    /// The input's latest track announcement.
    pub fn announce(&self, tracks: &Arc<[TrackInfo]>) {
        *lock(&self.tracks) = Some(tracks.clone());
    }

    /// Adds a queue's drop counters to the session's dropped units.
    pub fn count_drops(&self, stats: Arc<DropStats>) {
        let mut drops = lock(&self.drops);
        if !drops.iter().any(|s| Arc::ptr_eq(s, &stats)) {
            drops.push(stats);
        }
    }

    /// The ladder runs `kept` (and dropped `dropped`: (rendition, why)) on `backend`/`device`.
    pub fn placed(&self, backend: Backend, device: &DeviceId, kept: Vec<String>, dropped: Vec<(String, String)>) {
        let mut placement = lock(&self.placement);
        let (moves, last_move) = placement.as_ref().map_or((0, None), |p| (p.moves, p.last_move.clone()));
        let (filter_graph, cpu_steps) =
            placement.as_ref().map_or((None, Vec::new()), |p| (p.filter_graph.clone(), p.cpu_steps.clone()));
        *placement = Some(EncoderPlacement {
            mode: PlacementMode::Transcode,
            backend: Some(backend.to_string()),
            device: Some(device.to_string()),
            kept,
            dropped: dropped.iter().map(|(name, _)| name.clone()).collect(),
            dropped_why: dropped.into_iter().map(|(rendition, reason)| DroppedRung { rendition, reason }).collect(),
            filter_graph,
            cpu_steps,
            moves,
            last_move,
        });
    }

    /// The ladder's filter graph was (re)built.
    pub fn filter_graph(&self, graph: &str, cpu_steps: &[String]) {
        let mut placement = lock(&self.placement);
        if let Some(p) = placement.as_mut() {
            p.filter_graph = Some(graph.to_string());
            p.cpu_steps = cpu_steps.to_vec();
        }
    }

    /// The ladder moved from `from` to `to` after `reason`; returns the move
    /// (its source's backend as the placement knew it).
    pub fn moved(&self, from: &DeviceId, to: EncoderSlot, reason: &str, at: SystemTime) -> EncoderMove {
        let mut placement = lock(&self.placement);
        let from_backend = placement
            .as_ref()
            .filter(|p| p.device.as_deref() == Some(from.as_str()))
            .and_then(|p| p.backend.clone())
            .unwrap_or_else(|| if from == &DeviceId::cpu() { Backend::Software.to_string() } else { "unknown".into() });
        let at_ms = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let moved = EncoderMove {
            from: EncoderSlot { backend: from_backend, device: from.to_string() },
            to: to.clone(),
            reason: reason.to_string(),
            at: crate::state::clock::rfc3339(at_ms),
        };
        let p = placement.get_or_insert_with(|| EncoderPlacement {
            mode: PlacementMode::Transcode,
            backend: None,
            device: None,
            kept: Vec::new(),
            dropped: Vec::new(),
            dropped_why: Vec::new(),
            filter_graph: None,
            cpu_steps: Vec::new(),
            moves: 0,
            last_move: None,
        });
        p.backend = Some(to.backend);
        p.device = Some(to.device);
        p.moves += 1;
        p.last_move = Some(moved.clone());
        moved
    }

    pub fn placement(&self) -> Option<EncoderPlacement> {
        lock(&self.placement).clone()
    }

    /// Units dropped so far on the session's path.
    pub fn dropped_units(&self) -> u64 {
        lock(&self.drops).iter().map(|s| s.dropped_units()).sum()
    }

    /// The session's stats so far, as its record keeps them (a few atomic loads).
    pub fn stats(&self, renditions: Vec<String>) -> SessionStats {
        let (units_in, bytes_in) = self.meter.totals();
        SessionStats { bytes_in, units_in, dropped_units: self.dropped_units(), renditions }
    }

    /// The figures now, with the channel's `viewers`.
    pub fn figures(&self, viewers: u32, now: Instant) -> LiveFigures {
        let rates = self.meter.rates(now);
        let (units, bytes) = self.meter.totals();
        let tracks = lock(&self.tracks).clone();
        let tracks = tracks.as_deref().unwrap_or(&[]);
        let round = |x: f64| (x * 100.0).round() / 100.0;
        let video = tracks.iter().find(|t| t.kind == TrackKind::Video).map(|t| {
            let (width, height) = t.resolution().unwrap_or_default();
            VideoInput {
                codec: codec_name(&t.codec).into(),
                codec_string: t.codec.rfc6381(),
                width,
                height,
                fps: rates.map(|r| round(r.fps)),
                declared_fps: t.frame_rate.filter(|(n, d)| *n > 0 && *d > 0).map(|(n, d)| round(n as f64 / d as f64)),
            }
        });
        let audio = tracks.iter().find(|t| t.kind == TrackKind::Audio).map(|t| {
            let (sample_rate, channels) = match &t.codec {
                CodecConfig::Aac(aac) => (aac.sample_rate, aac.channels),
                CodecConfig::OtherAudio(other) => (other.sample_rate, other.channels),
                CodecConfig::Avc(_) | CodecConfig::Hevc(_) | CodecConfig::Av1(_) => (0, 0),
            };
            AudioInput { codec: codec_name(&t.codec).into(), codec_string: t.codec.rfc6381(), sample_rate, channels }
        });
        let dropped_units = self.dropped_units();
        LiveFigures {
            session: self.session.clone(),
            input: InputFigures {
                video,
                audio,
                bitrate_bps: rates.map(|r| r.bitrate_bps),
                window_seconds: rates.map_or(0, |r| r.seconds),
                units,
                bytes,
                dropped_units,
            },
            encoder: self.placement(),
            viewers,
            outputs: Vec::new(),
            on_air: None,
            switches: 0,
            inputs: Vec::new(),
        }
    }
}

fn codec_name(codec: &CodecConfig) -> &'static str {
    match codec {
        CodecConfig::Avc(_) => "h264",
        CodecConfig::Hevc(_) => "hevc",
        CodecConfig::Av1(_) => "av1",
        CodecConfig::Aac(_) => "aac",
        CodecConfig::OtherAudio(other) => match other.codec {
            AudioCodec::Mp3 => "mp3",
            AudioCodec::G711ALaw => "pcm-alaw",
            AudioCodec::G711MuLaw => "pcm-mulaw",
            AudioCodec::Opus => "opus",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rates_average_the_complete_seconds_of_the_window() {
        let t0 = Instant::now();
        let meter = InputMeter::new(t0);
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(meter.rates(at(5_000)), None, "no media yet");
        // 30 fps of 5000-byte frames plus 47 audio frames of 200 bytes a second, for 8 s.
        for frame in 0..240u64 {
            meter.record(TrackKind::Video, 5000, at(frame * 1000 / 30));
        }
        for frame in 0..(8 * 47u64) {
            meter.record(TrackKind::Audio, 200, at(frame * 1000 / 47));
        }
        assert_eq!(meter.rates(at(500)), None, "no complete second yet");
        let early = meter.rates(at(2_100)).unwrap();
        assert_eq!((early.seconds, early.fps), (2, 30.0), "the first two seconds");
        let r = meter.rates(at(8_000)).unwrap();
        assert_eq!(r.seconds, WINDOW_SECONDS);
        assert_eq!(r.fps, 30.0);
        assert_eq!(r.bitrate_bps, (30 * 5000 + 47 * 200) * 8);
        assert_eq!(meter.totals(), (240 + 376, 240 * 5000 + 376 * 200));
        // The publisher stalls: the window empties as its seconds pass.
        let stalled = meter.rates(at(11_000)).unwrap();
        assert_eq!(
            (stalled.fps, stalled.bitrate_bps),
            (12.0, 2 * (30 * 5000 + 47 * 200) * 8 / 5),
            "2 s of 5 had media"
        );
        assert_eq!(meter.rates(at(20_000)).unwrap().bitrate_bps, 0);
        // Buckets are reused when media comes back, without the old counts.
        meter.record(TrackKind::Video, 1000, at(20_100));
        let back = meter.rates(at(21_000)).unwrap();
        assert_eq!((back.fps, back.bitrate_bps), (0.2, 1600));
    }

    #[test]
    fn placement_follows_the_ladder_and_its_moves() {
        let live = SessionFigures::new("cam", "s1", false, Instant::now());
        assert_eq!(live.placement(), None, "a ladder is placed once it starts");
        live.placed(
            Backend::Nvenc,
            &DeviceId::new("cuda:0"),
            vec!["360p".into()],
            vec![("720p".into(), "above".into())],
        );
        let moved = live.moved(
            &DeviceId::new("cuda:0"),
            EncoderSlot::new(Backend::Software, &DeviceId::cpu()),
            "device lost",
            UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        );
        assert_eq!(moved.from, EncoderSlot { backend: "nvenc".into(), device: "cuda:0".into() });
        assert_eq!(moved.at, "2023-11-14T22:13:20.123Z");
        let p = live.placement().unwrap();
        assert_eq!((p.backend.as_deref(), p.device.as_deref(), p.moves), (Some("software"), Some("cpu"), 1));
        assert_eq!((p.kept.as_slice(), p.dropped.as_slice()), (&["360p".to_string()][..], &["720p".to_string()][..]));
        // The restarted pipeline reports its rungs again: the moves stay counted.
        live.placed(Backend::Software, &DeviceId::cpu(), vec!["360p".into()], vec![("720p".into(), "above".into())]);
        assert_eq!(live.placement().unwrap().moves, 1);
        let passthrough = SessionFigures::new("cam", "s2", true, Instant::now()).placement().unwrap();
        assert_eq!((passthrough.mode, passthrough.backend), (PlacementMode::Passthrough, None));
    }
}
