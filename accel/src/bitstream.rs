//! Encoder output to the packager's shape: FFmpeg's H.264/HEVC encoders emit
//! Annex B (start codes) in packets and extradata; the packager wants an
//! `avcC`/`hvcC` record and 4-byte length-prefixed NAL units, with the
//! parameter sets only in the record (as `avc1`/`hvc1` require).

use bytes::{BufMut, Bytes, BytesMut};
use media::hevc::{HEVC_NAL_PPS, HEVC_NAL_SPS, HEVC_NAL_VPS};
use media::{AvcConfig, CodecConfig, CodecError, HevcConfig, VideoCodec};

/// Splits an Annex B byte stream into NAL units (start codes removed).
pub fn annexb_nals(data: &[u8]) -> Vec<&[u8]> {
    let mut nals = Vec::new();
    let mut i = 0;
    let mut start: Option<usize> = None;
    while i + 2 < data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            if let Some(s) = start {
                let mut end = i;
                while end > s && data[end - 1] == 0 {
                    end -= 1; // the leading zero of a 4-byte start code, or trailing zeros
                }
                nals.push(&data[s..end]);
            }
            i += 3;
            start = Some(i);
        } else {
            i += 1;
        }
    }
    if let Some(s) = start {
        if s < data.len() {
            nals.push(&data[s..]);
        }
    } else if !data.is_empty() {
        nals.push(data); // no start code at all: one bare NAL unit
    }
    nals.into_iter().filter(|n| !n.is_empty()).collect()
}

fn nal_type(codec: VideoCodec, nal: &[u8]) -> u8 {
    match codec {
        VideoCodec::H264 => nal[0] & 0x1f,
        VideoCodec::Hevc => (nal[0] >> 1) & 0x3f,
    }
}

fn is_parameter_set(codec: VideoCodec, nal: &[u8]) -> bool {
    match codec {
        VideoCodec::H264 => matches!(nal_type(codec, nal), 7 | 8),
        VideoCodec::Hevc => matches!(nal_type(codec, nal), HEVC_NAL_VPS | HEVC_NAL_SPS | HEVC_NAL_PPS),
    }
}

/// The decoder configuration from an encoder's extradata (Annex B parameter
/// sets, or already a record) or, failing that, from a keyframe's NAL units.
pub fn codec_config(codec: VideoCodec, data: &[u8]) -> Result<CodecConfig, CodecError> {
    if data.first() == Some(&1) {
        return match codec {
            VideoCodec::H264 => AvcConfig::from_record(Bytes::copy_from_slice(data)).map(CodecConfig::Avc),
            VideoCodec::Hevc => HevcConfig::from_record(Bytes::copy_from_slice(data)).map(CodecConfig::Hevc),
        };
    }
    let nals = annexb_nals(data);
    let of_type = |t: u8| -> Vec<Bytes> {
        nals.iter().filter(|n| nal_type(codec, n) == t).map(|n| Bytes::copy_from_slice(n)).collect()
    };
    match codec {
        VideoCodec::H264 => {
            let (sps, pps) = (of_type(7), of_type(8));
            let (Some(sps), Some(pps)) = (sps.first(), pps.first()) else { return Err(CodecError::AvcNoSps) };
            AvcConfig::from_parameter_sets(sps, pps).map(CodecConfig::Avc)
        }
        VideoCodec::Hevc => {
            HevcConfig::from_parameter_sets(&of_type(HEVC_NAL_VPS), &of_type(HEVC_NAL_SPS), &of_type(HEVC_NAL_PPS))
                .map(CodecConfig::Hevc)
        }
    }
}

/// Rewrites an Annex B access unit as 4-byte length-prefixed NAL units,
/// leaving out parameter sets (they are in the record) and access unit delimiters.
pub fn to_length_prefixed(codec: VideoCodec, annexb: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(annexb.len() + 16);
    for nal in annexb_nals(annexb) {
        let aud = match codec {
            VideoCodec::H264 => nal_type(codec, nal) == 9,
            VideoCodec::Hevc => nal_type(codec, nal) == 35,
        };
        if is_parameter_set(codec, nal) || aud {
            continue;
        }
        out.put_u32(nal.len() as u32);
        out.put_slice(nal);
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SPS and PPS of x264 for 640x360 High profile.
    const SPS: &[u8] = &[
        0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00,
        0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2d, 0x96,
    ];
    const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];

    #[test]
    fn splits_annexb_with_three_and_four_byte_start_codes() {
        let stream = [&[0, 0, 0, 1, 0x67, 1, 2][..], &[0, 0, 1, 0x68, 3], &[0, 0, 0, 1, 0x65, 0, 0, 3, 1, 9]].concat();
        assert_eq!(annexb_nals(&stream), [&[0x67, 1, 2][..], &[0x68, 3], &[0x65, 0, 0, 3, 1, 9]]);
        assert_eq!(annexb_nals(&[0x65, 1]), [&[0x65, 1][..]]);
        assert!(annexb_nals(&[]).is_empty());
        assert!(annexb_nals(&[0, 0, 1]).is_empty());
    }

    #[test]
    fn avc_config_from_annexb_extradata_and_access_units() {
        let extradata = [&[0, 0, 0, 1][..], SPS, &[0, 0, 0, 1], PPS].concat();
        let CodecConfig::Avc(avc) = codec_config(VideoCodec::H264, &extradata).unwrap() else { panic!() };
        assert_eq!((avc.width, avc.height), (640, 360));
        assert_eq!(avc.rfc6381(), "avc1.64001e");
        // A record passes through as is.
        assert_eq!(codec_config(VideoCodec::H264, &avc.record).unwrap(), CodecConfig::Avc(avc.clone()));

        let access_unit =
            [&[0, 0, 0, 1, 0x09, 0xf0][..], &[0, 0, 0, 1], SPS, &[0, 0, 1], PPS, &[0, 0, 1, 0x65, 0x88, 0x84]].concat();
        assert_eq!(&to_length_prefixed(VideoCodec::H264, &access_unit)[..], &[0, 0, 0, 3, 0x65, 0x88, 0x84]);
        assert_eq!(codec_config(VideoCodec::H264, &[0, 0, 1, 0x65]).unwrap_err(), CodecError::AvcNoSps);
    }

    #[test]
    fn hevc_parameter_sets_are_moved_into_the_record() {
        let vps: &[u8] = &[
            0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00,
            0x03, 0x00, 0x3c, 0x95, 0x94, 0x09,
        ];
        let sps: &[u8] = &[
            0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x3c,
            0xa0, 0x0a, 0x08, 0x0c, 0x1f, 0x3e, 0x59, 0x59, 0x52, 0x93, 0x0b, 0xc0, 0x5a, 0x02, 0x00, 0x00, 0x03, 0x00,
            0x02, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x10,
        ];
        let pps: &[u8] = &[0x44, 0x01, 0xc0, 0x73, 0xc1, 0x89];
        let idr: &[u8] = &[0x26, 0x01, 0xaf, 0x11];
        let stream = [&[0, 0, 0, 1][..], vps, &[0, 0, 0, 1], sps, &[0, 0, 0, 1], pps, &[0, 0, 0, 1], idr].concat();
        let CodecConfig::Hevc(hevc) = codec_config(VideoCodec::Hevc, &stream).unwrap() else { panic!() };
        assert_eq!((hevc.width, hevc.height), (320, 180));
        assert_eq!(&to_length_prefixed(VideoCodec::Hevc, &stream)[..], &[&[0, 0, 0, 4][..], idr].concat()[..]);
    }
}
