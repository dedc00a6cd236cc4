//! The real `appliance serve` binary as a child process: its own data
//! directory, ephemeral ports read back from its log, channels added with its
//! own CLI, stopped with SIGTERM as systemd would.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::process_stats::ProcessStats;

/// How long the server gets to bind its listeners, and to drain at SIGTERM.
const START_DEADLINE: Duration = Duration::from_secs(30);
const STOP_DEADLINE: Duration = Duration::from_secs(20);

/// The `appliance` binary: `explicit`, or the one built beside this program
/// (`cargo build --release -p appliance -p benches` puts both in `target/release`).
pub fn find_binary(explicit: Option<&Path>) -> Result<PathBuf, String> {
    let path = match explicit {
        Some(path) => path.to_path_buf(),
        None => {
            let own = std::env::current_exe().map_err(|e| format!("cannot locate this program: {e}"))?;
            own.parent().map(|dir| dir.join("appliance")).ok_or("this program has no directory")?
        }
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "no appliance binary at {} (build it first: cargo build --release -p appliance, or pass --appliance PATH)",
            path.display()
        ))
    }
}

/// One `appliance serve` process and how to reach it.
pub struct ApplianceProcess {
    child: Child,
    binary: PathBuf,
    env: Vec<(String, String)>,
    pub rtmp: SocketAddr,
    pub http: SocketAddr,
    pub log: PathBuf,
}

/// The settings every run gets: the data directory and ephemeral loopback ports.
fn base_env(data_dir: &Path) -> Vec<(String, String)> {
    [
        ("APPLIANCE_DATA_DIR", data_dir.display().to_string()),
        ("APPLIANCE_RTMP_LISTEN", "127.0.0.1:0".into()),
        ("APPLIANCE_HTTP_LISTEN", "127.0.0.1:0".into()),
        ("APPLIANCE_LOG_FORMAT", "text".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Adds a channel with the binary's CLI (before or while it serves); returns its stream key.
pub fn add_channel(binary: &Path, data_dir: &Path, name: &str, ladder: Option<&str>) -> Result<String, String> {
    let mut command = Command::new(binary);
    command.args(["channel", "add", name]).envs(base_env(data_dir));
    if let Some(ladder) = ladder {
        command.args(["--ladder", ladder, "--encoder-policy", "software"]);
    }
    let output = command.output().map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!("channel add {name} failed: {}", String::from_utf8_lossy(&output.stderr).trim()));
    }
    stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("key:"))
        .map(|key| key.trim().to_string())
        .ok_or_else(|| format!("channel add {name} printed no key: {stdout}"))
}

impl ApplianceProcess {
    /// Starts `appliance serve` on `data_dir` with `extra` environment
    /// (configuration, `MALLOC_*`), logging into `data_dir/appliance.log`;
    /// returns once both listeners are bound.
    pub fn start(binary: &Path, data_dir: &Path, extra: &[(String, String)]) -> Result<ApplianceProcess, String> {
        let mut env = base_env(data_dir);
        env.extend(extra.iter().cloned());
        let log = data_dir.join("appliance.log");
        let mut child = Command::new(binary)
            .arg("serve")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let mut file = std::fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let (found, addresses) = mpsc::channel();
        // Copies the log to its file for as long as the process runs, reporting the bound addresses on the way.
        std::thread::Builder::new()
            .name("appliance-log".into())
            .spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    for (field, kind) in [("rtmp_addr=", "rtmp"), ("http_addr=", "http")] {
                        if let Some(addr) = line.split_whitespace().find_map(|w| w.strip_prefix(field))
                            && let Ok(addr) = addr.parse::<SocketAddr>()
                        {
                            let _ = found.send((kind, addr));
                        }
                    }
                    let _ = writeln!(file, "{line}");
                }
            })
            .map_err(|e| format!("cannot start the log reader: {e}"))?;
        let (mut rtmp, mut http) = (None, None);
        let deadline = Instant::now() + START_DEADLINE;
        while rtmp.is_none() || http.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match addresses.recv_timeout(left) {
                Ok(("rtmp", addr)) => rtmp = Some(addr),
                Ok((_, addr)) => http = Some(addr),
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let tail = std::fs::read_to_string(&log).unwrap_or_default();
                    return Err(format!(
                        "the appliance did not bind its listeners in {START_DEADLINE:?}; log:\n{tail}"
                    ));
                }
            }
        }
        Ok(ApplianceProcess {
            child,
            binary: binary.to_path_buf(),
            env,
            rtmp: rtmp.expect("bound"),
            http: http.expect("bound"),
            log,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// RSS, fds and threads now (`None` once it has exited).
    pub fn stats(&self) -> Option<ProcessStats> {
        ProcessStats::read(self.pid())
    }

    /// Whether it is still running (an exit is reported with its status).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The RTMP URL that publishes with `key`.
    pub fn publish_url(&self, key: &str) -> String {
        format!("rtmp://{}/live/{key}", self.rtmp)
    }

    /// Runs one of the binary's CLI commands against this server's data directory.
    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        let output = Command::new(&self.binary)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .map_err(|e| format!("cannot run the CLI: {e}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    /// SIGTERM, then waits for the drain (SIGKILL past the deadline).
    pub fn stop(mut self) -> Result<ExitStatus, String> {
        crate::terminate(&self.child);
        let deadline = Instant::now() + STOP_DEADLINE;
        loop {
            if let Some(status) = self.exited() {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(format!("the appliance did not stop within {STOP_DEADLINE:?} of SIGTERM"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ApplianceProcess {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
