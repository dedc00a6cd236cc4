//! Depacketized WebRTC media (str0m's frames: H.264 access units in Annex B
//! form, Opus packets, each with its RTP time and arrival) -> `media` stream
//! events: the track set announced at the first H.264 keyframe with its
//! parameter sets (or the first Opus packet of an audio-only publish), every
//! unit timed on one timeline from the first unit delivered.
//!
//! Each track is anchored once: its first delivered frame sits at its
//! arrival time after the timeline's start, later frames by their RTP
//! timestamps (unwrapped), so jitter in arrival does not reach the
//! timestamps and audio and video stay within a network jitter of each other.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use media::{
    Arrival, AvcConfig, CodecConfig, EncodedUnit, OtherAudioConfig, StreamEvent, Timebase, TrackInfo, TrackKind,
};

use crate::ts::annexb::{self, VideoCodec};
use crate::ts::opus::opus_head;
use crate::warnings::{Warning, Warnings};

/// RTP clock rates WebRTC uses for H.264 and Opus.
const VIDEO_CLOCK: Timebase = Timebase(90_000);
const AUDIO_CLOCK: Timebase = Timebase(48_000);

/// One depacketized frame.
#[derive(Debug, Clone)]
pub(crate) enum Frame {
    /// An H.264 access unit in Annex B form, with its 90 kHz RTP timestamp.
    Video { rtp_time: u32, network: Instant, data: Bytes },
    /// One Opus packet, with its 48 kHz RTP timestamp.
    Audio { rtp_time: u32, network: Instant, data: Bytes },
}

/// What a frame asked of the session besides its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Needs {
    /// The video needs a keyframe (none yet, or parameter sets missing): send a PLI.
    pub keyframe: bool,
}

/// A track's clock: its first frame's place on the timeline, the RTP time unwrapped since, and the last decode time.
#[derive(Debug, Clone, Copy)]
struct TrackClock {
    /// RTP ticks since the first frame, unwrapped.
    last_rtp_offset: i64,
    last_rtp: u32,
    /// The first frame's place on the timeline, in the track's ticks.
    anchor: i64,
    last_dts: Option<i64>,
}

impl TrackClock {
    fn new(rtp: u32, anchor: i64) -> Self {
        Self { last_rtp_offset: 0, last_rtp: rtp, anchor, last_dts: None }
    }

    /// Whether a frame at `rtp` has the time of the last one timed (a second
    /// piece of one picture: what the depacketizer emits when loss split it).
    fn repeats(&self, rtp: u32) -> bool {
        self.last_dts.is_some() && rtp == self.last_rtp
    }

    /// The decode time of a frame at `rtp`, and whether it had to be moved forward.
    fn time(&mut self, rtp: u32) -> (i64, bool) {
        // Wrapping difference from the last frame, as a signed step (RTP timestamps wrap at 2^32).
        let step = rtp.wrapping_sub(self.last_rtp) as i32 as i64;
        self.last_rtp = rtp;
        self.last_rtp_offset += step;
        let dts = self.anchor + self.last_rtp_offset;
        match self.last_dts {
            Some(last) if dts <= last => {
                self.last_dts = Some(last + 1);
                (last + 1, true)
            }
            _ => {
                self.last_dts = Some(dts);
                (dts, false)
            }
        }
    }
}

/// The media of one WHIP publish.
pub(crate) struct RtpDemuxer {
    expect_video: bool,
    expect_audio: bool,
    video_config: Option<AvcConfig>,
    video_clock: Option<TrackClock>,
    audio_clock: Option<TrackClock>,
    /// Track indices once announced.
    announced: Option<(Option<usize>, Option<usize>)>,
    /// When the timeline's zero arrived (the first unit delivered).
    origin: Option<Instant>,
    pub(crate) warnings: Warnings,
    pub(crate) video_units: u64,
    pub(crate) audio_units: u64,
    /// When the last keyframe arrived (WebRTC senders make one only when asked).
    pub(crate) last_keyframe: Option<Instant>,
}

impl RtpDemuxer {
    /// A publish whose offer negotiated video (H.264) and/or audio (Opus).
    pub(crate) fn new(expect_video: bool, expect_audio: bool) -> Self {
        Self {
            expect_video,
            expect_audio,
            video_config: None,
            video_clock: None,
            audio_clock: None,
            announced: None,
            origin: None,
            warnings: Warnings::default(),
            video_units: 0,
            audio_units: 0,
            last_keyframe: None,
        }
    }

    /// Takes one frame; pushes the events it produced onto `out`.
    pub(crate) fn push(&mut self, frame: Frame, arrival: Arrival, out: &mut Vec<StreamEvent>) -> Needs {
        match frame {
            Frame::Video { rtp_time, network, data } => self.video(rtp_time, network, &data, arrival, out),
            Frame::Audio { rtp_time, network, data } => {
                self.audio(rtp_time, network, data, arrival, out);
                Needs::default()
            }
        }
    }

    fn video(
        &mut self,
        rtp: u32,
        network: Instant,
        data: &Bytes,
        arrival: Arrival,
        out: &mut Vec<StreamEvent>,
    ) -> Needs {
        if !self.expect_video {
            self.warnings.note(Warning::StrayMessage, "video the offer did not negotiate: ignored");
            return Needs::default();
        }
        let unit = annexb::read_access_unit(VideoCodec::H264, data);
        if let (Some(sps), Some(pps)) = (unit.sps.first(), unit.pps.first()) {
            match AvcConfig::from_parameter_sets(sps, pps) {
                Ok(config) if self.video_config.as_ref() != Some(&config) => {
                    let changed = self.video_config.is_some();
                    self.video_config = Some(config);
                    if changed && self.announced.is_some() {
                        // A new size (WebRTC senders adapt): the same tracks, announced again.
                        self.announce(out);
                    }
                }
                Ok(_) => {}
                Err(err) => self.warnings.note(Warning::BadCodecConfig, format_args!("H.264 parameter sets: {err}")),
            }
        }
        if unit.data.is_empty() {
            self.warnings.note(Warning::BadTag, "an H.264 frame without picture data: skipped");
            return Needs::default();
        }
        if self.announced.is_none() {
            if !(unit.keyframe && self.video_config.is_some()) {
                self.warnings.note(Warning::FrameBeforeConfig, "video before the first keyframe: skipped");
                return Needs { keyframe: true };
            }
            self.origin.get_or_insert(network);
            self.announce(out);
        }
        let Some((Some(track), _)) = self.announced else { return Needs::default() };
        let origin = *self.origin.get_or_insert(network);
        let clock =
            self.video_clock.get_or_insert_with(|| TrackClock::new(rtp, ticks_since(origin, network, VIDEO_CLOCK)));
        if clock.repeats(rtp) {
            // One picture is one access unit: a second at its time cannot be placed (a decoder would
            // see two frames a tick apart); the keyframe asked for after the loss repairs the picture.
            self.warnings.note(Warning::BadTag, "a second H.264 access unit at one RTP time (split by loss): dropped");
            return Needs { keyframe: true };
        }
        let (dts, moved) = clock.time(rtp);
        if moved {
            self.warnings.note(Warning::ClampedTimestamp, "video decode time did not increase; moved one tick forward");
        }
        self.video_units += 1;
        if unit.keyframe {
            self.last_keyframe = Some(network);
        }
        out.push(StreamEvent::Unit(EncodedUnit {
            track,
            kind: TrackKind::Video,
            pts: dts,
            dts,
            keyframe: unit.keyframe,
            data: unit.data,
            arrival,
        }));
        Needs::default()
    }

    fn audio(&mut self, rtp: u32, network: Instant, data: Bytes, arrival: Arrival, out: &mut Vec<StreamEvent>) {
        if !self.expect_audio {
            self.warnings.note(Warning::StrayMessage, "audio the offer did not negotiate: ignored");
            return;
        }
        if data.is_empty() {
            self.warnings.note(Warning::BadTag, "an empty Opus packet: skipped");
            return;
        }
        if self.announced.is_none() {
            if self.expect_video {
                // The video's first keyframe starts the timeline; audio before it has nothing to go with.
                return;
            }
            self.origin.get_or_insert(network);
            self.announce(out);
        }
        let Some((_, Some(track))) = self.announced else { return };
        let origin = *self.origin.get_or_insert(network);
        let clock =
            self.audio_clock.get_or_insert_with(|| TrackClock::new(rtp, ticks_since(origin, network, AUDIO_CLOCK)));
        let (dts, moved) = clock.time(rtp);
        if moved {
            self.warnings.note(Warning::ClampedTimestamp, "audio decode time did not increase; moved one tick forward");
        }
        self.audio_units += 1;
        out.push(StreamEvent::Unit(EncodedUnit {
            track,
            kind: TrackKind::Audio,
            pts: dts,
            dts,
            keyframe: true,
            data,
            arrival,
        }));
    }

    /// Sends the track set: video (when negotiated and configured) first, then audio.
    fn announce(&mut self, out: &mut Vec<StreamEvent>) {
        let mut tracks = Vec::with_capacity(2);
        let video = self.video_config.clone().map(|config| {
            tracks.push(TrackInfo {
                kind: TrackKind::Video,
                timebase: VIDEO_CLOCK,
                codec: CodecConfig::Avc(config),
                frame_rate: None,
                bitrate: None,
            });
            tracks.len() - 1
        });
        let audio = self.expect_audio.then(|| opus_head(2)).flatten().and_then(|head| {
            let config = OtherAudioConfig::from_opus_head(head).ok()?;
            tracks.push(TrackInfo {
                kind: TrackKind::Audio,
                timebase: AUDIO_CLOCK,
                codec: CodecConfig::OtherAudio(config),
                frame_rate: None,
                bitrate: None,
            });
            Some(tracks.len() - 1)
        });
        self.announced = Some((video, audio));
        out.push(StreamEvent::Tracks(Arc::from(tracks)));
    }
}

/// `then - origin` in `timebase` ticks (0 when `then` is earlier).
fn ticks_since(origin: Instant, then: Instant, timebase: Timebase) -> i64 {
    let micros = then.saturating_duration_since(origin).as_micros() as i64;
    Timebase(1_000_000).rescale(micros, timebase)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// SPS/PPS of x264 640x360 (from the shared avcC vector), as Annex B with an IDR slice.
    fn keyframe() -> Bytes {
        let record = media::test_vectors::AVCC_640X360;
        let sps = &record[8..8 + 26];
        let pps = &record[8 + 26 + 3..8 + 26 + 3 + 6];
        Bytes::from([&[0, 0, 0, 1][..], sps, &[0, 0, 0, 1], pps, &[0, 0, 0, 1, 0x65, 0x88, 0x84]].concat())
    }

    fn inter() -> Bytes {
        Bytes::from_static(&[0, 0, 0, 1, 0x41, 0x9a, 0x02])
    }

    fn units(out: &[StreamEvent]) -> Vec<(usize, i64, bool)> {
        out.iter()
            .filter_map(|e| match e {
                StreamEvent::Unit(u) => Some((u.track, u.dts, u.keyframe)),
                StreamEvent::Tracks(_) => None,
            })
            .collect()
    }

    #[test]
    fn announces_at_the_first_keyframe_and_times_by_rtp() {
        let t0 = Instant::now();
        let (mut d, mut out) = (RtpDemuxer::new(true, true), Vec::new());
        let arrival = Arrival::now();
        let audio = |rtp: u32, ms: u64| Frame::Audio {
            rtp_time: rtp,
            network: t0 + Duration::from_millis(ms),
            data: Bytes::from_static(&[0xfc, 1, 2]),
        };
        // Before the keyframe: audio dropped, inter frames ask for a keyframe.
        d.push(audio(1000, 0), arrival, &mut out);
        let needs = d.push(Frame::Video { rtp_time: 5000, network: t0, data: inter() }, arrival, &mut out);
        assert!(needs.keyframe && out.is_empty());
        d.push(
            Frame::Video { rtp_time: 8000, network: t0 + Duration::from_millis(20), data: keyframe() },
            arrival,
            &mut out,
        );
        let StreamEvent::Tracks(tracks) = &out[0] else { panic!("tracks first: {out:?}") };
        assert_eq!(tracks.len(), 2);
        assert!(matches!(tracks[0].codec, CodecConfig::Avc(ref a) if (a.width, a.height) == (640, 360)));
        assert!(matches!(tracks[1].codec, CodecConfig::OtherAudio(ref o) if o.codec == media::AudioCodec::Opus));
        // Video 33 ms later by RTP (wrapping past 2^32 is still +3000), audio arriving 40 ms after the start.
        d.push(
            Frame::Video { rtp_time: 8000 + 3000, network: t0 + Duration::from_millis(90), data: inter() },
            arrival,
            &mut out,
        );
        d.push(audio(777, 60), arrival, &mut out);
        d.push(audio(777 + 960, 80), arrival, &mut out);
        assert_eq!(units(&out), [(0, 0, true), (0, 3000, false), (1, 1920, true), (1, 1920 + 960, true)]);
    }

    #[test]
    fn a_picture_split_by_loss_is_not_a_second_frame() {
        let (mut d, mut out, t0) = (RtpDemuxer::new(true, false), Vec::new(), Instant::now());
        let arrival = Arrival::now();
        d.push(Frame::Video { rtp_time: 100, network: t0, data: keyframe() }, arrival, &mut out);
        let needs = d.push(Frame::Video { rtp_time: 100, network: t0, data: inter() }, arrival, &mut out);
        assert!(needs.keyframe, "the rest of the picture is asked for again");
        d.push(Frame::Video { rtp_time: 3100, network: t0, data: inter() }, arrival, &mut out);
        assert_eq!(units(&out), [(0, 0, true), (0, 3000, false)]);
    }

    #[test]
    fn rtp_timestamps_wrap() {
        let mut clock = TrackClock::new(u32::MAX - 1000, 0);
        assert_eq!(clock.time(u32::MAX - 1000), (0, false));
        assert_eq!(clock.time(1999), (3000, false));
        assert_eq!(clock.time(1999), (3001, true), "a repeated time moves forward");
    }

    #[test]
    fn audio_only_publishes_announce_at_once() {
        let (mut d, mut out) = (RtpDemuxer::new(false, true), Vec::new());
        let frame = Frame::Audio { rtp_time: 5, network: Instant::now(), data: Bytes::from_static(&[0xfc]) };
        d.push(frame, Arrival::now(), &mut out);
        assert!(matches!(&out[0], StreamEvent::Tracks(t) if t.len() == 1));
        assert_eq!(units(&out), [(0, 0, true)]);
    }

    #[test]
    fn garbage_never_panics() {
        let mut garbage = media::test_vectors::Garbage::new(0x5eed);
        let (mut d, mut out, now) = (RtpDemuxer::new(true, true), Vec::new(), Instant::now());
        for len in 0..2000 {
            let data = Bytes::from(garbage.bytes(len % 300));
            let rtp_time = garbage.next_u32();
            let frame = if len % 3 == 0 {
                Frame::Audio { rtp_time, network: now, data }
            } else {
                Frame::Video { rtp_time, network: now, data }
            };
            d.push(frame, Arrival::now(), &mut out);
        }
        let _ = d.push(Frame::Video { rtp_time: 0, network: now, data: keyframe() }, Arrival::now(), &mut out);
    }
}
