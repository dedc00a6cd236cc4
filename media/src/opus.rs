//! Opus as Enhanced RTMP carries it: the identification header (`OpusHead`,
//! RFC 7845 5.1) that starts the track, and the duration of a packet read from
//! its TOC byte (RFC 6716 3.1), so ingest counts samples as it does for AAC.

use bytes::Bytes;

use crate::codec_error::CodecError;

/// Opus always runs at 48 kHz: its timestamps and durations are in 48 kHz samples.
pub const OPUS_RATE: u32 = 48_000;

/// What the `OpusHead` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusHead {
    /// The header exactly as received (the decoder's extradata).
    pub raw: Bytes,
    pub channels: u8,
    /// Samples (at 48 kHz) the decoder discards at the start.
    pub pre_skip: u16,
    /// The rate of the encoder's input, informational only.
    pub input_sample_rate: u32,
    pub mapping_family: u8,
}

impl OpusHead {
    /// Parses an `OpusHead` (RFC 7845 5.1): magic, version 0.x, channels, pre-skip, rate, gain, mapping.
    pub fn parse(raw: Bytes) -> Result<Self, CodecError> {
        let b = &raw[..];
        if b.len() < 19 {
            return Err(CodecError::OpusHead("shorter than 19 bytes"));
        }
        if &b[..8] != b"OpusHead" {
            return Err(CodecError::OpusHead("no OpusHead magic"));
        }
        if b[8] >> 4 != 0 {
            return Err(CodecError::OpusHead("unsupported version"));
        }
        let channels = b[9];
        if channels == 0 {
            return Err(CodecError::OpusHead("zero channels"));
        }
        let mapping_family = b[18];
        if mapping_family != 0 && b.len() < 21 + channels as usize {
            return Err(CodecError::OpusHead("channel mapping table truncated"));
        }
        Ok(Self {
            channels,
            pre_skip: u16::from_le_bytes([b[10], b[11]]),
            input_sample_rate: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
            mapping_family,
            raw,
        })
    }
}

/// Samples (at 48 kHz) one Opus packet decodes to, from its TOC byte and
/// frame count; `None` for an empty or malformed packet.
pub fn packet_samples(packet: &[u8]) -> Option<u32> {
    let &toc = packet.first()?;
    let config = toc >> 3;
    // Frame sizes in 48 kHz samples: SILK 10/20/40/60 ms, hybrid 10/20 ms, CELT 2.5/5/10/20 ms.
    let frame = match config {
        0..=11 => [480, 960, 1920, 2880][config as usize % 4],
        12..=15 => [480, 960][config as usize % 2],
        _ => [120, 240, 480, 960][config as usize % 4],
    };
    let count = match toc & 0x03 {
        0 => 1,
        1 | 2 => 2,
        _ => (*packet.get(1)? & 0x3f) as u32,
    };
    let total = frame * count;
    // RFC 6716 3.2.5: a packet holds at least one frame and at most 120 ms.
    (count > 0 && total <= 5_760).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The OpusHead libopus writes for stereo 48 kHz input (pre-skip 312, mapping family 0).
    const HEAD_STEREO: [u8; 19] =
        [b'O', b'p', b'u', b's', b'H', b'e', b'a', b'd', 1, 2, 0x38, 0x01, 0x80, 0xbb, 0, 0, 0, 0, 0];

    #[test]
    fn parses_opus_head() {
        let head = OpusHead::parse(Bytes::from_static(&HEAD_STEREO)).unwrap();
        assert_eq!((head.channels, head.pre_skip, head.input_sample_rate, head.mapping_family), (2, 312, 48_000, 0));
        let mut bad = HEAD_STEREO;
        bad[0] = b'o';
        let mut zero = HEAD_STEREO;
        zero[9] = 0;
        let mut family1 = HEAD_STEREO;
        family1[18] = 1;
        let mut v1 = HEAD_STEREO;
        v1[8] = 0x10;
        let cases: [(&[u8], &str); 5] = [
            (&HEAD_STEREO[..18], "shorter than 19 bytes"),
            (&bad, "no OpusHead magic"),
            (&zero, "zero channels"),
            (&family1, "channel mapping table truncated"),
            (&v1, "unsupported version"),
        ];
        for (bytes, want) in cases {
            assert_eq!(OpusHead::parse(Bytes::copy_from_slice(bytes)), Err(CodecError::OpusHead(want)), "{want}");
        }
    }

    #[test]
    fn packet_durations() {
        let cases: [(&[u8], Option<u32>); 9] = [
            (&[0xfc, 0], Some(960)),     // CELT FB 20 ms, one frame (what libopus sends by default)
            (&[0x70], Some(480)),        // hybrid FB 10 ms (config 14)
            (&[0x18], Some(2880)),       // SILK NB 60 ms (config 3)
            (&[0xf9, 1, 2], Some(1920)), // CELT 20 ms, two frames (code 1)
            (&[0xe3, 0x06], Some(720)),  // CELT 2.5 ms (config 28) x 6 (code 3)
            (&[0x1b, 0x02], Some(5760)), // SILK 60 ms x 2: the 120 ms maximum
            (&[0x1b, 0x03], None),       // 180 ms: too long
            (&[0xe3, 0x00], None),       // code 3 with no frames
            (&[], None),
        ];
        for (packet, want) in cases {
            assert_eq!(packet_samples(packet), want, "{packet:x?}");
        }
        assert_eq!(packet_samples(&[0xe3]), None, "code 3 without its count byte");
    }
}
