//! CPU seconds of a process (user + system) from /proc, and the real-time
//! `-c copy` replay publisher: what the channel-density and recording-cost
//! benches measure with.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// CPU seconds a running process has used, from /proc (None once it is gone).
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let per_second = rustix::param::clock_ticks_per_second() as f64;
    Some(ticks / per_second)
}

/// CPU seconds this process has used.
pub fn own_cpu_seconds() -> f64 {
    process_cpu_seconds(std::process::id()).expect("this process's /proc/self/stat")
}

/// A real-time `-c copy` publisher of `seconds` of `source` to `url`.
pub fn replay(source: &Path, url: &str, seconds: u32) -> Child {
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

/// Samples the CPU of `children` until every one has exited, or `limit`
/// has passed (then the rest are killed); returns their CPU seconds summed.
pub fn cpu_until_exit(mut children: Vec<Child>, limit: std::time::Duration) -> f64 {
    let pids: Vec<u32> = children.iter().map(Child::id).collect();
    let mut last_seen = vec![0.0; children.len()];
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        let mut running = 0;
        for (i, pid) in pids.iter().enumerate() {
            if let Some(cpu) = process_cpu_seconds(*pid) {
                last_seen[i] = cpu;
            }
            if children[i].try_wait().ok().flatten().is_none() {
                running += 1;
            }
        }
        if running == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    last_seen.iter().sum()
}
