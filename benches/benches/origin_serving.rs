//! The HTTP origin against nginx serving the same files, in the same run.
//!
//! One 720p rendition (60 s of x264 + AAC, 24-segment window, 200 ms parts)
//! is packaged in memory and served by our origin (`packager::router`, as the
//! appliance mounts it). Every file its media playlist names is fetched once
//! from our origin and written to a RAM disk, where nginx (sendfile, open file
//! cache, one worker per core) serves the very same bytes. One load generator
//! (keep-alive HTTP/1.1 connections, each looping over the URLs) drives both
//! servers in alternating rounds; the median round of each is reported.
//! On a small machine the generator shares the CPU with the server under
//! test: the ratio is the number to read, not the absolute rates.
//!
//! The same origin with the appliance's request accounting layered on
//! (`appliance::metrics::origin_requests`: requests and bytes by kind and
//! status class for `/metrics`) runs in the same rounds: its ratio to the
//! plain origin is what the accounting costs.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use benches::http_load::{Connections, load, median};
use benches::{have_program, packaged, read_flv, recording, target_dir};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::header::HOST;
use hyper_util::rt::TokioIo;
use packager::{LiveStream, OriginStore};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

/// Concurrent keep-alive connections (a CDN's edge fleet pulling one origin).
const CONNECTIONS: usize = 16;
const ROUND: Duration = Duration::from_secs(3);
const ROUNDS: usize = 3;
const PLAYLIST: &str = "/hls/bench/s1/source/index.m3u8";

/// One GET on an open connection: (status, body length).
async fn get(
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    path: &str,
) -> Result<(u16, Bytes), Box<dyn std::error::Error + Send + Sync>> {
    let request = Request::get(path).header(HOST, "127.0.0.1").body(Empty::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    Ok((status, response.into_body().collect().await?.to_bytes()))
}

async fn connect(
    addr: SocketAddr,
) -> Result<hyper::client::conn::http1::SendRequest<Empty<Bytes>>, Box<dyn std::error::Error + Send + Sync>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// Our origin on its own runtime (as many workers as cores, like the appliance),
/// plain and with the request accounting of `/metrics`, over the same store.
fn start_ours(runtime: &Runtime) -> (SocketAddr, SocketAddr) {
    let tags = read_flv(&recording(&target_dir()));
    let store = Arc::new(OriginStore::new(Duration::from_secs(3600)));
    store.insert(Arc::new(LiveStream::new("bench", "s1", vec![packaged(&tags, "source")])));
    let serve = |router: axum::Router| {
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        runtime.spawn(async move { axum::serve(listener, router).await });
        addr
    };
    let plain = serve(packager::router(store.clone()));
    let requests = Arc::new(appliance::metrics::OriginRequests::default());
    let accounting =
        axum::middleware::from_fn_with_state(requests, appliance::metrics::origin_requests::count_requests);
    let accounted = serve(packager::router(store).layer(accounting));
    (plain, accounted)
}

/// The media playlist's URIs (init, parts, segments) as absolute paths.
fn media_paths(playlist: &str) -> Vec<String> {
    benches::media_playlist::media_paths(playlist, PLAYLIST.rsplit_once('/').unwrap().0)
}

/// Copies `paths` from our origin into `root`, byte for byte.
async fn mirror(addr: SocketAddr, paths: &[String], root: &Path) -> u64 {
    let mut sender = connect(addr).await.unwrap();
    let mut total = 0;
    for path in paths {
        let (status, body) = match get(&mut sender, path).await {
            Ok(answer) => answer,
            Err(e) => {
                eprintln!("mirror: {path}: {e}; again on a new connection");
                sender = connect(addr).await.unwrap();
                get(&mut sender, path).await.unwrap_or_else(|e| panic!("{path}: {e}"))
            }
        };
        assert_eq!(status, 200, "{path}");
        let file = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, &body).unwrap();
        total += body.len() as u64;
    }
    total
}

/// nginx as a CDN origin would run it for static HLS: sendfile, open file
/// cache, long keep-alive, no access log, a worker per core.
fn start_nginx(dir: &Path, root: &Path, port: u16) -> Child {
    let conf = dir.join("nginx.conf");
    let d = dir.display();
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nworker_processes auto;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n{user}\
             events {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  tcp_nodelay on;\n\
             keepalive_requests 1000000;\n  open_file_cache max=10000 inactive=60s;\n\
             client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n\
             uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
             types {{ application/vnd.apple.mpegurl m3u8; video/mp4 mp4; video/iso.segment m4s; }}\n\
             server {{ listen 127.0.0.1:{port}; root {root}; }}\n}}\n",
            root = root.display(),
            // As root, nginx's workers would run as `nobody`; keep them as the caller so they read the temp dir.
            user = if is_root() { "user root;\n" } else { "" },
        ),
    )
    .unwrap();
    Command::new("nginx")
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .spawn()
        .expect("nginx starts")
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn main() {
    for (program, flag) in [("ffmpeg", "-version"), ("nginx", "-v")] {
        if !have_program(program, flag) {
            println!("skipped: the {program} program is not installed (the reference needs it: apt install {program})");
            return;
        }
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .thread_name("origin")
        .enable_all()
        .build()
        .unwrap();
    let client = tokio::runtime::Builder::new_multi_thread().worker_threads(cores).enable_all().build().unwrap();
    let (ours, accounted) = start_ours(&server);

    let dir = tempfile::Builder::new().prefix("appliance-origin-bench-").tempdir_in(benches::ram_dir()).unwrap();
    let root = dir.path().join("root");
    let (playlist_paths, media, mirrored) = client.block_on(async {
        let mut sender = connect(ours).await.unwrap();
        let (status, playlist) = get(&mut sender, PLAYLIST).await.unwrap();
        assert_eq!(status, 200);
        let mut paths = vec![PLAYLIST.to_string()];
        let media = media_paths(std::str::from_utf8(&playlist).unwrap());
        paths.extend(media.iter().cloned());
        let mirrored = mirror(ours, &paths, &root).await;
        (vec![PLAYLIST.to_string()], media, mirrored)
    });
    // nginx's workers may run as another user: let them read the copy.
    let _ = Command::new("chmod").args(["-R", "a+rX"]).arg(dir.path()).status();
    let port = free_port();
    let mut nginx = start_nginx(dir.path(), &root, port);
    let nginx_addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let ready = client.block_on(async {
        for _ in 0..100 {
            if let Ok(mut sender) = connect(nginx_addr).await
                && matches!(get(&mut sender, PLAYLIST).await, Ok((200, _)))
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    });
    if !ready {
        let _ = nginx.kill();
        let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
        panic!("nginx did not answer: {log}");
    }

    let mixes = [
        ("media files (init, parts, segments)", Arc::new(media.clone())),
        ("media playlist", Arc::new(playlist_paths)),
    ];
    let mut results = Vec::new();
    for (mix, paths) in &mixes {
        let (mut our_rounds, mut accounted_rounds, mut nginx_rounds) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let keep_alive = Connections::KeepAlive;
            our_rounds.push(client.block_on(load(ours, paths.clone(), CONNECTIONS, ROUND, keep_alive)));
            accounted_rounds.push(client.block_on(load(accounted, paths.clone(), CONNECTIONS, ROUND, keep_alive)));
            nginx_rounds.push(client.block_on(load(nginx_addr, paths.clone(), CONNECTIONS, ROUND, keep_alive)));
        }
        let errors: u64 = our_rounds.iter().chain(&accounted_rounds).chain(&nginx_rounds).map(|r| r.errors).sum();
        assert_eq!(errors, 0, "{mix}: requests failed");
        results.push((*mix, median(our_rounds), median(accounted_rounds), median(nginx_rounds)));
    }
    let _ = nginx.kill();
    let _ = nginx.wait();

    println!(
        "origin serving: {} files ({:.1} MB) of one 720p rendition, {CONNECTIONS} keep-alive connections, \
         median of {ROUNDS} rounds of {} s per server, {cores} cores shared with the load generator",
        media.len() + 1,
        mirrored as f64 / 1e6,
        ROUND.as_secs()
    );
    println!("{:<38} {:<24} {:>10} {:>10}", "mix", "server", "req/s", "MB/s");
    let mut json = Vec::new();
    for (mix, ours, accounted, reference) in &results {
        println!(
            "{mix:<38} {:<24} {:>10.0} {:>10.1}",
            "ours (packager::router)",
            ours.per_second(),
            ours.megabytes_per_second()
        );
        println!(
            "{mix:<38} {:<24} {:>10.0} {:>10.1}",
            "ours + metrics accounting",
            accounted.per_second(),
            accounted.megabytes_per_second()
        );
        println!(
            "{mix:<38} {:<24} {:>10.0} {:>10.1}",
            "nginx (reference)",
            reference.per_second(),
            reference.megabytes_per_second()
        );
        let ratio = ours.per_second() / reference.per_second();
        println!("{:<38} ratio: ours is {ratio:.2}x nginx's request rate", "");
        let accounting = accounted.per_second() / ours.per_second();
        println!("{:<38} ratio: with the accounting {accounting:.3}x the plain origin's request rate", "");
        json.push(serde_json::json!({
            "mix": mix, "ours_requests_per_s": ours.per_second(), "ours_mb_per_s": ours.megabytes_per_second(),
            "nginx_requests_per_s": reference.per_second(), "nginx_mb_per_s": reference.megabytes_per_second(),
            "ratio_vs_nginx": ratio,
            "accounted_requests_per_s": accounted.per_second(), "accounting_ratio": accounting,
        }));
    }
    println!(
        "{}",
        serde_json::json!({ "bench": "origin_serving", "connections": CONNECTIONS, "cores": cores, "mixes": json })
    );
}
