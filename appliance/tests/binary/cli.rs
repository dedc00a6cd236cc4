//! The `appliance` command line as an operator uses it: channel and token
//! management against a real redb file when no server runs, the same
//! commands through a running `appliance serve` (its owner-only control
//! socket), a bad configuration refused before binding, the CLI stopping
//! a live channel of an appliance running in the test's own process, and
//! `serve` under a low open-file limit.

use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Cli, STEP_TIMEOUT, ServeProcess, TestAppliance, finish_within, have_ffmpeg, publish};

use crate::APPLIANCE;

fn cli(data: &Path) -> Cli {
    Cli::new(APPLIANCE, data)
}

/// Starts `appliance serve` on `data`; `first`: the data directory is new (a password is printed).
fn serve(data: &Path, first: bool) -> ServeProcess {
    ServeProcess::start(Path::new(APPLIANCE), data, &[], first)
}

#[test]
fn channel_add_list_remove() {
    let data = tempfile::tempdir().unwrap();
    let (ok, out, err) = cli(data.path()).run(&["channel", "add", "studio-1", "--latency-mode", "low"]);
    assert!(ok, "{err}");
    assert!(out.contains("channel studio-1 created (low)"), "{out}");
    let publish = out.lines().find(|l| l.starts_with("publish:")).expect("publish URL");
    assert!(publish.contains("rtmp://127.0.0.1:1935/live/sk_"), "{out}");
    assert!(out.contains("playback: http://127.0.0.1:8080/hls/studio-1/index.m3u8"), "{out}");

    let (ok, _, err) = cli(data.path()).run(&["channel", "add", "studio-1"]);
    assert!(!ok);
    assert!(err.contains("channel \"studio-1\" already exists"), "{err}");
    let (ok, _, err) = cli(data.path()).run(&["channel", "add", "Bad Name"]);
    assert!(!ok);
    assert!(err.contains("is invalid"), "{err}");

    let (ok, out, _) = cli(data.path()).run(&["channel", "list"]);
    assert!(ok);
    assert!(out.lines().any(|l| l.starts_with("studio-1") && l.contains("low")), "{out}");

    let (ok, out, _) = cli(data.path()).run(&["channel", "remove", "studio-1"]);
    assert!(ok, "{out}");
    let (_, out, _) = cli(data.path()).run(&["channel", "list"]);
    assert!(!out.contains("studio-1"), "{out}");
}

#[test]
fn bad_configuration_exits_before_binding() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("appliance.toml");
    std::fs::write(&config, "[hls]\npart_target_ms = 5\n").unwrap();
    let (ok, _, err) = Cli::output(cli(data.path()).command().args(["serve", "--config"]).arg(&config));
    assert!(!ok);
    assert!(err.contains("invalid configuration: hls.part_target_ms: 5 is outside 100..=2000"), "{err}");
    assert!(!err.contains("listening"), "{err}");

    let (ok, _, err) =
        Cli::output(cli(data.path()).command().arg("serve").env("APPLIANCE_RTMP_LISTEN", "not-an-address"));
    assert!(!ok);
    assert!(err.contains("rtmp.listen: \"not-an-address\" is not an address:port"), "{err}");
}

#[test]
fn channel_lifecycle_and_tokens_from_the_cli() {
    let data = tempfile::tempdir().unwrap();
    let (ok, out, err) = cli(data.path()).run(&["channel", "add", "cam", "--idle"]);
    assert!(ok, "{err}");
    assert!(out.contains("state:    idle"), "{out}");
    let (ok, out, _) = cli(data.path()).run(&["channel", "start", "cam"]);
    assert!(ok && out.contains("channel cam started"), "{out}");
    let (ok, _, err) = cli(data.path()).run(&["channel", "start", "cam"]);
    assert!(!ok && err.contains("the channel is already active"), "{err}");
    let (ok, out, _) = cli(data.path()).run(&["channel", "rotate-key", "cam"]);
    assert!(ok && out.contains("publish:  rtmp://127.0.0.1:1935/live/sk_"), "{out}");
    // A channel without a backup key gets one by rotation; one made with --backup has one at once.
    let (ok, out, _) = cli(data.path()).run(&["channel", "rotate-key", "cam", "--backup"]);
    assert!(
        ok && out.contains("new backup stream key") && out.contains("backup:   rtmp://127.0.0.1:1935/live/sk_"),
        "{out}"
    );
    let (ok, out, err) = cli(data.path()).run(&["channel", "add", "twin", "--backup"]);
    assert!(ok && out.contains("backup:   rtmp://127.0.0.1:1935/live/sk_"), "{out}{err}");
    let (ok, out, _) = cli(data.path()).run(&["channel", "stop", "cam"]);
    assert!(ok && out.contains("channel cam stopped"), "{out}");
    let (_, out, _) = cli(data.path()).run(&["channel", "list"]);
    assert!(out.lines().any(|l| l.starts_with("cam") && l.contains("stopped")), "{out}");

    let (ok, out, err) = cli(data.path()).run(&["token", "create", "--name", "ci", "--scope", "read"]);
    assert!(ok, "{err}");
    let text = out.lines().nth(1).unwrap().to_string();
    let id = text.split('.').next().unwrap().to_string();
    assert!(id.starts_with("tok_") && out.contains("not shown again"), "{out}");
    let (_, listed, _) = cli(data.path()).run(&["token", "list"]);
    assert!(listed.contains(&id) && listed.contains("viewer") && !listed.contains(&text), "{listed}");
    let (ok, _, err) = cli(data.path()).run(&["token", "create", "--name", "x", "--scope", "admin"]);
    assert!(!ok && err.contains("unknown scope \"admin\""), "{err}");
    let studio = ["token", "create", "--name", "studio", "--role", "operator", "--channel", "cam"];
    let (ok, out, err) = cli(data.path()).run(&studio);
    assert!(ok && out.contains("role operator"), "{out}{err}");
    let (ok, _, err) = cli(data.path()).run(&["token", "create", "--name", "x", "--role", "admin", "--channel", "cam"]);
    assert!(!ok && err.contains("cannot be restricted"), "{err}");
    let (ok, out, _) = cli(data.path()).run(&["token", "revoke", &id]);
    assert!(ok && out.contains("revoked"), "{out}");
    let (ok, _, err) = cli(data.path()).run(&["token", "revoke", &id]);
    assert!(!ok && err.contains("does not exist"), "{err}");
}

fn socket(data: &Path) -> PathBuf {
    data.join("appliance.sock")
}

/// The console session cookie after signing in with `password`, or the status.
async fn sign_in(http: &reqwest::Client, server: SocketAddr, password: &str) -> Result<String, u16> {
    let body = serde_json::json!({ "password": password });
    let reply = http.post(format!("http://{server}/console/api/session")).json(&body).send().await.expect("sign-in");
    if !reply.status().is_success() {
        return Err(reply.status().as_u16());
    }
    let cookie = reply.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    Ok(cookie)
}

async fn signed_in(http: &reqwest::Client, server: SocketAddr, cookie: &str) -> u16 {
    let reply = http.get(format!("http://{server}/console/api/session")).header("cookie", cookie).send().await;
    reply.expect("whoami").status().as_u16()
}

#[test]
fn while_serve_runs_the_cli_goes_through_its_owner_only_control_socket() {
    let data = tempfile::tempdir().unwrap();
    let server = serve(data.path(), true);

    // The socket: owner-only, owned by whoever runs the appliance.
    let meta = std::fs::symlink_metadata(socket(data.path())).expect("the control socket exists");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "owner-only");
    assert_eq!(meta.uid(), std::fs::metadata(data.path()).unwrap().uid());

    // No polling thread for a handover: the server keeps the file to itself.
    let threads = server.thread_names();
    assert!(!threads.is_empty());
    assert!(!threads.iter().any(|t| t.contains("handover")), "{threads:?}");
    let held = appliance::state::Store::open(data.path()).unwrap_err();
    assert!(held.is_busy(), "{held}");

    let started = Instant::now();
    let (ok, out, err) = cli(data.path()).run(&["channel", "add", "studio-1", "--latency-mode", "low"]);
    let took = started.elapsed();
    // The reference, in the same run: a process that only starts and prints its version.
    let started = Instant::now();
    assert!(cli(data.path()).run(&["--version"]).0);
    let start_only = started.elapsed();
    eprintln!(
        "`appliance channel add` while serve runs: {took:?} for the whole CLI process; `appliance --version`: {start_only:?} ({:.2}x)",
        took.as_secs_f64() / start_only.as_secs_f64()
    );
    assert!(ok, "{err}");
    assert!(out.contains("channel studio-1 created (low)"), "{out}");
    // The server's own addresses (its ports were picked by the OS): the answer came from it.
    let (rtmp, http) = (server.rtmp.port(), server.http.port());
    assert!(out.contains(&format!("publish:  rtmp://127.0.0.1:{rtmp}/live/sk_")), "{out}");
    assert!(out.contains(&format!("  server: rtmp://127.0.0.1:{rtmp}/live\n")), "{out}");
    assert!(out.contains(&format!("playback: http://127.0.0.1:{http}/hls/studio-1/index.m3u8")), "{out}");
    let (ok, _, err) = cli(data.path()).run(&["channel", "add", "studio-1"]);
    assert!(!ok && err.contains("channel \"studio-1\" already exists"), "{err}");
    // The backup key through the server (`rotate-key?input=backup`).
    let (ok, out, err) = cli(data.path()).run(&["channel", "rotate-key", "studio-1", "--backup"]);
    assert!(ok && out.contains(&format!("backup:   rtmp://127.0.0.1:{rtmp}/live/sk_")), "{out}{err}");
    let (ok, _, err) = cli(data.path()).run(&["channel", "add", "Bad Name"]);
    assert!(!ok && err.contains("is invalid"), "{err}");
    let (ok, out, _) = cli(data.path()).run(&["channel", "list"]);
    assert!(ok && out.lines().any(|l| l.starts_with("studio-1") && l.contains("low") && l.contains("active")), "{out}");
    let (ok, out, _) = cli(data.path()).run(&["channel", "stop", "studio-1"]);
    assert!(ok && out.contains("channel studio-1 stopped"), "{out}");
    let (ok, _, err) = cli(data.path()).run(&["channel", "stop", "studio-1"]);
    assert!(!ok && err.contains("stopped"), "{err}");
    let (ok, _, err) = cli(data.path()).run(&["channel", "remove", "no/such channel"]);
    assert!(!ok && err.contains("does not exist"), "{err}");

    // A token made by the CLI works on the server's TCP API at once, and stops working when revoked.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = reqwest::Client::builder().timeout(STEP_TIMEOUT).build().unwrap();
    let (ok, out, err) = cli(data.path()).run(&["token", "create", "--name", "ci", "--scope", "read"]);
    assert!(ok, "{err}");
    let text = out.lines().nth(1).unwrap().to_string();
    let id = text.split('.').next().unwrap().to_string();
    let channels = |token: String| {
        let request = client.get(format!("http://{}/api/v1/channels", server.http)).bearer_auth(token);
        runtime.block_on(async { request.send().await.expect("GET /api/v1/channels").status().as_u16() })
    };
    assert_eq!(channels(text.clone()), 200);
    let (_, listed, _) = cli(data.path()).run(&["token", "list"]);
    assert!(listed.contains(&id) && listed.contains("viewer") && !listed.contains(&text), "{listed}");
    let (ok, out, _) = cli(data.path()).run(&["token", "revoke", &id]);
    assert!(ok && out.contains("revoked"), "{out}");
    assert_eq!(channels(text), 401, "revoked at once");
    let (ok, _, err) = cli(data.path()).run(&["token", "revoke", &id]);
    assert!(!ok && err.contains("does not exist"), "{err}");

    // A new admin password from the CLI ends the console sessions the server holds.
    let first = server.password.clone().expect("the first start printed the admin password");
    let cookie = runtime.block_on(sign_in(&client, server.http, &first)).expect("signed in");
    assert_eq!(runtime.block_on(signed_in(&client, server.http, &cookie)), 200);
    let (ok, out, err) = cli(data.path()).run_with_input(&["admin", "set-password"], "a new password 123\n");
    assert!(ok && out.contains("admin password set"), "{out}{err}");
    assert_eq!(runtime.block_on(signed_in(&client, server.http, &cookie)), 401, "the old session ended");
    assert_eq!(runtime.block_on(sign_in(&client, server.http, &first)), Err(400), "the old password is refused");
    runtime.block_on(sign_in(&client, server.http, "a new password 123")).expect("the new password signs in");
    let (ok, _, err) = cli(data.path()).run_with_input(&["admin", "set-password"], "short\n");
    assert!(!ok && err.contains("password: use 8 to 1024 characters"), "{err}");

    let (ok, out, _) = cli(data.path()).run(&["channel", "remove", "studio-1"]);
    assert!(ok && out.contains("channel studio-1 removed"), "{out}");

    // A crash leaves the socket behind: nobody answers on it, so the CLI opens the file.
    let mut server = server;
    server.kill();
    assert!(socket(data.path()).exists(), "a killed server cannot remove its socket");
    let (ok, out, err) = cli(data.path()).run(&["channel", "add", "after-crash"]);
    assert!(ok, "{err}");
    assert!(out.contains("publish:  rtmp://127.0.0.1:1935/live/sk_"), "the configuration's URLs: {out}");
    // Held by a process that does not answer on the socket: a clear refusal, not a wait.
    let holder = appliance::state::Store::open(data.path()).unwrap();
    let started = Instant::now();
    let (ok, _, err) = cli(data.path()).run(&["channel", "list"]);
    eprintln!("refused while held elsewhere after {:?}", started.elapsed());
    assert!(!ok && err.contains("is held by another process"), "{err}");
    drop(holder);

    // The next server replaces the stale socket, and removes it when it stops.
    let server = serve(data.path(), false);
    let (ok, out, _) = cli(data.path()).run(&["channel", "list"]);
    assert!(ok && out.contains("after-crash"), "{out}");
    let (ok, out, err) = cli(data.path()).run(&["channel", "start", "after-crash"]);
    assert!(!ok && err.contains("already active"), "{out}{err}");
    server.stop();
    assert!(!socket(data.path()).exists(), "removed at shutdown");
    let (ok, out, _) = cli(data.path()).run(&["channel", "list"]);
    assert!(ok && out.contains("after-crash"), "{out}");
}

/// The CLI, another process, stops a live channel of an appliance running
/// in this test's process, through its control socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_stops_a_channel_while_the_server_runs() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = app.create_channel(json!({"name": "remote", "start": true})).await;
    let publisher = publish(&app.rtmp_url(channel["stream_key"].as_str().unwrap()), 30.0);
    app.session_until("remote", "live", |s| s["state"] == "live").await;

    // The CLI, another process, stops it through the server's control socket.
    let cli = cli(app.data.path());
    let (ok, _, err) = tokio::task::spawn_blocking(move || cli.run(&["channel", "stop", "remote"])).await.unwrap();
    assert!(ok, "{err}");
    let (ok, took) = finish_within(publisher, STEP_TIMEOUT).await;
    assert!(!ok && took < Duration::from_secs(10), "the server noticed and disconnected the publisher");
    let over = app.session_until("remote", "ended", |s| s["state"] == "ended").await;
    assert_eq!(over["end_reason"], "channel-stopped");
    assert_eq!(app.get_json("/api/v1/channels/remote").await["state"], "stopped");
    app.appliance.shutdown().await;
}

/// Under a limit of 512 open files (systemd's default is 1024 soft), the
/// HTTP cap is lowered to fit (512 - 256 reserved - 64 RTMP = 192), so 600
/// idle connections are shed instead of exhausting the descriptors, and the
/// health check still answers (with `axum::serve` it timed out: every
/// descriptor was held and the newcomer waited in the listen queue).
#[test]
fn at_a_low_open_file_limit_serve_sheds_idle_connections_and_the_health_check_answers() {
    if !support::have_tool("prlimit", "--version", "util-linux") {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    // `serve` under prlimit: a wrapper the server process starts as.
    let wrapper = data.path().join("appliance-at-512-files");
    std::fs::write(&wrapper, format!("#!/bin/sh\nexec prlimit --nofile=512:512 {APPLIANCE} \"$@\"\n")).unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = data.path().join("state");
    let server = ServeProcess::start(&wrapper, &state, &[("APPLIANCE_RTMP_MAX_CONNECTIONS", "64")], true);
    let pid = server.child.id();
    let open_files = || std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    let idle: Vec<std::net::TcpStream> =
        (0..600).filter_map(|_| std::net::TcpStream::connect(server.http).ok()).collect();
    assert_eq!(idle.len(), 600, "the kernel takes every connection");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let health = runtime.block_on(async {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
        http.get(format!("http://{}/api/v1/health", server.http)).send().await
    });
    assert_eq!(health.expect("the health check answers at the limit").status().as_u16(), 200);
    let files = open_files();
    assert!((192..450).contains(&files), "the server holds {files} files: the cap, not the limit");
    drop(idle);
    server.stop();
}
