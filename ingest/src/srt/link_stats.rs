//! srt-tokio's socket statistics -> the link figures the handler hears.

use std::time::{Duration, Instant};

use srt_tokio::SocketStatistics;

use crate::handler::SrtLinkStats;

/// The link figures of `now`, with the receive rate over the time since
/// `before` (bytes received then, and when), or since the connection started.
/// The interval is our own clock's: srt-tokio 0.4 leaves `elapsed_time` at 0.
pub(crate) fn link_stats(
    now: &SocketStatistics,
    at: Instant,
    before: (Instant, u64),
    latency: Duration,
) -> SrtLinkStats {
    let bytes = now.rx_bytes.saturating_sub(before.1);
    let elapsed = at.saturating_duration_since(before.0);
    let receive_rate_bps = if elapsed.is_zero() { 0 } else { (bytes as f64 * 8.0 / elapsed.as_secs_f64()) as u64 };
    let rtt = now.rx_average_rtt.max(now.tx_average_rtt);
    SrtLinkStats {
        rtt_ms: (!rtt.is_zero()).then_some(rtt.as_secs_f64() * 1000.0),
        receive_rate_bps,
        packets_received: now.rx_data,
        loss_reports: now.tx_nak,
        packets_retransmitted: now.rx_retransmit_data,
        packets_dropped: now.rx_dropped_data,
        latency_ms: latency.as_millis() as u64,
    }
}
