//! Thumbnails from keyframes: one keyframe decoded on its own (no earlier
//! frame is needed, so a passthrough channel never pays a full decode),
//! scaled to the configured width and written as a JPEG by FFmpeg's mjpeg
//! encoder. Blocking work: callers run it on their own thread.

use bytes::Bytes;
use ffmpeg_next as ffmpeg;
use media::{EncodedUnit, TrackInfo};

use crate::device::Backend;
use crate::error::AccelError;
use crate::jpeg::{JPEG_FORMAT, JpegEncoder, Picture};
use crate::pipeline::open_decoder;

/// One picture, as JPEG.
#[derive(Debug, Clone)]
pub struct Thumbnail {
    pub jpeg: Bytes,
    /// The same picture decoded (for sprite sheets).
    pub picture: Picture,
    pub width: u32,
    pub height: u32,
    /// The keyframe's presentation time, in its track's timebase.
    pub pts: i64,
}

/// The picture size of a thumbnail `width` wide for a source: the source's
/// aspect ratio, both sides even, never wider than the source.
pub fn thumbnail_size(source_width: u32, source_height: u32, width: u32) -> (u32, u32) {
    let width = (width.min(source_width) / 2 * 2).max(2);
    let height = ((source_height as f64 * width as f64 / source_width.max(1) as f64 / 2.0).round() as u32 * 2).max(2);
    (width, height)
}

/// Makes thumbnails of one video track's keyframes.
pub struct Thumbnailer {
    width: u32,
    decoder: Option<ffmpeg::decoder::Video>,
    /// The scaler and encoder of the last source picture size and format.
    output: Option<JpegOutput>,
}

/// The scaler and JPEG encoder of one source picture size and format.
struct JpegOutput {
    source: (u32, u32, ffmpeg::format::Pixel),
    scaler: ffmpeg::software::scaling::Context,
    encoder: JpegEncoder,
}

impl Thumbnailer {
    /// Thumbnails `width` pixels wide (at most the source's width).
    pub fn new(width: u32) -> Thumbnailer {
        crate::ffi::init();
        Thumbnailer { width, decoder: None, output: None }
    }

    /// The video track the next keyframes belong to (again whenever its codec configuration changes).
    pub fn set_track(&mut self, track: &TrackInfo) -> Result<(), AccelError> {
        self.decoder = Some(open_decoder(track, Backend::Software, None)?);
        Ok(())
    }

    /// The thumbnail of `keyframe` (a keyframe of the track set last).
    pub fn render(&mut self, keyframe: &EncodedUnit) -> Result<Thumbnail, AccelError> {
        let frame = self.decode(keyframe)?;
        let key = (frame.width(), frame.height(), frame.format());
        if self.output.as_ref().is_none_or(|o| o.source != key) {
            self.output = Some(JpegOutput::open(key, self.width)?);
        }
        let output = self.output.as_mut().expect("opened above");
        let (picture, jpeg) = output.encode(&frame)?;
        let (width, height) = output.encoder.size();
        Ok(Thumbnail { jpeg, picture, width, height, pts: keyframe.pts })
    }

    /// Decodes one keyframe alone: sends it, drains the decoder, and resets
    /// it for the next one (which needs none of this one's state).
    fn decode(&mut self, keyframe: &EncodedUnit) -> Result<ffmpeg::frame::Video, AccelError> {
        if !keyframe.keyframe {
            return Err(AccelError::Decode("a thumbnail is made of a keyframe only".into()));
        }
        let decoder = self.decoder.as_mut().ok_or_else(|| AccelError::Decode("no video track was set".into()))?;
        let mut packet = ffmpeg::Packet::copy(&keyframe.data);
        packet.set_pts(Some(keyframe.pts));
        packet.set_dts(Some(keyframe.pts));
        packet.set_flags(ffmpeg::packet::Flags::KEY);
        let sent = decoder.send_packet(&packet).and_then(|()| decoder.send_eof());
        let mut frame = ffmpeg::frame::Video::empty();
        let mut decoded = None;
        while decoder.receive_frame(&mut frame).is_ok() {
            decoded = Some(std::mem::replace(&mut frame, ffmpeg::frame::Video::empty()));
        }
        // Out of the drained state, ready for the next keyframe.
        decoder.flush();
        sent.map_err(|e| AccelError::Decode(format!("keyframe: {e}")))?;
        decoded.ok_or_else(|| AccelError::Decode("the keyframe gave no picture".into()))
    }
}

impl JpegOutput {
    fn open(source: (u32, u32, ffmpeg::format::Pixel), width: u32) -> Result<JpegOutput, AccelError> {
        let (source_width, source_height, format) = source;
        let (width, height) = thumbnail_size(source_width, source_height, width);
        let scaler = ffmpeg::software::scaling::Context::get(
            format,
            source_width,
            source_height,
            JPEG_FORMAT,
            width,
            height,
            ffmpeg::software::scaling::Flags::BICUBIC,
        )
        .map_err(|e| AccelError::Filter(format!("thumbnail scaler: {e}")))?;
        Ok(JpegOutput { source, scaler, encoder: JpegEncoder::open(width, height)? })
    }

    /// `frame` scaled, and as JPEG.
    fn encode(&mut self, frame: &ffmpeg::frame::Video) -> Result<(Picture, Bytes), AccelError> {
        let mut scaled = ffmpeg::frame::Video::empty();
        self.scaler.run(frame, &mut scaled).map_err(|e| AccelError::Filter(format!("thumbnail scaler: {e}")))?;
        let jpeg = self.encoder.encode(&mut scaled)?;
        Ok((Picture(scaled), jpeg))
    }
}

#[cfg(test)]
mod tests {
    use media::{StreamEvent, TrackKind};

    use super::*;

    #[test]
    fn sizes_keep_the_aspect_ratio_even_and_never_upscale() {
        assert_eq!(thumbnail_size(1920, 1080, 320), (320, 180));
        assert_eq!(thumbnail_size(640, 360, 320), (320, 180));
        assert_eq!(thumbnail_size(1280, 720, 321), (320, 180));
        assert_eq!(thumbnail_size(160, 90, 320), (160, 90));
        assert_eq!(thumbnail_size(720, 576, 320), (320, 256));
    }

    #[test]
    fn every_keyframe_becomes_a_jpeg_of_the_configured_width_and_others_are_refused() {
        let source = crate::source::generated(640, 360, 25, 3, 25).unwrap();
        let mut thumbnailer = Thumbnailer::new(320);
        let mut made = Vec::new();
        for event in &source.events {
            match event {
                StreamEvent::Tracks(tracks) => {
                    let video = tracks.iter().find(|t| t.kind == TrackKind::Video).unwrap();
                    thumbnailer.set_track(video).unwrap();
                }
                StreamEvent::Unit(unit) if unit.kind == TrackKind::Video && unit.keyframe => {
                    made.push(thumbnailer.render(unit).unwrap());
                }
                StreamEvent::Unit(unit) if unit.kind == TrackKind::Video => {
                    assert!(thumbnailer.render(unit).is_err(), "not a keyframe");
                }
                StreamEvent::Unit(_) => {}
            }
        }
        assert_eq!(made.len(), 3, "one per second of a 1 s GOP");
        for (thumbnail, pts) in made.iter().zip([0, 90_000, 180_000]) {
            assert_eq!((thumbnail.width, thumbnail.height, thumbnail.pts), (320, 180, pts));
            assert_eq!(&thumbnail.jpeg[..3], &[0xff, 0xd8, 0xff], "a JPEG's start of image");
            assert_eq!(&thumbnail.jpeg[thumbnail.jpeg.len() - 2..], &[0xff, 0xd9], "and its end");
        }
        assert_ne!(made[0].jpeg, made[1].jpeg, "the pattern moves: each keyframe is its own picture");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let source = crate::source::generated(160, 90, 25, 1, 25).unwrap();
        let StreamEvent::Tracks(tracks) = &source.events[0] else { panic!("tracks first") };
        let mut thumbnailer = Thumbnailer::new(320);
        let unit = source
            .events
            .iter()
            .find_map(|e| match e {
                StreamEvent::Unit(u) if u.keyframe && u.kind == TrackKind::Video => Some(u.clone()),
                _ => None,
            })
            .unwrap();
        assert!(thumbnailer.render(&unit).is_err(), "no track set yet");
        thumbnailer.set_track(tracks.iter().find(|t| t.kind == TrackKind::Video).unwrap()).unwrap();
        let garbage = EncodedUnit { data: Bytes::from_static(&[0, 0, 0, 4, 0x65, 1, 2, 3]), ..unit.clone() };
        assert!(thumbnailer.render(&garbage).is_err());
        let thumbnail = thumbnailer.render(&unit).unwrap();
        assert_eq!((thumbnail.width, thumbnail.height), (160, 90), "never wider than the source");
    }
}
