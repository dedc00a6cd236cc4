//! Audio that is not AAC, as ingest receives it: MP3, G.711 (A-law, mu-law)
//! and Opus, with the rate, channels and decoder extradata each needs. CMAF
//! here carries AAC only, so the appliance transcodes these to AAC-LC once per
//! session before packaging (`accel::audio`); the packager refuses them.

use std::fmt;

use bytes::Bytes;

use crate::codec_error::CodecError;
use crate::mpeg_audio::MpegAudioHeader;
use crate::opus::{OPUS_RATE, OpusHead};

/// The G.711 clock (FLV sound formats 7 and 8 are 8 kHz by definition).
pub const G711_RATE: u32 = 8_000;

/// An audio codec ingest carries besides AAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioCodec {
    /// MPEG-1/2/2.5 audio layer III.
    Mp3,
    /// G.711 A-law.
    G711ALaw,
    /// G.711 mu-law.
    G711MuLaw,
    Opus,
}

impl AudioCodec {
    pub fn name(self) -> &'static str {
        match self {
            AudioCodec::Mp3 => "MP3",
            AudioCodec::G711ALaw => "G.711 A-law",
            AudioCodec::G711MuLaw => "G.711 mu-law",
            AudioCodec::Opus => "Opus",
        }
    }
}

impl fmt::Display for AudioCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A non-AAC audio track's configuration: what a decoder needs to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherAudioConfig {
    pub codec: AudioCodec,
    pub sample_rate: u32,
    pub channels: u8,
    /// Decoder extradata: the `OpusHead` for Opus, empty for MP3 and G.711.
    pub extradata: Bytes,
}

impl OtherAudioConfig {
    /// MP3 from its first frame (MP3 has no sequence header). Layers I and II are not MP3.
    pub fn from_mp3_frame(frame: &[u8]) -> Result<Self, CodecError> {
        let header = MpegAudioHeader::parse(frame)?;
        if header.layer != 3 {
            return Err(CodecError::MpegAudio("layer I or II, not MP3"));
        }
        Ok(Self {
            codec: AudioCodec::Mp3,
            sample_rate: header.sample_rate,
            channels: header.channels,
            extradata: Bytes::new(),
        })
    }

    /// G.711 (`G711ALaw` or `G711MuLaw`) at 8 kHz with `channels` channels.
    pub fn g711(codec: AudioCodec, channels: u8) -> Self {
        Self { codec, sample_rate: G711_RATE, channels, extradata: Bytes::new() }
    }

    /// Opus from its `OpusHead`; always 48 kHz.
    pub fn from_opus_head(head: Bytes) -> Result<Self, CodecError> {
        let parsed = OpusHead::parse(head)?;
        Ok(Self { codec: AudioCodec::Opus, sample_rate: OPUS_RATE, channels: parsed.channels, extradata: parsed.raw })
    }

    /// The RFC 6381 string the codec would have in an MP4 (informational: these never reach a playlist).
    pub fn rfc6381(&self) -> String {
        match self.codec {
            AudioCodec::Mp3 => "mp4a.40.34",
            AudioCodec::G711ALaw => "alaw",
            AudioCodec::G711MuLaw => "ulaw",
            AudioCodec::Opus => "opus",
        }
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs() {
        let mp3 = OtherAudioConfig::from_mp3_frame(&[0xff, 0xfb, 0x90, 0x64, 0]).unwrap();
        assert_eq!((mp3.codec, mp3.sample_rate, mp3.channels), (AudioCodec::Mp3, 44_100, 2));
        assert_eq!(mp3.rfc6381(), "mp4a.40.34");
        assert_eq!(
            OtherAudioConfig::from_mp3_frame(&[0xff, 0xfd, 0xa4, 0x00]),
            Err(CodecError::MpegAudio("layer I or II, not MP3"))
        );
        assert_eq!(OtherAudioConfig::from_mp3_frame(&[0x00]), Err(CodecError::MpegAudio("header truncated")));
        let alaw = OtherAudioConfig::g711(AudioCodec::G711ALaw, 1);
        assert_eq!((alaw.sample_rate, alaw.channels, alaw.codec.to_string()), (8_000, 1, "G.711 A-law".to_string()));
        let head = Bytes::from_static(b"OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00");
        let opus = OtherAudioConfig::from_opus_head(head.clone()).unwrap();
        assert_eq!((opus.sample_rate, opus.channels, opus.extradata), (48_000, 1, head));
    }
}
