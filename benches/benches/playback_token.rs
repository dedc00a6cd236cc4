//! What private channels' signed playback costs the origin: the origin
//! (`packager::router`, one packaged 720p rendition) plain, behind the
//! appliance's playback gate with the channel public (one lookup per
//! request), and behind it with the channel private, every request carrying
//! a valid token (parse, HMAC-SHA256 check, and for playlists the token
//! added to every URI of the cached rendering). One load generator
//! (keep-alive HTTP/1.1 connections looping over the URLs) drives the three
//! in alternating rounds; the ratios to the plain origin's request rate are
//! the numbers to read (the budget: at most 5% fewer requests).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use appliance::playback::PlaybackAccess;
use appliance::playback::token::{Claims, PARAM};
use appliance::state::PlaybackKey;
use benches::http_load::{Connections, load, median};
use benches::{packaged, read_flv, recording, skip_without_ffmpeg, target_dir};
use packager::{LiveStream, OriginStore};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

const CONNECTIONS: usize = 16;
const ROUND: Duration = Duration::from_secs(3);
const ROUNDS: usize = 3;
const PLAYLIST: &str = "/hls/bench/s1/source/index.m3u8";

/// The origin plain, behind the gate of a public channel, and behind the gate of a private one.
fn start(runtime: &Runtime) -> ([SocketAddr; 3], Arc<OriginStore>, String) {
    let tags = read_flv(&recording(&target_dir()));
    let store = Arc::new(OriginStore::new(Duration::from_secs(3600)));
    store.insert(Arc::new(LiveStream::new("bench", "s1", vec![packaged(&tags, "source")])));
    let serve = |router: axum::Router| {
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        runtime.spawn(async move { axum::serve(listener, router).await });
        addr
    };
    let key = PlaybackKey { id: "pk_bench".into(), secret_hex: "5a".repeat(32), created_ms: 0, retired_at_ms: None };
    let gated = |private: bool| {
        let access = Arc::new(PlaybackAccess::default());
        access.set_keys(std::slice::from_ref(&key));
        access.set_private("bench", private);
        let gate = axum::middleware::from_fn_with_state(access, appliance::http::playback_gate::gate);
        packager::router(store.clone()).layer(gate)
    };
    let signer = PlaybackAccess::default();
    signer.set_keys(std::slice::from_ref(&key));
    let claims = Claims { channel: "bench".into(), expires: u64::MAX / 2000, network: None };
    let (token, _) = signer.sign(&claims).expect("a current key");
    let addrs = [serve(packager::router(store.clone())), serve(gated(false)), serve(gated(true))];
    (addrs, store, token)
}

/// The media playlist's URIs (init, parts, segments) as absolute paths.
fn media_paths(playlist: &str) -> Vec<String> {
    benches::media_playlist::media_paths(playlist, PLAYLIST.rsplit_once('/').unwrap().0)
}

fn main() {
    if skip_without_ffmpeg() {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let server =
        tokio::runtime::Builder::new_multi_thread().worker_threads(cores).thread_name("origin").enable_all().build();
    let server = server.unwrap();
    let client = tokio::runtime::Builder::new_multi_thread().worker_threads(cores).enable_all().build().unwrap();
    let ([plain, public, private], store, token) = start(&server);
    let stream = store.current("bench").expect("the packaged stream");
    let rendition = stream.rendition("source").expect("its rendition");
    let playlist = rendition.playlist_of(packager::PlaylistView::Live, false, Vec::new()).expect("a playlist");
    let media = media_paths(std::str::from_utf8(&playlist.text).unwrap());
    let with_token = |paths: &[String]| -> Arc<Vec<String>> {
        Arc::new(paths.iter().map(|p| format!("{p}?{PARAM}={token}")).collect())
    };
    let playlists = vec![PLAYLIST.to_string()];
    let mixes = [
        ("media files (init, parts, segments)", Arc::new(media.clone()), with_token(&media)),
        ("media playlist", Arc::new(playlists.clone()), with_token(&playlists)),
    ];
    let mut json = Vec::new();
    println!(
        "playback token: {} files of one 720p rendition, {CONNECTIONS} keep-alive connections, median of {ROUNDS} \
         rounds of {} s per server, {cores} cores shared with the load generator",
        media.len() + 1,
        ROUND.as_secs()
    );
    println!("{:<38} {:<34} {:>10}", "mix", "server", "req/s");
    for (mix, paths, tokened) in &mixes {
        let (mut plain_rounds, mut public_rounds, mut private_rounds) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let keep_alive = Connections::KeepAlive;
            plain_rounds.push(client.block_on(load(plain, paths.clone(), CONNECTIONS, ROUND, keep_alive)));
            public_rounds.push(client.block_on(load(public, paths.clone(), CONNECTIONS, ROUND, keep_alive)));
            private_rounds.push(client.block_on(load(private, tokened.clone(), CONNECTIONS, ROUND, keep_alive)));
        }
        let errors: u64 = plain_rounds.iter().chain(&public_rounds).chain(&private_rounds).map(|r| r.errors).sum();
        assert_eq!(errors, 0, "{mix}: requests failed (a token refused?)");
        let (plain, public, private) = (median(plain_rounds), median(public_rounds), median(private_rounds));
        for (server, round) in
            [("plain origin", plain), ("gate, public channel", public), ("gate, private channel + token", private)]
        {
            println!("{mix:<38} {server:<34} {:>10.0}", round.per_second());
        }
        let (public_ratio, private_ratio) =
            (public.per_second() / plain.per_second(), private.per_second() / plain.per_second());
        println!(
            "{:<38} ratio: public {public_ratio:.3}x, private with token {private_ratio:.3}x the plain origin",
            ""
        );
        json.push(serde_json::json!({
            "mix": mix, "plain_requests_per_s": plain.per_second(),
            "public_requests_per_s": public.per_second(), "private_requests_per_s": private.per_second(),
            "public_ratio": public_ratio, "private_ratio": private_ratio,
        }));
    }
    println!("{}", serde_json::json!({ "bench": "playback_token", "connections": CONNECTIONS, "mixes": json }));
}
