//! PES packet headers (ISO/IEC 13818-1 2.4.3.6): where the payload starts
//! and its 33-bit PTS/DTS.

/// The header fields of one PES packet we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PesHeader {
    /// Raw 33-bit presentation time (90 kHz).
    pub pts: Option<i64>,
    /// Raw 33-bit decode time; `None` when it equals the PTS.
    pub dts: Option<i64>,
    /// Offset of the elementary stream bytes in the packet.
    pub payload_offset: usize,
    /// `PES_packet_length` (bytes after the length field; 0: unbounded, video).
    pub packet_length: usize,
}

/// Why a PES header was unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PesError {
    Truncated,
    NoStartCode,
}

/// Reads the header at the start of a PES packet.
pub(crate) fn read_header(pes: &[u8]) -> Result<PesHeader, PesError> {
    if pes.len() < 6 {
        return Err(PesError::Truncated);
    }
    if pes[..3] != [0, 0, 1] {
        return Err(PesError::NoStartCode);
    }
    let stream_id = pes[3];
    let packet_length = u16::from_be_bytes([pes[4], pes[5]]) as usize;
    // Streams without the optional header (padding, private_stream_2, ...): payload right after.
    if matches!(stream_id, 0xbc | 0xbe | 0xbf | 0xf0 | 0xf1 | 0xf2 | 0xf8 | 0xff) {
        return Ok(PesHeader { pts: None, dts: None, payload_offset: 6, packet_length });
    }
    if pes.len() < 9 {
        return Err(PesError::Truncated);
    }
    let flags = pes[7] >> 6;
    let header_length = pes[8] as usize;
    let payload_offset = 9 + header_length;
    if pes.len() < payload_offset {
        return Err(PesError::Truncated);
    }
    let fields = &pes[9..payload_offset];
    let pts = if flags & 0b10 != 0 { fields.get(..5).map(timestamp) } else { None };
    let dts = if flags == 0b11 { fields.get(5..10).map(timestamp) } else { None };
    if flags & 0b10 != 0 && pts.is_none() || flags == 0b11 && dts.is_none() {
        return Err(PesError::Truncated);
    }
    Ok(PesHeader { pts, dts, payload_offset, packet_length })
}

/// A 33-bit time in the 5-byte PES encoding (marker bits ignored).
fn timestamp(b: &[u8]) -> i64 {
    (((b[0] as i64 >> 1) & 0x07) << 30)
        | ((b[1] as i64) << 22)
        | (((b[2] as i64) >> 1) << 15)
        | ((b[3] as i64) << 7)
        | ((b[4] as i64) >> 1)
}

#[cfg(test)]
pub(crate) fn encode_timestamp(prefix: u8, t: i64) -> [u8; 5] {
    [
        (prefix << 4) | (((t >> 30) as u8 & 0x07) << 1) | 1,
        (t >> 22) as u8,
        (((t >> 15) as u8) << 1) | 1,
        (t >> 7) as u8,
        ((t as u8) << 1) | 1,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pts: Option<i64>, dts: Option<i64>) -> Vec<u8> {
        let flags = match (pts, dts) {
            (Some(_), Some(_)) => 0xc0,
            (Some(_), None) => 0x80,
            _ => 0,
        };
        let mut fields = Vec::new();
        if let Some(p) = pts {
            fields.extend_from_slice(&encode_timestamp(if dts.is_some() { 3 } else { 2 }, p));
        }
        if let Some(d) = dts {
            fields.extend_from_slice(&encode_timestamp(1, d));
        }
        let mut pes = vec![0, 0, 1, 0xe0, 0, 0, 0x80, flags, fields.len() as u8];
        pes.extend_from_slice(&fields);
        pes.extend_from_slice(b"payload");
        pes
    }

    #[test]
    fn times_and_offsets() {
        let max = (1i64 << 33) - 1;
        let cases = [(Some(0), None), (Some(900_000), Some(896_400)), (Some(max), Some(max - 3003)), (None, None)];
        for (pts, dts) in cases {
            let pes = header(pts, dts);
            let got = read_header(&pes).unwrap();
            assert_eq!((got.pts, got.dts), (pts, dts));
            assert_eq!(&pes[got.payload_offset..], b"payload");
        }
    }

    #[test]
    fn truncations_are_errors_not_panics() {
        let pes = header(Some(1), Some(1));
        for len in 0..pes.len() - 7 {
            assert!(read_header(&pes[..len]).is_err(), "{len}");
        }
        assert_eq!(read_header(&[0, 0, 2, 0xe0, 0, 0, 0, 0, 0]), Err(PesError::NoStartCode));
    }
}
