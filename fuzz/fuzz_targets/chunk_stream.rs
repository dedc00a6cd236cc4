//! The RTMP chunk stream reader on its own (what follows the handshake),
//! before and after publish; see `ingest::fuzzing::chunk_stream`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ingest::fuzzing::chunk_stream(data));
