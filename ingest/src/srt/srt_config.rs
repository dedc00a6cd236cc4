//! The SRT listener's settings.

use std::time::Duration;

/// Settings of the SRT listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtConfig {
    /// The receive latency we offer (SRT takes the larger of the two sides'); 120 ms is SRT's default.
    pub latency: Duration,
    /// Callers being decided or publishing at once; more are rejected (SRT code 2402, overload).
    pub max_connections: usize,
    /// Time the handler has to decide a caller.
    pub publish_deadline: Duration,
    /// A publisher that sends nothing for this long is dropped.
    pub idle_timeout: Duration,
    /// After its first refusal is logged, further refusals from an address are summarised per interval.
    pub refusal_log_interval: Duration,
}

impl Default for SrtConfig {
    fn default() -> Self {
        Self {
            latency: Duration::from_millis(120),
            max_connections: 64,
            publish_deadline: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
            refusal_log_interval: Duration::from_secs(60),
        }
    }
}
