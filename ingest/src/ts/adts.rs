//! ADTS frames (ISO/IEC 14496-3 1.A.2): each carries one raw AAC frame
//! behind a 7- or 9-byte header from which we build the AudioSpecificConfig
//! that `media` (and the CMAF `esds`) needs.

use bytes::Bytes;

/// One raw AAC frame and the configuration its header describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AdtsFrame {
    /// The AudioSpecificConfig (2 bytes) of the header.
    pub asc: [u8; 2],
    pub data: Bytes,
}

/// Why ADTS bytes were skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AdtsError {
    /// No sync word where a frame should start.
    Sync,
    /// A frame length beyond the bytes left, or shorter than its header.
    Length,
    /// More than one raw data block in a frame (never seen from encoders).
    Blocks,
}

/// Splits a PES payload into its ADTS frames; stops at the first damaged one.
pub(crate) fn read_frames(payload: &Bytes) -> (Vec<AdtsFrame>, Option<AdtsError>) {
    let mut frames = Vec::new();
    let mut pos = 0;
    while pos < payload.len() {
        match read_frame(&payload[pos..]) {
            Ok((header_len, frame_len, asc)) => {
                frames.push(AdtsFrame { asc, data: payload.slice(pos + header_len..pos + frame_len) });
                pos += frame_len;
            }
            Err(err) => return (frames, Some(err)),
        }
    }
    (frames, None)
}

/// (header length, frame length, AudioSpecificConfig) of the frame at the start of `b`.
fn read_frame(b: &[u8]) -> Result<(usize, usize, [u8; 2]), AdtsError> {
    if b.len() < 7 {
        return Err(AdtsError::Length);
    }
    if b[0] != 0xff || b[1] & 0xf6 != 0xf0 {
        return Err(AdtsError::Sync);
    }
    let protection_absent = b[1] & 1 == 1;
    let profile = b[2] >> 6;
    let frequency_index = (b[2] >> 2) & 0x0f;
    let channels = ((b[2] & 1) << 2) | (b[3] >> 6);
    let frame_len = (((b[3] & 0x03) as usize) << 11) | ((b[4] as usize) << 3) | ((b[5] as usize) >> 5);
    let blocks = b[6] & 0x03;
    let header_len = if protection_absent { 7 } else { 9 };
    if frame_len <= header_len || frame_len > b.len() {
        return Err(AdtsError::Length);
    }
    if blocks != 0 {
        return Err(AdtsError::Blocks);
    }
    let object_type = profile + 1;
    let asc = [(object_type << 3) | (frequency_index >> 1), ((frequency_index & 1) << 7) | (channels << 3)];
    Ok((header_len, frame_len, asc))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An ADTS frame (AAC-LC, 48 kHz, stereo, no CRC) around `raw`.
    pub(crate) fn adts(raw: &[u8]) -> Vec<u8> {
        let len = raw.len() + 7;
        let mut f = vec![0xff, 0xf1, (1 << 6) | (3 << 2), (2 << 6) | (len >> 11) as u8, (len >> 3) as u8];
        f.push(((len as u8 & 7) << 5) | 0x1f);
        f.push(0xfc);
        f.extend_from_slice(raw);
        f
    }

    #[test]
    fn frames_and_config() {
        let payload = Bytes::from([adts(&[1, 2, 3]), adts(&[4, 5])].concat());
        let (frames, err) = read_frames(&payload);
        assert_eq!(err, None);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].asc, [0x11, 0x90], "AAC-LC 48 kHz stereo");
        assert_eq!(&frames[1].data[..], &[4, 5]);
        let config = media::AacConfig::from_asc(Bytes::copy_from_slice(&frames[0].asc)).unwrap();
        assert_eq!((config.sample_rate, config.channels), (48_000, 2));
    }

    #[test]
    fn damage_stops_the_split() {
        let good = adts(&[1, 2, 3]);
        let mut long = adts(&[9]);
        long[4] = 0xff; // a length past the end
        let cases: [(Vec<u8>, usize, Option<AdtsError>); 4] = [
            ([good.clone(), vec![0x12, 0x34]].concat(), 1, Some(AdtsError::Length)),
            ([good.clone(), vec![0; 9]].concat(), 1, Some(AdtsError::Sync)),
            ([good.clone(), long].concat(), 1, Some(AdtsError::Length)),
            (good[..5].to_vec(), 0, Some(AdtsError::Length)),
        ];
        for (bytes, n, err) in cases {
            let (frames, got) = read_frames(&Bytes::from(bytes));
            assert_eq!((frames.len(), got), (n, err));
        }
    }
}
