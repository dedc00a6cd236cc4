//! WHIP offers (SDP) as the server answers them; see `ingest::fuzzing::whip_offer`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ingest::fuzzing::whip_offer(data));
