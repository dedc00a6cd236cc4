//! CPU time of processes (from /proc) and the real-time `-c copy`
//! publishers that the per-channel CPU benches (`channel_density`,
//! `restream`) feed the appliance and their references with.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// CPU seconds this process has used (user + system).
pub fn own_cpu_seconds() -> f64 {
    process_cpu_seconds(std::process::id()).expect("this process's /proc/self/stat")
}

/// CPU seconds a running process has used, from /proc (None once it is gone).
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let per_second = rustix::param::clock_ticks_per_second() as f64;
    Some(ticks / per_second)
}

/// A real-time `-c copy` publisher of `source` to `url` for `seconds`.
pub fn copy_publisher(source: &Path, url: &str, seconds: u32) -> Child {
    Command::new("ffmpeg")
        .args(["-v", "error", "-re", "-i"])
        .arg(source)
        .args(["-t", &seconds.to_string(), "-c", "copy", "-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg starts")
}

/// Waits for every child; returns how many exited successfully.
pub fn wait_all(children: Vec<Child>) -> usize {
    children.into_iter().map(|mut c| c.wait().map(|s| s.success()).unwrap_or(false)).filter(|ok| *ok).count()
}

/// The CPU seconds `children` use until they all exit (sampled from /proc
/// every 100 ms: a child's time is gone once it is reaped), or until `limit`;
/// then any still running is killed.
pub fn cpu_until_exit(children: &mut [Child], limit: std::time::Duration) -> f64 {
    let pids: Vec<u32> = children.iter().map(Child::id).collect();
    let mut last_seen = vec![0.0; children.len()];
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        for (seen, pid) in last_seen.iter_mut().zip(&pids) {
            if let Some(cpu) = process_cpu_seconds(*pid) {
                *seen = cpu;
            }
        }
        if children.iter_mut().all(|c| c.try_wait().ok().flatten().is_some()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    for child in children.iter_mut() {
        let _ = child.kill();
        let _ = child.wait();
    }
    last_seen.iter().sum()
}

/// The `ffmpeg` program listening for one RTMP publish at `url` and
/// handling it with `output` (for example `-c copy -f null -`): the
/// reference side of the per-channel CPU benches, and their sinks.
pub fn rtmp_listener(url: &str, output: &[&std::ffi::OsStr]) -> Child {
    Command::new("ffmpeg")
        .args(["-v", "error", "-f", "flv", "-listen", "1", "-i", url])
        .args(output)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg starts")
}
