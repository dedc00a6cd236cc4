//! Opus in TS (ETSI TS 102 366 Annex style, as FFmpeg muxes it): each
//! access unit has a control header (0x7FE prefix, trim flags, size) before
//! the Opus packet; the PMT's descriptor gives the channel count, from
//! which we write the `OpusHead` the audio stage needs.

use bytes::Bytes;

/// The `OpusHead` (RFC 7845 5.1) of a mono or stereo stream (mapping family 0).
pub(crate) fn opus_head(channels: u8) -> Option<Bytes> {
    if !(1..=2).contains(&channels) {
        return None;
    }
    let mut head = b"OpusHead".to_vec();
    head.extend_from_slice(&[1, channels]);
    head.extend_from_slice(&0u16.to_le_bytes()); // pre-skip: TS carries trims in the control header
    head.extend_from_slice(&48_000u32.to_le_bytes());
    head.extend_from_slice(&[0, 0, 0]); // output gain, mapping family 0
    Some(Bytes::from(head))
}

/// The Opus packets of a PES payload; stops at the first damaged access unit
/// (the returned flag says whether one was).
pub(crate) fn read_packets(payload: &Bytes) -> (Vec<Bytes>, bool) {
    let mut packets = Vec::new();
    let mut pos = 0;
    while pos < payload.len() {
        match read_one(&payload[pos..]) {
            Some((start, len)) => {
                packets.push(payload.slice(pos + start..pos + start + len));
                pos += start + len;
            }
            None => return (packets, true),
        }
    }
    (packets, false)
}

/// (offset of the packet, its length) of the access unit at the start of `b`.
fn read_one(b: &[u8]) -> Option<(usize, usize)> {
    if b.len() < 3 || b[0] != 0x7f || b[1] & 0xe0 != 0xe0 {
        return None;
    }
    let (start_trim, end_trim, extension) = (b[1] & 0x10 != 0, b[1] & 0x08 != 0, b[1] & 0x04 != 0);
    let mut pos = 2;
    let mut size = 0usize;
    loop {
        let byte = *b.get(pos)?;
        pos += 1;
        size += byte as usize;
        if byte != 0xff {
            break;
        }
    }
    pos += 2 * (start_trim as usize + end_trim as usize);
    if extension {
        pos += 1 + *b.get(pos)? as usize;
    }
    (pos + size <= b.len()).then_some((pos, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_after_control_headers() {
        let mut payload = vec![0x7f, 0xe0, 3, 0xa1, 0xa2, 0xa3];
        payload.extend_from_slice(&[0x7f, 0xf0, 0xff, 1, 0, 0x10]); // start trim, 256 bytes
        payload.extend(std::iter::repeat_n(7u8, 256));
        let (packets, damaged) = read_packets(&Bytes::from(payload));
        assert!(!damaged);
        assert_eq!(packets.iter().map(Bytes::len).collect::<Vec<_>>(), [3, 256]);
        assert_eq!(&packets[0][..], &[0xa1, 0xa2, 0xa3]);
        let (packets, damaged) = read_packets(&Bytes::from_static(&[0x7f, 0xe0, 9, 1]));
        assert!(packets.is_empty() && damaged);
        let head = opus_head(2).unwrap();
        assert!(media::OtherAudioConfig::from_opus_head(head).is_ok());
        assert_eq!(opus_head(6), None);
    }
}
