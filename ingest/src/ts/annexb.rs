//! H.264 and HEVC access units in Annex B byte stream form (start codes) ->
//! what `media` units carry (4-byte NAL lengths), with the parameter sets
//! taken out for the codec configuration and the keyframe flag read from
//! the NAL types.

use bytes::{BufMut, Bytes, BytesMut};

/// The video codecs TS carries for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VideoCodec {
    H264,
    Hevc,
}

/// One access unit split up.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct AccessUnit {
    /// Slices and SEI with 4-byte lengths; no AUD and no parameter sets.
    pub data: Bytes,
    /// Contains an IDR (H.264) or IRAP (HEVC) picture.
    pub keyframe: bool,
    /// Parameter sets in this unit, without start codes.
    pub vps: Vec<Bytes>,
    pub sps: Vec<Bytes>,
    pub pps: Vec<Bytes>,
}

/// The NAL units of an Annex B buffer, without start codes (trailing zero bytes trimmed).
pub(crate) fn nal_units(data: &Bytes) -> impl Iterator<Item = Bytes> + '_ {
    let mut pos = first_start(data, 0);
    std::iter::from_fn(move || {
        loop {
            let start = pos?;
            let next = first_start(data, start);
            let end = next.map_or(data.len(), |n| n - 3);
            pos = next;
            let mut nal = &data[start..end];
            while let [rest @ .., 0] = nal {
                nal = rest;
            }
            if !nal.is_empty() {
                return Some(data.slice_ref(nal));
            }
        }
    })
}

/// The offset after the next `00 00 01` at or after `from`.
fn first_start(data: &[u8], from: usize) -> Option<usize> {
    data.get(from..)?.windows(3).position(|w| w == [0, 0, 1]).map(|i| from + i + 3)
}

/// Splits an access unit; `None` when it holds no picture data.
pub(crate) fn read_access_unit(codec: VideoCodec, data: &Bytes) -> AccessUnit {
    let mut unit = AccessUnit::default();
    let mut out = BytesMut::with_capacity(data.len() + 16);
    for nal in nal_units(data) {
        match codec {
            VideoCodec::H264 => match nal[0] & 0x1f {
                7 => unit.sps.push(nal),
                8 => unit.pps.push(nal),
                9 => {}
                t => {
                    unit.keyframe |= t == 5;
                    append(&mut out, &nal);
                }
            },
            VideoCodec::Hevc => match (nal[0] >> 1) & 0x3f {
                32 => unit.vps.push(nal),
                33 => unit.sps.push(nal),
                34 => unit.pps.push(nal),
                35 => {}
                t => {
                    unit.keyframe |= (16..=21).contains(&t);
                    append(&mut out, &nal);
                }
            },
        }
    }
    unit.data = out.freeze();
    unit
}

fn append(out: &mut BytesMut, nal: &[u8]) {
    out.put_u32(nal.len() as u32);
    out.put_slice(nal);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h264_unit_split() {
        let stream = Bytes::from_static(&[
            0, 0, 0, 1, 0x09, 0xf0, // AUD
            0, 0, 0, 1, 0x67, 1, 2, 3, // SPS
            0, 0, 1, 0x68, 4, // PPS
            0, 0, 1, 0x06, 5, 0, // SEI with a trailing zero byte
            0, 0, 1, 0x65, 7, 8, 9, // IDR slice
        ]);
        let unit = read_access_unit(VideoCodec::H264, &stream);
        assert!(unit.keyframe);
        assert_eq!(unit.sps, [Bytes::from_static(&[0x67, 1, 2, 3])]);
        assert_eq!(unit.pps, [Bytes::from_static(&[0x68, 4])]);
        assert_eq!(&unit.data[..], &[0, 0, 0, 2, 0x06, 5, 0, 0, 0, 4, 0x65, 7, 8, 9]);
        let p = read_access_unit(VideoCodec::H264, &Bytes::from_static(&[0, 0, 1, 0x41, 1]));
        assert!(!p.keyframe);
        assert_eq!(&p.data[..], &[0, 0, 0, 2, 0x41, 1]);
    }

    #[test]
    fn hevc_unit_split() {
        let stream = Bytes::from_static(&[
            0, 0, 1, 0x46, 1, 0x50, // AUD
            0, 0, 1, 0x40, 1, 0xaa, // VPS
            0, 0, 1, 0x42, 1, 0xbb, // SPS
            0, 0, 1, 0x44, 1, 0xcc, // PPS
            0, 0, 1, 0x26, 1, 0xdd, // IDR_W_RADL (19)
        ]);
        let unit = read_access_unit(VideoCodec::Hevc, &stream);
        assert!(unit.keyframe);
        assert_eq!((unit.vps.len(), unit.sps.len(), unit.pps.len()), (1, 1, 1));
        assert_eq!(&unit.data[..], &[0, 0, 0, 3, 0x26, 1, 0xdd]);
    }

    #[test]
    fn garbage_has_no_units() {
        for data in [&[][..], &[0, 0], &[1, 2, 3, 4], &[0, 0, 1], &[0, 0, 1, 0, 0, 0]] {
            let unit = read_access_unit(VideoCodec::H264, &Bytes::copy_from_slice(data));
            assert!(unit.data.is_empty(), "{data:?}");
        }
    }
}
