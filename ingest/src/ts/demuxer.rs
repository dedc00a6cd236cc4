//! One publish's MPEG-TS: PAT and PMT choose the video and audio streams,
//! PES packets are reassembled per PID (continuity checked: a unit with lost
//! packets is dropped and counted), turned into units with
//! their codec configuration, held until the track set is known, and timed on
//! one timeline. PCR is not used: units are timed by PTS/DTS, and arrival is
//! the wall clock, so PCR jitter cannot disturb anything.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use media::codec::AAC_FRAME_SAMPLES;
use media::{
    AacConfig, Arrival, AvcConfig, CodecConfig, EncodedUnit, HevcConfig, OtherAudioConfig, StreamEvent, Timebase,
    TrackInfo, TrackKind, mpeg_audio, opus,
};

use super::annexb::{self, VideoCodec};
use super::clock::{self, Timeline, Unwrapper};
use super::packets::{self, PacketSplitter};
use super::pes;
use super::psi::{self, Elementary, StreamType};
use super::{adts, opus as ts_opus};
use crate::timestamps::{AudioClock, Monotonic};
use crate::warnings::{Warning, Warnings};

/// Stop waiting for a track the PMT lists after this much media (90 kHz: 3 s).
const TRACK_WAIT: i64 = 3 * 90_000;
/// Units buffered before the announcement, at most.
const MAX_PENDING_UNITS: usize = 1024;
/// Bytes buffered before the announcement, at most.
const MAX_PENDING_BYTES: usize = 32 << 20;
/// A PES packet larger than this (a 4K intra frame is a few MB) is dropped.
const MAX_PES_BYTES: usize = 16 << 20;

/// What a publish's TS produced and lost so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TsStats {
    pub video_units: u64,
    pub audio_units: u64,
    pub announcements: u64,
    /// Continuity counter jumps and packets flagged with transport errors.
    pub continuity_errors: u64,
    /// PES packets dropped because packets of theirs were lost, or unusable.
    pub dropped_units: u64,
    /// Bytes skipped to find the next packet's sync byte.
    pub skipped_bytes: u64,
}

/// The PES packet a PID is collecting.
struct Assembly {
    stream: Elementary,
    buf: BytesMut,
    damaged: bool,
    continuity: Option<u8>,
    arrival: Option<Arrival>,
    dts: Unwrapper,
}

struct VideoTrack {
    codec: VideoCodec,
    config: CodecConfig,
    /// The parameter sets the config was built from (to skip rebuilding it on every keyframe).
    parameter_sets: Vec<Bytes>,
    dts: Monotonic,
    waiting_for_keyframe: bool,
}

struct AudioTrack {
    config: CodecConfig,
    clock: AudioClock,
}

/// A unit placed on the timeline (90 kHz), waiting for the track set.
struct Pending {
    kind: TrackKind,
    time: i64,
    composition: i64,
    samples: u32,
    keyframe: bool,
    data: Bytes,
    arrival: Arrival,
}

/// TS bytes in, `StreamEvent`s out. No I/O: the SRT connection feeds it the
/// payload of each message; benches and fuzzers feed it bytes from a file.
#[derive(Default)]
pub struct TsDemuxer {
    splitter: PacketSplitter,
    pmt_pid: Option<u16>,
    /// The chosen video and audio streams of the PMT.
    assemblies: Vec<Assembly>,
    /// Whether the PMT lists a video / an audio stream we carry.
    expects: (bool, bool),
    video: Option<VideoTrack>,
    audio: Option<AudioTrack>,
    timeline: Timeline,
    /// Track indices of the last announcement.
    announced: Option<(Option<usize>, Option<usize>)>,
    pending: VecDeque<Pending>,
    pending_bytes: usize,
    pub(crate) warnings: Warnings,
    stats: TsStats,
}

impl TsDemuxer {
    pub fn stats(&self) -> TsStats {
        TsStats { skipped_bytes: self.splitter.skipped_bytes, ..self.stats }
    }

    /// The warnings so far, as `name=count` pairs (empty when none).
    pub fn warnings(&self) -> String {
        self.warnings.to_string()
    }

    /// Takes the next bytes of the stream (any cut: whole SRT messages or not).
    pub fn push(&mut self, data: &[u8], arrival: Arrival, out: &mut Vec<StreamEvent>) {
        let mut splitter = std::mem::take(&mut self.splitter);
        splitter.push(data, |bytes| self.packet(bytes, arrival, out));
        self.splitter = splitter;
    }

    /// Ends the stream: the PES packets still collecting are complete.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        for i in 0..self.assemblies.len() {
            self.complete(i, out);
        }
    }

    fn packet(&mut self, bytes: &[u8], arrival: Arrival, out: &mut Vec<StreamEvent>) {
        let Some(packet) = packets::read_packet(bytes) else {
            return self.warnings.note(Warning::BadTag, "skipping a TS packet with a bad adaptation field");
        };
        if packet.pid == 0 {
            if let Some(pmt_pid) = packet.payload.filter(|_| packet.unit_start).and_then(psi::read_pat) {
                self.pmt_pid = Some(pmt_pid);
            }
            return;
        }
        if Some(packet.pid) == self.pmt_pid {
            if let Some(streams) = packet.payload.filter(|_| packet.unit_start).and_then(psi::read_pmt) {
                self.set_streams(&streams, out);
            }
            return;
        }
        let Some(i) = self.assemblies.iter().position(|a| a.stream.pid == packet.pid) else { return };
        let Some(payload) = packet.payload else { return };
        let assembly = &mut self.assemblies[i];
        if let Some(last) = assembly.continuity {
            if packet.continuity == last && !packet.discontinuity {
                return; // a duplicate packet, allowed once by the standard
            }
            if packet.continuity != (last + 1) & 0x0f && !packet.discontinuity {
                self.stats.continuity_errors += 1;
                assembly.damaged = true;
                self.warnings.note(
                    Warning::LostPackets,
                    format_args!("TS packets lost on PID {} (continuity counter jumped)", packet.pid),
                );
            }
        }
        assembly.continuity = Some(packet.continuity);
        if packet.error {
            self.stats.continuity_errors += 1;
            assembly.damaged = true;
        }
        if packet.unit_start {
            self.complete(i, out);
            let assembly = &mut self.assemblies[i];
            assembly.damaged = packet.error;
            assembly.arrival = Some(arrival);
        } else if assembly.arrival.is_none() {
            // The start of this PES was lost (or the stream began mid-PES).
            return;
        }
        let assembly = &mut self.assemblies[i];
        if assembly.buf.len() + payload.len() > MAX_PES_BYTES {
            assembly.damaged = true;
            self.warnings.note(Warning::BadTag, format_args!("dropping a PES packet over {MAX_PES_BYTES} bytes"));
            return;
        }
        assembly.buf.extend_from_slice(payload);
        // A bounded PES (audio) is complete as soon as its bytes are in, an
        // unbounded one (video) at its stuffed last packet: no wait for the next one.
        if let Ok(header) = pes::read_header(&assembly.buf) {
            let bounded_done = header.packet_length > 0 && assembly.buf.len() >= 6 + header.packet_length;
            if bounded_done || header.packet_length == 0 && packet.stuffed {
                self.complete(i, out);
            }
        }
    }

    /// Takes the PMT's first video and first audio stream we carry.
    fn set_streams(&mut self, streams: &[Elementary], out: &mut Vec<StreamEvent>) {
        let is_video = |e: &&Elementary| matches!(e.stream_type, Ok(StreamType::H264 | StreamType::Hevc));
        let is_audio = |e: &&Elementary| e.stream_type.is_ok() && !is_video(e);
        let chosen: Vec<Elementary> =
            streams.iter().find(is_video).into_iter().chain(streams.iter().find(is_audio)).copied().collect();
        if chosen.len() == self.assemblies.len() && chosen.iter().zip(&self.assemblies).all(|(c, a)| *c == a.stream) {
            return;
        }
        for e in streams.iter().filter(|e| e.stream_type.is_err()) {
            let Err(raw) = e.stream_type else { continue };
            self.warnings.note(
                Warning::UnsupportedAudio,
                format_args!(
                    "TS stream type 0x{raw:02x} on PID {} is not carried (H.264, HEVC, AAC, MP3 and Opus are)",
                    e.pid
                ),
            );
        }
        self.finish(out);
        self.expects = (chosen.iter().any(|e| is_video(&e)), chosen.iter().any(|e| is_audio(&e)));
        self.assemblies = chosen
            .into_iter()
            .map(|stream| Assembly {
                stream,
                buf: BytesMut::new(),
                damaged: false,
                continuity: None,
                arrival: None,
                dts: Unwrapper::default(),
            })
            .collect();
        self.maybe_announce(out);
    }

    /// The PES packet of assembly `i` is complete: turn it into units.
    fn complete(&mut self, i: usize, out: &mut Vec<StreamEvent>) {
        let assembly = &mut self.assemblies[i];
        let (Some(arrival), false) = (assembly.arrival.take(), assembly.buf.is_empty()) else {
            assembly.buf.clear();
            return;
        };
        let bytes = std::mem::take(&mut assembly.buf).freeze();
        let stream = assembly.stream;
        if std::mem::take(&mut assembly.damaged) {
            // Only this unit goes: waiting for the next keyframe would lose every
            // GOP under steady loss (a keyframe spans ~100 packets); decoders
            // conceal the missing reference until the next keyframe.
            self.stats.dropped_units += 1;
            return;
        }
        let header = match pes::read_header(&bytes) {
            Ok(header) => header,
            Err(err) => {
                self.stats.dropped_units += 1;
                return self.warnings.note(Warning::BadTag, format_args!("skipping a PES packet: {err:?}"));
            }
        };
        let Some(pts_raw) = header.pts else {
            self.stats.dropped_units += 1;
            return self.warnings.note(Warning::BadTag, "skipping a PES packet without a PTS");
        };
        let end = if header.packet_length > 0 { (6 + header.packet_length).min(bytes.len()) } else { bytes.len() };
        let payload = bytes.slice(header.payload_offset.min(end)..end);
        let dts_raw = header.dts.unwrap_or(pts_raw);
        let composition = clock::composition_offset(pts_raw, dts_raw);
        let dts = self.assemblies[i].dts.extend(dts_raw);
        let (time, jumped) = self.timeline.place(dts);
        if jumped {
            self.warnings.note(Warning::Discontinuity, "TS timestamps jumped; rebased to continue");
        }
        match stream.stream_type {
            Ok(StreamType::H264) => self.video_unit(VideoCodec::H264, time, composition, &payload, arrival, out),
            Ok(StreamType::Hevc) => self.video_unit(VideoCodec::Hevc, time, composition, &payload, arrival, out),
            Ok(StreamType::AacAdts) => self.aac_units(time, &payload, arrival, out),
            Ok(StreamType::MpegAudio) => self.mp3_unit(time, payload, arrival, out),
            Ok(StreamType::Opus) => self.opus_units(stream.channels, time, &payload, arrival, out),
            Err(_) => {}
        }
    }

    fn video_unit(
        &mut self,
        codec: VideoCodec,
        time: i64,
        composition: i64,
        payload: &Bytes,
        arrival: Arrival,
        out: &mut Vec<StreamEvent>,
    ) {
        let unit = annexb::read_access_unit(codec, payload);
        if !unit.sps.is_empty() || !unit.vps.is_empty() || !unit.pps.is_empty() {
            self.set_video_config(codec, &unit, out);
        }
        let Some(video) = self.video.as_mut() else {
            return self.warnings.note(Warning::FrameBeforeConfig, "skipping video before the first parameter sets");
        };
        if unit.data.is_empty() {
            return;
        }
        if video.waiting_for_keyframe {
            if !unit.keyframe {
                self.stats.dropped_units += 1;
                return;
            }
            video.waiting_for_keyframe = false;
        }
        let pending = Pending {
            kind: TrackKind::Video,
            time,
            composition,
            samples: 0,
            keyframe: unit.keyframe,
            data: unit.data,
            arrival,
        };
        self.push_unit(pending, out);
    }

    fn set_video_config(&mut self, codec: VideoCodec, unit: &annexb::AccessUnit, out: &mut Vec<StreamEvent>) {
        let sets: Vec<Bytes> = unit.vps.iter().chain(&unit.sps).chain(&unit.pps).cloned().collect();
        if self.video.as_ref().is_some_and(|v| v.codec == codec && v.parameter_sets == sets) {
            return;
        }
        let config = match codec {
            VideoCodec::H264 => match (unit.sps.first(), unit.pps.first()) {
                (Some(sps), Some(pps)) => AvcConfig::from_parameter_sets(sps, pps).map(CodecConfig::Avc),
                _ => return,
            },
            VideoCodec::Hevc => {
                if unit.vps.is_empty() || unit.sps.is_empty() || unit.pps.is_empty() {
                    return;
                }
                HevcConfig::from_parameter_sets(&unit.vps, &unit.sps, &unit.pps).map(CodecConfig::Hevc)
            }
        };
        let config = match config {
            Ok(config) => config,
            Err(err) => {
                return self
                    .warnings
                    .note(Warning::BadCodecConfig, format_args!("ignoring video parameter sets: {err}"));
            }
        };
        match &mut self.video {
            Some(video) => {
                video.parameter_sets = sets;
                if video.config == config {
                    return;
                }
                tracing::info!(codec = %config.rfc6381(), "video configuration changed");
                video.codec = codec;
                video.config = config;
            }
            None => {
                self.video = Some(VideoTrack {
                    codec,
                    config,
                    parameter_sets: sets,
                    dts: Monotonic::default(),
                    waiting_for_keyframe: true,
                })
            }
        }
        self.config_changed(out);
    }

    fn aac_units(&mut self, time: i64, payload: &Bytes, arrival: Arrival, out: &mut Vec<StreamEvent>) {
        let (frames, damage) = adts::read_frames(payload);
        if let Some(err) = damage {
            self.warnings.note(Warning::BadTag, format_args!("skipping the rest of an ADTS PES packet: {err:?}"));
        }
        for (n, frame) in frames.into_iter().enumerate() {
            if !matches!(&self.audio, Some(AudioTrack { config: CodecConfig::Aac(aac), .. }) if aac.asc[..] == frame.asc)
            {
                match AacConfig::from_asc(Bytes::copy_from_slice(&frame.asc)) {
                    Ok(config) if config.sample_rate > 0 => self.set_audio_config(CodecConfig::Aac(config), out),
                    _ => {
                        self.warnings.note(Warning::BadCodecConfig, "skipping ADTS frames with an unusable header");
                        continue;
                    }
                }
            }
            let rate = self.audio_rate();
            let offset = Timebase(rate).rescale(n as i64 * AAC_FRAME_SAMPLES as i64, Timebase::VIDEO);
            let pending = Pending {
                kind: TrackKind::Audio,
                time: time + offset,
                composition: 0,
                samples: AAC_FRAME_SAMPLES,
                keyframe: true,
                data: frame.data,
                arrival,
            };
            self.push_unit(pending, out);
        }
    }

    fn mp3_unit(&mut self, time: i64, payload: Bytes, arrival: Arrival, out: &mut Vec<StreamEvent>) {
        let config = match OtherAudioConfig::from_mp3_frame(&payload) {
            Ok(config) => config,
            Err(err) => return self.warnings.note(Warning::BadTag, format_args!("skipping MPEG audio: {err}")),
        };
        self.set_audio_config(CodecConfig::OtherAudio(config), out);
        let samples = mpeg_audio::samples_in(&payload).unwrap_or(0);
        let pending =
            Pending { kind: TrackKind::Audio, time, composition: 0, samples, keyframe: true, data: payload, arrival };
        self.push_unit(pending, out);
    }

    fn opus_units(&mut self, channels: u8, time: i64, payload: &Bytes, arrival: Arrival, out: &mut Vec<StreamEvent>) {
        let Some(head) = ts_opus::opus_head(channels) else {
            return self.warnings.note(
                Warning::UnsupportedAudio,
                format_args!("Opus with {channels} channels is not carried (1 or 2 are)"),
            );
        };
        if !matches!(&self.audio, Some(AudioTrack { config: CodecConfig::OtherAudio(c), .. }) if c.codec == media::AudioCodec::Opus)
        {
            match OtherAudioConfig::from_opus_head(head) {
                Ok(config) => self.set_audio_config(CodecConfig::OtherAudio(config), out),
                Err(err) => return self.warnings.note(Warning::BadCodecConfig, format_args!("Opus: {err}")),
            }
        }
        let (packets, damaged) = ts_opus::read_packets(payload);
        if damaged {
            self.warnings.note(Warning::BadTag, "skipping the rest of an Opus PES packet");
        }
        let mut offset = 0i64;
        for packet in packets {
            let samples = opus::packet_samples(&packet).unwrap_or(0);
            let pending = Pending {
                kind: TrackKind::Audio,
                time: time + offset,
                composition: 0,
                samples,
                keyframe: true,
                data: packet,
                arrival,
            };
            offset += Timebase(48_000).rescale(samples as i64, Timebase::VIDEO);
            self.push_unit(pending, out);
        }
    }

    fn audio_rate(&self) -> u32 {
        self.audio.as_ref().map_or(48_000, |a| a.clock.timebase().ticks_per_second())
    }

    fn set_audio_config(&mut self, config: CodecConfig, out: &mut Vec<StreamEvent>) {
        let rate = match &config {
            CodecConfig::Aac(aac) => aac.sample_rate,
            CodecConfig::OtherAudio(other) => other.sample_rate,
            CodecConfig::Avc(_) | CodecConfig::Hevc(_) | CodecConfig::Av1(_) => return,
        };
        match &mut self.audio {
            Some(audio) if audio.config == config => return,
            Some(audio) => {
                tracing::info!(codec = config.name(), sample_rate = rate, "audio configuration changed");
                if audio.clock.timebase().ticks_per_second() != rate {
                    audio.clock.set_sample_rate(rate);
                }
                audio.config = config;
            }
            None => self.audio = Some(AudioTrack { config, clock: AudioClock::new(rate) }),
        }
        self.config_changed(out);
    }

    fn config_changed(&mut self, out: &mut Vec<StreamEvent>) {
        if self.announced.is_some() { self.announce(out) } else { self.maybe_announce(out) }
    }

    fn push_unit(&mut self, pending: Pending, out: &mut Vec<StreamEvent>) {
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

    /// Announces once every track the PMT lists has its configuration, or
    /// after `TRACK_WAIT` of media without it, or when the buffer is full.
    fn maybe_announce(&mut self, out: &mut Vec<StreamEvent>) {
        if self.announced.is_some() || (self.video.is_none() && self.audio.is_none()) {
            return;
        }
        let (want_video, want_audio) = self.expects;
        let complete = (!want_video || self.video.is_some()) && (!want_audio || self.audio.is_some());
        let span = match (self.pending.front(), self.pending.back()) {
            (Some(first), Some(last)) => last.time - first.time,
            _ => 0,
        };
        let full = self.pending.len() >= MAX_PENDING_UNITS || self.pending_bytes >= MAX_PENDING_BYTES;
        if !(complete || span >= TRACK_WAIT || full) {
            return;
        }
        if !complete {
            let missing = if self.video.is_some() { "audio" } else { "video" };
            self.warnings.note(
                Warning::IncompleteTracks,
                format_args!("the PMT lists {missing} but none arrived after {} ms; announcing without it", span / 90),
            );
        }
        self.announce(out);
    }

    /// Sends the track set (video first, then audio) and everything buffered.
    fn announce(&mut self, out: &mut Vec<StreamEvent>) {
        let mut tracks = Vec::with_capacity(2);
        let video = self.video.as_ref().map(|video| {
            tracks.push(TrackInfo {
                kind: TrackKind::Video,
                timebase: Timebase::VIDEO,
                codec: video.config.clone(),
                frame_rate: None,
                bitrate: None,
            });
            tracks.len() - 1
        });
        let audio = self.audio.as_ref().map(|audio| {
            tracks.push(TrackInfo {
                kind: TrackKind::Audio,
                timebase: audio.clock.timebase(),
                codec: audio.config.clone(),
                frame_rate: None,
                bitrate: None,
            });
            tracks.len() - 1
        });
        self.announced = Some((video, audio));
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
        let (video_index, audio_index) = self.announced?;
        // An early unit of the other track (audio sent ahead of video) is clamped to 0.
        let time = p.time.max(0);
        let (track, dts, pts) = match p.kind {
            TrackKind::Video => {
                let video = self.video.as_mut()?;
                let (dts, clamped) = video.dts.next(time);
                if clamped {
                    self.warnings
                        .note(Warning::ClampedTimestamp, "video decode time did not increase; moved one tick forward");
                }
                self.stats.video_units += 1;
                (video_index?, dts, dts + p.composition.max(0))
            }
            TrackKind::Audio => {
                let audio = self.audio.as_mut()?;
                let (dts, resynced) = audio.clock.next(Timebase::VIDEO.rescale(time, Timebase::MILLIS), p.samples);
                if resynced {
                    self.warnings
                        .note(Warning::AudioResync, "audio drifted from its PTS by more than half a frame; re-synced");
                }
                self.stats.audio_units += 1;
                (audio_index?, dts, dts)
            }
        };
        Some(EncodedUnit { track, kind: p.kind, pts, dts, keyframe: p.keyframe, data: p.data, arrival: p.arrival })
    }
}
