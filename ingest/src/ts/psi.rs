//! Program-specific information (ISO/IEC 13818-1 2.4.4): the PAT names the
//! PMT's PID, the PMT names each elementary stream's PID and type. Sections
//! longer than one TS packet are not reassembled (PAT and PMT of
//! encoders fit in one); the CRC is not checked (a damaged table is
//! repeated within 100 ms, and a wrong stream type only makes us skip it).

/// An elementary stream type we carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum StreamType {
    H264,
    Hevc,
    AacAdts,
    MpegAudio,
    /// Private data with the `Opus` registration descriptor (ETSI TS 102 366 style).
    Opus,
}

/// One elementary stream the PMT lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Elementary {
    pub pid: u16,
    /// `None`: a type we do not carry (the raw value is kept for the warning).
    pub stream_type: Result<StreamType, u8>,
    /// Opus: channel count from the extension descriptor (default 2).
    pub channels: u8,
}

/// The payload of a section (after `pointer_field`), checked for its length.
fn section(payload: &[u8], table_id: u8) -> Option<&[u8]> {
    let pointer = *payload.first()? as usize;
    let s = payload.get(1 + pointer..)?;
    if *s.first()? != table_id {
        return None;
    }
    let length = (u16::from_be_bytes([*s.get(1)?, *s.get(2)?]) & 0x0fff) as usize;
    // table header (8 bytes after table_id and length) ... CRC (4)
    let body = s.get(3..3 + length)?;
    if body.len() < 9 {
        return None;
    }
    Some(&body[5..body.len() - 4])
}

/// The PMT PID of the first program in a PAT packet's payload.
pub(crate) fn read_pat(payload: &[u8]) -> Option<u16> {
    section(payload, 0x00)?
        .chunks_exact(4)
        .find(|entry| u16::from_be_bytes([entry[0], entry[1]]) != 0)
        .map(|entry| u16::from_be_bytes([entry[2], entry[3]]) & 0x1fff)
}

/// The elementary streams of a PMT packet's payload.
pub(crate) fn read_pmt(payload: &[u8]) -> Option<Vec<Elementary>> {
    let body = section(payload, 0x02)?;
    let program_info_length = (u16::from_be_bytes([*body.get(2)?, *body.get(3)?]) & 0x0fff) as usize;
    let mut rest = body.get(4 + program_info_length..)?;
    let mut streams = Vec::new();
    while rest.len() >= 5 {
        let raw_type = rest[0];
        let pid = u16::from_be_bytes([rest[1], rest[2]]) & 0x1fff;
        let info_length = (u16::from_be_bytes([rest[3], rest[4]]) & 0x0fff) as usize;
        let descriptors = rest.get(5..5 + info_length)?;
        rest = &rest[5 + info_length..];
        let (stream_type, channels) = classify(raw_type, descriptors);
        streams.push(Elementary { pid, stream_type, channels });
    }
    Some(streams)
}

fn classify(raw_type: u8, descriptors: &[u8]) -> (Result<StreamType, u8>, u8) {
    let kind = match raw_type {
        0x1b => Ok(StreamType::H264),
        0x24 => Ok(StreamType::Hevc),
        0x0f => Ok(StreamType::AacAdts),
        0x03 | 0x04 => Ok(StreamType::MpegAudio),
        0x06 if registration(descriptors) == Some(*b"Opus") => Ok(StreamType::Opus),
        other => Err(other),
    };
    (kind, opus_channels(descriptors).unwrap_or(2))
}

fn descriptors(mut d: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let (&tag, &len) = (d.first()?, d.get(1)?);
        let body = d.get(2..2 + len as usize)?;
        d = &d[2 + len as usize..];
        Some((tag, body))
    })
}

fn registration(d: &[u8]) -> Option<[u8; 4]> {
    descriptors(d).find(|(tag, body)| *tag == 0x05 && body.len() >= 4).map(|(_, b)| [b[0], b[1], b[2], b[3]])
}

/// The channel count of the Opus audio descriptor (extension tag 0x80):
/// `channel_config_code` 1..=8 with RTP mapping (1, 2) or Vorbis order.
fn opus_channels(d: &[u8]) -> Option<u8> {
    descriptors(d)
        .find(|(tag, body)| *tag == 0x7f && body.len() >= 2 && body[0] == 0x80)
        .map(|(_, body)| body[1])
        .filter(|code| (1..=8).contains(code))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A PAT payload (with pointer field) naming one program at `pmt_pid`.
    pub(crate) fn pat(pmt_pid: u16) -> Vec<u8> {
        let mut s = vec![0, 0x00, 0xb0, 13, 0, 1, 0xc1, 0, 0, 0, 1];
        s.extend_from_slice(&(0xe000 | pmt_pid).to_be_bytes());
        s.extend_from_slice(&[0; 4]); // CRC, not checked
        s
    }

    /// A PMT payload listing (stream_type, pid, descriptors).
    pub(crate) fn pmt(streams: &[(u8, u16, &[u8])]) -> Vec<u8> {
        let mut body = vec![0, 1, 0xc1, 0, 0, 0xe1, 0x00, 0xf0, 0];
        for (t, pid, d) in streams {
            body.push(*t);
            body.extend_from_slice(&(0xe000 | pid).to_be_bytes());
            body.extend_from_slice(&(0xf000 | d.len() as u16).to_be_bytes());
            body.extend_from_slice(d);
        }
        body.extend_from_slice(&[0; 4]);
        let mut s = vec![0, 0x02];
        s.extend_from_slice(&(0xb000 | body.len() as u16).to_be_bytes());
        s.extend_from_slice(&body);
        s
    }

    #[test]
    fn tables() {
        assert_eq!(read_pat(&pat(0x1000)), Some(0x1000));
        let opus = [0x05, 4, b'O', b'p', b'u', b's', 0x7f, 2, 0x80, 1];
        let streams =
            read_pmt(&pmt(&[(0x1b, 256, &[]), (0x0f, 257, &[]), (0x06, 258, &opus), (0x86, 259, &[])])).unwrap();
        let got: Vec<_> = streams.iter().map(|e| (e.pid, e.stream_type)).collect();
        assert_eq!(
            got,
            [
                (256, Ok(StreamType::H264)),
                (257, Ok(StreamType::AacAdts)),
                (258, Ok(StreamType::Opus)),
                (259, Err(0x86))
            ]
        );
        assert_eq!(streams[2].channels, 1);
    }

    #[test]
    fn damaged_tables_are_none() {
        let p = pmt(&[(0x1b, 256, &[])]);
        for len in 0..p.len() - 4 {
            assert!(read_pmt(&p[..len]).is_none_or(|s| s.is_empty()), "{len}");
        }
        assert_eq!(read_pat(&[200]), None);
        assert_eq!(read_pmt(&pat(1)), None, "a PAT is not a PMT");
    }
}
