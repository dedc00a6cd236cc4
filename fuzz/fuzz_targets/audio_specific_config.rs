//! AAC `AudioSpecificConfig`: what an RTMP publisher sends as its AAC sequence header.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use media::AacConfig;

fuzz_target!(|data: &[u8]| {
    if let Ok(config) = AacConfig::from_asc(Bytes::copy_from_slice(data)) {
        let _ = config.rfc6381();
    }
});
