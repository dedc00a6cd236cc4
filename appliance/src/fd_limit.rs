//! The process's file-descriptor limit against the connections the config
//! allows: every HTTP and RTMP connection is a descriptor, and running out
//! makes `accept` fail for everyone (the health check and publishers
//! included). At start the soft limit is raised, up to the hard limit, to
//! fit the caps plus a reserve for everything else (the state file, the
//! control socket, pipes, libav's files); where the hard limit is too low,
//! the HTTP cap is lowered to fit, with a warning, so the caps are what runs
//! out, not the descriptors.

use rustix::process::{Resource, getrlimit, setrlimit};

/// Descriptors kept for everything but the HTTP and RTMP connections.
pub const RESERVE: u64 = 256;
/// The HTTP cap is never lowered below this.
const MIN_HTTP_CONNECTIONS: u64 = 16;

/// The HTTP connection cap that fits a soft limit of `limit` descriptors.
pub fn fitting_http_cap(limit: u64, http: usize, rtmp: usize) -> usize {
    let room = limit.saturating_sub(RESERVE + rtmp as u64).max(MIN_HTTP_CONNECTIONS);
    (http as u64).min(room) as usize
}

/// Raises the soft limit to fit `http` + `rtmp` connections if it can, and
/// returns the HTTP cap that fits the limit in force.
pub fn fit(http: usize, rtmp: usize) -> usize {
    let needed = http as u64 + rtmp as u64 + RESERVE;
    let limit = getrlimit(Resource::Nofile);
    let (soft, hard) = (limit.current.unwrap_or(u64::MAX), limit.maximum.unwrap_or(u64::MAX));
    let mut in_force = soft;
    if soft < needed {
        let raised = needed.min(hard);
        let wanted = rustix::process::Rlimit { current: Some(raised), maximum: limit.maximum };
        match setrlimit(Resource::Nofile, wanted) {
            Ok(()) => {
                in_force = raised;
                tracing::info!(from = soft, to = raised, "raised the open-file limit to fit the connection caps");
            }
            Err(error) => tracing::warn!(%error, soft, "cannot raise the open-file limit"),
        }
    }
    let cap = fitting_http_cap(in_force, http, rtmp);
    if cap < http {
        tracing::warn!(
            limit = in_force,
            configured = http,
            cap,
            "http.max_connections lowered to fit the open-file limit (raise LimitNOFILE to allow more)"
        );
    }
    cap
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_http_cap_fits_the_limit() {
        assert_eq!(fitting_http_cap(65_536, 2048, 256), 2048, "the unit's LimitNOFILE fits the defaults");
        assert_eq!(fitting_http_cap(1024, 2048, 256), 1024 - 256 - 256);
        assert_eq!(fitting_http_cap(300, 2048, 256), 16, "never below a floor");
        assert_eq!(fitting_http_cap(u64::MAX, 2048, 256), 2048);
    }

    #[test]
    fn fitting_never_lowers_the_limit() {
        let before = getrlimit(Resource::Nofile).current;
        let cap = fit(16, 1);
        assert_eq!(cap, 16);
        assert_eq!(getrlimit(Resource::Nofile).current, before);
    }
}
