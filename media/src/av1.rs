//! AV1 configuration: the `AV1CodecConfigurationRecord` (`av1C`, AV1 in
//! ISOBMFF 2.3) read for the RFC 6381-style `av01.` string, with the picture
//! size from the sequence header OBU it carries; and the OBU walk that drops
//! temporal delimiters and padding, which samples in MP4 must not carry.

use bytes::{BufMut, Bytes, BytesMut};

use crate::bit_reader::BitReader;
use crate::codec_error::CodecError;

const OBU_SEQUENCE_HEADER: u8 = 1;
const OBU_TEMPORAL_DELIMITER: u8 = 2;
const OBU_PADDING: u8 = 15;

/// AV1 configuration: the raw record plus what we read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Av1Config {
    /// The record exactly as received, written verbatim into the `av1C` box.
    pub record: Bytes,
    pub profile: u8,
    pub level_idx: u8,
    pub tier_high: bool,
    /// 8, 10 or 12.
    pub bit_depth: u8,
    pub monochrome: bool,
    pub width: u32,
    pub height: u32,
}

impl Av1Config {
    /// Parses an `AV1CodecConfigurationRecord`; the picture size comes from
    /// the sequence header OBU among its `configOBUs` (a record without one
    /// cannot be packaged: players need the size before the first frame).
    pub fn from_record(record: Bytes) -> Result<Self, CodecError> {
        let r = &record[..];
        if r.len() < 4 {
            return Err(CodecError::Av1("av1C shorter than 4 bytes"));
        }
        if r[0] != 0x81 {
            return Err(CodecError::Av1("av1C marker or version is not 1"));
        }
        let high_bitdepth = r[2] & 0x40 != 0;
        let twelve_bit = r[2] & 0x20 != 0;
        let mut sequence = None;
        for obu in Obus::new(&r[4..]) {
            let obu = obu?;
            if obu.kind == OBU_SEQUENCE_HEADER {
                sequence = Some(parse_sequence_header(obu.payload)?);
                break;
            }
        }
        let (width, height) = sequence.ok_or(CodecError::Av1("av1C carries no sequence header OBU"))?;
        Ok(Self {
            profile: r[1] >> 5,
            level_idx: r[1] & 0x1f,
            tier_high: r[2] & 0x80 != 0,
            bit_depth: match (high_bitdepth, twelve_bit) {
                (false, _) => 8,
                (true, false) => 10,
                (true, true) => 12,
            },
            monochrome: r[2] & 0x10 != 0,
            width,
            height,
            record,
        })
    }

    /// `av01.<profile>.<level><tier>.<bit depth>` (the AV1 codec string, short form).
    pub fn rfc6381(&self) -> String {
        let tier = if self.tier_high { 'H' } else { 'M' };
        format!("av01.{}.{:02}{tier}.{:02}", self.profile, self.level_idx, self.bit_depth)
    }
}

/// One OBU: its type and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Obu<'a> {
    pub kind: u8,
    /// The whole OBU, header included.
    pub bytes: &'a [u8],
    pub payload: &'a [u8],
}

/// The OBUs of a low-overhead bitstream (each with `obu_has_size_field`,
/// except that the last may run to the end).
pub struct Obus<'a> {
    data: &'a [u8],
    failed: bool,
}

impl<'a> Obus<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, failed: false }
    }
}

impl<'a> Iterator for Obus<'a> {
    type Item = Result<Obu<'a>, CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.data.is_empty() || self.failed {
            return None;
        }
        let item = read_obu(self.data);
        match item {
            Ok((obu, rest)) => {
                self.data = rest;
                Some(Ok(obu))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

fn read_obu(data: &[u8]) -> Result<(Obu<'_>, &[u8]), CodecError> {
    let header = data[0];
    if header & 0x80 != 0 {
        return Err(CodecError::Av1("OBU forbidden bit set"));
    }
    let kind = (header >> 3) & 0x0f;
    let has_extension = header & 0x04 != 0;
    let has_size = header & 0x02 != 0;
    let mut pos = 1 + has_extension as usize;
    if data.len() < pos {
        return Err(CodecError::Av1("OBU header truncated"));
    }
    let size = if has_size {
        let (size, used) = leb128(&data[pos..])?;
        pos += used;
        usize::try_from(size).map_err(|_| CodecError::Av1("OBU size too large"))?
    } else {
        data.len() - pos
    };
    let end = pos.checked_add(size).filter(|&end| end <= data.len()).ok_or(CodecError::Av1("OBU truncated"))?;
    Ok((Obu { kind, bytes: &data[..end], payload: &data[pos..end] }, &data[end..]))
}

/// An unsigned LEB128 value (at most 8 bytes, as AV1 allows) and its length.
fn leb128(data: &[u8]) -> Result<(u64, usize), CodecError> {
    let mut value = 0u64;
    for (i, &byte) in data.iter().take(8).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(CodecError::Av1("OBU size (leb128) truncated"))
}

/// A temporal unit with its temporal delimiter and padding OBUs removed (the
/// same bytes, uncopied, when there are none), or why its OBUs do not parse.
pub fn without_delimiters(data: Bytes) -> Result<Bytes, CodecError> {
    let mut keep = Vec::new();
    let mut dropped = false;
    for obu in Obus::new(&data) {
        let obu = obu?;
        if matches!(obu.kind, OBU_TEMPORAL_DELIMITER | OBU_PADDING) {
            dropped = true;
        } else {
            keep.push(obu.bytes);
        }
    }
    if keep.is_empty() {
        return Err(CodecError::Av1("temporal unit without frame OBUs"));
    }
    if !dropped {
        return Ok(data);
    }
    let mut out = BytesMut::with_capacity(data.len());
    for bytes in keep {
        out.put_slice(bytes);
    }
    Ok(out.freeze())
}

/// The maximum frame size a sequence header OBU declares (AV1 5.5.1).
fn parse_sequence_header(payload: &[u8]) -> Result<(u32, u32), CodecError> {
    let err = || CodecError::Av1("sequence header truncated");
    let mut b = BitReader::new(payload);
    b.bits(3).ok_or_else(err)?; // seq_profile
    b.bits(1).ok_or_else(err)?; // still_picture
    let reduced = b.bits(1).ok_or_else(err)? == 1;
    if reduced {
        b.bits(5).ok_or_else(err)?; // seq_level_idx[0]
    } else {
        let timing_info = b.bits(1).ok_or_else(err)? == 1;
        let mut decoder_model = false;
        let mut buffer_delay_length = 0;
        if timing_info {
            b.bits(32).ok_or_else(err)?; // num_units_in_display_tick
            b.bits(32).ok_or_else(err)?; // time_scale
            if b.bits(1).ok_or_else(err)? == 1 {
                uvlc(&mut b).ok_or_else(err)?; // num_ticks_per_picture_minus_1
            }
            decoder_model = b.bits(1).ok_or_else(err)? == 1;
            if decoder_model {
                buffer_delay_length = b.bits(5).ok_or_else(err)? + 1;
                b.bits(32).ok_or_else(err)?; // num_units_in_decoding_tick
                b.bits(5).ok_or_else(err)?; // buffer_removal_time_length_minus_1
                b.bits(5).ok_or_else(err)?; // frame_presentation_time_length_minus_1
            }
        }
        let initial_display_delay = b.bits(1).ok_or_else(err)? == 1;
        let operating_points = b.bits(5).ok_or_else(err)? + 1;
        for _ in 0..operating_points {
            b.bits(12).ok_or_else(err)?; // operating_point_idc
            let level = b.bits(5).ok_or_else(err)?;
            if level > 7 {
                b.bits(1).ok_or_else(err)?; // seq_tier
            }
            if decoder_model && b.bits(1).ok_or_else(err)? == 1 {
                b.bits(buffer_delay_length).ok_or_else(err)?; // decoder_buffer_delay
                b.bits(buffer_delay_length).ok_or_else(err)?; // encoder_buffer_delay
                b.bits(1).ok_or_else(err)?; // low_delay_mode_flag
            }
            if initial_display_delay && b.bits(1).ok_or_else(err)? == 1 {
                b.bits(4).ok_or_else(err)?; // initial_display_delay_minus_1
            }
        }
    }
    let width_bits = b.bits(4).ok_or_else(err)? + 1;
    let height_bits = b.bits(4).ok_or_else(err)? + 1;
    let width = b.bits(width_bits).ok_or_else(err)? as u64 + 1;
    let height = b.bits(height_bits).ok_or_else(err)? as u64 + 1;
    Ok((width as u32, height as u32))
}

/// AV1's `uvlc()` (4.10.3).
fn uvlc(b: &mut BitReader<'_>) -> Option<u32> {
    let mut zeros = 0;
    while b.bits(1)? == 0 {
        zeros += 1;
        if zeros >= 32 {
            return Some(u32::MAX);
        }
    }
    Some(((1u64 << zeros) - 1 + b.bits(zeros)? as u64).min(u32::MAX as u64) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_vectors::AV1C_320X180;

    #[test]
    fn reads_a_record_svt_av1_wrote() {
        let av1 = Av1Config::from_record(Bytes::from_static(AV1C_320X180)).unwrap();
        assert_eq!((av1.width, av1.height), (320, 180));
        assert_eq!((av1.profile, av1.level_idx, av1.tier_high, av1.bit_depth, av1.monochrome), (0, 0, false, 8, false));
        assert_eq!(av1.rfc6381(), "av01.0.00M.08");
    }

    #[test]
    fn record_errors() {
        let cases: [(&[u8], &str); 4] = [
            (&[0x81, 0, 0x0c], "av1C shorter than 4 bytes"),
            (&[0x01, 0, 0x0c, 0], "av1C marker or version is not 1"),
            (&[0x81, 0, 0x0c, 0], "av1C carries no sequence header OBU"),
            (&[0x81, 0, 0x0c, 0, 0x0a, 0x0b, 2], "OBU truncated"),
        ];
        for (record, want) in cases {
            let got = Av1Config::from_record(Bytes::copy_from_slice(record)).unwrap_err();
            assert_eq!(got, CodecError::Av1(want), "{record:?}");
        }
    }

    #[test]
    fn temporal_delimiters_and_padding_are_dropped() {
        // A temporal delimiter, a frame OBU of 2 bytes, padding of 1 byte.
        let unit = Bytes::from_static(&[0x12, 0x00, 0x32, 0x02, 0xaa, 0xbb, 0x7a, 0x01, 0x00]);
        assert_eq!(&without_delimiters(unit).unwrap()[..], &[0x32, 0x02, 0xaa, 0xbb]);
        let clean = Bytes::from_static(&[0x32, 0x02, 0xaa, 0xbb]);
        assert_eq!(without_delimiters(clean.clone()).unwrap().as_ptr(), clean.as_ptr(), "not copied");
        // A last OBU without a size field runs to the end.
        assert_eq!(&without_delimiters(Bytes::from_static(&[0x12, 0x00, 0x30, 1, 2])).unwrap()[..], &[0x30, 1, 2]);
        for bad in [&[0x12, 0x00][..], &[0x32, 0x05, 1], &[0xb2, 0], &[0x32, 0xff, 0xff]] {
            assert!(without_delimiters(Bytes::copy_from_slice(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut garbage = crate::test_vectors::Garbage::new(0x9e37_79b9);
        for len in 0..200 {
            let bytes = garbage.bytes(len);
            let mut record = vec![0x81, 0, 0x0c, 0];
            record.extend_from_slice(&bytes);
            let _ = Av1Config::from_record(Bytes::from(record));
            let _ = without_delimiters(Bytes::from(bytes));
        }
    }
}
