//! Sends one rendition's encoded units to another server as they are, without
//! decoding or re-encoding (restreaming): FLV over `rtmp://` and `rtmps://`,
//! MPEG-TS over `srt://`, through libavformat's muxers and protocols on the
//! calling thread, which blocks on the network. Every blocking step has a
//! deadline and can be stopped from another thread, so a destination that
//! stops answering costs its own thread a bounded wait and nothing else.
//!
//! Timestamps out start at zero at the first unit written and never go
//! backwards: a producer that restarts its clock (an encoder move) or jumps
//! is spliced on at the last written time plus one frame, because the
//! platforms that receive restreams drop streams whose time runs back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ffmpeg_next as ffmpeg;
use media::{CodecConfig, EncodedUnit, Timebase, TrackInfo, TrackKind};

use crate::ffi;
use crate::ffi::output::{InterruptibleOutput, StreamKind, StreamParameters};

/// Ticks per second of the timeline written out (FLV's own: milliseconds).
const OUT_TIMEBASE: Timebase = Timebase::MILLIS;
/// A jump in a track's decode time larger than this is a new clock, spliced on.
const MAX_JUMP_MS: i64 = 2_000;
/// The step a splice continues with (about one frame).
const SPLICE_STEP_MS: i64 = 20;

/// Why a stream out stopped or could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamOutError {
    /// The URL's scheme is not one we send to.
    #[error("unsupported destination scheme in {0:?}: use rtmp://, rtmps:// or srt://")]
    Scheme(String),
    /// A track's codec cannot travel in the destination's container.
    #[error("{codec} cannot be sent over {scheme}")]
    Codec { codec: &'static str, scheme: &'static str },
    /// The rendition has no track this destination can carry.
    #[error("the rendition has no track to send")]
    NoTracks,
    /// Connecting or the publish handshake failed (refused, unknown host, wrong key).
    #[error("connecting failed: {0}")]
    Connect(String),
    /// Writing to an established connection failed (the destination dropped it).
    #[error("sending failed: {0}")]
    Send(String),
    /// A step took longer than the I/O timeout.
    #[error("no progress for {0:?}: the destination stopped answering")]
    TimedOut(Duration),
    /// Told to stop.
    #[error("stopped")]
    Stopped,
}

/// The container a destination gets, chosen by the URL's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Flv,
    MpegTs,
}

impl Container {
    pub fn for_url(url: &str) -> Result<Container, StreamOutError> {
        let scheme = url.split_once("://").map(|(scheme, _)| scheme.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("rtmp" | "rtmps") => Ok(Container::Flv),
            Some("srt") => Ok(Container::MpegTs),
            _ => Err(StreamOutError::Scheme(url.to_string())),
        }
    }

    fn format(self) -> &'static str {
        match self {
            Container::Flv => "flv",
            Container::MpegTs => "mpegts",
        }
    }

    fn scheme(self) -> &'static str {
        match self {
            Container::Flv => "RTMP",
            Container::MpegTs => "SRT",
        }
    }
}

/// Stops a stream out from another thread, and bounds each blocking step.
#[derive(Debug)]
pub struct Watchdog {
    stop: AtomicBool,
    base: Instant,
    /// Milliseconds after `base` past which the step in progress gives up; 0 when none runs.
    deadline_ms: AtomicU64,
}

impl Watchdog {
    pub fn new() -> Arc<Watchdog> {
        Arc::new(Watchdog { stop: AtomicBool::new(false), base: Instant::now(), deadline_ms: AtomicU64::new(0) })
    }

    /// Makes every blocking step give up now and from now on.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn is_stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn arm(&self, within: Duration) {
        let deadline = self.base.elapsed() + within;
        self.deadline_ms.store(deadline.as_millis().max(1) as u64, Ordering::Relaxed);
    }

    fn disarm(&self) {
        self.deadline_ms.store(0, Ordering::Relaxed);
    }

    fn fired(&self) -> bool {
        let deadline = self.deadline_ms.load(Ordering::Relaxed);
        self.is_stopped() || (deadline != 0 && self.base.elapsed().as_millis() as u64 > deadline)
    }

    /// Why a step that FFmpeg abandoned was abandoned, if we made it.
    fn reason(&self, timeout: Duration) -> Option<StreamOutError> {
        if self.is_stopped() {
            Some(StreamOutError::Stopped)
        } else if self.fired() {
            Some(StreamOutError::TimedOut(timeout))
        } else {
            None
        }
    }
}

/// A track of the rendition and where it goes.
#[derive(Debug, Clone, Copy)]
struct Route {
    stream: usize,
    from: Timebase,
    kind: TrackKind,
}

/// A connection to one destination, writing one rendition.
pub struct StreamOut {
    output: InterruptibleOutput,
    /// Per track of the announcement: its stream out, or none (not carried).
    routes: Vec<Option<Route>>,
    /// Each stream's timebase after the header (the muxer chooses).
    stream_timebases: Vec<ffmpeg::Rational>,
    watchdog: Arc<Watchdog>,
    io_timeout: Duration,
    timeline: Timeline,
    bytes: u64,
}

impl std::fmt::Debug for StreamOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamOut").field("routes", &self.routes).field("bytes", &self.bytes).finish()
    }
}

impl StreamOut {
    /// Connects to `url` and writes the header for `tracks` (video H.264,
    /// audio AAC; HEVC only over SRT). Tracks the container cannot carry are
    /// an error, not silently left out: a restream without its audio is a
    /// broken show on the platform.
    pub fn open(
        url: &str,
        tracks: &[TrackInfo],
        watchdog: Arc<Watchdog>,
        io_timeout: Duration,
    ) -> Result<StreamOut, StreamOutError> {
        let container = Container::for_url(url)?;
        let parameters: Vec<StreamParameters> =
            tracks.iter().map(|track| parameters(track, container)).collect::<Result<_, _>>()?;
        if parameters.is_empty() {
            return Err(StreamOutError::NoTracks);
        }
        let timeout_us = io_timeout.as_micros().to_string();
        let mut options: Vec<(&str, &str)> = vec![("rw_timeout", &timeout_us)];
        if container == Container::MpegTs {
            // SRT's own send timeout; caller mode is the default.
            options.push(("timeout", &timeout_us));
        }
        watchdog.arm(io_timeout);
        let interrupt = watchdog.clone();
        let (opened, log) = ffi::capture_log(|| {
            let mut output = InterruptibleOutput::open(url, container.format(), &options, move || interrupt.fired())?;
            for stream in &parameters {
                output.add_stream(stream)?;
            }
            output.output().write_header()?;
            Ok::<_, ffmpeg::Error>(output)
        });
        watchdog.disarm();
        let mut output = opened
            .map_err(|e| watchdog.reason(io_timeout).unwrap_or_else(|| StreamOutError::Connect(describe(&e, &log))))?;
        let stream_timebases = output_timebases(output.output(), parameters.len());
        let routes = tracks
            .iter()
            .enumerate()
            .map(|(index, track)| Some(Route { stream: index, from: track.timebase, kind: track.kind }))
            .collect();
        Ok(StreamOut {
            output,
            routes,
            stream_timebases,
            watchdog,
            io_timeout,
            timeline: Timeline::default(),
            bytes: 0,
        })
    }

    /// Writes one unit of the tracks `open` was given.
    pub fn write(&mut self, unit: &EncodedUnit) -> Result<(), StreamOutError> {
        let Some(Some(route)) = self.routes.get(unit.track).copied() else { return Ok(()) };
        let (dts, pts) = self.timeline.place(route, unit);
        let timebase = self.stream_timebases[route.stream];
        let to = |ms: i64| rescale(ms, timebase);
        let mut packet = ffmpeg::Packet::copy(&unit.data);
        packet.set_stream(route.stream);
        packet.set_dts(Some(to(dts)));
        packet.set_pts(Some(to(pts)));
        if unit.keyframe {
            packet.set_flags(ffmpeg::codec::packet::Flags::KEY);
        }
        self.watchdog.arm(self.io_timeout);
        // No log capture per packet (a lock and two level changes each): FFmpeg's
        // lines about a failed write reach the log through the callback anyway.
        let written = packet.write_interleaved(self.output.output());
        self.watchdog.disarm();
        written.map_err(|e| {
            self.watchdog.reason(self.io_timeout).unwrap_or_else(|| StreamOutError::Send(describe(&e, &[])))
        })?;
        self.bytes += unit.data.len() as u64;
        Ok(())
    }

    /// Media bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Flushes what the muxer holds and ends the stream (the destination sees
    /// the publish end), within the I/O timeout.
    pub fn finish(mut self) -> Result<(), StreamOutError> {
        self.watchdog.arm(self.io_timeout);
        let (finished, log) = ffi::capture_log(|| self.output.output().write_trailer());
        self.watchdog.disarm();
        finished.map_err(|e| {
            self.watchdog.reason(self.io_timeout).unwrap_or_else(|| StreamOutError::Send(describe(&e, &log)))
        })
    }
}

/// The output stream for a track, or why the container cannot carry it.
fn parameters(track: &TrackInfo, container: Container) -> Result<StreamParameters, StreamOutError> {
    let unsupported = |codec: &'static str| StreamOutError::Codec { codec, scheme: container.scheme() };
    let (codec, kind, extradata) = match &track.codec {
        CodecConfig::Avc(avc) => {
            (ffmpeg::codec::Id::H264, StreamKind::Video { width: avc.width, height: avc.height }, avc.record.to_vec())
        }
        // Plain FLV has no HEVC (Enhanced RTMP does; FFmpeg 5's muxer does not write it).
        CodecConfig::Hevc(_) if container == Container::Flv => return Err(unsupported("HEVC")),
        CodecConfig::Hevc(hevc) => (
            ffmpeg::codec::Id::HEVC,
            StreamKind::Video { width: hevc.width, height: hevc.height },
            hevc.record.to_vec(),
        ),
        CodecConfig::Aac(aac) => (
            ffmpeg::codec::Id::AAC,
            StreamKind::Audio { sample_rate: aac.sample_rate, channels: aac.channels },
            aac.asc.to_vec(),
        ),
        // AV1 in FLV is Enhanced RTMP only; in MPEG-TS it has no published mapping FFmpeg 5 writes.
        CodecConfig::Av1(_) | CodecConfig::OtherAudio(_) => return Err(unsupported(track.codec.name())),
    };
    Ok(StreamParameters { codec, kind, extradata, timebase: OUT_TIMEBASE.ticks_per_second() })
}

fn output_timebases(output: &mut ffmpeg::format::context::Output, count: usize) -> Vec<ffmpeg::Rational> {
    (0..count)
        .map(|index| output.stream(index).map_or(ffmpeg::Rational::new(1, 1000), |stream| stream.time_base()))
        .collect()
}

fn rescale(ms: i64, timebase: ffmpeg::Rational) -> i64 {
    let (num, den) = (i128::from(timebase.numerator().max(1)), i128::from(timebase.denominator().max(1)));
    (i128::from(ms) * den / (1000 * num)) as i64
}

/// FFmpeg's error with the log lines it wrote while failing (the server's
/// reason for a refused publish is only in the log).
fn describe(error: &ffmpeg::Error, log: &[String]) -> String {
    let lines: Vec<&str> = log.iter().map(String::as_str).filter(|line| !line.is_empty()).collect();
    if lines.is_empty() { error.to_string() } else { format!("{error} ({})", lines.join("; ")) }
}

/// Maps each unit's time onto the timeline written out: starting at zero,
/// never backwards, and the same shift for every track so that audio stays
/// with its video.
#[derive(Debug, Default)]
struct Timeline {
    /// Subtracted from a unit's time in milliseconds.
    shift: Option<i64>,
    /// The last decode time written, per kind (video, audio).
    last: [Option<i64>; 2],
}

impl Timeline {
    fn place(&mut self, route: Route, unit: &EncodedUnit) -> (i64, i64) {
        let dts_ms = route.from.rescale(unit.dts, OUT_TIMEBASE);
        let pts_ms = route.from.rescale(unit.pts, OUT_TIMEBASE);
        let slot = usize::from(route.kind == TrackKind::Audio);
        let shift = *self.shift.get_or_insert(dts_ms);
        let mut dts = dts_ms - shift;
        if let Some(last) = self.last[slot] {
            if dts <= last - MAX_JUMP_MS || dts > last + MAX_JUMP_MS {
                // A new clock: splice it on one step after what was written.
                let spliced = last + SPLICE_STEP_MS;
                self.shift = Some(dts_ms - spliced);
                dts = spliced;
            } else if dts <= last {
                dts = last + 1;
            }
        }
        self.last[slot] = Some(dts);
        let composition = (pts_ms - dts_ms).max(0);
        (dts, dts + composition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use media::Arrival;

    fn unit(kind: TrackKind, dts_ms: i64, pts_ms: i64) -> (Route, EncodedUnit) {
        let route = Route { stream: 0, from: Timebase::MILLIS, kind };
        let unit = EncodedUnit {
            track: 0,
            kind,
            pts: pts_ms,
            dts: dts_ms,
            keyframe: true,
            data: Bytes::new(),
            arrival: Arrival::now(),
        };
        (route, unit)
    }

    #[test]
    fn the_timeline_starts_at_zero_and_keeps_composition_offsets() {
        let mut timeline = Timeline::default();
        let (route, first) = unit(TrackKind::Video, 10_000, 10_066);
        assert_eq!(timeline.place(route, &first), (0, 66));
        let (route, next) = unit(TrackKind::Video, 10_033, 10_033);
        assert_eq!(timeline.place(route, &next), (33, 33));
        let (route, audio) = unit(TrackKind::Audio, 10_021, 10_021);
        assert_eq!(timeline.place(route, &audio), (21, 21), "one shift for every track");
    }

    #[test]
    fn a_clock_that_restarts_is_spliced_on_and_time_never_runs_back() {
        let mut timeline = Timeline::default();
        let (route, a) = unit(TrackKind::Video, 50_000, 50_000);
        timeline.place(route, &a);
        let (route, b) = unit(TrackKind::Video, 53_000 - 1_000, 52_000);
        assert_eq!(timeline.place(route, &b).0, 2_000);
        // The producer restarted at zero (an encoder move).
        let (route, restarted) = unit(TrackKind::Video, 0, 0);
        assert_eq!(timeline.place(route, &restarted).0, 2_000 + SPLICE_STEP_MS);
        let (route, after) = unit(TrackKind::Video, 33, 33);
        assert_eq!(timeline.place(route, &after).0, 2_000 + SPLICE_STEP_MS + 33);
        // A unit with the same decode time as the last one still moves forward.
        let (route, same) = unit(TrackKind::Video, 33, 33);
        assert!(timeline.place(route, &same).0 > 2_000 + SPLICE_STEP_MS + 33);
    }

    #[test]
    fn destinations_choose_their_container_by_scheme() {
        assert_eq!(Container::for_url("rtmp://a.rtmp.youtube.com/live2/key"), Ok(Container::Flv));
        assert_eq!(Container::for_url("RTMPS://live-api-s.facebook.com:443/rtmp/key"), Ok(Container::Flv));
        assert_eq!(Container::for_url("srt://10.0.0.2:9000?streamid=x"), Ok(Container::MpegTs));
        assert!(matches!(Container::for_url("http://example.com/"), Err(StreamOutError::Scheme(_))));
        assert!(matches!(Container::for_url("no scheme"), Err(StreamOutError::Scheme(_))));
    }
}
