//! Depacketized WebRTC media through the WHIP demuxer; see `ingest::fuzzing::whip_media`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ingest::fuzzing::whip_media(data));
