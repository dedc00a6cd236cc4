//! SRT streamids through `parse_stream_id`; see `ingest::fuzzing::srt_stream_id`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ingest::fuzzing::srt_stream_id(data));
