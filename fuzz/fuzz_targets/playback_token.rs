//! A private channel's playback token (`appliance/src/playback/token.rs`),
//! as any viewer may send it in the `token` query parameter: garbage parses
//! or is refused without a panic, and what parses is never accepted with a
//! key that did not sign it; a token signed here with the parsed claims
//! parses back to the same claims and verifies.

#![no_main]

use libfuzzer_sys::fuzz_target;

// The appliance's own module, compiled here alone (it needs only std, hmac, sha2, base64 and ipnet).
#[allow(dead_code)]
#[path = "../../appliance/src/playback/token.rs"]
mod token;

const KEY: [u8; token::SECRET_LEN] = [0x42; token::SECRET_LEN];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let now = 1_800_000_000;
    let client = std::net::IpAddr::from([192, 0, 2, 1]);
    // Nothing the fuzzer writes carries the MAC of a key it never saw.
    let checked = token::check(Some(text), "studio", now, client, |_| Some(&KEY[..]));
    if let Ok(parsed) = token::parse(text) {
        assert_ne!(checked, Ok(parsed.claims.clone()), "accepted a token {KEY:?} did not sign: {text:?}");
        let again = token::sign(&parsed.claims, parsed.key_id, &KEY);
        let reparsed = token::parse(&again).expect("a signed token parses");
        assert_eq!(reparsed.claims, parsed.claims);
        assert!(reparsed.verify(&KEY));
    }
});
