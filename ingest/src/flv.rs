//! FLV video and audio tag bodies (legacy and Enhanced RTMP) read into typed
//! tags, and AVC/HEVC payloads normalised to 4-byte NAL lengths. The only code that
//! knows FLV's byte layout; `demuxer` turns these tags into `media` units.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use media::AudioCodec;

use crate::error::IngestError;

/// A codec as FLV names it: a legacy 4-bit id or an Enhanced RTMP FourCC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum FlvCodec {
    VideoId(u8),
    SoundFormat(u8),
    FourCc([u8; 4]),
    /// Enhanced RTMP multitrack packets (several codecs in one tag).
    Multitrack,
}

impl fmt::Display for FlvCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlvCodec::VideoId(id) => {
                let name = match id {
                    2 => "Sorenson H.263",
                    3 => "Screen video",
                    4 => "On2 VP6",
                    5 => "On2 VP6 with alpha",
                    6 => "Screen video v2",
                    7 => "AVC",
                    12 => "HEVC (legacy id 12)",
                    13 => "AV1 (legacy id 13)",
                    _ => "unknown",
                };
                write!(f, "{name} (video codec id {id})")
            }
            FlvCodec::SoundFormat(id) => {
                let name = match id {
                    0 | 3 => "linear PCM",
                    1 => "ADPCM",
                    2 | 14 => "MP3",
                    4..=6 => "Nellymoser",
                    7 => "G.711 A-law",
                    8 => "G.711 mu-law",
                    10 => "AAC",
                    11 => "Speex",
                    13 => "Opus (legacy id 13)",
                    _ => "unknown",
                };
                write!(f, "{name} (sound format {id})")
            }
            FlvCodec::FourCc(cc) => write!(f, "FourCC {:?}", String::from_utf8_lossy(cc)),
            FlvCodec::Multitrack => f.write_str("Enhanced RTMP multitrack"),
        }
    }
}

/// A video codec this server carries from FLV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VideoFormat {
    /// H.264: legacy codec id 7, or Enhanced RTMP `avc1`.
    Avc,
    /// H.265: Enhanced RTMP `hvc1`, or the legacy id 12 some encoders send.
    Hevc,
    /// AV1: Enhanced RTMP `av01` (an `av1C` record, then OBUs without composition times).
    Av1,
}

/// One video tag body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VideoTag {
    /// An `AVCDecoderConfigurationRecord` or an `HEVCDecoderConfigurationRecord`.
    Config(VideoFormat, Bytes),
    /// One access unit: length-prefixed NAL units and the composition
    /// offset (pts - dts) in milliseconds.
    Frame { format: VideoFormat, keyframe: bool, cts_ms: i32, data: Bytes },
    /// End of sequence, command frames, metadata packets: nothing to carry.
    Ignored,
    /// A codec this server does not carry (yet).
    Unsupported(FlvCodec),
}

/// One audio tag body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AudioTag {
    /// An AAC `AudioSpecificConfig`.
    AacConfig(Bytes),
    /// One raw AAC frame.
    AacFrame(Bytes),
    /// An Enhanced RTMP Opus sequence start: the `OpusHead`.
    OpusHead(Bytes),
    /// The media of one MP3, G.711 or Opus tag (MP3 frames, G.711 bytes, one
    /// Opus packet). `stereo` is the legacy header's channel flag (what G.711
    /// has for a configuration; MP3 frames carry their own).
    OtherFrame {
        codec: AudioCodec,
        stereo: bool,
        data: Bytes,
    },
    Ignored,
    Unsupported(FlvCodec),
}

const AVC_LEGACY_ID: u8 = 7;
/// Not in any FLV specification, but sent by encoders that carried HEVC in FLV
/// before Enhanced RTMP (and read by FFmpeg's demuxer): AVC's layout, id 12.
const HEVC_LEGACY_ID: u8 = 12;
const AAC_SOUND_FORMAT: u8 = 10;
const MP3_SOUND_FORMAT: u8 = 2;
const ALAW_SOUND_FORMAT: u8 = 7;
const MULAW_SOUND_FORMAT: u8 = 8;
const MP3_8K_SOUND_FORMAT: u8 = 14;
const EX_HEADER_SOUND_FORMAT: u8 = 9;
const FRAME_TYPE_KEY: u8 = 1;
const FRAME_TYPE_GENERATED_KEY: u8 = 4;
const FRAME_TYPE_COMMAND: u8 = 5;
// Enhanced RTMP packet types (video and audio share these values).
const PACKET_SEQUENCE_START: u8 = 0;
const PACKET_CODED_FRAMES: u8 = 1;
const PACKET_CODED_FRAMES_X: u8 = 3;
const VIDEO_PACKET_METADATA: u8 = 4;
const VIDEO_PACKET_MULTITRACK: u8 = 6;
const AUDIO_PACKET_MULTITRACK: u8 = 5;
const PACKET_MOD_EX: u8 = 7;

/// Reads a video tag body (legacy `VIDEODATA` or Enhanced RTMP `ExVideoTagHeader`).
pub(crate) fn read_video(data: &Bytes) -> Result<VideoTag, IngestError> {
    let &first = data.first().ok_or(IngestError::Truncated("video tag"))?;
    if first & 0x80 != 0 {
        return read_enhanced_video(data, first);
    }
    let frame_type = first >> 4;
    let codec = first & 0x0f;
    if frame_type == FRAME_TYPE_COMMAND {
        return Ok(VideoTag::Ignored);
    }
    let format = match codec {
        AVC_LEGACY_ID => VideoFormat::Avc,
        HEVC_LEGACY_ID => VideoFormat::Hevc,
        _ => return Ok(VideoTag::Unsupported(FlvCodec::VideoId(codec))),
    };
    let header = data.get(1..5).ok_or(IngestError::Truncated("AVC video tag header"))?;
    let keyframe = frame_type == FRAME_TYPE_KEY || frame_type == FRAME_TYPE_GENERATED_KEY;
    Ok(match header[0] {
        0 => VideoTag::Config(format, data.slice(5..)),
        1 => VideoTag::Frame { format, keyframe, cts_ms: si24(&header[1..4]), data: data.slice(5..) },
        _ => VideoTag::Ignored,
    })
}

fn read_enhanced_video(data: &Bytes, first: u8) -> Result<VideoTag, IngestError> {
    let frame_type = (first >> 4) & 0x07;
    let (packet_type, mut pos) = skip_mod_ex(data, first & 0x0f, 1, "Enhanced video ModEx")?;
    if packet_type != VIDEO_PACKET_METADATA && frame_type == FRAME_TYPE_COMMAND {
        return Ok(VideoTag::Ignored);
    }
    if packet_type == VIDEO_PACKET_MULTITRACK {
        return Ok(VideoTag::Unsupported(FlvCodec::Multitrack));
    }
    let fourcc = four_cc(data, pos, "Enhanced video FourCC")?;
    pos += 4;
    let format = match &fourcc {
        b"avc1" => VideoFormat::Avc,
        b"hvc1" => VideoFormat::Hevc,
        b"av01" => VideoFormat::Av1,
        _ => return Ok(VideoTag::Unsupported(FlvCodec::FourCc(fourcc))),
    };
    let keyframe = frame_type == FRAME_TYPE_KEY || frame_type == FRAME_TYPE_GENERATED_KEY;
    Ok(match packet_type {
        PACKET_SEQUENCE_START => VideoTag::Config(format, data.slice(pos..)),
        // Only AVC and HEVC coded frames carry a composition time.
        PACKET_CODED_FRAMES if format == VideoFormat::Av1 => {
            VideoTag::Frame { format, keyframe, cts_ms: 0, data: data.slice(pos..) }
        }
        PACKET_CODED_FRAMES => {
            let cts = data.get(pos..pos + 3).ok_or(IngestError::Truncated("Enhanced video composition time"))?;
            VideoTag::Frame { format, keyframe, cts_ms: si24(cts), data: data.slice(pos + 3..) }
        }
        PACKET_CODED_FRAMES_X => VideoTag::Frame { format, keyframe, cts_ms: 0, data: data.slice(pos..) },
        _ => VideoTag::Ignored,
    })
}

/// Reads an audio tag body (legacy `AUDIODATA` or Enhanced RTMP `ExAudioTagHeader`).
pub(crate) fn read_audio(data: &Bytes) -> Result<AudioTag, IngestError> {
    let &first = data.first().ok_or(IngestError::Truncated("audio tag"))?;
    let format = first >> 4;
    if format == EX_HEADER_SOUND_FORMAT {
        return read_enhanced_audio(data, first);
    }
    let codec = match format {
        AAC_SOUND_FORMAT => None,
        MP3_SOUND_FORMAT | MP3_8K_SOUND_FORMAT => Some(AudioCodec::Mp3),
        ALAW_SOUND_FORMAT => Some(AudioCodec::G711ALaw),
        MULAW_SOUND_FORMAT => Some(AudioCodec::G711MuLaw),
        _ => return Ok(AudioTag::Unsupported(FlvCodec::SoundFormat(format))),
    };
    if let Some(codec) = codec {
        if data.len() < 2 {
            return Err(IngestError::Truncated("audio tag without media"));
        }
        return Ok(AudioTag::OtherFrame { codec, stereo: first & 0x01 != 0, data: data.slice(1..) });
    }
    let &packet_type = data.get(1).ok_or(IngestError::Truncated("AAC audio tag header"))?;
    Ok(match packet_type {
        0 => AudioTag::AacConfig(data.slice(2..)),
        1 => AudioTag::AacFrame(data.slice(2..)),
        _ => AudioTag::Ignored,
    })
}

fn read_enhanced_audio(data: &Bytes, first: u8) -> Result<AudioTag, IngestError> {
    let (packet_type, mut pos) = skip_mod_ex(data, first & 0x0f, 1, "Enhanced audio ModEx")?;
    if packet_type == AUDIO_PACKET_MULTITRACK {
        return Ok(AudioTag::Unsupported(FlvCodec::Multitrack));
    }
    let fourcc = four_cc(data, pos, "Enhanced audio FourCC")?;
    pos += 4;
    let other = |codec| AudioTag::OtherFrame { codec, stereo: false, data: data.slice(pos..) };
    Ok(match (&fourcc, packet_type) {
        (b"mp4a", PACKET_SEQUENCE_START) => AudioTag::AacConfig(data.slice(pos..)),
        (b"mp4a", PACKET_CODED_FRAMES) => AudioTag::AacFrame(data.slice(pos..)),
        (b"Opus", PACKET_SEQUENCE_START) => AudioTag::OpusHead(data.slice(pos..)),
        (b"Opus", PACKET_CODED_FRAMES) => other(AudioCodec::Opus),
        // MP3 has no sequence header: each coded frames packet carries its own.
        (b".mp3", PACKET_CODED_FRAMES) => other(AudioCodec::Mp3),
        (b"mp4a" | b"Opus" | b".mp3", _) => AudioTag::Ignored,
        _ => AudioTag::Unsupported(FlvCodec::FourCc(fourcc)),
    })
}

/// Skips Enhanced RTMP `ModEx` packets (extra data such as nanosecond
/// timestamp offsets that we do not use) and returns the real packet type and
/// the position after it.
fn skip_mod_ex(
    data: &[u8],
    mut packet_type: u8,
    mut pos: usize,
    what: &'static str,
) -> Result<(u8, usize), IngestError> {
    while packet_type == PACKET_MOD_EX {
        let mut size = *data.get(pos).ok_or(IngestError::Truncated(what))? as usize + 1;
        pos += 1;
        if size == 256 {
            let wide = data.get(pos..pos + 2).ok_or(IngestError::Truncated(what))?;
            size = u16::from_be_bytes([wide[0], wide[1]]) as usize + 1;
            pos += 2;
        }
        pos += size;
        let &next = data.get(pos).ok_or(IngestError::Truncated(what))?;
        packet_type = next & 0x0f;
        pos += 1;
    }
    Ok((packet_type, pos))
}

fn four_cc(data: &[u8], pos: usize, what: &'static str) -> Result<[u8; 4], IngestError> {
    let cc = data.get(pos..pos + 4).ok_or(IngestError::Truncated(what))?;
    Ok([cc[0], cc[1], cc[2], cc[3]])
}

/// A 24-bit big-endian signed integer (FLV's composition time offset).
fn si24(b: &[u8]) -> i32 {
    (((b[0] as u32) << 24 | (b[1] as u32) << 16 | (b[2] as u32) << 8) as i32) >> 8
}

/// Checks that `data` is a sequence of NAL units each prefixed with a
/// `nal_length_size`-byte length, and returns it with 4-byte lengths (the
/// same bytes, uncopied, when they already are).
pub(crate) fn to_four_byte_lengths(data: Bytes, nal_length_size: u8) -> Result<Bytes, IngestError> {
    let n = nal_length_size as usize;
    if !(1..=4).contains(&n) {
        return Err(IngestError::Truncated("NAL unit length size"));
    }
    let mut pos = 0;
    let mut count = 0;
    while pos < data.len() {
        let prefix = data.get(pos..pos + n).ok_or(IngestError::Truncated("NAL unit length"))?;
        let len = prefix.iter().fold(0usize, |acc, &b| acc << 8 | b as usize);
        pos += n;
        if data.len() - pos < len {
            return Err(IngestError::Truncated("NAL unit"));
        }
        pos += len;
        count += 1;
    }
    if count == 0 {
        return Err(IngestError::Truncated("AVC frame without NAL units"));
    }
    if n == 4 {
        return Ok(data);
    }
    let mut out = BytesMut::with_capacity(data.len() + count * (4 - n));
    let mut pos = 0;
    while pos < data.len() {
        let len = data[pos..pos + n].iter().fold(0usize, |acc, &b| acc << 8 | b as usize);
        pos += n;
        out.put_u32(len as u32);
        out.put_slice(&data[pos..pos + len]);
        pos += len;
    }
    Ok(out.freeze())
}

/// The avcC or hvcC record with `lengthSizeMinusOne` set to 3, to match payloads
/// rewritten by `to_four_byte_lengths`.
pub(crate) fn with_four_byte_lengths(format: VideoFormat, record: &Bytes) -> Bytes {
    let Some(at) = length_size_byte(format) else { return record.clone() };
    match record.get(at) {
        Some(&byte) if byte & 0x03 != 0x03 => {
            let mut patched = record.to_vec();
            patched[at] = byte | 0x03;
            Bytes::from(patched)
        }
        _ => record.clone(),
    }
}

/// The NAL unit length size of a configuration record (`lengthSizeMinusOne` + 1), if it has one.
pub(crate) fn nal_length_size(format: VideoFormat, record: &[u8]) -> Option<u8> {
    record.get(length_size_byte(format)?).map(|byte| (byte & 0x03) + 1)
}

/// Where `lengthSizeMinusOne` sits: byte 4 of an `avcC` record, byte 21 of an
/// `hvcC` one; AV1 has no NAL units.
fn length_size_byte(format: VideoFormat) -> Option<usize> {
    match format {
        VideoFormat::Avc => Some(4),
        VideoFormat::Hevc => Some(21),
        VideoFormat::Av1 => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Expected = Result<Vec<u8>, &'static str>;

    fn b(bytes: &[u8]) -> Bytes {
        Bytes::copy_from_slice(bytes)
    }

    #[test]
    fn video_tags() {
        let cases: Vec<(&str, Vec<u8>, Result<VideoTag, &str>)> = vec![
            (
                "legacy AVC sequence header",
                vec![0x17, 0, 0, 0, 0, 1, 0x64],
                Ok(VideoTag::Config(VideoFormat::Avc, b(&[1, 0x64]))),
            ),
            (
                "legacy AVC keyframe, cts +66",
                vec![0x17, 1, 0, 0, 66, 0, 0, 0, 1, 0x65],
                Ok(VideoTag::Frame {
                    format: VideoFormat::Avc,
                    keyframe: true,
                    cts_ms: 66,
                    data: b(&[0, 0, 0, 1, 0x65]),
                }),
            ),
            (
                "legacy AVC inter frame, cts -33",
                vec![0x27, 1, 0xff, 0xff, 0xdf, 0, 0, 0, 1, 0x41],
                Ok(VideoTag::Frame {
                    format: VideoFormat::Avc,
                    keyframe: false,
                    cts_ms: -33,
                    data: b(&[0, 0, 0, 1, 0x41]),
                }),
            ),
            (
                "legacy AVC cts at the 24-bit extremes",
                vec![0x27, 1, 0x80, 0, 0, 0, 0, 0, 0],
                Ok(VideoTag::Frame {
                    format: VideoFormat::Avc,
                    keyframe: false,
                    cts_ms: -(1 << 23),
                    data: b(&[0, 0, 0, 0]),
                }),
            ),
            (
                "legacy AVC max positive cts",
                vec![0x27, 1, 0x7f, 0xff, 0xff, 0, 0, 0, 0],
                Ok(VideoTag::Frame {
                    format: VideoFormat::Avc,
                    keyframe: false,
                    cts_ms: (1 << 23) - 1,
                    data: b(&[0, 0, 0, 0]),
                }),
            ),
            ("legacy AVC end of sequence", vec![0x17, 2, 0, 0, 0], Ok(VideoTag::Ignored)),
            ("legacy command frame", vec![0x57, 0], Ok(VideoTag::Ignored)),
            ("legacy VP6", vec![0x14, 0, 0], Ok(VideoTag::Unsupported(FlvCodec::VideoId(4)))),
            ("legacy AVC truncated header", vec![0x17, 1, 0], Err("truncated AVC video tag header")),
            ("empty tag", vec![], Err("truncated video tag")),
            (
                "enhanced avc1 sequence start",
                [&[0x90][..], b"avc1", &[1, 0x64]].concat(),
                Ok(VideoTag::Config(VideoFormat::Avc, b(&[1, 0x64]))),
            ),
            (
                "enhanced avc1 coded frames, cts -1",
                [&[0x91][..], b"avc1", &[0xff, 0xff, 0xff, 0, 0, 0, 1, 0x65]].concat(),
                Ok(VideoTag::Frame {
                    format: VideoFormat::Avc,
                    keyframe: true,
                    cts_ms: -1,
                    data: b(&[0, 0, 0, 1, 0x65]),
                }),
            ),
            (
                "enhanced avc1 coded frames X (no cts), inter",
                [&[0xa3][..], b"avc1", &[0, 0, 0, 1, 0x41]].concat(),
                Ok(VideoTag::Frame {
                    format: VideoFormat::Avc,
                    keyframe: false,
                    cts_ms: 0,
                    data: b(&[0, 0, 0, 1, 0x41]),
                }),
            ),
            (
                "enhanced avc1 behind a ModEx packet",
                [&[0x97, 2, 0xaa, 0xbb, 0xcc, 0x01][..], b"avc1", &[0, 0, 5, 9]].concat(),
                Ok(VideoTag::Frame { format: VideoFormat::Avc, keyframe: true, cts_ms: 5, data: b(&[9]) }),
            ),
            ("enhanced ModEx truncated", vec![0x97, 200, 0], Err("truncated Enhanced video ModEx")),
            (
                "enhanced hvc1 sequence start",
                [&[0x90][..], b"hvc1", &[1]].concat(),
                Ok(VideoTag::Config(VideoFormat::Hevc, b(&[1]))),
            ),
            (
                "enhanced hvc1 coded frames, cts 40",
                [&[0xa1][..], b"hvc1", &[0, 0, 40, 0, 0, 0, 1, 0x02]].concat(),
                Ok(VideoTag::Frame {
                    format: VideoFormat::Hevc,
                    keyframe: false,
                    cts_ms: 40,
                    data: b(&[0, 0, 0, 1, 0x02]),
                }),
            ),
            (
                "enhanced hvc1 coded frames X, key",
                [&[0x93][..], b"hvc1", &[0, 0, 0, 1, 0x26]].concat(),
                Ok(VideoTag::Frame {
                    format: VideoFormat::Hevc,
                    keyframe: true,
                    cts_ms: 0,
                    data: b(&[0, 0, 0, 1, 0x26]),
                }),
            ),
            (
                "legacy HEVC (id 12) keyframe",
                vec![0x1c, 1, 0, 0, 0, 0, 0, 0, 1, 0x26],
                Ok(VideoTag::Frame {
                    format: VideoFormat::Hevc,
                    keyframe: true,
                    cts_ms: 0,
                    data: b(&[0, 0, 0, 1, 0x26]),
                }),
            ),
            (
                "enhanced av01 sequence start",
                [&[0x90][..], b"av01", &[0x81, 0]].concat(),
                Ok(VideoTag::Config(VideoFormat::Av1, b(&[0x81, 0]))),
            ),
            (
                "enhanced av01 coded frames have no composition time",
                [&[0x91][..], b"av01", &[0x12, 0, 0x32, 0]].concat(),
                Ok(VideoTag::Frame {
                    format: VideoFormat::Av1,
                    keyframe: true,
                    cts_ms: 0,
                    data: b(&[0x12, 0, 0x32, 0]),
                }),
            ),
            (
                "enhanced vp09",
                [&[0x91][..], b"vp09", &[0]].concat(),
                Ok(VideoTag::Unsupported(FlvCodec::FourCc(*b"vp09"))),
            ),
            ("enhanced multitrack", vec![0x96, 0, 0], Ok(VideoTag::Unsupported(FlvCodec::Multitrack))),
            ("enhanced command frame has no FourCC", vec![0xd0, 1], Ok(VideoTag::Ignored)),
            ("enhanced metadata", [&[0x94][..], b"avc1", &[2, 0, 1, b'x']].concat(), Ok(VideoTag::Ignored)),
            ("enhanced truncated FourCC", vec![0x90, b'a', b'v'], Err("truncated Enhanced video FourCC")),
            (
                "enhanced truncated cts",
                [&[0x91][..], b"avc1", &[0]].concat(),
                Err("truncated Enhanced video composition time"),
            ),
        ];
        for (name, bytes, want) in cases {
            let got = read_video(&Bytes::from(bytes)).map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(str::to_owned), "{name}");
        }
    }

    #[test]
    fn audio_tags() {
        let cases: Vec<(&str, Vec<u8>, Result<AudioTag, &str>)> = vec![
            ("legacy AAC sequence header", vec![0xaf, 0, 0x12, 0x10], Ok(AudioTag::AacConfig(b(&[0x12, 0x10])))),
            ("legacy AAC raw", vec![0xaf, 1, 0x21, 0x00], Ok(AudioTag::AacFrame(b(&[0x21, 0x00])))),
            ("legacy AAC truncated", vec![0xaf], Err("truncated AAC audio tag header")),
            (
                "legacy MP3 (stereo flag as sent; the frame header decides)",
                vec![0x2f, 0xff, 0xfb, 0x90, 0x64],
                Ok(AudioTag::OtherFrame { codec: AudioCodec::Mp3, stereo: true, data: b(&[0xff, 0xfb, 0x90, 0x64]) }),
            ),
            (
                "legacy MP3 8 kHz",
                vec![0xe2, 0xff, 0xe3, 0x28, 0xc4],
                Ok(AudioTag::OtherFrame { codec: AudioCodec::Mp3, stereo: false, data: b(&[0xff, 0xe3, 0x28, 0xc4]) }),
            ),
            (
                "legacy G.711 A-law mono (as FFmpeg writes it: 5.5 kHz flag, 16-bit flag)",
                vec![0x72, 0xd5, 0x55],
                Ok(AudioTag::OtherFrame { codec: AudioCodec::G711ALaw, stereo: false, data: b(&[0xd5, 0x55]) }),
            ),
            (
                "legacy G.711 mu-law stereo",
                vec![0x83, 0xff, 0x7f],
                Ok(AudioTag::OtherFrame { codec: AudioCodec::G711MuLaw, stereo: true, data: b(&[0xff, 0x7f]) }),
            ),
            ("legacy MP3 without media", vec![0x2f], Err("truncated audio tag without media")),
            ("legacy Speex", vec![0xb6, 0], Ok(AudioTag::Unsupported(FlvCodec::SoundFormat(11)))),
            ("legacy Nellymoser", vec![0x66, 0], Ok(AudioTag::Unsupported(FlvCodec::SoundFormat(6)))),
            ("legacy linear PCM", vec![0x3f, 0, 0], Ok(AudioTag::Unsupported(FlvCodec::SoundFormat(3)))),
            ("empty tag", vec![], Err("truncated audio tag")),
            (
                "enhanced mp4a sequence start",
                [&[0x90][..], b"mp4a", &[0x11, 0x90]].concat(),
                Ok(AudioTag::AacConfig(b(&[0x11, 0x90]))),
            ),
            (
                "enhanced mp4a coded frames",
                [&[0x91][..], b"mp4a", &[0x21]].concat(),
                Ok(AudioTag::AacFrame(b(&[0x21]))),
            ),
            (
                "enhanced Opus sequence start",
                [&[0x90][..], b"Opus", b"OpusHead"].concat(),
                Ok(AudioTag::OpusHead(b(b"OpusHead"))),
            ),
            (
                "enhanced Opus coded frames",
                [&[0x91][..], b"Opus", &[0xfc, 1]].concat(),
                Ok(AudioTag::OtherFrame { codec: AudioCodec::Opus, stereo: false, data: b(&[0xfc, 1]) }),
            ),
            (
                "enhanced .mp3 coded frames",
                [&[0x91][..], b".mp3", &[0xff, 0xfb]].concat(),
                Ok(AudioTag::OtherFrame { codec: AudioCodec::Mp3, stereo: false, data: b(&[0xff, 0xfb]) }),
            ),
            ("enhanced .mp3 sequence start (MP3 has none)", [&[0x90][..], b".mp3"].concat(), Ok(AudioTag::Ignored)),
            ("enhanced Opus sequence end", [&[0x92][..], b"Opus"].concat(), Ok(AudioTag::Ignored)),
            (
                "enhanced FLAC",
                [&[0x91][..], b"fLaC", &[0]].concat(),
                Ok(AudioTag::Unsupported(FlvCodec::FourCc(*b"fLaC"))),
            ),
            (
                "enhanced AC-3",
                [&[0x90][..], b"ac-3", &[0]].concat(),
                Ok(AudioTag::Unsupported(FlvCodec::FourCc(*b"ac-3"))),
            ),
            ("enhanced multitrack", vec![0x95, 0], Ok(AudioTag::Unsupported(FlvCodec::Multitrack))),
            ("enhanced truncated", vec![0x91, b'm'], Err("truncated Enhanced audio FourCC")),
        ];
        for (name, bytes, want) in cases {
            let got = read_audio(&Bytes::from(bytes)).map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(str::to_owned), "{name}");
        }
    }

    #[test]
    fn nal_lengths() {
        let cases: Vec<(&str, Vec<u8>, u8, Expected)> = vec![
            (
                "4-byte, two NALs",
                vec![0, 0, 0, 1, 0x65, 0, 0, 0, 2, 0x41, 0x9a],
                4,
                Ok(vec![0, 0, 0, 1, 0x65, 0, 0, 0, 2, 0x41, 0x9a]),
            ),
            (
                "2-byte widened",
                vec![0, 1, 0x65, 0, 2, 0x41, 0x9a],
                2,
                Ok(vec![0, 0, 0, 1, 0x65, 0, 0, 0, 2, 0x41, 0x9a]),
            ),
            ("1-byte widened", vec![1, 0x65], 1, Ok(vec![0, 0, 0, 1, 0x65])),
            ("NAL longer than the frame", vec![0, 0, 0, 9, 0x65], 4, Err("truncated NAL unit")),
            ("dangling length", vec![0, 0, 0, 1, 0x65, 0, 0], 4, Err("truncated NAL unit length")),
            ("empty", vec![], 4, Err("truncated AVC frame without NAL units")),
            ("length size 3 is legal", vec![0, 0, 1, 0x65], 3, Ok(vec![0, 0, 0, 1, 0x65])),
            ("huge 4-byte length", vec![0xff, 0xff, 0xff, 0xff, 0x65], 4, Err("truncated NAL unit")),
        ];
        for (name, bytes, size, want) in cases {
            let got = to_four_byte_lengths(Bytes::from(bytes), size).map(|b| b.to_vec()).map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(str::to_owned), "{name}");
        }
    }

    #[test]
    fn avcc_and_hvcc_length_sizes_are_patched() {
        let record = b(&[1, 0x64, 0, 0x1e, 0xfd, 0xe1]);
        assert_eq!(nal_length_size(VideoFormat::Avc, &record), Some(2));
        assert_eq!(with_four_byte_lengths(VideoFormat::Avc, &record)[4], 0xff);
        let already = b(&[1, 0x64, 0, 0x1e, 0xff, 0xe1]);
        assert_eq!(with_four_byte_lengths(VideoFormat::Avc, &already), already);
        assert_eq!(with_four_byte_lengths(VideoFormat::Avc, &b(&[1, 2])), b(&[1, 2]));
        // hvcC: lengthSizeMinusOne is the low two bits of byte 21.
        let mut hvcc = vec![0u8; 23];
        hvcc[21] = 0xf1;
        assert_eq!(nal_length_size(VideoFormat::Hevc, &hvcc), Some(2));
        let patched = with_four_byte_lengths(VideoFormat::Hevc, &Bytes::from(hvcc.clone()));
        assert_eq!((patched[21], patched[4]), (0xf3, 0), "only byte 21 changes");
        assert_eq!(nal_length_size(VideoFormat::Hevc, &hvcc[..21]), None);
    }

    #[test]
    fn garbage_never_panics() {
        let mut garbage = media::test_vectors::Garbage::new(0x9e37_79b9);
        for len in 0..300 {
            for _ in 0..8 {
                let bytes = garbage.bytes(len);
                let bytes = Bytes::from(bytes);
                let _ = read_video(&bytes);
                let _ = read_audio(&bytes);
                for size in 0..=5 {
                    let _ = to_four_byte_lengths(bytes.clone(), size);
                }
            }
        }
    }
}
