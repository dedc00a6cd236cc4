//! HEVC configuration: the decoder configuration record (`hvcC`, ISO/IEC
//! 14496-15 8.3.3) read for picture size and the RFC 6381 `hvc1.` string, and
//! built from parameter sets an encoder produced.

use bytes::{BufMut, Bytes, BytesMut};

use crate::bit_reader::{BitReader, strip_emulation_prevention};
use crate::codec_error::CodecError;

/// NAL unit types of the parameter sets (ITU-T H.265 Table 7-1).
pub const HEVC_NAL_VPS: u8 = 32;
pub const HEVC_NAL_SPS: u8 = 33;
pub const HEVC_NAL_PPS: u8 = 34;

/// H.265 configuration: the raw `HEVCDecoderConfigurationRecord` plus what we read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HevcConfig {
    /// The record exactly as built or received, written verbatim into the `hvcC` box.
    pub record: Bytes,
    pub profile_space: u8,
    pub tier_high: bool,
    pub profile_idc: u8,
    pub compatibility_flags: u32,
    pub constraint_flags: [u8; 6],
    pub level_idc: u8,
    /// Bytes of the length prefix before each NAL unit (1, 2 or 4).
    pub nal_length_size: u8,
    pub width: u32,
    pub height: u32,
}

/// What the sequence parameter set says that the record and the packager need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HevcSps {
    /// `general_profile_space` .. `general_level_idc`: the 12 bytes of the general profile_tier_level.
    pub general_ptl: [u8; 12],
    pub max_sub_layers: u8,
    pub temporal_id_nested: bool,
    pub chroma_format_idc: u8,
    pub bit_depth_luma: u8,
    pub bit_depth_chroma: u8,
    pub width: u32,
    pub height: u32,
}

impl HevcConfig {
    /// Parses an `HEVCDecoderConfigurationRecord`; the picture size comes from its first SPS.
    pub fn from_record(record: Bytes) -> Result<Self, CodecError> {
        let r = &record[..];
        if r.len() < 23 {
            return Err(CodecError::HevcTruncated);
        }
        if r[0] != 1 {
            return Err(CodecError::HevcVersion(r[0]));
        }
        let nal_length_size = (r[21] & 0x03) + 1;
        let arrays = r[22] as usize;
        let mut pos = 23;
        let mut sps = None;
        for _ in 0..arrays {
            let header = r.get(pos..pos + 3).ok_or(CodecError::HevcTruncated)?;
            let nal_type = header[0] & 0x3f;
            let count = u16::from_be_bytes([header[1], header[2]]);
            pos += 3;
            for _ in 0..count {
                let len = r.get(pos..pos + 2).ok_or(CodecError::HevcTruncated)?;
                let len = u16::from_be_bytes([len[0], len[1]]) as usize;
                pos += 2;
                let nal = r.get(pos..pos + len).ok_or(CodecError::HevcTruncated)?;
                if nal_type == HEVC_NAL_SPS && sps.is_none() {
                    sps = Some(nal);
                }
                pos += len;
            }
        }
        let sps = parse_sps(sps.ok_or(CodecError::HevcNoSps)?)?;
        let mut constraint_flags = [0u8; 6];
        constraint_flags.copy_from_slice(&r[6..12]);
        Ok(Self {
            profile_space: r[1] >> 6,
            tier_high: r[1] & 0x20 != 0,
            profile_idc: r[1] & 0x1f,
            compatibility_flags: u32::from_be_bytes([r[2], r[3], r[4], r[5]]),
            constraint_flags,
            level_idc: r[12],
            nal_length_size,
            width: sps.width,
            height: sps.height,
            record,
        })
    }

    /// Builds the record (4-byte NAL lengths) from parameter sets without start codes or length prefixes.
    pub fn from_parameter_sets(vps: &[Bytes], sps: &[Bytes], pps: &[Bytes]) -> Result<Self, CodecError> {
        let parsed = parse_sps(sps.first().ok_or(CodecError::HevcNoSps)?)?;
        let mut r = BytesMut::with_capacity(64);
        r.put_u8(1); // configurationVersion
        r.put_slice(&parsed.general_ptl);
        r.put_u16(0xf000); // reserved + min_spatial_segmentation_idc 0
        r.put_u8(0xfc); // reserved + parallelismType 0 (unknown)
        r.put_u8(0xfc | (parsed.chroma_format_idc & 0x03));
        r.put_u8(0xf8 | (parsed.bit_depth_luma.saturating_sub(8) & 0x07));
        r.put_u8(0xf8 | (parsed.bit_depth_chroma.saturating_sub(8) & 0x07));
        r.put_u16(0); // avgFrameRate: unspecified
        // constantFrameRate 0, numTemporalLayers, temporalIdNested, lengthSizeMinusOne 3.
        r.put_u8(((parsed.max_sub_layers & 0x07) << 3) | (u8::from(parsed.temporal_id_nested) << 2) | 0x03);
        let arrays = [(HEVC_NAL_VPS, vps), (HEVC_NAL_SPS, sps), (HEVC_NAL_PPS, pps)];
        r.put_u8(arrays.iter().filter(|(_, sets)| !sets.is_empty()).count() as u8);
        for (nal_type, sets) in arrays.into_iter().filter(|(_, sets)| !sets.is_empty()) {
            r.put_u8(0x80 | nal_type); // array_completeness: all sets are in the record
            r.put_u16(u16::try_from(sets.len()).map_err(|_| CodecError::HevcTruncated)?);
            for set in sets {
                r.put_u16(u16::try_from(set.len()).map_err(|_| CodecError::HevcTruncated)?);
                r.put_slice(set);
            }
        }
        Self::from_record(r.freeze())
    }

    /// The RFC 6381 codec string (ISO/IEC 14496-15 Annex E), e.g. `hvc1.1.6.L93.B0`.
    pub fn rfc6381(&self) -> String {
        let space = match self.profile_space {
            0 => String::new(),
            n => char::from(b'A' + n - 1).to_string(),
        };
        let tier = if self.tier_high { 'H' } else { 'L' };
        let mut s = format!(
            "hvc1.{space}{}.{:X}.{tier}{}",
            self.profile_idc,
            self.compatibility_flags.reverse_bits(),
            self.level_idc
        );
        let used = self.constraint_flags.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
        for byte in &self.constraint_flags[..used] {
            s.push_str(&format!(".{byte:X}"));
        }
        s
    }
}

/// Reads an H.265 SPS NAL unit (with its 2-byte header) up to the bit depths (ITU-T H.265 7.3.2.2).
pub fn parse_sps(nal: &[u8]) -> Result<HevcSps, CodecError> {
    let rbsp = strip_emulation_prevention(nal.get(2..).ok_or(CodecError::Sps("empty NAL"))?);
    let err = CodecError::Sps;
    let mut b = BitReader::new(&rbsp);
    b.bits(4).ok_or(err("vps id"))?;
    let max_sub_layers_minus1 = b.bits(3).ok_or(err("max sub layers"))? as usize;
    let temporal_id_nested = b.bits(1).ok_or(err("temporal id nesting"))? == 1;
    let mut general_ptl = [0u8; 12];
    for byte in &mut general_ptl {
        *byte = b.bits(8).ok_or(err("profile_tier_level"))? as u8;
    }
    let mut present = [(false, false); 8];
    for flags in present.iter_mut().take(max_sub_layers_minus1) {
        *flags = (b.bits(1).ok_or(err("sub layer flags"))? == 1, b.bits(1).ok_or(err("sub layer flags"))? == 1);
    }
    if max_sub_layers_minus1 > 0 {
        for _ in max_sub_layers_minus1..8 {
            b.bits(2).ok_or(err("reserved bits"))?;
        }
    }
    for (profile, level) in present.iter().take(max_sub_layers_minus1) {
        if *profile {
            b.bits(32).ok_or(err("sub layer profile"))?;
            b.bits(32).ok_or(err("sub layer profile"))?;
            b.bits(24).ok_or(err("sub layer profile"))?;
        }
        if *level {
            b.bits(8).ok_or(err("sub layer level"))?;
        }
    }
    b.ue().ok_or(err("sps id"))?;
    let chroma_format_idc = b.ue().ok_or(err("chroma format"))?;
    if chroma_format_idc == 3 {
        b.bits(1).ok_or(err("separate colour plane"))?;
    }
    let pic_width = b.ue().ok_or(err("width"))?;
    let pic_height = b.ue().ok_or(err("height"))?;
    let (mut left, mut right, mut top, mut bottom) = (0, 0, 0, 0);
    if b.bits(1).ok_or(err("conformance window flag"))? == 1 {
        left = b.ue().ok_or(err("conformance window"))?;
        right = b.ue().ok_or(err("conformance window"))?;
        top = b.ue().ok_or(err("conformance window"))?;
        bottom = b.ue().ok_or(err("conformance window"))?;
    }
    let bit_depth_luma = b.ue().ok_or(err("luma bit depth"))?.saturating_add(8);
    let bit_depth_chroma = b.ue().ok_or(err("chroma bit depth"))?.saturating_add(8);
    let (sub_w, sub_h): (u32, u32) = match chroma_format_idc {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    // Exp-Golomb fields reach 2^32 - 1: the window is taken in 64 bits.
    let window_x = u64::from(sub_w) * (u64::from(left) + u64::from(right));
    let window_y = u64::from(sub_h) * (u64::from(top) + u64::from(bottom));
    let width = u64::from(pic_width).checked_sub(window_x).ok_or(err("window wider than picture"))?;
    let height = u64::from(pic_height).checked_sub(window_y).ok_or(err("window taller than picture"))?;
    if width == 0 || height == 0 || width > 16_384 || height > 16_384 || chroma_format_idc > 3 {
        return Err(err("picture size out of range"));
    }
    let (width, height) = (width as u32, height as u32);
    Ok(HevcSps {
        general_ptl,
        max_sub_layers: max_sub_layers_minus1 as u8 + 1,
        temporal_id_nested,
        chroma_format_idc: chroma_format_idc as u8,
        bit_depth_luma: bit_depth_luma.min(16) as u8,
        bit_depth_chroma: bit_depth_chroma.min(16) as u8,
        width,
        height,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_vectors::{HEVC_PPS_320X180 as PPS, HEVC_SPS_320X180 as SPS, HEVC_VPS_320X180 as VPS};

    #[test]
    fn builds_and_reads_a_record() {
        let hevc = HevcConfig::from_parameter_sets(
            &[Bytes::from_static(VPS)],
            &[Bytes::from_static(SPS)],
            &[Bytes::from_static(PPS)],
        )
        .unwrap();
        assert_eq!((hevc.width, hevc.height), (320, 180));
        assert_eq!((hevc.profile_idc, hevc.level_idc, hevc.tier_high), (1, 60, false));
        assert_eq!(hevc.rfc6381(), "hvc1.1.6.L60.90");
        assert_eq!(hevc.nal_length_size, 4);
        // Header, then three arrays of one set each.
        assert_eq!(hevc.record.len(), 23 + 3 * 5 + VPS.len() + SPS.len() + PPS.len());
        assert_eq!(&hevc.record[..13], &[1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 60]);
        assert_eq!(&hevc.record[13..23], &[0xf0, 0, 0xfc, 0xfd, 0xf8, 0xf8, 0, 0, 0x0f, 3]);
        assert_eq!(HevcConfig::from_record(hevc.record.clone()).unwrap(), hevc);
    }

    #[test]
    fn record_errors_and_codec_strings() {
        assert_eq!(HevcConfig::from_record(Bytes::from_static(&[1; 10])).unwrap_err(), CodecError::HevcTruncated);
        let mut bad = vec![2u8; 23];
        bad[22] = 0;
        assert_eq!(HevcConfig::from_record(Bytes::from(bad.clone())).unwrap_err(), CodecError::HevcVersion(2));
        bad[0] = 1;
        assert_eq!(HevcConfig::from_record(Bytes::from(bad)).unwrap_err(), CodecError::HevcNoSps);
        let base = HevcConfig::from_parameter_sets(&[], &[Bytes::from_static(SPS)], &[]).unwrap();
        let cases = [
            ((0, false, 1, 0x6000_0000, [0xb0, 0, 0, 0, 0, 0], 93), "hvc1.1.6.L93.B0"),
            ((0, true, 2, 0x2000_0000, [0; 6], 150), "hvc1.2.4.H150"),
            ((1, false, 1, 0x6000_0000, [0, 0, 0x12, 0, 0, 0], 120), "hvc1.A1.6.L120.0.0.12"),
        ];
        for ((space, tier, idc, compat, constraint, level), want) in cases {
            let c = HevcConfig {
                profile_space: space,
                tier_high: tier,
                profile_idc: idc,
                compatibility_flags: compat,
                constraint_flags: constraint,
                level_idc: level,
                ..base.clone()
            };
            assert_eq!(c.rfc6381(), want);
        }
    }

    /// Found by the `hvcc` fuzz target: a conformance window near 2^32
    /// overflowed `sub_w * (left + right)`.
    #[test]
    fn huge_sps_fields_are_errors() {
        let record = [
            0x01, 0xfa, 0xfa, 0x74, 0xfa, 0xfa, 0xfa, 0xfa, 0x0a, 0x05, 0x05, 0xff, 0x00, 0x3a, 0x03, 0x00, 0x00, 0x00,
            0x01, 0x9b, 0x00, 0xd7, 0x00, 0x00, 0x00, 0x01, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa,
        ];
        assert!(HevcConfig::from_record(Bytes::copy_from_slice(&record)).is_err());
    }

    #[test]
    fn garbage_never_panics() {
        let mut garbage = crate::test_vectors::Garbage::new(0x9e37_79b9);
        for len in 0..200 {
            let bytes = garbage.bytes(len);
            let _ = parse_sps(&bytes);
            let mut record = bytes.clone();
            if !record.is_empty() {
                record[0] = 1;
            }
            let _ = HevcConfig::from_record(Bytes::from(record));
        }
    }
}
