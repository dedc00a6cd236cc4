//! The appliance's HTTP accept loop (`appliance::http::server`: timeouts,
//! connection caps, a body deadline, every request tracked until its
//! response is handed over) against `axum::serve` (none of that), serving
//! the same router from the same runtime, in the same run. Three mixes: a
//! small response (a playlist's size) and a large one (a segment's) on
//! keep-alive connections, and a small one on a new connection per request
//! (the accept path: admission into the registry). One load generator drives
//! both servers in alternating rounds; the median round of each is
//! reported. On a small machine the generator shares the CPU with the
//! server: read the ratio.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use benches::http_load::{Connections, Round, load, median};
use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::sync::watch;

const ROUNDS: usize = 3;

/// The same routes for both servers: fixed bodies, so the connection layer is what differs.
fn app() -> Router {
    let small = Bytes::from(vec![b'#'; 2 << 10]);
    let large = Bytes::from(vec![0x47; 256 << 10]);
    Router::new().route("/small", get(move || std::future::ready(small.clone()))).route(
        "/large",
        get(move || {
            let large = large.clone();
            async move { large }
        }),
    )
}

fn start_ours(runtime: &Runtime, stop: watch::Receiver<bool>) -> SocketAddr {
    let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = appliance::Config::default().http_limits();
    let server = appliance::http::server::HttpServer::new(listener, limits);
    runtime.spawn(server.run(app(), stop));
    addr
}

fn start_reference(runtime: &Runtime) -> SocketAddr {
    let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let service = app().into_make_service_with_connect_info::<SocketAddr>();
    runtime.spawn(async move { axum::serve(listener, service).await });
    addr
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let server = tokio::runtime::Builder::new_multi_thread().worker_threads(cores).enable_all().build().unwrap();
    let client = tokio::runtime::Builder::new_multi_thread().worker_threads(cores).enable_all().build().unwrap();
    let (_stop, stopped) = watch::channel(false);
    let ours = start_ours(&server, stopped);
    let reference = start_reference(&server);

    // (name, path, clients, round, connections); a new connection per request
    // leaves a port in TIME_WAIT each, so that mix is kept short.
    let mixes = [
        ("2 KiB, keep-alive", "/small", 16, Duration::from_secs(2), Connections::KeepAlive),
        ("256 KiB, keep-alive", "/large", 16, Duration::from_secs(2), Connections::KeepAlive),
        ("2 KiB, a connection per request", "/small", 4, Duration::from_secs(1), Connections::PerRequest),
    ];
    let mut results: Vec<(&str, Round, Round)> = Vec::new();
    for (name, path, clients, round, how) in mixes {
        let paths = Arc::new(vec![path.to_string()]);
        let (mut our_rounds, mut reference_rounds) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            our_rounds.push(client.block_on(load(ours, paths.clone(), clients, round, how)));
            reference_rounds.push(client.block_on(load(reference, paths.clone(), clients, round, how)));
        }
        let errors: u64 = our_rounds.iter().chain(&reference_rounds).map(|r| r.errors).sum();
        assert_eq!(errors, 0, "{name}: requests failed");
        results.push((name, median(our_rounds), median(reference_rounds)));
    }

    println!("http server: median of {ROUNDS} rounds per server, {cores} cores shared with the load generator");
    println!("{:<34} {:<28} {:>10} {:>10}", "mix", "server", "req/s", "MB/s");
    let mut json = Vec::new();
    for (mix, ours, reference) in &results {
        for (server, round) in [("ours (http::server)", ours), ("axum::serve (reference)", reference)] {
            println!("{mix:<34} {server:<28} {:>10.0} {:>10.1}", round.per_second(), round.megabytes_per_second());
        }
        let ratio = ours.per_second() / reference.per_second();
        println!("{:<34} ratio: ours is {ratio:.2}x axum::serve's request rate", "");
        json.push(serde_json::json!({
            "mix": mix, "ours_requests_per_s": ours.per_second(), "reference_requests_per_s": reference.per_second(),
            "ratio_vs_axum_serve": ratio,
        }));
    }
    println!("{}", serde_json::json!({ "bench": "http_server", "cores": cores, "mixes": json }));
}
