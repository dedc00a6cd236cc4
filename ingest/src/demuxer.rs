//! One publish's media state: turns FLV tags into `media::StreamEvent`s.
//! Holds the codec configurations, decides when the track set is known
//! (the announcement gate, buffering units meanwhile, bounded), and times
//! every unit on the shared timeline.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use media::codec::AAC_FRAME_SAMPLES;
use media::{
    AacConfig, Arrival, AudioCodec, Av1Config, AvcConfig, CodecConfig, EncodedUnit, HevcConfig, OtherAudioConfig,
    StreamEvent, Timebase, TrackInfo, TrackKind, mpeg_audio, opus,
};

use crate::error::IngestError;
use crate::flv::{self, AudioTag, VideoFormat, VideoTag};
use crate::metadata::StreamMetadata;
use crate::timestamps::{AudioClock, Monotonic, Timeline};
use crate::warnings::{Warning, Warnings};

/// Without declared codecs, announce once this much media has passed with only one track.
pub(crate) const UNDECLARED_WAIT_MS: i64 = 500;
/// With declared codecs, stop waiting for a missing one after this much media.
pub(crate) const DECLARED_WAIT_MS: i64 = 3_000;
/// Units buffered before the announcement, at most.
pub(crate) const MAX_PENDING_UNITS: usize = 1024;
/// Bytes buffered before the announcement, at most.
pub(crate) const MAX_PENDING_BYTES: usize = 32 << 20;

struct VideoTrack {
    format: VideoFormat,
    /// `CodecConfig::Avc` or `CodecConfig::Hevc`, with 4-byte NAL lengths (what the units carry).
    config: CodecConfig,
    /// NAL length size of the publisher's payloads.
    source_nal_length_size: u8,
    dts: Monotonic,
    seen_keyframe: bool,
}

struct AudioTrack {
    /// `CodecConfig::Aac`, or `CodecConfig::OtherAudio` (MP3, G.711, Opus) for the appliance to transcode.
    config: CodecConfig,
    clock: AudioClock,
}

/// A unit placed on the timeline, waiting for the track set.
struct Pending {
    kind: TrackKind,
    ms: i64,
    cts_ms: i32,
    /// Audio: samples the unit decodes to, when its bytes say (0: time it by the RTMP clock alone).
    samples: u32,
    keyframe: bool,
    data: Bytes,
    arrival: Arrival,
}

#[derive(Debug, Clone, Copy)]
struct Indices {
    video: Option<usize>,
    audio: Option<usize>,
}

/// Units and announcements a publish produced.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DemuxStats {
    pub video_units: u64,
    pub audio_units: u64,
    pub announcements: u64,
}

/// FLV tags of one publish in, `StreamEvent`s out. No I/O: the session feeds
/// it RTMP audio/video/metadata messages; benches and fuzzers can feed it
/// tags read from a file.
#[derive(Default)]
pub struct Demuxer {
    timeline: Timeline,
    video: Option<VideoTrack>,
    audio: Option<AudioTrack>,
    metadata: Option<StreamMetadata>,
    announced: Option<Indices>,
    pending: VecDeque<Pending>,
    pending_bytes: usize,
    first_media_ms: Option<i64>,
    pub(crate) warnings: Warnings,
    pub(crate) stats: DemuxStats,
}

impl Demuxer {
    /// Units and announcements so far.
    pub fn stats(&self) -> DemuxStats {
        self.stats
    }

    /// Takes the publisher's metadata (frame rate, bitrates, declared codecs).
    pub fn set_metadata(&mut self, meta: &StreamMetadata, out: &mut Vec<StreamEvent>) {
        self.metadata = Some(meta.clone());
        self.maybe_announce(out);
    }

    /// One RTMP video message (an FLV `VIDEODATA` body) with its RTMP timestamp.
    pub fn push_video(&mut self, timestamp: u32, data: &Bytes, arrival: Arrival, out: &mut Vec<StreamEvent>) {
        match flv::read_video(data) {
            Err(err) => self.warnings.note(Warning::BadTag, format_args!("skipping video tag: {err}")),
            Ok(VideoTag::Ignored) => {}
            Ok(VideoTag::Unsupported(codec)) => self.warnings.note(
                Warning::UnsupportedVideo,
                format_args!("video codec {codec} is not supported yet; ignoring the video track"),
            ),
            Ok(VideoTag::Config(format, record)) => self.set_video_config(format, &record, out),
            Ok(VideoTag::Frame { format, keyframe, cts_ms, data }) => {
                let Some(video) = &mut self.video else {
                    self.warnings
                        .note(Warning::FrameBeforeConfig, "skipping video frames before the video sequence header");
                    return;
                };
                if video.format != format {
                    self.warnings.note(
                        Warning::BadTag,
                        format_args!("skipping {format:?} video frames: the sequence header was {:?}", video.format),
                    );
                    return;
                }
                if !video.seen_keyframe && !keyframe {
                    self.warnings.note(Warning::FrameBeforeConfig, "skipping video frames before the first keyframe");
                    return;
                }
                let normalised = match format {
                    VideoFormat::Av1 => media::av1::without_delimiters(data).map_err(IngestError::from),
                    VideoFormat::Avc | VideoFormat::Hevc => {
                        flv::to_four_byte_lengths(data, video.source_nal_length_size)
                    }
                };
                let data = match normalised {
                    Ok(data) => data,
                    Err(err) => {
                        return self.warnings.note(Warning::BadTag, format_args!("skipping video frame: {err}"));
                    }
                };
                video.seen_keyframe = true;
                let ms = self.place(timestamp);
                self.push(Pending { kind: TrackKind::Video, ms, cts_ms, samples: 0, keyframe, data, arrival }, out);
            }
        }
    }

    /// One RTMP audio message (an FLV `AUDIODATA` body) with its RTMP timestamp.
    pub fn push_audio(&mut self, timestamp: u32, data: &Bytes, arrival: Arrival, out: &mut Vec<StreamEvent>) {
        match flv::read_audio(data) {
            Err(err) => self.warnings.note(Warning::BadTag, format_args!("skipping audio tag: {err}")),
            Ok(AudioTag::Ignored) => {}
            Ok(AudioTag::Unsupported(codec)) => self.warnings.note(
                Warning::UnsupportedAudio,
                format_args!(
                    "audio codec {codec} is not supported (AAC, MP3, G.711 and Opus are); ignoring the audio track"
                ),
            ),
            Ok(AudioTag::AacConfig(asc)) => self.set_aac_config(asc, out),
            Ok(AudioTag::OpusHead(head)) => match OtherAudioConfig::from_opus_head(head) {
                Ok(config) => self.set_audio_config(CodecConfig::OtherAudio(config), out),
                Err(err) => self.warnings.note(Warning::BadCodecConfig, format_args!("ignoring Opus header: {err}")),
            },
            Ok(AudioTag::AacFrame(data)) => {
                if !matches!(self.audio.as_ref().map(|a| &a.config), Some(CodecConfig::Aac(_))) {
                    self.warnings
                        .note(Warning::FrameBeforeConfig, "skipping audio frames before the AAC sequence header");
                    return;
                }
                if data.is_empty() {
                    return self.warnings.note(Warning::BadTag, "skipping empty AAC frame");
                }
                let ms = self.place(timestamp);
                let samples = AAC_FRAME_SAMPLES;
                self.push(
                    Pending { kind: TrackKind::Audio, ms, cts_ms: 0, samples, keyframe: true, data, arrival },
                    out,
                );
            }
            Ok(AudioTag::OtherFrame { codec, stereo, data }) => {
                let Some(samples) = self.other_audio_frame(codec, stereo, &data, out) else { return };
                let ms = self.place(timestamp);
                self.push(
                    Pending { kind: TrackKind::Audio, ms, cts_ms: 0, samples, keyframe: true, data, arrival },
                    out,
                );
            }
        }
    }

    /// Checks one MP3, G.711 or Opus tag against the track's configuration
    /// (MP3 and G.711 configure the track from the tag itself) and returns the
    /// samples it carries (0 when its bytes do not say), or `None` to skip it.
    fn other_audio_frame(
        &mut self,
        codec: AudioCodec,
        stereo: bool,
        data: &Bytes,
        out: &mut Vec<StreamEvent>,
    ) -> Option<u32> {
        match codec {
            AudioCodec::Mp3 => {
                let config = match OtherAudioConfig::from_mp3_frame(data) {
                    Ok(config) => config,
                    Err(err) => {
                        self.warnings.note(Warning::BadTag, format_args!("skipping MP3 tag: {err}"));
                        return None;
                    }
                };
                self.set_audio_config(CodecConfig::OtherAudio(config), out);
                Some(mpeg_audio::samples_in(data).unwrap_or(0))
            }
            AudioCodec::G711ALaw | AudioCodec::G711MuLaw => {
                let channels = if stereo { 2 } else { 1 };
                self.set_audio_config(CodecConfig::OtherAudio(OtherAudioConfig::g711(codec, channels)), out);
                Some((data.len() / channels as usize) as u32)
            }
            AudioCodec::Opus => {
                let configured = self.audio.as_ref().map(|a| &a.config);
                if !matches!(configured, Some(CodecConfig::OtherAudio(c)) if c.codec == AudioCodec::Opus) {
                    self.warnings.note(Warning::FrameBeforeConfig, "skipping Opus packets before the Opus header");
                    return None;
                }
                Some(opus::packet_samples(data).unwrap_or(0))
            }
        }
    }

    fn place(&mut self, timestamp: u32) -> i64 {
        let before = self.timeline.latest();
        let placed = self.timeline.place(timestamp);
        if placed.discontinuity {
            self.warnings.note(
                Warning::Discontinuity,
                format_args!(
                    "timestamp discontinuity at {before} ms (source time {timestamp} ms); rebased to continue"
                ),
            );
        }
        self.first_media_ms.get_or_insert(placed.ms);
        placed.ms
    }

    fn set_video_config(&mut self, format: VideoFormat, record: &Bytes, out: &mut Vec<StreamEvent>) {
        let record4 = flv::with_four_byte_lengths(format, record);
        let parsed = match format {
            VideoFormat::Avc => AvcConfig::from_record(record4).map(CodecConfig::Avc),
            VideoFormat::Hevc => HevcConfig::from_record(record4).map(CodecConfig::Hevc),
            VideoFormat::Av1 => Av1Config::from_record(record4).map(CodecConfig::Av1),
        };
        let config = match parsed {
            Ok(config) => config,
            Err(err) => {
                return self
                    .warnings
                    .note(Warning::BadCodecConfig, format_args!("ignoring {format:?} sequence header: {err}"));
            }
        };
        // A parsed avcC/hvcC is longer than its length-size byte; AV1 has none (0).
        let source_nal_length_size = flv::nal_length_size(format, record).unwrap_or(0);
        match &mut self.video {
            Some(video) if video.config == config => return,
            Some(video) => {
                tracing::info!(codec = %config.rfc6381(), "video configuration changed");
                video.config = config;
                video.format = format;
                video.source_nal_length_size = source_nal_length_size;
            }
            None => {
                self.video = Some(VideoTrack {
                    format,
                    config,
                    source_nal_length_size,
                    dts: Monotonic::default(),
                    seen_keyframe: false,
                })
            }
        }
        self.config_changed(out);
    }

    fn set_aac_config(&mut self, asc: Bytes, out: &mut Vec<StreamEvent>) {
        match AacConfig::from_asc(asc) {
            Ok(config) if config.sample_rate > 0 => self.set_audio_config(CodecConfig::Aac(config), out),
            Ok(_) => self.warnings.note(Warning::BadCodecConfig, "ignoring AAC sequence header with sample rate 0"),
            Err(err) => {
                self.warnings.note(Warning::BadCodecConfig, format_args!("ignoring AAC sequence header: {err}"))
            }
        }
    }

    /// Takes an audio configuration (AAC, or a codec to transcode); a change is re-announced.
    fn set_audio_config(&mut self, config: CodecConfig, out: &mut Vec<StreamEvent>) {
        let Some(sample_rate) = audio_sample_rate(&config) else { return };
        match &mut self.audio {
            Some(audio) if audio.config == config => return,
            Some(audio) => {
                tracing::info!(codec = config.name(), sample_rate, "audio configuration changed");
                if audio_sample_rate(&audio.config) != Some(sample_rate) {
                    audio.clock.set_sample_rate(sample_rate);
                }
                audio.config = config;
            }
            None => {
                let clock = AudioClock::new(sample_rate);
                self.audio = Some(AudioTrack { config, clock });
            }
        }
        self.config_changed(out);
    }

    fn config_changed(&mut self, out: &mut Vec<StreamEvent>) {
        if self.announced.is_some() { self.announce(out) } else { self.maybe_announce(out) }
    }

    fn push(&mut self, pending: Pending, out: &mut Vec<StreamEvent>) {
        if self.announced.is_some() {
            if let Some(unit) = self.time(pending) {
                out.push(StreamEvent::Unit(unit));
            }
            return;
        }
        self.pending_bytes += pending.data.len();
        self.pending.push_back(pending);
        self.maybe_announce(out);
    }

    /// Announces the track set once it is known (see the crate README).
    fn maybe_announce(&mut self, out: &mut Vec<StreamEvent>) {
        if self.announced.is_some() {
            return;
        }
        let (have_video, have_audio) = (self.video.is_some(), self.audio.is_some());
        if !have_video && !have_audio {
            return;
        }
        let span = self.timeline.latest() - self.first_media_ms.unwrap_or(self.timeline.latest());
        let declared = self.metadata.as_ref().filter(|m| m.declares_codecs());
        let (complete, waited) = match declared {
            Some(meta) => (
                (!meta.declares_video() || have_video) && (!meta.declares_audio() || have_audio),
                span >= DECLARED_WAIT_MS,
            ),
            None => (have_video && have_audio, span >= UNDECLARED_WAIT_MS),
        };
        let full = self.pending.len() >= MAX_PENDING_UNITS || self.pending_bytes >= MAX_PENDING_BYTES;
        if !(complete || waited || full) {
            return;
        }
        if declared.is_some() && !complete {
            let missing = if have_video { "audio" } else { "video" };
            self.warnings.note(
                Warning::IncompleteTracks,
                format_args!(
                    "the metadata declared {missing} but none arrived after {span} ms of media; announcing without it"
                ),
            );
        }
        self.announce(out);
    }

    /// Sends the track set (video first, then audio) and everything buffered.
    fn announce(&mut self, out: &mut Vec<StreamEvent>) {
        let meta = self.metadata.clone().unwrap_or_default();
        let mut tracks = Vec::with_capacity(2);
        let video = self.video.as_ref().map(|video| {
            tracks.push(TrackInfo {
                kind: TrackKind::Video,
                timebase: Timebase::VIDEO,
                codec: video.config.clone(),
                frame_rate: meta.frame_rate(),
                bitrate: meta.video_bitrate(),
            });
            tracks.len() - 1
        });
        let audio = self.audio.as_ref().map(|audio| {
            tracks.push(TrackInfo {
                kind: TrackKind::Audio,
                timebase: audio.clock.timebase(),
                codec: audio.config.clone(),
                frame_rate: None,
                bitrate: meta.audio_bitrate(),
            });
            tracks.len() - 1
        });
        self.announced = Some(Indices { video, audio });
        self.stats.announcements += 1;
        out.push(StreamEvent::Tracks(Arc::from(tracks)));
        while let Some(pending) = self.pending.pop_front() {
            if let Some(unit) = self.time(pending) {
                out.push(StreamEvent::Unit(unit));
            }
        }
        self.pending_bytes = 0;
    }

    /// Decode and presentation times of a unit, in its track's timebase.
    fn time(&mut self, p: Pending) -> Option<EncodedUnit> {
        let indices = self.announced?;
        // The first frame is time 0; an older frame of the other track (only
        // from publishers that interleave out of order) is clamped to 0.
        let ms = p.ms.max(0);
        let (track, dts, pts) = match p.kind {
            TrackKind::Video => {
                let video = self.video.as_mut()?;
                let (dts, clamped) = video.dts.next(Timebase::MILLIS.rescale(ms, Timebase::VIDEO));
                if clamped {
                    self.warnings
                        .note(Warning::ClampedTimestamp, "video decode time did not increase; moved one tick forward");
                }
                self.stats.video_units += 1;
                (indices.video?, dts, dts + Timebase::MILLIS.rescale(p.cts_ms as i64, Timebase::VIDEO))
            }
            TrackKind::Audio => {
                let audio = self.audio.as_mut()?;
                let (dts, resynced) = audio.clock.next(ms, p.samples);
                if resynced {
                    self.warnings.note(
                        Warning::AudioResync,
                        "audio drifted from the RTMP clock by more than half a frame; re-synced",
                    );
                }
                self.stats.audio_units += 1;
                (indices.audio?, dts, dts)
            }
        };
        Some(EncodedUnit { track, kind: p.kind, pts, dts, keyframe: p.keyframe, data: p.data, arrival: p.arrival })
    }
}

/// The sample rate (the track's timebase) of an audio configuration; `None` for video.
fn audio_sample_rate(config: &CodecConfig) -> Option<u32> {
    match config {
        CodecConfig::Aac(aac) => Some(aac.sample_rate),
        CodecConfig::OtherAudio(other) => Some(other.sample_rate),
        CodecConfig::Avc(_) | CodecConfig::Hevc(_) | CodecConfig::Av1(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use media::test_vectors::ASC_48K_STEREO;
    use media::test_vectors::AVCC_640X360;

    fn avc_header(record: &[u8]) -> Bytes {
        Bytes::from([&[0x17, 0, 0, 0, 0][..], record].concat())
    }

    fn avc_frame(keyframe: bool, cts: i32, nal: &[u8]) -> Bytes {
        let c = cts.to_be_bytes();
        let mut tag = vec![if keyframe { 0x17 } else { 0x27 }, 1, c[1], c[2], c[3]];
        tag.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        tag.extend_from_slice(nal);
        Bytes::from(tag)
    }

    fn aac_header(asc: &[u8]) -> Bytes {
        Bytes::from([&[0xaf, 0][..], asc].concat())
    }

    fn aac_frame() -> Bytes {
        Bytes::from_static(&[0xaf, 1, 0x21, 0x10, 0x04])
    }

    #[derive(Debug, PartialEq)]
    enum Seen {
        Tracks(Vec<TrackKind>),
        Unit { track: usize, kind: TrackKind, dts: i64, pts: i64, key: bool },
    }

    fn seen(events: &[StreamEvent]) -> Vec<Seen> {
        events
            .iter()
            .map(|e| match e {
                StreamEvent::Tracks(t) => Seen::Tracks(t.iter().map(|t| t.kind).collect()),
                StreamEvent::Unit(u) => {
                    Seen::Unit { track: u.track, kind: u.kind, dts: u.dts, pts: u.pts, key: u.keyframe }
                }
            })
            .collect()
    }

    fn v(track: usize, dts_ms: i64, pts_ms: i64, key: bool) -> Seen {
        Seen::Unit { track, kind: TrackKind::Video, dts: dts_ms * 90, pts: pts_ms * 90, key }
    }

    fn a(track: usize, dts: i64) -> Seen {
        Seen::Unit { track, kind: TrackKind::Audio, dts, pts: dts, key: true }
    }

    fn meta(video: Option<u32>, audio: Option<u32>) -> StreamMetadata {
        StreamMetadata {
            videocodecid: video,
            audiocodecid: audio,
            framerate: Some(30.0),
            videodatarate: Some(1000.0),
            audiodatarate: Some(128.0),
            ..Default::default()
        }
    }

    #[test]
    fn both_configs_announce_at_once_video_first() {
        let (mut d, mut out, now) = (Demuxer::default(), Vec::new(), Arrival::now());
        d.push_audio(0, &aac_header(&ASC_48K_STEREO), now, &mut out);
        assert!(out.is_empty());
        d.push_video(0, &avc_header(&AVCC_640X360), now, &mut out);
        d.push_video(0, &avc_frame(true, 0, &[0x65, 1]), now, &mut out);
        d.push_audio(0, &aac_frame(), now, &mut out);
        d.push_audio(21, &aac_frame(), now, &mut out);
        d.push_video(33, &avc_frame(false, 0, &[0x41, 1]), now, &mut out);
        assert_eq!(
            seen(&out),
            [
                Seen::Tracks(vec![TrackKind::Video, TrackKind::Audio]),
                v(0, 0, 0, true),
                a(1, 0),
                a(1, 1024),
                v(0, 33, 33, false)
            ]
        );
        let StreamEvent::Tracks(tracks) = &out[0] else { unreachable!() };
        assert_eq!(tracks[0].resolution(), Some((640, 360)));
        assert_eq!(tracks[1].timebase, Timebase(48_000));
    }

    #[test]
    fn one_track_waits_half_a_second_of_media() {
        let (mut d, mut out, now) = (Demuxer::default(), Vec::new(), Arrival::now());
        d.push_audio(1_000, &aac_header(&ASC_48K_STEREO), now, &mut out);
        for i in 0..23 {
            d.push_audio(1_000 + (i as f64 * 1024.0 / 48.0).round() as u32, &aac_frame(), now, &mut out);
        }
        assert!(out.is_empty(), "469 ms of audio is not enough");
        d.push_audio(1_000 + 491, &aac_frame(), now, &mut out);
        assert!(out.is_empty());
        d.push_audio(1_000 + 512, &aac_frame(), now, &mut out);
        let got = seen(&out);
        assert_eq!(got[0], Seen::Tracks(vec![TrackKind::Audio]));
        assert_eq!(got.len(), 1 + 25);
        for (i, unit) in got[1..].iter().enumerate() {
            assert_eq!(*unit, a(0, i as i64 * 1024));
        }
        // Video appears later: re-announced, video first.
        out.clear();
        d.push_video(1_600, &avc_header(&AVCC_640X360), now, &mut out);
        d.push_video(1_600, &avc_frame(true, 0, &[0x65]), now, &mut out);
        assert_eq!(seen(&out), [Seen::Tracks(vec![TrackKind::Video, TrackKind::Audio]), v(0, 600, 600, true)]);
        assert_eq!(d.stats.announcements, 2);
    }

    #[test]
    fn declared_codecs_are_waited_for() {
        let (mut d, mut out, now) = (Demuxer::default(), Vec::new(), Arrival::now());
        d.set_metadata(&meta(Some(7), Some(10)), &mut out);
        d.push_video(0, &avc_header(&AVCC_640X360), now, &mut out);
        for i in 0..=60u32 {
            d.push_video(i * 33, &avc_frame(i % 30 == 0, 0, &[0x65]), now, &mut out);
        }
        assert!(out.is_empty(), "2 s of video still waits for the declared audio");
        for i in 61..=91u32 {
            d.push_video(i * 33, &avc_frame(i % 30 == 0, 0, &[0x65]), now, &mut out);
        }
        assert_eq!(seen(&out)[0], Seen::Tracks(vec![TrackKind::Video]));
        assert_eq!(out.len(), 1 + 92);
        assert_eq!(d.warnings.count(Warning::IncompleteTracks), 1);
        let StreamEvent::Tracks(tracks) = &out[0] else { unreachable!() };
        assert_eq!((tracks[0].frame_rate, tracks[0].bitrate), (Some((30, 1)), Some(1_000_000)));
    }

    #[test]
    fn declared_single_track_announces_with_its_config() {
        let (mut d, mut out, now) = (Demuxer::default(), Vec::new(), Arrival::now());
        d.set_metadata(&meta(None, Some(10)), &mut out);
        d.push_audio(0, &aac_header(&ASC_48K_STEREO), now, &mut out);
        assert_eq!(seen(&out), [Seen::Tracks(vec![TrackKind::Audio])]);
        let StreamEvent::Tracks(tracks) = &out[0] else { unreachable!() };
        assert_eq!(tracks[0].bitrate, Some(128_000));
        // Declared but unsupported codecs (Speex) are not waited for.
        let (mut d, mut out) = (Demuxer::default(), Vec::new());
        d.set_metadata(&meta(Some(7), Some(11)), &mut out);
        d.push_video(0, &avc_header(&AVCC_640X360), now, &mut out);
        assert_eq!(seen(&out), [Seen::Tracks(vec![TrackKind::Video])]);
    }

    #[test]
    fn config_changes_reannounce_and_repeats_do_not() {
        let (mut d, mut out, now) = (Demuxer::default(), Vec::new(), Arrival::now());
        d.set_metadata(&meta(Some(7), None), &mut out);
        d.push_video(0, &avc_header(&AVCC_640X360), now, &mut out);
        d.push_video(0, &avc_header(&AVCC_640X360), now, &mut out);
        assert_eq!(d.stats.announcements, 1);
        let mut other = AVCC_640X360;
        other[3] = 0x1f; // level 3.1
        d.push_video(40, &avc_header(&other), now, &mut out);
        assert_eq!(d.stats.announcements, 2);
        let StreamEvent::Tracks(tracks) = out.last().unwrap() else { panic!("expected tracks") };
        assert_eq!(tracks[0].codec.rfc6381(), "avc1.64001f");
        // A new AAC config with another rate restarts the audio clock in the new timebase.
        d.push_audio(40, &aac_header(&ASC_48K_STEREO), now, &mut out);
        d.push_audio(80, &aac_header(&[0x12, 0x10]), now, &mut out);
        let StreamEvent::Tracks(tracks) = out.last().unwrap() else { panic!("expected tracks") };
        assert_eq!(tracks[1].timebase, Timebase(44_100));
        assert_eq!(d.stats.announcements, 4);
    }

    #[test]
    fn b_frames_and_composition_offsets() {
        let (mut d, mut out, now) = (Demuxer::default(), Vec::new(), Arrival::now());
        d.set_metadata(&meta(Some(7), None), &mut out);
        d.push_video(0, &avc_header(&AVCC_640X360), now, &mut out);
        // I P B B in decode order, as x264 with -bf 2 at 25 fps: dts 0 40 80 120, pts 80 200 120 160.
        for (ts, key, cts) in [(0, true, 80), (40, false, 160), (80, false, 40), (120, false, 40)] {
            d.push_video(ts, &avc_frame(key, cts, &[0x65]), now, &mut out);
        }
        d.push_video(160, &avc_frame(false, -40, &[0x41]), now, &mut out);
        let got = seen(&out);
        assert_eq!(
            got[1..],
            [
                v(0, 0, 80, true),
                v(0, 40, 200, false),
                v(0, 80, 120, false),
                v(0, 120, 160, false),
                v(0, 160, 120, false)
            ]
        );
    }

    #[test]
    fn the_first_frame_is_time_zero() {
        let (mut d, mut out, now) = (Demuxer::default(), Vec::new(), Arrival::now());
        d.push_video(5_000, &avc_header(&AVCC_640X360), now, &mut out);
        d.push_audio(4_980, &aac_header(&ASC_48K_STEREO), now, &mut out);
        d.push_video(5_000, &avc_frame(true, 0, &[0x65]), now, &mut out);
        // Audio 20 ms older than the first frame: clamped to 0.
        d.push_audio(4_980, &aac_frame(), now, &mut out);
        d.push_video(5_033, &avc_frame(false, 0, &[0x41]), now, &mut out);
        assert_eq!(
            seen(&out),
            [Seen::Tracks(vec![TrackKind::Video, TrackKind::Audio]), v(0, 0, 0, true), a(1, 0), v(0, 33, 33, false)]
        );
    }

    #[test]
    fn buffered_units_keep_their_times() {
        let (mut d, mut out, now) = (Demuxer::default(), Vec::new(), Arrival::now());
        d.set_metadata(&meta(Some(7), Some(10)), &mut out);
        d.push_audio(1_000, &aac_header(&ASC_48K_STEREO), now, &mut out);
        d.push_audio(1_000, &aac_frame(), now, &mut out);
        d.push_audio(1_021, &aac_frame(), now, &mut out);
        d.push_video(1_030, &avc_frame(true, 0, &[0x65]), now, &mut out); // before its header: skipped
        d.push_video(1_040, &avc_header(&AVCC_640X360), now, &mut out);
        d.push_video(1_040, &avc_frame(true, 0, &[0x65]), now, &mut out);
        assert_eq!(
            seen(&out),
            [Seen::Tracks(vec![TrackKind::Video, TrackKind::Audio]), a(1, 0), a(1, 1024), v(0, 40, 40, true)]
        );
        assert_eq!(d.warnings.count(Warning::FrameBeforeConfig), 1);
    }

    #[test]
    fn two_byte_nal_lengths_are_widened() {
        let (mut d, mut out, now) = (Demuxer::default(), Vec::new(), Arrival::now());
        let mut record = AVCC_640X360;
        record[4] = 0xfd; // lengthSizeMinusOne = 1
        d.set_metadata(&meta(Some(7), None), &mut out);
        d.push_video(0, &avc_header(&record), now, &mut out);
        d.push_video(0, &Bytes::from_static(&[0x17, 1, 0, 0, 0, 0, 2, 0x65, 0x88, 0, 1, 0x06]), now, &mut out);
        let StreamEvent::Tracks(tracks) = &out[0] else { panic!("expected tracks") };
        let CodecConfig::Avc(avc) = &tracks[0].codec else { panic!("expected avc") };
        assert_eq!(avc.nal_length_size, 4);
        assert_eq!(avc.record[4], 0xff);
        let StreamEvent::Unit(unit) = &out[1] else { panic!("expected a unit") };
        assert_eq!(&unit.data[..], [0, 0, 0, 2, 0x65, 0x88, 0, 0, 0, 1, 0x06]);
    }

    #[test]
    fn enhanced_rtmp_hevc_is_carried_with_four_byte_lengths() {
        use media::test_vectors::{HEVC_PPS_320X180, HEVC_SPS_320X180, HEVC_VPS_320X180};
        let sets = |nal: &'static [u8]| [Bytes::from_static(nal)];
        let hevc =
            HevcConfig::from_parameter_sets(&sets(HEVC_VPS_320X180), &sets(HEVC_SPS_320X180), &sets(HEVC_PPS_320X180))
                .unwrap();
        let mut record = hevc.record.to_vec();
        record[21] = (record[21] & !0x03) | 0x01; // a publisher's 2-byte NAL lengths
        let (mut d, mut out, now) = (Demuxer::default(), Vec::new(), Arrival::now());
        d.set_metadata(&meta(Some(u32::from_be_bytes(*b"hvc1")), None), &mut out);
        d.push_video(0, &Bytes::from([&[0x90][..], b"hvc1", &record].concat()), now, &mut out);
        // Coded frames (key, cts 40 ms) then coded frames X (inter, no cts).
        let key = [&[0x91][..], b"hvc1", &[0, 0, 40], &[0, 3, 0x26, 0x01, 0xaf]].concat();
        d.push_video(0, &Bytes::from(key), now, &mut out);
        d.push_video(40, &Bytes::from([&[0xa3][..], b"hvc1", &[0, 2, 0x02, 0x01]].concat()), now, &mut out);
        // AVC frames on an HEVC track are not this track's.
        d.push_video(80, &avc_frame(false, 0, &[0x41]), now, &mut out);
        let StreamEvent::Tracks(tracks) = &out[0] else { panic!("expected tracks, got {out:?}") };
        let CodecConfig::Hevc(carried) = &tracks[0].codec else { panic!("expected hevc") };
        assert_eq!((carried.width, carried.height, carried.nal_length_size), (320, 180, 4));
        assert_eq!(carried.record[21] & 0x03, 3);
        assert_eq!(seen(&out), [Seen::Tracks(vec![TrackKind::Video]), v(0, 0, 40, true), v(0, 40, 40, false)]);
        let StreamEvent::Unit(unit) = &out[1] else { panic!("expected a unit") };
        assert_eq!(&unit.data[..], [0, 0, 0, 3, 0x26, 0x01, 0xaf]);
        assert_eq!(d.warnings.count(Warning::BadTag), 1);
    }

    #[test]
    fn enhanced_rtmp_av1_is_carried_without_temporal_delimiters() {
        let (mut d, mut out, now) = (Demuxer::default(), Vec::new(), Arrival::now());
        d.set_metadata(&meta(Some(u32::from_be_bytes(*b"av01")), None), &mut out);
        let record = media::test_vectors::AV1C_320X180;
        d.push_video(0, &Bytes::from([&[0x90][..], b"av01", record].concat()), now, &mut out);
        // A temporal delimiter, then a frame OBU.
        let key = [&[0x91][..], b"av01", &[0x12, 0x00, 0x32, 0x02, 0xaa, 0xbb]].concat();
        d.push_video(0, &Bytes::from(key), now, &mut out);
        d.push_video(33, &Bytes::from([&[0xa1][..], b"av01", &[0x32, 0x01, 0xcc]].concat()), now, &mut out);
        d.push_video(66, &Bytes::from([&[0xa1][..], b"av01", &[0x32, 0x09, 0xcc]].concat()), now, &mut out); // cut
        let StreamEvent::Tracks(tracks) = &out[0] else { panic!("expected tracks, got {out:?}") };
        let CodecConfig::Av1(av1) = &tracks[0].codec else { panic!("expected av1") };
        assert_eq!((av1.width, av1.height, &av1.record[..]), (320, 180, record));
        assert_eq!(seen(&out), [Seen::Tracks(vec![TrackKind::Video]), v(0, 0, 0, true), v(0, 33, 33, false)]);
        let StreamEvent::Unit(unit) = &out[1] else { panic!("expected a unit") };
        assert_eq!(&unit.data[..], [0x32, 0x02, 0xaa, 0xbb]);
        assert_eq!(d.warnings.count(Warning::BadTag), 1);
    }

    #[test]
    fn bad_input_is_skipped_and_counted() {
        let (mut d, mut out, now) = (Demuxer::default(), Vec::new(), Arrival::now());
        d.set_metadata(&meta(Some(7), Some(10)), &mut out);
        d.push_video(0, &avc_frame(true, 0, &[0x65]), now, &mut out); // before config
        d.push_video(0, &avc_header(&[1, 2, 3]), now, &mut out); // bad config
        d.push_video(0, &avc_header(&AVCC_640X360), now, &mut out);
        d.push_video(0, &avc_frame(false, 0, &[0x41]), now, &mut out); // before first keyframe
        for _ in 0..100 {
            d.push_video(0, &Bytes::new(), now, &mut out);
            d.push_video(0, &Bytes::from_static(&[0x17, 1, 0, 0, 0, 0, 0, 0, 9, 1]), now, &mut out);
            d.push_audio(0, &Bytes::from_static(&[0xb6, 0xff]), now, &mut out); // Speex
        }
        d.push_audio(0, &Bytes::from_static(&[0x2f, 0xff, 0x00, 0x00, 0x00]), now, &mut out); // MP3, no sync
        d.push_audio(0, &Bytes::from([&[0x91][..], b"Opus", &[0xfc]].concat()), now, &mut out); // before its head
        d.push_audio(0, &Bytes::from([&[0x90][..], b"Opus", b"OpusHead"].concat()), now, &mut out); // short head
        d.push_video(0, &Bytes::from([&[0x90][..], b"hvc1", &[1, 2]].concat()), now, &mut out); // short hvcC
        d.push_video(0, &Bytes::from([&[0x90][..], b"vp09", &[1, 2]].concat()), now, &mut out);
        assert_eq!(d.warnings.count(Warning::FrameBeforeConfig), 3);
        assert_eq!(d.warnings.count(Warning::BadCodecConfig), 3);
        assert_eq!(d.warnings.count(Warning::BadTag), 201);
        assert_eq!(d.warnings.count(Warning::UnsupportedAudio), 100);
        assert_eq!(d.warnings.count(Warning::UnsupportedVideo), 1);
        // AAC (10) was declared and none arrived, so the gate still waits.
        assert!(out.is_empty());
    }

    /// One MP3 frame tag (legacy sound format 2) of `header`'s length.
    fn mp3_tag(header: [u8; 4]) -> Bytes {
        let len = media::mpeg_audio::MpegAudioHeader::parse(&header).unwrap().frame_len.unwrap();
        let mut tag = vec![0x2f];
        tag.extend_from_slice(&header);
        tag.resize(1 + len, 0x55);
        Bytes::from(tag)
    }

    /// MPEG-1 layer III, 128 kbit/s, 44.1 kHz, joint stereo.
    const MP3_44K_STEREO: [u8; 4] = [0xff, 0xfb, 0x90, 0x64];
    /// MPEG-2 layer III, 64 kbit/s, 22.05 kHz, joint stereo.
    const MP3_22K_STEREO: [u8; 4] = [0xff, 0xf3, 0x80, 0x44];

    fn other_audio(event: &StreamEvent) -> (OtherAudioConfig, Timebase) {
        let StreamEvent::Tracks(tracks) = event else { panic!("expected tracks, got {event:?}") };
        let audio = tracks.iter().find(|t| t.kind == TrackKind::Audio).expect("an audio track");
        let CodecConfig::OtherAudio(config) = &audio.codec else { panic!("expected other audio: {:?}", audio.codec) };
        (config.clone(), audio.timebase)
    }

    #[test]
    fn mp3_is_configured_by_its_first_frame_and_counted_in_samples() {
        let (mut d, mut out, now) = (Demuxer::default(), Vec::new(), Arrival::now());
        d.set_metadata(&meta(Some(7), Some(2)), &mut out);
        d.push_video(0, &avc_header(&AVCC_640X360), now, &mut out);
        d.push_video(0, &avc_frame(true, 0, &[0x65]), now, &mut out);
        assert!(out.is_empty(), "MP3 was declared: the gate waits for it");
        for ts in [0, 26, 52, 78] {
            d.push_audio(ts, &mp3_tag(MP3_44K_STEREO), now, &mut out);
        }
        let (config, timebase) = other_audio(&out[0]);
        assert_eq!((config.codec, config.sample_rate, config.channels), (AudioCodec::Mp3, 44_100, 2));
        assert_eq!(timebase, Timebase(44_100));
        assert_eq!(seen(&out)[1..], [v(0, 0, 0, true), a(1, 0), a(1, 1_152), a(1, 2_304), a(1, 3_456)]);
        let StreamEvent::Unit(unit) = &out[2] else { unreachable!() };
        assert_eq!(unit.data.len(), 417, "the frame itself, without the FLV header byte");
        // Another rate re-announces in the new timebase and carries on from the last frame's end.
        out.clear();
        d.push_audio(104, &mp3_tag(MP3_22K_STEREO), now, &mut out);
        let (config, timebase) = other_audio(&out[0]);
        assert_eq!((config.sample_rate, timebase), (22_050, Timebase(22_050)));
        assert_eq!(seen(&out)[1..], [a(1, 2_304)]);
        assert_eq!(d.stats.announcements, 2);
    }

    #[test]
    fn g711_is_8_khz_and_counted_by_bytes() {
        let (mut d, mut out, now) = (Demuxer::default(), Vec::new(), Arrival::now());
        d.set_metadata(&meta(None, Some(7)), &mut out);
        let tag = |stereo: bool| Bytes::from([&[if stereo { 0x73 } else { 0x72 }][..], &[0xd5; 160]].concat());
        for ts in [1_000, 1_020, 1_040] {
            d.push_audio(ts, &tag(false), now, &mut out);
        }
        let (config, timebase) = other_audio(&out[0]);
        assert_eq!((config.codec, config.sample_rate, config.channels), (AudioCodec::G711ALaw, 8_000, 1));
        assert_eq!(timebase, Timebase(8_000));
        assert_eq!(seen(&out)[1..], [a(0, 0), a(0, 160), a(0, 320)]);
        // The stereo flag is the configuration: a change re-announces; 160 bytes are 80 stereo samples.
        out.clear();
        d.push_audio(1_060, &tag(true), now, &mut out);
        d.push_audio(1_070, &tag(true), now, &mut out);
        assert_eq!(other_audio(&out[0]).0.channels, 2);
        assert_eq!(seen(&out)[1..], [a(0, 480), a(0, 560)]);
    }

    #[test]
    fn opus_starts_with_its_head() {
        let (mut d, mut out, now) = (Demuxer::default(), Vec::new(), Arrival::now());
        let head = b"OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00";
        let packet = |toc: u8| Bytes::from([&[0x91][..], b"Opus", &[toc, 0xaa, 0xbb]].concat());
        d.push_audio(0, &packet(0xfc), now, &mut out);
        assert_eq!(d.warnings.count(Warning::FrameBeforeConfig), 1);
        d.push_audio(0, &Bytes::from([&[0x90][..], b"Opus", &head[..]].concat()), now, &mut out);
        d.push_audio(0, &packet(0xfc), now, &mut out); // 20 ms
        d.push_audio(20, &packet(0xf9), now, &mut out); // 2 x 20 ms
        d.push_audio(60, &packet(0xfc), now, &mut out);
        d.push_video(600, &avc_header(&AVCC_640X360), now, &mut out);
        d.push_video(600, &avc_frame(true, 0, &[0x65]), now, &mut out);
        let (config, timebase) = other_audio(&out[0]);
        assert_eq!((config.codec, config.channels, &config.extradata[..]), (AudioCodec::Opus, 2, &head[..]));
        assert_eq!(timebase, Timebase(48_000));
        let audio: Vec<Seen> =
            seen(&out).into_iter().filter(|s| matches!(s, Seen::Unit { kind: TrackKind::Audio, .. })).collect();
        assert_eq!(audio, [a(1, 0), a(1, 960), a(1, 2_880)]);
    }

    #[test]
    fn the_buffer_is_bounded() {
        let (mut d, mut out, now) = (Demuxer::default(), Vec::new(), Arrival::now());
        d.set_metadata(&meta(Some(7), Some(10)), &mut out);
        d.push_video(0, &avc_header(&AVCC_640X360), now, &mut out);
        // Frames that never advance the clock: only the bound ends the wait.
        for i in 0..MAX_PENDING_UNITS {
            assert!(out.is_empty(), "announced after {i} units");
            d.push_video(0, &avc_frame(i == 0, 0, &[0x65]), now, &mut out);
        }
        assert_eq!(seen(&out)[0], Seen::Tracks(vec![TrackKind::Video]));
        assert_eq!(out.len(), 1 + MAX_PENDING_UNITS);
        // Strictly increasing dts despite equal timestamps.
        let dts: Vec<i64> = out[1..]
            .iter()
            .map(|e| match e {
                StreamEvent::Unit(u) => u.dts,
                _ => unreachable!(),
            })
            .collect();
        assert!(dts.windows(2).all(|w| w[1] == w[0] + 1));
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0xdead_beefu32;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        let (mut d, mut out, now) = (Demuxer::default(), Vec::new(), Arrival::now());
        d.push_video(0, &avc_header(&AVCC_640X360), now, &mut out);
        d.push_audio(0, &aac_header(&ASC_48K_STEREO), now, &mut out);
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let mut tag: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if let Some(first) = tag.first_mut() {
                *first = [0x17, 0x27, 0xaf, 0x90, 0x91, 0x97, 0x2f, 0x72, 0x83][next() as usize % 9];
            }
            let ts = next();
            if next() % 2 == 0 {
                d.push_video(ts, &Bytes::from(tag), now, &mut out);
            } else {
                d.push_audio(ts, &Bytes::from(tag), now, &mut out);
            }
        }
        // Decode times increase per track, compared in the track's current timebase.
        let mut timebases = [Timebase::VIDEO; 2];
        let mut last: [Option<(i64, Timebase)>; 2] = [None; 2];
        for event in &out {
            match event {
                StreamEvent::Tracks(tracks) => {
                    for (i, t) in tracks.iter().enumerate() {
                        timebases[i] = t.timebase;
                    }
                }
                StreamEvent::Unit(u) => {
                    let tb = timebases[u.track];
                    if let Some((dts, from)) = last[u.track] {
                        assert!(u.dts > from.rescale(dts, tb), "dts must increase per track");
                    }
                    last[u.track] = Some((u.dts, tb));
                }
            }
        }
    }
}
