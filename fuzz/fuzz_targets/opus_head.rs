//! Opus as Enhanced RTMP carries it: the `OpusHead` that starts the track, and
//! the duration read from a packet's TOC.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use media::OtherAudioConfig;

fuzz_target!(|data: &[u8]| {
    if let Ok(config) = OtherAudioConfig::from_opus_head(Bytes::copy_from_slice(data)) {
        assert_eq!(config.sample_rate, 48_000);
        assert!(config.channels > 0);
    }
    if let Some(samples) = media::opus::packet_samples(data) {
        assert!((1..=5_760).contains(&samples), "{samples} samples in one packet");
    }
});
