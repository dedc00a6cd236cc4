//! MPEG-TS from SRT callers through the TS demuxer; see `ingest::fuzzing::ts_stream`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ingest::fuzzing::ts_stream(data));
