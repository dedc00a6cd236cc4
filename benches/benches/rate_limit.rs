//! The API's rate-limit check (`appliance::http::access`), against the
//! `governor` crate's keyed limiter (GCRA too, the field's usual choice)
//! doing the same work: one token's bucket, and buckets for 10,000 addresses.
//! Prints nanoseconds per check and the ratio (reference / ours: above 1 is faster).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use appliance::http::access::rate_limit::{Client, RateLimits};
use governor::{Quota, RateLimiter};

const ROUNDS: u32 = 1_000_000;

fn per_check(f: impl FnMut(u32)) -> Duration {
    let mut f = f;
    let started = Instant::now();
    for i in 0..ROUNDS {
        f(i);
    }
    started.elapsed() / ROUNDS
}

fn main() {
    let ours = RateLimits::default();
    let t0 = Instant::now();
    let quota =
        Quota::per_second(NonZeroU32::new(50).expect("non-zero")).allow_burst(NonZeroU32::new(100).expect("non-zero"));
    let reference = RateLimiter::keyed(quota);
    let reference_by_address = RateLimiter::keyed(quota);

    let mut rows = Vec::new();
    for round in 0..3 {
        let one_ours = per_check(|i| {
            let client = ours.credential("token", "tok_k3j9x2m1qz8w");
            black_box(ours.check(client, false, t0 + Duration::from_millis(u64::from(i) * 20)));
        });
        let one_reference = per_check(|_| {
            black_box(reference.check_key(&"tok_k3j9x2m1qz8w").is_ok());
        });
        let many_ours = per_check(|i| {
            let client = Client::Address(IpAddr::V4(Ipv4Addr::from(i % 10_000)));
            black_box(ours.check(client, false, t0 + Duration::from_millis(u64::from(i))));
        });
        let many_reference = per_check(|i| {
            black_box(reference_by_address.check_key(&IpAddr::V4(Ipv4Addr::from(i % 10_000))).is_ok());
        });
        rows.push((round, one_ours, one_reference, many_ours, many_reference));
    }
    println!(
        "{:<6} {:>14} {:>14} {:>7}   {:>14} {:>14} {:>7}",
        "round", "one token", "governor", "ratio", "10k addresses", "governor", "ratio"
    );
    for (round, one_ours, one_ref, many_ours, many_ref) in &rows {
        println!(
            "{round:<6} {:>12}ns {:>12}ns {:>6.2}x   {:>12}ns {:>12}ns {:>6.2}x",
            one_ours.as_nanos(),
            one_ref.as_nanos(),
            one_ref.as_secs_f64() / one_ours.as_secs_f64(),
            many_ours.as_nanos(),
            many_ref.as_nanos(),
            many_ref.as_secs_f64() / many_ours.as_secs_f64(),
        );
    }
    let (_, one_ours, one_ref, many_ours, many_ref) = rows.last().expect("three rounds");
    println!(
        "{{\"bench\":\"rate_limit\",\"one_token_ns\":{},\"one_token_reference_ns\":{},\"addresses_ns\":{},\"addresses_reference_ns\":{}}}",
        one_ours.as_nanos(),
        one_ref.as_nanos(),
        many_ours.as_nanos(),
        many_ref.as_nanos()
    );
}
