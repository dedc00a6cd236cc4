//! Codec configurations carried by tracks: the H.264 decoder configuration
//! record (avcC, with the SPS parsed for picture size), HEVC (`hevc`) and
//! AV1 (`av1`), the AAC AudioSpecificConfig, and audio that must become AAC
//! before packaging (`audio_codec`). Parsed once at ingest; the packager
//! writes AVC, HEVC, AV1 and AAC into the init segment and the `CODECS` attribute.

use bytes::Bytes;

use crate::audio_codec::OtherAudioConfig;
use crate::bit_reader::{BitReader, strip_emulation_prevention};
pub use crate::codec_error::CodecError;

/// A track's codec and the configuration a decoder needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecConfig {
    Avc(AvcConfig),
    Hevc(crate::hevc::HevcConfig),
    Av1(crate::av1::Av1Config),
    Aac(AacConfig),
    /// Audio that is not AAC (MP3, G.711, Opus): never packaged as is; the
    /// appliance transcodes it to AAC first.
    OtherAudio(OtherAudioConfig),
}

impl CodecConfig {
    /// The RFC 6381 codec string for the HLS `CODECS` attribute.
    pub fn rfc6381(&self) -> String {
        match self {
            CodecConfig::Avc(avc) => avc.rfc6381(),
            CodecConfig::Hevc(hevc) => hevc.rfc6381(),
            CodecConfig::Av1(av1) => av1.rfc6381(),
            CodecConfig::Aac(aac) => aac.rfc6381(),
            CodecConfig::OtherAudio(other) => other.rfc6381(),
        }
    }

    /// The codec's name for logs and errors ("H.264", "AAC", "MP3", ...).
    pub fn name(&self) -> &'static str {
        match self {
            CodecConfig::Avc(_) => "H.264",
            CodecConfig::Hevc(_) => "HEVC",
            CodecConfig::Av1(_) => "AV1",
            CodecConfig::Aac(_) => "AAC",
            CodecConfig::OtherAudio(other) => other.codec.name(),
        }
    }

    /// Audio that must be transcoded to AAC before it can be packaged.
    pub fn needs_aac_transcode(&self) -> bool {
        matches!(self, CodecConfig::OtherAudio(_))
    }
}

/// H.264 configuration: the raw `AVCDecoderConfigurationRecord` plus what we read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfig {
    /// The record exactly as received, written verbatim into the `avcC` box.
    pub record: Bytes,
    pub profile_idc: u8,
    pub profile_compatibility: u8,
    pub level_idc: u8,
    /// Bytes of the length prefix before each NAL unit (1, 2 or 4).
    pub nal_length_size: u8,
    pub sps: Vec<Bytes>,
    pub pps: Vec<Bytes>,
    pub width: u32,
    pub height: u32,
}

impl AvcConfig {
    /// Parses an `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15 5.3.3.1).
    pub fn from_record(record: Bytes) -> Result<Self, CodecError> {
        let r = &record[..];
        if r.len() < 7 {
            return Err(CodecError::AvcTruncated);
        }
        if r[0] != 1 {
            return Err(CodecError::AvcVersion(r[0]));
        }
        let nal_length_size = (r[4] & 0x03) + 1;
        let mut pos = 5;
        let read_sets = |count: usize, pos: &mut usize| -> Result<Vec<Bytes>, CodecError> {
            let mut sets = Vec::with_capacity(count);
            for _ in 0..count {
                let len_bytes = r.get(*pos..*pos + 2).ok_or(CodecError::AvcTruncated)?;
                let len = u16::from_be_bytes([len_bytes[0], len_bytes[1]]) as usize;
                *pos += 2;
                if r.len() < *pos + len {
                    return Err(CodecError::AvcTruncated);
                }
                sets.push(record.slice(*pos..*pos + len));
                *pos += len;
            }
            Ok(sets)
        };
        let sps_count = (r[pos] & 0x1f) as usize;
        pos += 1;
        let sps = read_sets(sps_count, &mut pos)?;
        let pps_count = *r.get(pos).ok_or(CodecError::AvcTruncated)? as usize;
        pos += 1;
        let pps = read_sets(pps_count, &mut pos)?;
        let first = sps.first().ok_or(CodecError::AvcNoSps)?;
        let (width, height) = sps_picture_size(first)?;
        Ok(Self {
            profile_idc: r[1],
            profile_compatibility: r[2],
            level_idc: r[3],
            nal_length_size,
            sps,
            pps,
            width,
            height,
            record,
        })
    }

    /// Builds the record (4-byte NAL lengths) from one SPS and one PPS without start codes.
    pub fn from_parameter_sets(sps: &[u8], pps: &[u8]) -> Result<Self, CodecError> {
        if sps.len() < 4 {
            return Err(CodecError::AvcNoSps);
        }
        let too_long = |_| CodecError::AvcTruncated;
        let mut record = Vec::with_capacity(11 + sps.len() + pps.len());
        // version, profile, compatibility, level (from the SPS), 4-byte lengths, one SPS.
        record.extend_from_slice(&[1, sps[1], sps[2], sps[3], 0xff, 0xe1]);
        record.extend_from_slice(&u16::try_from(sps.len()).map_err(too_long)?.to_be_bytes());
        record.extend_from_slice(sps);
        record.push(1);
        record.extend_from_slice(&u16::try_from(pps.len()).map_err(too_long)?.to_be_bytes());
        record.extend_from_slice(pps);
        if HIGH_PROFILES.contains(&sps[1]) {
            // The extension ISO/IEC 14496-15 5.3.3.1.2 requires for these profiles; no SPS extensions.
            let (chroma, luma_depth, chroma_depth) = sps_format(sps)?;
            record.extend_from_slice(&[0xfc | chroma as u8, 0xf8 | luma_depth as u8, 0xf8 | chroma_depth as u8, 0]);
        }
        Self::from_record(Bytes::from(record))
    }

    pub fn rfc6381(&self) -> String {
        format!("avc1.{:02x}{:02x}{:02x}", self.profile_idc, self.profile_compatibility, self.level_idc)
    }
}

/// AAC configuration: the raw `AudioSpecificConfig` plus what we read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AacConfig {
    /// The config exactly as received, written verbatim into the `esds` box.
    pub asc: Bytes,
    pub object_type: u8,
    pub sample_rate: u32,
    pub channels: u8,
}

const AAC_SAMPLE_RATES: [u32; 13] =
    [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

/// PCM samples per AAC-LC frame; the duration of every AAC access unit.
pub const AAC_FRAME_SAMPLES: u32 = 1024;

impl AacConfig {
    /// Parses an `AudioSpecificConfig` (ISO/IEC 14496-3 1.6.2.1).
    pub fn from_asc(asc: Bytes) -> Result<Self, CodecError> {
        let mut bits = BitReader::new(&asc);
        let mut object_type = bits.bits(5).ok_or(CodecError::AacTruncated)? as u8;
        if object_type == 31 {
            object_type = 32 + bits.bits(6).ok_or(CodecError::AacTruncated)? as u8;
        }
        let index = bits.bits(4).ok_or(CodecError::AacTruncated)? as u8;
        let sample_rate = if index == 15 {
            bits.bits(24).ok_or(CodecError::AacTruncated)?
        } else {
            *AAC_SAMPLE_RATES.get(index as usize).ok_or(CodecError::AacSampleRate(index))?
        };
        let channels = bits.bits(4).ok_or(CodecError::AacTruncated)? as u8;
        Ok(Self { asc, object_type, sample_rate, channels })
    }

    pub fn rfc6381(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }
}

/// Profiles whose SPS carries chroma format and bit depth (and whose avcC has the extension).
const HIGH_PROFILES: [u8; 13] = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135];

/// Reads (chroma_format_idc, bit_depth_luma_minus8, bit_depth_chroma_minus8) from an SPS NAL unit.
fn sps_format(nal: &[u8]) -> Result<(u32, u32, u32), CodecError> {
    let rbsp = strip_emulation_prevention(nal.get(1..).ok_or(CodecError::Sps("empty NAL"))?);
    let mut b = BitReader::new(&rbsp);
    let err = CodecError::Sps;
    let profile_idc = b.bits(8).ok_or(err("profile"))?;
    b.bits(16).ok_or(err("level"))?;
    b.ue().ok_or(err("sps id"))?;
    if !HIGH_PROFILES.contains(&(profile_idc as u8)) {
        return Ok((1, 0, 0));
    }
    let chroma = b.ue().ok_or(err("chroma format"))?;
    if chroma == 3 {
        b.bits(1).ok_or(err("separate colour plane"))?;
    }
    let luma = b.ue().ok_or(err("luma bit depth"))?;
    let chroma_depth = b.ue().ok_or(err("chroma bit depth"))?;
    Ok((chroma.min(3), luma.min(7), chroma_depth.min(7)))
}

/// Reads width and height (after cropping) from an H.264 SPS NAL unit (ITU-T H.264 7.3.2.1.1).
fn sps_picture_size(nal: &[u8]) -> Result<(u32, u32), CodecError> {
    let rbsp = strip_emulation_prevention(nal.get(1..).ok_or(CodecError::Sps("empty NAL"))?);
    let mut b = BitReader::new(&rbsp);
    let err = |what| CodecError::Sps(what);
    let profile_idc = b.bits(8).ok_or(err("profile"))?;
    b.bits(16).ok_or(err("level"))?; // constraint flags + level_idc
    b.ue().ok_or(err("sps id"))?;
    let mut chroma_format_idc = 1;
    if HIGH_PROFILES.contains(&(profile_idc as u8)) {
        chroma_format_idc = b.ue().ok_or(err("chroma format"))?;
        if chroma_format_idc == 3 {
            b.bits(1).ok_or(err("separate colour plane"))?;
        }
        b.ue().ok_or(err("luma bit depth"))?;
        b.ue().ok_or(err("chroma bit depth"))?;
        b.bits(1).ok_or(err("qpprime"))?;
        if b.bits(1).ok_or(err("scaling matrix flag"))? == 1 {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if b.bits(1).ok_or(err("scaling list flag"))? == 1 {
                    skip_scaling_list(&mut b, if i < 6 { 16 } else { 64 }).ok_or(err("scaling list"))?;
                }
            }
        }
    }
    b.ue().ok_or(err("log2 max frame num"))?;
    let poc_type = b.ue().ok_or(err("poc type"))?;
    if poc_type == 0 {
        b.ue().ok_or(err("log2 max poc lsb"))?;
    } else if poc_type == 1 {
        b.bits(1).ok_or(err("delta pic order always zero"))?;
        b.se().ok_or(err("offset for non-ref pic"))?;
        b.se().ok_or(err("offset top to bottom"))?;
        let cycle = b.ue().ok_or(err("ref frames in poc cycle"))?;
        if cycle > 255 {
            return Err(err("ref frames in poc cycle"));
        }
        for _ in 0..cycle {
            b.se().ok_or(err("offset for ref frame"))?;
        }
    }
    b.ue().ok_or(err("max num ref frames"))?;
    b.bits(1).ok_or(err("gaps allowed"))?;
    let width_mbs = b.ue().ok_or(err("width"))? + 1;
    let height_map_units = b.ue().ok_or(err("height"))? + 1;
    let frame_mbs_only = b.bits(1).ok_or(err("frame mbs only"))?;
    if frame_mbs_only == 0 {
        b.bits(1).ok_or(err("mb adaptive"))?;
    }
    b.bits(1).ok_or(err("direct 8x8"))?;
    let (mut crop_l, mut crop_r, mut crop_t, mut crop_b) = (0, 0, 0, 0);
    if b.bits(1).ok_or(err("cropping flag"))? == 1 {
        crop_l = b.ue().ok_or(err("crop"))?;
        crop_r = b.ue().ok_or(err("crop"))?;
        crop_t = b.ue().ok_or(err("crop"))?;
        crop_b = b.ue().ok_or(err("crop"))?;
    }
    let (sub_w, sub_h): (u32, u32) = match chroma_format_idc {
        0 | 3 => (1, 1),
        2 => (2, 1),
        _ => (2, 2),
    };
    // Exp-Golomb fields reach 2^32 - 1: the products are taken in 64 bits.
    let field_factor = u64::from(2 - frame_mbs_only);
    let crop_unit_x = u64::from(if chroma_format_idc == 0 { 1 } else { sub_w });
    let crop_unit_y = u64::from(if chroma_format_idc == 0 { 1 } else { sub_h }) * field_factor;
    let crop_x = (u64::from(crop_l) + u64::from(crop_r)) * crop_unit_x;
    let crop_y = (u64::from(crop_t) + u64::from(crop_b)) * crop_unit_y;
    let width = (u64::from(width_mbs) * 16).checked_sub(crop_x).ok_or(err("crop wider than picture"))?;
    let height =
        (u64::from(height_map_units) * 16 * field_factor).checked_sub(crop_y).ok_or(err("crop taller than picture"))?;
    if width == 0 || height == 0 || width > 16_384 || height > 16_384 {
        return Err(err("picture size out of range"));
    }
    Ok((width as u32, height as u32))
}

fn skip_scaling_list(b: &mut BitReader, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            next = (last + b.se()? as i64 + 256) % 256;
        }
        last = if next == 0 { last } else { next };
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_vectors::AVCC_640X360;

    #[test]
    fn parses_x264_avcc() {
        let avc = AvcConfig::from_record(Bytes::from_static(&AVCC_640X360)).unwrap();
        assert_eq!((avc.width, avc.height), (640, 360));
        assert_eq!(avc.rfc6381(), "avc1.64001e");
        assert_eq!(avc.nal_length_size, 4);
        assert_eq!((avc.sps.len(), avc.pps.len()), (1, 1));
    }

    #[test]
    fn builds_avcc_from_parameter_sets() {
        let parsed = AvcConfig::from_record(Bytes::from_static(&AVCC_640X360)).unwrap();
        let built = AvcConfig::from_parameter_sets(&parsed.sps[0], &parsed.pps[0]).unwrap();
        assert_eq!(built, parsed);
        assert_eq!(AvcConfig::from_parameter_sets(&[0x67], &[]).unwrap_err(), CodecError::AvcNoSps);
    }

    #[test]
    fn avcc_errors() {
        let cases: [(&[u8], CodecError); 4] = [
            (&[1, 0x64, 0], CodecError::AvcTruncated),
            (&[2, 0x64, 0, 0x1e, 0xff, 0xe1, 0], CodecError::AvcVersion(2)),
            (&[1, 0x64, 0, 0x1e, 0xff, 0xe0, 0], CodecError::AvcNoSps),
            (&[1, 0x64, 0, 0x1e, 0xff, 0xe1, 0x00, 0x30, 0x67], CodecError::AvcTruncated),
        ];
        for (bytes, want) in cases {
            assert_eq!(AvcConfig::from_record(Bytes::copy_from_slice(bytes)).unwrap_err(), want, "{bytes:x?}");
        }
    }

    #[test]
    fn parses_aac_asc() {
        type Case<'a> = (&'a [u8], (u8, u32, u8));
        let cases: [Case; 3] =
            [(&[0x12, 0x10], (2, 44_100, 2)), (&[0x11, 0x90], (2, 48_000, 2)), (&[0x11, 0x88], (2, 48_000, 1))];
        for (bytes, (ot, rate, ch)) in cases {
            let aac = AacConfig::from_asc(Bytes::copy_from_slice(bytes)).unwrap();
            assert_eq!((aac.object_type, aac.sample_rate, aac.channels), (ot, rate, ch));
            assert_eq!(aac.rfc6381(), format!("mp4a.40.{ot}"));
        }
        assert_eq!(AacConfig::from_asc(Bytes::from_static(&[0x12])).unwrap_err(), CodecError::AacTruncated);
        assert_eq!(AacConfig::from_asc(Bytes::from_static(&[0x16, 0x80])).unwrap_err(), CodecError::AacSampleRate(13));
    }

    /// Found by the `avcc` fuzz target: an SPS whose width in macroblocks
    /// (an Exp-Golomb code near 2^32) overflowed `width_mbs * 16`.
    #[test]
    fn huge_sps_fields_are_errors() {
        let record = [
            0x01, 0x00, 0x01, 0x3a, 0x00, 0x01, 0x00, 0x25, 0x00, 0x00, 0x00, 0x00, 0x84, 0x00, 0x00, 0x01, 0x23, 0x00,
            0x00, 0x00, 0x00, 0x3a, 0x00, 0x00, 0x00, 0x3a, 0x00, 0x00, 0x00, 0x00, 0x84, 0x00, 0x00, 0x01, 0x23, 0x00,
            0x00, 0x00, 0x00, 0x3a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xa7, 0x2e, 0x00, 0xff, 0xff, 0xff,
            0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x23, 0x00, 0x00, 0x00,
        ];
        assert!(AvcConfig::from_record(Bytes::copy_from_slice(&record)).is_err());
    }

    #[test]
    fn garbage_never_panics() {
        let mut garbage = crate::test_vectors::Garbage::new(0x2545_f491);
        for len in 0..200 {
            let bytes = garbage.bytes(len);
            let mut avcc = bytes.clone();
            if !avcc.is_empty() {
                avcc[0] = 1;
            }
            let _ = AvcConfig::from_record(Bytes::from(avcc));
            let _ = AacConfig::from_asc(Bytes::from(bytes));
        }
    }
}
