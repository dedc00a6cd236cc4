//! The process's own figures, read from `/proc/self` at scrape time: CPU
//! seconds, resident memory, open and allowed file descriptors, threads and
//! the start time (the names Prometheus's own clients use, `process_*`).

use std::path::Path;

/// What `/proc/self` says now (absent where it cannot be read).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessFigures {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<u64>,
    pub virtual_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub threads: Option<u64>,
    pub start_time_seconds: Option<f64>,
}

/// Kernel clock ticks per second for `/proc/*/stat` times: 100 on every
/// Linux architecture the appliance runs on (USER_HZ, fixed by the ABI).
const USER_HZ: f64 = 100.0;

impl ProcessFigures {
    /// Reads `/proc/self` (blocking file reads: a few syscalls).
    pub fn read() -> ProcessFigures {
        let proc = Path::new("/proc/self");
        let stat = std::fs::read_to_string(proc.join("stat")).unwrap_or_default();
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> =
            stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
        // `fields[0]` is field 3 (state) of proc(5).
        let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
        let status = std::fs::read_to_string(proc.join("status")).unwrap_or_default();
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(':')?.split_whitespace().next()?.parse::<u64>().ok())
        };
        let boot_time = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| s.lines().find_map(|l| l.strip_prefix("btime ")?.trim().parse::<u64>().ok()));
        ProcessFigures {
            cpu_seconds: field(14).zip(field(15)).map(|(utime, stime)| (utime + stime) as f64 / USER_HZ),
            virtual_bytes: field(23),
            resident_bytes: kib("VmRSS").map(|k| k * 1024),
            threads: field(20),
            start_time_seconds: boot_time.zip(field(22)).map(|(boot, ticks)| boot as f64 + ticks as f64 / USER_HZ),
            open_fds: std::fs::read_dir(proc.join("fd")).ok().map(|d| d.count() as u64),
            max_fds: rustix::process::getrlimit(rustix::process::Resource::Nofile).current,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let figures = ProcessFigures::read();
        assert!(figures.resident_bytes.unwrap() > 1_000_000, "{figures:?}");
        assert!(figures.threads.unwrap() >= 1, "{figures:?}");
        assert!(figures.open_fds.unwrap() >= 3, "{figures:?}");
        assert!(figures.cpu_seconds.unwrap() >= 0.0, "{figures:?}");
        let start = figures.start_time_seconds.unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        assert!(start <= now + 1.0 && start > now - 86_400.0 * 365.0, "{start} vs {now}");
    }
}
