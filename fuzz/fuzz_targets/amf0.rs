//! AMF0 command and data messages: the screen before scuffle-amf0, the
//! command reader and `onMetaData`; see `ingest::fuzzing::amf0`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ingest::fuzzing::amf0(data));
