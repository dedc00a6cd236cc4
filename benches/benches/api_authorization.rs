//! The API's per-request authorization added with roles
//! (`appliance::http::access`): looking the matched route up in the role
//! table (the last entry, the slowest), turning the token into a `Caller`
//! and checking its role and channel restriction, against the bearer-token
//! check every API request already paid before roles (`Store::authenticate`:
//! a redb read and a SHA-256 over a real state file). Prints nanoseconds per
//! request of each and the share the role check adds (ours / reference).

use std::hint::black_box;
use std::time::{Duration, Instant};

use appliance::http::access::caller::Caller;
use appliance::http::access::route_roles::{self, ROUTE_ROLES, Rule};
use appliance::state::{Role, Store, TokenGrant};

const ROUNDS: u32 = 200_000;

fn per_call(mut f: impl FnMut(u32)) -> Duration {
    let started = Instant::now();
    for i in 0..ROUNDS {
        f(i);
    }
    started.elapsed() / ROUNDS
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("state file");
    let grant = TokenGrant { role: Role::Operator, channels: Some((0..16).map(|i| format!("studio-{i}")).collect()) };
    let (_, text) = store.create_token("bench", grant).expect("token");
    let (method, path, _) = ROUTE_ROLES.last().expect("a table");
    let channel = "studio-15";

    let mut rows = Vec::new();
    for round in 0..3 {
        let token = store.authenticate(&text).expect("read").expect("valid");
        let ours = per_call(|_| {
            let Some(Rule::Role(minimum, _)) = route_roles::rule(black_box(method), black_box(path)) else {
                panic!("a role rule")
            };
            let caller = Caller::from(&token);
            black_box(caller.role >= minimum && caller.may_see(black_box(channel)));
        });
        let reference = per_call(|_| {
            black_box(store.authenticate(black_box(&text)).expect("read"));
        });
        rows.push((round, ours, reference));
    }
    println!("{:<6} {:>14} {:>16} {:>8}", "round", "role check", "authenticate", "share");
    for (round, ours, reference) in &rows {
        println!(
            "{round:<6} {:>12}ns {:>14}ns {:>7.1}%",
            ours.as_nanos(),
            reference.as_nanos(),
            100.0 * ours.as_secs_f64() / reference.as_secs_f64()
        );
    }
    let (_, ours, reference) = rows.last().expect("three rounds");
    println!(
        "{{\"bench\":\"api_authorization\",\"role_check_ns\":{},\"authenticate_ns\":{}}}",
        ours.as_nanos(),
        reference.as_nanos()
    );
}
