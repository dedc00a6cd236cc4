//! A running process's resident memory, open file descriptors and threads,
//! read from /proc (what `top` and `ls /proc/PID/fd` would show an operator).

/// One sample of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessStats {
    pub rss_kib: u64,
    pub fds: u64,
    pub threads: u64,
}

impl ProcessStats {
    /// The process's figures now, or `None` once it is gone.
    pub fn read(pid: u32) -> Option<ProcessStats> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
        Some(ProcessStats { rss_kib: field(&status, "VmRSS:")?, threads: field(&status, "Threads:")?, fds })
    }

    pub fn rss_mib(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }
}

/// The first number after `name` in /proc/PID/status.
fn field(status: &str, name: &str) -> Option<u64> {
    status.lines().find_map(|line| line.strip_prefix(name))?.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let own = ProcessStats::read(std::process::id()).expect("this process is in /proc");
        assert!(own.rss_kib > 0 && own.threads >= 1 && own.fds >= 3, "{own:?}");
        assert_eq!(field("Name:\tx\nVmRSS:\t  1234 kB\n", "VmRSS:"), Some(1234));
        assert_eq!(field("Name:\tx\n", "VmRSS:"), None);
    }
}
