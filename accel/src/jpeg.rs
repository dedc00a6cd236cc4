//! JPEG pictures through FFmpeg's mjpeg encoder: one encoder per picture
//! size, fed full-range 4:2:0 frames (`Picture`), at a fixed quantiser.

use std::fmt;

use bytes::Bytes;
use ffmpeg_next as ffmpeg;

use crate::error::AccelError;

/// The mjpeg encoder's quantiser (FFmpeg's `-q:v` scale, 2 best .. 31 worst):
/// 4 keeps a 320-wide test pattern above 40 dB PSNR at about 7 KB.
const JPEG_QSCALE: i32 = 4;

/// The pixel format of pictures: what JPEG stores (full-range 4:2:0).
pub(crate) const JPEG_FORMAT: ffmpeg::format::Pixel = ffmpeg::format::Pixel::YUVJ420P;

/// A picture ready for JPEG (full-range 4:2:0), kept to compose sprite sheets.
#[derive(Clone)]
pub struct Picture(pub(crate) ffmpeg::frame::Video);

impl Picture {
    /// A black picture of `width` x `height`.
    pub fn black(width: u32, height: u32) -> Picture {
        let mut frame = ffmpeg::frame::Video::new(JPEG_FORMAT, width, height);
        // Full range: no light, no colour.
        for (plane, value) in [0u8, 128, 128].into_iter().enumerate() {
            frame.data_mut(plane).fill(value);
        }
        Picture(frame)
    }

    pub fn width(&self) -> u32 {
        self.0.width()
    }

    pub fn height(&self) -> u32 {
        self.0.height()
    }
}

impl fmt::Debug for Picture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Picture({}x{})", self.width(), self.height())
    }
}

/// An mjpeg encoder of one picture size.
pub(crate) struct JpegEncoder {
    encoder: ffmpeg::encoder::Video,
    width: u32,
    height: u32,
    /// Pictures encoded: the encoder wants increasing timestamps.
    encoded: i64,
}

fn encode_failed(detail: String) -> AccelError {
    AccelError::Encode { encoder: "mjpeg", device: crate::DeviceId::cpu(), detail }
}

impl JpegEncoder {
    pub(crate) fn open(width: u32, height: u32) -> Result<JpegEncoder, AccelError> {
        let codec = ffmpeg::encoder::find(ffmpeg::codec::Id::MJPEG).ok_or(AccelError::EncoderMissing("mjpeg"))?;
        let open_failed = |e: ffmpeg::Error| AccelError::EncoderOpen { encoder: "mjpeg", detail: e.to_string() };
        let mut encoder = ffmpeg::codec::Context::new_with_codec(codec).encoder().video().map_err(open_failed)?;
        encoder.set_width(width);
        encoder.set_height(height);
        encoder.set_format(JPEG_FORMAT);
        encoder.set_time_base((1, 25));
        // A fixed quantiser: the rate control's choice pinned between qmin and qmax.
        encoder.set_qmin(JPEG_QSCALE);
        encoder.set_qmax(JPEG_QSCALE);
        let encoder = encoder.open().map_err(open_failed)?;
        Ok(JpegEncoder { encoder, width, height, encoded: 0 })
    }

    pub(crate) fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// `picture` (of this encoder's size) as JPEG.
    pub(crate) fn encode(&mut self, picture: &mut ffmpeg::frame::Video) -> Result<Bytes, AccelError> {
        picture.set_pts(Some(self.encoded));
        self.encoded += 1;
        self.encoder.send_frame(picture).map_err(|e| encode_failed(e.to_string()))?;
        let mut packet = ffmpeg::Packet::empty();
        self.encoder.receive_packet(&mut packet).map_err(|e| encode_failed(e.to_string()))?;
        let jpeg = packet.data().map(Bytes::copy_from_slice).unwrap_or_default();
        if jpeg.is_empty() {
            return Err(encode_failed("an empty picture".into()));
        }
        Ok(jpeg)
    }
}
