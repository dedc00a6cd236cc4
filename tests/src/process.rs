//! The real `appliance` binary as an operator runs it: `appliance serve` as a
//! child process on loopback ports the OS picks (read back from its log), and
//! one-shot CLI commands on the same data directory. The binary is the
//! caller's: the appliance crate's tests pass `env!("CARGO_BIN_EXE_appliance")`,
//! which cargo builds fresh for them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use crate::{STEP_TIMEOUT, eventually_blocking};

/// `appliance serve` as a child process; killed (SIGKILL) when dropped.
pub struct ServeProcess {
    pub child: Child,
    pub rtmp: SocketAddr,
    pub http: SocketAddr,
    /// The admin password printed at the first start on a data directory.
    pub password: Option<String>,
}

impl ServeProcess {
    /// Starts `binary serve` on `data` with `env` added, and waits (bounded)
    /// until it has logged both addresses and its control socket listens;
    /// with `first_start` also until it printed the new admin password.
    pub fn start(binary: &Path, data: &Path, env: &[(&str, &str)], first_start: bool) -> ServeProcess {
        let mut child = Command::new(binary)
            .arg("serve")
            .env("APPLIANCE_DATA_DIR", data)
            .env("APPLIANCE_RTMP_LISTEN", "127.0.0.1:0")
            .env("APPLIANCE_HTTP_LISTEN", "127.0.0.1:0")
            .env("APPLIANCE_LOG_FORMAT", "text")
            .env("RUST_LOG", "info")
            .env_remove("APPLIANCE_CONFIG")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("appliance serve starts");
        // Both streams, line by line, into one channel (kept drained, so the server never blocks on a pipe).
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
        let deadline = std::time::Instant::now() + STEP_TIMEOUT;
        while rtmp.is_none() || http.is_none() || !listening || (first_start && password.is_none()) {
            let wait = deadline.saturating_duration_since(std::time::Instant::now());
            let line = seen.recv_timeout(wait).expect("appliance serve logs its addresses and its control socket");
            rtmp = rtmp.or_else(|| address(&line, "rtmp_addr="));
            http = http.or_else(|| address(&line, "http_addr="));
            listening |= line.contains("control socket listening");
            password =
                password.or_else(|| line.split_once("password (shown once): ").map(|(_, p)| p.trim().to_string()));
        }
        std::thread::spawn(move || while seen.recv().is_ok() {});
        ServeProcess { child, rtmp: rtmp.unwrap(), http: http.unwrap(), password }
    }

    /// SIGKILL: no clean shutdown, the files left as a crash leaves them.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("the appliance died");
    }

    /// SIGTERM, as systemd stops it, and a bounded wait for the exit.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs").success());
        let exited = eventually_blocking(STEP_TIMEOUT, || self.child.try_wait().expect("wait"));
        assert!(exited.is_some(), "the server did not stop within {STEP_TIMEOUT:?} of SIGTERM");
    }

    /// The names of the server's threads.
    pub fn thread_names(&self) -> Vec<String> {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.child.id())).expect("the server's threads");
        tasks
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .map(|n| n.trim().to_string())
            .collect()
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One-shot `appliance` commands on a data directory (no config file).
#[derive(Debug, Clone)]
pub struct Cli {
    pub binary: PathBuf,
    pub data: PathBuf,
}

/// What a command did: success, stdout, stderr.
pub type Ran = (bool, String, String);

impl Cli {
    pub fn new(binary: impl Into<PathBuf>, data: &Path) -> Cli {
        Cli { binary: binary.into(), data: data.to_path_buf() }
    }

    /// The command, to add arguments and environment to.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command.env("APPLIANCE_DATA_DIR", &self.data).env_remove("APPLIANCE_CONFIG");
        command
    }

    /// Runs `appliance <args>` to its end.
    pub fn run(&self, args: &[&str]) -> Ran {
        Self::output(self.command().args(args))
    }

    /// Runs a prepared command to its end.
    pub fn output(command: &mut Command) -> Ran {
        let out = command.output().expect("appliance runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs `appliance <args>` with `stdin` as its input.
    pub fn run_with_input(&self, args: &[&str], stdin: &str) -> Ran {
        use std::io::Write;
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("appliance runs");
        child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("stdin written");
        let out = child.wait_with_output().expect("appliance runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}
