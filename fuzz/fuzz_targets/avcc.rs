//! `AVCDecoderConfigurationRecord` (avcC) and the SPS it carries: what an RTMP
//! publisher sends as its AVC sequence header.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use media::AvcConfig;

fuzz_target!(|data: &[u8]| {
    if let Ok(config) = AvcConfig::from_record(Bytes::copy_from_slice(data)) {
        let _ = config.rfc6381();
    }
});
