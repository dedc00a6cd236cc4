//! A recording's index file (`appliance/src/recordings/index.rs`, one line per
//! segment with its checksum), as read back from disk after a crash or a bad
//! disk: garbage and truncations load without a panic, keep only the entries
//! before the first bad line, and what is kept encodes back to the same bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;

// The appliance's own module, compiled here alone (it needs only std, serde and crc32fast).
#[allow(dead_code)]
#[path = "../../appliance/src/recordings/index.rs"]
mod index;

fuzz_target!(|data: &[u8]| {
    let loaded = index::decode(data);
    assert!(loaded.good_len as usize <= data.len());
    assert_eq!(loaded.dropped_tail, (loaded.good_len as usize) < data.len());
    // Every kept entry came from a checksummed line: written again, it reads back whole.
    let again: Vec<u8> = loaded.entries.iter().flat_map(index::encode).collect();
    let reread = index::decode(&again);
    assert!(!reread.dropped_tail);
    let msns = |entries: &[index::IndexEntry]| entries.iter().map(|e| (e.msn, e.bytes, e.init)).collect::<Vec<_>>();
    assert_eq!(msns(&reread.entries), msns(&loaded.entries));
});
