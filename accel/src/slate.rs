//! The slate: a card with the channel's name on a plain background, and
//! silence, that a session puts on air while no input delivers. Rendered
//! once per picture size (libx264 and FFmpeg's AAC in-process): one second
//! of video starting on a keyframe, which the caller loops, and one silent
//! AAC frame, which it repeats, so having it on air costs no encoding.

use std::sync::Arc;

use bytes::Bytes;
use ffmpeg_next as ffmpeg;
use media::{AacConfig, CodecConfig, EncodedUnit, Timebase, TrackInfo, TrackKind};

use crate::error::AccelError;
use crate::ffi;

/// The card's colours (BT.601 limited range): a dark slate blue, and white text.
const BACKGROUND: (u8, u8, u8) = (45, 150, 118);
const TEXT_LUMA: u8 = 235;
/// Characters shown of the channel's name.
const MAX_CHARACTERS: usize = 40;

/// What the slate's audio is like (the input's, so the output keeps its format).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlateAudio {
    pub sample_rate: u32,
    pub channels: u8,
}

/// A rendered slate.
#[derive(Debug, Clone)]
pub struct Slate {
    /// Video (track 0), and audio (track 1) when it has some.
    pub tracks: Arc<[TrackInfo]>,
    /// One period of video, its first unit a keyframe, timestamps from 0 in 90 kHz ticks.
    pub video: Vec<EncodedUnit>,
    /// The period's length in 90 kHz ticks (the loop's step).
    pub period_ticks: i64,
    /// One silent AAC frame (1024 samples) to repeat.
    pub silence: Option<Bytes>,
}

fn fail(what: &str) -> impl Fn(ffmpeg::Error) -> AccelError + '_ {
    move |e| AccelError::Source(format!("slate {what}: {e}"))
}

/// Renders the slate of `title` at `width`x`height` and `fps`, with silence like `audio`.
pub fn render(title: &str, width: u32, height: u32, fps: u32, audio: Option<SlateAudio>) -> Result<Slate, AccelError> {
    ffi::init();
    let (width, height, fps) = (width.max(16) & !1, height.max(16) & !1, fps.clamp(1, 60));
    let (mut encoder, config) = crate::source::open_x264(width, height, fps, fps, 200_000, "zerolatency,stillimage")?;
    let card = card(title, width, height);
    let frame_ticks = 90_000 / fps as i64;
    let mut video = Vec::with_capacity(fps as usize);
    let collect = crate::source::take_h264_packets;
    for n in 0..fps as i64 {
        let mut frame = card.clone();
        frame.set_pts(Some(n * frame_ticks));
        frame.set_kind(if n == 0 { ffmpeg::picture::Type::I } else { ffmpeg::picture::Type::None });
        encoder.send_frame(&frame).map_err(fail("libx264"))?;
        collect(&mut encoder, &mut video);
    }
    encoder.send_eof().map_err(fail("libx264"))?;
    collect(&mut encoder, &mut video);
    if !video.first().is_some_and(|u| u.keyframe) || video.len() != fps as usize {
        return Err(AccelError::Source(format!("slate: {} frames, not a keyframe and {}", video.len(), fps - 1)));
    }
    let mut tracks = vec![TrackInfo {
        kind: TrackKind::Video,
        timebase: Timebase::VIDEO,
        codec: config,
        frame_rate: Some((fps, 1)),
        bitrate: None,
    }];
    let silence = match audio {
        Some(audio) => {
            let (track, frame) = silence(audio)?;
            tracks.push(track);
            Some(frame)
        }
        None => None,
    };
    Ok(Slate { tracks: Arc::from(tracks), video, period_ticks: frame_ticks * fps as i64, silence })
}

/// The card: the background with `title` centred, in a 8x8 bitmap font scaled to the picture.
fn card(title: &str, width: u32, height: u32) -> ffmpeg::frame::Video {
    let mut frame = ffmpeg::frame::Video::new(ffmpeg::format::Pixel::YUV420P, width, height);
    for (plane, value) in [BACKGROUND.0, BACKGROUND.1, BACKGROUND.2].into_iter().enumerate() {
        frame.data_mut(plane).fill(value);
    }
    let text: Vec<char> = title.chars().take(MAX_CHARACTERS).collect();
    if text.is_empty() {
        return frame;
    }
    // Glyphs scaled to fill about three quarters of the width, at most a quarter of the height.
    let scale = ((width as usize * 3 / 4) / (8 * text.len())).min(height as usize / 32).max(1);
    let (text_w, text_h) = (text.len() * 8 * scale, 8 * scale);
    let left = (width as usize).saturating_sub(text_w) / 2;
    let top = (height as usize).saturating_sub(text_h) / 2;
    let stride = frame.stride(0);
    let luma = frame.data_mut(0);
    for (i, c) in text.iter().enumerate() {
        let glyph =
            font8x8::legacy::BASIC_LEGACY.get(*c as usize).copied().unwrap_or(font8x8::legacy::BASIC_LEGACY[63]);
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                if bits & (1 << col) == 0 {
                    continue;
                }
                for dy in 0..scale {
                    let y = top + row * scale + dy;
                    let x = left + (i * 8 + col) * scale;
                    if y < height as usize && x + scale <= width as usize {
                        luma[y * stride + x..y * stride + x + scale].fill(TEXT_LUMA);
                    }
                }
            }
        }
    }
    frame
}

/// The AAC-LC track of `audio` and one silent frame of it.
fn silence(audio: SlateAudio) -> Result<(TrackInfo, Bytes), AccelError> {
    let codec = ffmpeg::encoder::find_by_name("aac").ok_or(AccelError::EncoderMissing("aac"))?;
    let mut encoder = ffmpeg::codec::Context::new_with_codec(codec).encoder().audio().map_err(fail("aac"))?;
    let layout = if audio.channels == 1 { ffmpeg::ChannelLayout::MONO } else { ffmpeg::ChannelLayout::STEREO };
    encoder.set_rate(audio.sample_rate as i32);
    encoder.set_channel_layout(layout);
    encoder.set_format(ffmpeg::format::Sample::F32(ffmpeg::format::sample::Type::Planar));
    encoder.set_time_base((1, audio.sample_rate as i32));
    encoder.set_bit_rate(64_000);
    encoder.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);
    let mut encoder = encoder.open().map_err(fail("aac"))?;
    let samples = encoder.frame_size() as usize;
    let asc = ffi::extradata(encoder.as_ref());
    let config = AacConfig::from_asc(Bytes::from(asc)).map_err(|e| AccelError::Source(format!("slate audio: {e}")))?;
    let track = TrackInfo {
        kind: TrackKind::Audio,
        timebase: Timebase(audio.sample_rate),
        codec: CodecConfig::Aac(config),
        frame_rate: None,
        bitrate: Some(64_000),
    };
    let mut frame = ffmpeg::frame::Audio::new(encoder.format(), samples, layout);
    frame.set_rate(audio.sample_rate);
    for plane in 0..frame.planes() {
        frame.data_mut(plane).fill(0);
    }
    // The encoder's first frames carry its priming; a frame well after them is plain silence.
    let mut packet = ffmpeg::Packet::empty();
    let mut last = None;
    for n in 0..8i64 {
        frame.set_pts(Some(n * samples as i64));
        encoder.send_frame(&frame).map_err(fail("aac"))?;
        while encoder.receive_packet(&mut packet).is_ok() {
            last = packet.data().map(Bytes::copy_from_slice);
        }
    }
    let silent = last.ok_or_else(|| AccelError::Source("slate audio: the encoder gave no frame".into()))?;
    Ok((track, silent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slate_is_one_second_from_a_keyframe_with_silence_in_the_input_format() {
        let audio = SlateAudio { sample_rate: 44_100, channels: 2 };
        let slate = render("studio-1", 320, 180, 25, Some(audio)).unwrap();
        assert_eq!(slate.video.len(), 25);
        assert!(slate.video[0].keyframe && slate.video[1..].iter().all(|u| !u.keyframe));
        assert_eq!(slate.period_ticks, 90_000);
        assert_eq!(slate.tracks[0].resolution(), Some((320, 180)));
        assert_eq!(slate.tracks[1].timebase, Timebase(44_100));
        assert!(slate.silence.as_ref().is_some_and(|s| !s.is_empty()));
        // A still picture: every frame after the keyframe is small.
        let key = slate.video[0].data.len();
        assert!(slate.video[1..].iter().all(|u| u.data.len() < key.max(200)), "P frames of a still card are small");
        let mute = render("x", 64, 64, 30, None).unwrap();
        assert_eq!((mute.tracks.len(), mute.silence), (1, None));
    }

    #[test]
    fn the_card_shows_the_name() {
        let plain = card("", 160, 90);
        let named = card("cam", 160, 90);
        let lit = |f: &ffmpeg::frame::Video| f.data(0).iter().filter(|y| **y == TEXT_LUMA).count();
        assert_eq!(lit(&plain), 0);
        assert!(lit(&named) > 100, "the name is drawn");
    }
}
