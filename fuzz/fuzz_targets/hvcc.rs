//! `HEVCDecoderConfigurationRecord` (hvcC) and the H.265 SPS it carries.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use media::HevcConfig;

fuzz_target!(|data: &[u8]| {
    if let Ok(config) = HevcConfig::from_record(Bytes::copy_from_slice(data)) {
        let _ = config.rfc6381();
    }
    // The SPS parser on its own, as `from_parameter_sets` calls it.
    let _ = media::hevc::parse_sps(data);
});
