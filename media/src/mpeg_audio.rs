//! MPEG audio frame headers (ISO/IEC 11172-3 2.4.1.3, 13818-3 and the
//! unofficial MPEG-2.5): MP3 has no sequence header, so ingest reads the sample
//! rate and channels from the first frame, and counts the samples a tag carries.

use crate::codec_error::CodecError;

/// MPEG audio version of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MpegVersion {
    Mpeg1,
    Mpeg2,
    /// The unofficial extension to 8, 11.025 and 12 kHz (FLV's "MP3 8 kHz").
    Mpeg25,
}

/// What the 4-byte header of one MPEG audio frame says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MpegAudioHeader {
    pub version: MpegVersion,
    /// 1, 2 or 3 (MP3).
    pub layer: u8,
    pub sample_rate: u32,
    /// 1 (mono) or 2.
    pub channels: u8,
    /// 0 for the free format.
    pub bitrate_kbps: u32,
    /// PCM samples per channel this frame decodes to.
    pub samples: u32,
    /// Length of the whole frame, header included; `None` for the free format.
    pub frame_len: Option<usize>,
}

/// Bitrates in kbit/s by bitrate index: MPEG-1 layers I, II, III, then MPEG-2/2.5 layer I and layers II/III.
const BITRATES: [[u16; 15]; 5] = [
    [0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448],
    [0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384],
    [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
    [0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256],
    [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
];

/// Sample rates by sample rate index for MPEG-1; MPEG-2 halves them, MPEG-2.5 quarters them.
const MPEG1_RATES: [u32; 3] = [44_100, 48_000, 32_000];

impl MpegAudioHeader {
    /// Reads the header at the start of `data`.
    pub fn parse(data: &[u8]) -> Result<Self, CodecError> {
        let b = data.get(..4).ok_or(CodecError::MpegAudio("header truncated"))?;
        if b[0] != 0xff || b[1] & 0xe0 != 0xe0 {
            return Err(CodecError::MpegAudio("no frame sync"));
        }
        let version = match (b[1] >> 3) & 0x03 {
            0 => MpegVersion::Mpeg25,
            2 => MpegVersion::Mpeg2,
            3 => MpegVersion::Mpeg1,
            _ => return Err(CodecError::MpegAudio("reserved version")),
        };
        let layer = match (b[1] >> 1) & 0x03 {
            1 => 3,
            2 => 2,
            3 => 1,
            _ => return Err(CodecError::MpegAudio("reserved layer")),
        };
        let bitrate_index = (b[2] >> 4) as usize;
        if bitrate_index == 15 {
            return Err(CodecError::MpegAudio("bad bitrate index"));
        }
        let rate_index = ((b[2] >> 2) & 0x03) as usize;
        let base_rate = *MPEG1_RATES.get(rate_index).ok_or(CodecError::MpegAudio("reserved sample rate"))?;
        let sample_rate = match version {
            MpegVersion::Mpeg1 => base_rate,
            MpegVersion::Mpeg2 => base_rate / 2,
            MpegVersion::Mpeg25 => base_rate / 4,
        };
        let padding = ((b[2] >> 1) & 0x01) as usize;
        let channels = if b[3] >> 6 == 3 { 1 } else { 2 };
        let table = match (version, layer) {
            (MpegVersion::Mpeg1, l) => l as usize - 1,
            (_, 1) => 3,
            _ => 4,
        };
        let bitrate_kbps = BITRATES[table][bitrate_index] as u32;
        let samples = match (version, layer) {
            (_, 1) => 384,
            (MpegVersion::Mpeg1, _) | (_, 2) => 1152,
            _ => 576,
        };
        let frame_len = (bitrate_kbps > 0).then(|| {
            let bits_per_second = bitrate_kbps as usize * 1000;
            if layer == 1 {
                (12 * bits_per_second / sample_rate as usize + padding) * 4
            } else {
                samples as usize / 8 * bits_per_second / sample_rate as usize + padding
            }
        });
        Ok(Self { version, layer, sample_rate, channels, bitrate_kbps, samples, frame_len })
    }
}

/// The frames of a buffer of whole MPEG audio frames, each with its header.
/// Stops at the end of the buffer; an item is an error where a header cannot
/// be read, a free-format frame (whose length is not in its header) starts,
/// or a frame runs past the end.
pub fn frames(data: &[u8]) -> impl Iterator<Item = Result<(MpegAudioHeader, &[u8]), CodecError>> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let item = MpegAudioHeader::parse(rest).and_then(|header| {
            let len = header.frame_len.ok_or(CodecError::MpegAudio("free-format frame"))?;
            let frame = rest.get(..len).ok_or(CodecError::MpegAudio("frame truncated"))?;
            Ok((header, frame))
        });
        match &item {
            Ok((_, frame)) => rest = &rest[frame.len()..],
            Err(_) => rest = &[],
        }
        Some(item)
    })
}

/// PCM samples per channel in a buffer of whole frames, or `None` when it is
/// not a clean run of frames (the caller then times it by its timestamp alone).
pub fn samples_in(data: &[u8]) -> Option<u32> {
    frames(data).try_fold(0u32, |sum, frame| frame.ok().map(|(h, _)| sum.saturating_add(h.samples)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        type Want = Result<(MpegVersion, u8, u32, u8, u32, u32, Option<usize>), CodecError>;
        let cases: Vec<(&str, [u8; 4], Want)> = vec![
            // What libmp3lame writes for 128 kbit/s stereo at 44.1 kHz (417 or 418 bytes).
            (
                "MPEG-1 L3 128k 44.1k stereo",
                [0xff, 0xfb, 0x90, 0x64],
                Ok((MpegVersion::Mpeg1, 3, 44_100, 2, 128, 1152, Some(417))),
            ),
            ("padded", [0xff, 0xfb, 0x92, 0x64], Ok((MpegVersion::Mpeg1, 3, 44_100, 2, 128, 1152, Some(418)))),
            (
                "MPEG-1 L3 320k 48k mono",
                [0xff, 0xfb, 0xe4, 0xc4],
                Ok((MpegVersion::Mpeg1, 3, 48_000, 1, 320, 1152, Some(960))),
            ),
            (
                "MPEG-2 L3 64k 22.05k",
                [0xff, 0xf3, 0x80, 0x44],
                Ok((MpegVersion::Mpeg2, 3, 22_050, 2, 64, 576, Some(208))),
            ),
            (
                "MPEG-2.5 L3 8k (FLV MP3 8 kHz) 16k mono",
                [0xff, 0xe3, 0x28, 0xc4],
                Ok((MpegVersion::Mpeg25, 3, 8_000, 1, 16, 576, Some(144))),
            ),
            (
                "MPEG-1 L2 192k 48k",
                [0xff, 0xfd, 0xa4, 0x00],
                Ok((MpegVersion::Mpeg1, 2, 48_000, 2, 192, 1152, Some(576))),
            ),
            (
                "MPEG-1 L1 384k 44.1k",
                [0xff, 0xff, 0xc0, 0x00],
                Ok((MpegVersion::Mpeg1, 1, 44_100, 2, 384, 384, Some(416))),
            ),
            ("free format", [0xff, 0xfb, 0x00, 0x00], Ok((MpegVersion::Mpeg1, 3, 44_100, 2, 0, 1152, None))),
            ("no sync", [0xff, 0x0b, 0x90, 0x64], Err(CodecError::MpegAudio("no frame sync"))),
            ("reserved version", [0xff, 0xeb, 0x90, 0x64], Err(CodecError::MpegAudio("reserved version"))),
            ("reserved layer", [0xff, 0xf9, 0x90, 0x64], Err(CodecError::MpegAudio("reserved layer"))),
            ("bad bitrate", [0xff, 0xfb, 0xf0, 0x64], Err(CodecError::MpegAudio("bad bitrate index"))),
            ("reserved rate", [0xff, 0xfb, 0x9c, 0x64], Err(CodecError::MpegAudio("reserved sample rate"))),
        ];
        for (name, bytes, want) in cases {
            let got = MpegAudioHeader::parse(&bytes)
                .map(|h| (h.version, h.layer, h.sample_rate, h.channels, h.bitrate_kbps, h.samples, h.frame_len));
            assert_eq!(got, want, "{name}");
        }
        assert_eq!(MpegAudioHeader::parse(&[0xff, 0xfb]), Err(CodecError::MpegAudio("header truncated")));
    }

    fn frame(header: [u8; 4]) -> Vec<u8> {
        let len = MpegAudioHeader::parse(&header).unwrap().frame_len.unwrap();
        let mut frame = header.to_vec();
        frame.resize(len, 0x55);
        frame
    }

    #[test]
    fn splits_runs_of_frames() {
        let run = [frame([0xff, 0xfb, 0x90, 0x64]), frame([0xff, 0xfb, 0x92, 0x64])].concat();
        let lens: Vec<usize> = frames(&run).map(|f| f.unwrap().1.len()).collect();
        assert_eq!(lens, [417, 418]);
        assert_eq!(samples_in(&run), Some(2304));
        assert_eq!(samples_in(&run[..500]), None, "a frame cut short");
        assert_eq!(samples_in(&[0xff, 0xfb, 0x00, 0x00, 1, 2]), None, "free format");
        assert_eq!(samples_in(&[]), Some(0));
        let truncated: Vec<_> = frames(&run[..500]).collect();
        assert_eq!(truncated.len(), 2);
        assert_eq!(truncated[1], Err(CodecError::MpegAudio("frame truncated")));
    }

    #[test]
    fn garbage_never_panics() {
        let mut garbage = crate::test_vectors::Garbage::new(0x1234_5678);
        for len in 0..64 {
            let bytes: Vec<u8> = (0..len)
                .map(|i| {
                    let byte = garbage.next_u32() as u8;
                    if i == 0 { 0xff } else { byte | if i == 1 { 0xe0 } else { 0 } }
                })
                .collect();
            let _ = samples_in(&bytes);
        }
    }
}
