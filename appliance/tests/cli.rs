//! The `appliance` command line as an operator uses it: channel and token
//! management against a real redb file when no server runs, the same
//! commands through a running `appliance serve` (its owner-only control
//! socket), and a bad configuration refused before binding.

use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The longest any one wait of these tests may take.
const STEP: Duration = Duration::from_secs(30);

fn appliance(data: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_appliance"));
    command.env("APPLIANCE_DATA_DIR", data).env_remove("APPLIANCE_CONFIG");
    command
}

fn run(command: &mut Command) -> (bool, String, String) {
    let out = command.output().expect("appliance runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn channel_add_list_remove() {
    let data = tempfile::tempdir().unwrap();
    let (ok, out, err) = run(appliance(data.path()).args(["channel", "add", "studio-1", "--latency-mode", "low"]));
    assert!(ok, "{err}");
    assert!(out.contains("channel studio-1 created (low)"), "{out}");
    let publish = out.lines().find(|l| l.starts_with("publish:")).expect("publish URL");
    assert!(publish.contains("rtmp://127.0.0.1:1935/live/sk_"), "{out}");
    assert!(out.contains("playback: http://127.0.0.1:8080/hls/studio-1/index.m3u8"), "{out}");

    let (ok, _, err) = run(appliance(data.path()).args(["channel", "add", "studio-1"]));
    assert!(!ok);
    assert!(err.contains("channel \"studio-1\" already exists"), "{err}");
    let (ok, _, err) = run(appliance(data.path()).args(["channel", "add", "Bad Name"]));
    assert!(!ok);
    assert!(err.contains("is invalid"), "{err}");

    let (ok, out, _) = run(appliance(data.path()).args(["channel", "list"]));
    assert!(ok);
    assert!(out.lines().any(|l| l.starts_with("studio-1") && l.contains("low")), "{out}");

    let (ok, out, _) = run(appliance(data.path()).args(["channel", "remove", "studio-1"]));
    assert!(ok, "{out}");
    let (_, out, _) = run(appliance(data.path()).args(["channel", "list"]));
    assert!(!out.contains("studio-1"), "{out}");
}

#[test]
fn bad_configuration_exits_before_binding() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("appliance.toml");
    std::fs::write(&config, "[hls]\npart_target_ms = 5\n").unwrap();
    let (ok, _, err) = run(appliance(data.path()).args(["serve", "--config"]).arg(&config));
    assert!(!ok);
    assert!(err.contains("invalid configuration: hls.part_target_ms: 5 is outside 100..=2000"), "{err}");
    assert!(!err.contains("listening"), "{err}");

    let (ok, _, err) = run(appliance(data.path()).arg("serve").env("APPLIANCE_RTMP_LISTEN", "not-an-address"));
    assert!(!ok);
    assert!(err.contains("rtmp.listen: \"not-an-address\" is not an address:port"), "{err}");
}

#[test]
fn channel_lifecycle_and_tokens_from_the_cli() {
    let data = tempfile::tempdir().unwrap();
    let (ok, out, err) = run(appliance(data.path()).args(["channel", "add", "cam", "--idle"]));
    assert!(ok, "{err}");
    assert!(out.contains("state:    idle"), "{out}");
    let (ok, out, _) = run(appliance(data.path()).args(["channel", "start", "cam"]));
    assert!(ok && out.contains("channel cam started"), "{out}");
    let (ok, _, err) = run(appliance(data.path()).args(["channel", "start", "cam"]));
    assert!(!ok && err.contains("the channel is already active"), "{err}");
    let (ok, out, _) = run(appliance(data.path()).args(["channel", "rotate-key", "cam"]));
    assert!(ok && out.contains("publish:  rtmp://127.0.0.1:1935/live/sk_"), "{out}");
    // A channel without a backup key gets one by rotation; one made with --backup has one at once.
    let (ok, out, _) = run(appliance(data.path()).args(["channel", "rotate-key", "cam", "--backup"]));
    assert!(
        ok && out.contains("new backup stream key") && out.contains("backup:   rtmp://127.0.0.1:1935/live/sk_"),
        "{out}"
    );
    let (ok, out, err) = run(appliance(data.path()).args(["channel", "add", "twin", "--backup"]));
    assert!(ok && out.contains("backup:   rtmp://127.0.0.1:1935/live/sk_"), "{out}{err}");
    let (ok, out, _) = run(appliance(data.path()).args(["channel", "stop", "cam"]));
    assert!(ok && out.contains("channel cam stopped"), "{out}");
    let (_, out, _) = run(appliance(data.path()).args(["channel", "list"]));
    assert!(out.lines().any(|l| l.starts_with("cam") && l.contains("stopped")), "{out}");

    let (ok, out, err) = run(appliance(data.path()).args(["token", "create", "--name", "ci", "--scope", "read"]));
    assert!(ok, "{err}");
    let text = out.lines().nth(1).unwrap().to_string();
    let id = text.split('.').next().unwrap().to_string();
    assert!(id.starts_with("tok_") && out.contains("not shown again"), "{out}");
    let (_, listed, _) = run(appliance(data.path()).args(["token", "list"]));
    assert!(listed.contains(&id) && listed.contains("read") && !listed.contains(&text), "{listed}");
    let (ok, _, err) = run(appliance(data.path()).args(["token", "create", "--name", "x", "--scope", "admin"]));
    assert!(!ok && err.contains("unknown scope \"admin\""), "{err}");
    let (ok, out, _) = run(appliance(data.path()).args(["token", "revoke", &id]));
    assert!(ok && out.contains("revoked"), "{out}");
    let (ok, _, err) = run(appliance(data.path()).args(["token", "revoke", &id]));
    assert!(!ok && err.contains("does not exist"), "{err}");
}

/// `appliance serve` as a child process, on loopback ports the OS picks.
struct Server {
    child: Child,
    rtmp: SocketAddr,
    http: SocketAddr,
    /// The admin password printed at the first start.
    password: Option<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `appliance serve` on `data` and waits (bounded) until its control
/// socket listens; `first`: the data directory is new (a password is printed).
fn serve(data: &Path, first: bool) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_appliance"))
        .arg("serve")
        .env("APPLIANCE_DATA_DIR", data)
        .env("APPLIANCE_RTMP_LISTEN", "127.0.0.1:0")
        .env("APPLIANCE_HTTP_LISTEN", "127.0.0.1:0")
        .env("APPLIANCE_LOG_FORMAT", "text")
        .env("RUST_LOG", "info")
        .env_remove("APPLIANCE_CONFIG")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("appliance serve starts");
    // Both streams, line by line, into one channel (and kept drained, so the server never blocks on a pipe).
    let (lines, seen) = mpsc::channel::<String>();
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    for stream in [Box::new(stdout) as Box<dyn std::io::Read + Send>, Box::new(stderr)] {
        let lines = lines.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
    }
    let address = |line: &str, field: &str| -> Option<SocketAddr> {
        let start = line.find(field)? + field.len();
        line[start..].split_whitespace().next()?.parse().ok()
    };
    let (mut rtmp, mut http, mut password, mut listening) = (None, None, None, false);
    let deadline = Instant::now() + STEP;
    while rtmp.is_none() || http.is_none() || !listening || (first && password.is_none()) {
        let wait = deadline.saturating_duration_since(Instant::now());
        let line = seen.recv_timeout(wait).expect("appliance serve logs its addresses and its control socket");
        rtmp = rtmp.or_else(|| address(&line, "rtmp_addr="));
        http = http.or_else(|| address(&line, "http_addr="));
        listening |= line.contains("control socket listening");
        password = password.or_else(|| line.split_once("password (shown once): ").map(|(_, p)| p.trim().to_string()));
    }
    std::thread::spawn(move || while seen.recv().is_ok() {});
    Server { child, rtmp: rtmp.unwrap(), http: http.unwrap(), password }
}

/// Runs the CLI with `stdin` as its input.
fn run_with_input(command: &mut Command, stdin: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child =
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("appliance runs");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("stdin written");
    let out = child.wait_with_output().expect("appliance runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn thread_names(pid: u32) -> Vec<String> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the server's threads are listed");
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim().to_string())
        .collect()
}

/// Sends SIGTERM and waits (bounded) for the server to exit.
fn stop(mut server: Server) {
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs").success());
    let deadline = Instant::now() + STEP;
    while server.child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "the server did not stop within {STEP:?} of SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
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
    let threads = thread_names(server.child.id());
    assert!(!threads.is_empty());
    assert!(!threads.iter().any(|t| t.contains("handover")), "{threads:?}");
    let held = appliance::state::Store::open(data.path()).unwrap_err();
    assert!(held.is_busy(), "{held}");

    let started = Instant::now();
    let (ok, out, err) = run(appliance(data.path()).args(["channel", "add", "studio-1", "--latency-mode", "low"]));
    let took = started.elapsed();
    // The reference, in the same run: a process that only starts and prints its version.
    let started = Instant::now();
    assert!(run(appliance(data.path()).arg("--version")).0);
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
    let (ok, _, err) = run(appliance(data.path()).args(["channel", "add", "studio-1"]));
    assert!(!ok && err.contains("channel \"studio-1\" already exists"), "{err}");
    // The backup key through the server (`rotate-key?input=backup`).
    let (ok, out, err) = run(appliance(data.path()).args(["channel", "rotate-key", "studio-1", "--backup"]));
    assert!(ok && out.contains(&format!("backup:   rtmp://127.0.0.1:{rtmp}/live/sk_")), "{out}{err}");
    let (ok, _, err) = run(appliance(data.path()).args(["channel", "add", "Bad Name"]));
    assert!(!ok && err.contains("is invalid"), "{err}");
    let (ok, out, _) = run(appliance(data.path()).args(["channel", "list"]));
    assert!(ok && out.lines().any(|l| l.starts_with("studio-1") && l.contains("low") && l.contains("active")), "{out}");
    let (ok, out, _) = run(appliance(data.path()).args(["channel", "stop", "studio-1"]));
    assert!(ok && out.contains("channel studio-1 stopped"), "{out}");
    let (ok, _, err) = run(appliance(data.path()).args(["channel", "stop", "studio-1"]));
    assert!(!ok && err.contains("stopped"), "{err}");
    let (ok, _, err) = run(appliance(data.path()).args(["channel", "remove", "no/such channel"]));
    assert!(!ok && err.contains("does not exist"), "{err}");

    // A token made by the CLI works on the server's TCP API at once, and stops working when revoked.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = reqwest::Client::builder().timeout(STEP).build().unwrap();
    let (ok, out, err) = run(appliance(data.path()).args(["token", "create", "--name", "ci", "--scope", "read"]));
    assert!(ok, "{err}");
    let text = out.lines().nth(1).unwrap().to_string();
    let id = text.split('.').next().unwrap().to_string();
    let channels = |token: String| {
        let request = client.get(format!("http://{}/api/v1/channels", server.http)).bearer_auth(token);
        runtime.block_on(async { request.send().await.expect("GET /api/v1/channels").status().as_u16() })
    };
    assert_eq!(channels(text.clone()), 200);
    let (_, listed, _) = run(appliance(data.path()).args(["token", "list"]));
    assert!(listed.contains(&id) && listed.contains("read") && !listed.contains(&text), "{listed}");
    let (ok, out, _) = run(appliance(data.path()).args(["token", "revoke", &id]));
    assert!(ok && out.contains("revoked"), "{out}");
    assert_eq!(channels(text), 401, "revoked at once");
    let (ok, _, err) = run(appliance(data.path()).args(["token", "revoke", &id]));
    assert!(!ok && err.contains("does not exist"), "{err}");

    // A new admin password from the CLI ends the console sessions the server holds.
    let first = server.password.clone().expect("the first start printed the admin password");
    let cookie = runtime.block_on(sign_in(&client, server.http, &first)).expect("signed in");
    assert_eq!(runtime.block_on(signed_in(&client, server.http, &cookie)), 200);
    let (ok, out, err) = run_with_input(appliance(data.path()).args(["admin", "set-password"]), "a new password 123\n");
    assert!(ok && out.contains("admin password set"), "{out}{err}");
    assert_eq!(runtime.block_on(signed_in(&client, server.http, &cookie)), 401, "the old session ended");
    assert_eq!(runtime.block_on(sign_in(&client, server.http, &first)), Err(400), "the old password is refused");
    runtime.block_on(sign_in(&client, server.http, "a new password 123")).expect("the new password signs in");
    let (ok, _, err) = run_with_input(appliance(data.path()).args(["admin", "set-password"]), "short\n");
    assert!(!ok && err.contains("password: use 8 to 1024 characters"), "{err}");

    let (ok, out, _) = run(appliance(data.path()).args(["channel", "remove", "studio-1"]));
    assert!(ok && out.contains("channel studio-1 removed"), "{out}");

    // A crash leaves the socket behind: nobody answers on it, so the CLI opens the file.
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    assert!(socket(data.path()).exists(), "a killed server cannot remove its socket");
    let (ok, out, err) = run(appliance(data.path()).args(["channel", "add", "after-crash"]));
    assert!(ok, "{err}");
    assert!(out.contains("publish:  rtmp://127.0.0.1:1935/live/sk_"), "the configuration's URLs: {out}");
    // Held by a process that does not answer on the socket: a clear refusal, not a wait.
    let holder = appliance::state::Store::open(data.path()).unwrap();
    let started = Instant::now();
    let (ok, _, err) = run(appliance(data.path()).args(["channel", "list"]));
    eprintln!("refused while held elsewhere after {:?}", started.elapsed());
    assert!(!ok && err.contains("is held by another process"), "{err}");
    drop(holder);

    // The next server replaces the stale socket, and removes it when it stops.
    let server = serve(data.path(), false);
    let (ok, out, _) = run(appliance(data.path()).args(["channel", "list"]));
    assert!(ok && out.contains("after-crash"), "{out}");
    let (ok, out, err) = run(appliance(data.path()).args(["channel", "start", "after-crash"]));
    assert!(!ok && err.contains("already active"), "{out}{err}");
    stop(server);
    assert!(!socket(data.path()).exists(), "removed at shutdown");
    let (ok, out, _) = run(appliance(data.path()).args(["channel", "list"]));
    assert!(ok && out.contains("after-crash"), "{out}");
}
