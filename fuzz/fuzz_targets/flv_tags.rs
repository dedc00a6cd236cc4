//! FLV audio, video and data tags (legacy and Enhanced RTMP) through the tag
//! readers and the demuxer, fed as an FLV file; see `ingest::fuzzing::flv_tags`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ingest::fuzzing::flv_tags(data));
