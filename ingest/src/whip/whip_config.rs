//! The WHIP ingest's settings.

use std::net::IpAddr;
use std::time::Duration;

/// Settings of the WHIP ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhipConfig {
    /// The address each publisher's UDP socket binds (a fresh port per publisher).
    pub udp_bind: IpAddr,
    /// The addresses offered as ICE host candidates besides the one the
    /// publisher's HTTP request reached (a public address in front of a NAT).
    pub candidate_ips: Vec<IpAddr>,
    /// Publishers at once; more are refused (503).
    pub max_publishers: usize,
    /// Time the handler has to decide a publish.
    pub publish_deadline: Duration,
    /// A publisher whose ICE and DTLS do not complete, or that sends no
    /// media, for this long is dropped.
    pub idle_timeout: Duration,
    /// After its first refusal is logged, further refusals from an address are summarised per interval.
    pub refusal_log_interval: Duration,
}

impl Default for WhipConfig {
    fn default() -> Self {
        Self {
            udp_bind: IpAddr::from([0, 0, 0, 0]),
            candidate_ips: Vec::new(),
            max_publishers: 64,
            publish_deadline: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
            refusal_log_interval: Duration::from_secs(60),
        }
    }
}
