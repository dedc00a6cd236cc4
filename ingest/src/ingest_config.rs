//! The RTMP server's limits, with their validation.

use std::time::Duration;

use crate::admission::Limits;
use crate::chunk::PRE_PUBLISH_MAX_MESSAGE;

/// Limits of the RTMP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestConfig {
    /// Connections served at once, publishing or not; more are closed on accept.
    pub max_connections: usize,
    /// Of those, connections that have not yet published with a valid key
    /// (a publish the handler granted). Kept below `max_connections` so that
    /// clients without a key never take the slots of publishers with one.
    pub max_unauthenticated: usize,
    /// Unauthenticated connections from one client address (an IPv6 client
    /// counts by its /64). Publishing connections are not capped by address.
    pub max_unauthenticated_per_address: usize,
    /// From accept to the client's `connect` command (cut to
    /// `publish_deadline` when longer).
    pub connect_deadline: Duration,
    /// From accept to `publish` (handshake, connect, createStream); also the
    /// time the handler has to decide. Stops slowloris handshakes from
    /// holding a slot (scuffle alone only times out a single silent read).
    pub publish_deadline: Duration,
    /// A publisher that sends no audio or video for this long is dropped.
    pub idle_timeout: Duration,
    /// Bytes of unfinished messages that all unauthenticated connections
    /// together may hold; a connection that needs more is closed.
    pub unauthenticated_buffer: usize,
    /// After its first refusal is logged, further refusals from the same
    /// address are summarised in one line per this interval.
    pub refusal_log_interval: Duration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_connections: 64,
            max_unauthenticated: 32,
            max_unauthenticated_per_address: 16,
            connect_deadline: Duration::from_secs(5),
            publish_deadline: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
            unauthenticated_buffer: 4 << 20,
            refusal_log_interval: Duration::from_secs(60),
        }
    }
}

impl IngestConfig {
    /// Refuses limits that would close every connection or contradict each other.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_connections == 0 {
            return Err("ingest: max_connections must be at least 1".to_owned());
        }
        if !(1..=self.max_connections).contains(&self.max_unauthenticated) {
            return Err(format!(
                "ingest: max_unauthenticated must be between 1 and max_connections ({})",
                self.max_connections
            ));
        }
        if !(1..=self.max_unauthenticated).contains(&self.max_unauthenticated_per_address) {
            return Err(format!(
                "ingest: max_unauthenticated_per_address must be between 1 and max_unauthenticated ({})",
                self.max_unauthenticated
            ));
        }
        if self.publish_deadline.is_zero() {
            return Err("ingest: publish_deadline must be longer than 0".to_owned());
        }
        if self.connect_deadline.is_zero() {
            return Err("ingest: connect_deadline must be longer than 0".to_owned());
        }
        if self.idle_timeout.is_zero() {
            return Err("ingest: idle_timeout must be longer than 0".to_owned());
        }
        if self.unauthenticated_buffer < PRE_PUBLISH_MAX_MESSAGE {
            return Err(format!(
                "ingest: unauthenticated_buffer must be at least {PRE_PUBLISH_MAX_MESSAGE} bytes (one pre-publish message)"
            ));
        }
        if self.refusal_log_interval.is_zero() {
            return Err("ingest: refusal_log_interval must be longer than 0".to_owned());
        }
        Ok(())
    }

    pub(crate) fn limits(&self) -> Limits {
        Limits {
            total: self.max_connections,
            unauthenticated: self.max_unauthenticated,
            per_address: self.max_unauthenticated_per_address,
        }
    }
}
