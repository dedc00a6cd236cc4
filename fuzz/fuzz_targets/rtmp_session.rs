//! A whole RTMP connection after a valid handshake: chunk stream, commands,
//! publish, FLV demuxing, delivery, deadlines; see `ingest::fuzzing::session`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ingest::fuzzing::session(data));
