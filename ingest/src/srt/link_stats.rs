//! srt-tokio's socket statistics -> the link figures the handler hears.

use std::time::Duration;

use srt_tokio::SocketStatistics;

use crate::handler::SrtLinkStats;

/// The link figures of `now`, with the receive rate over the time since `before`.
pub(crate) fn link_stats(now: &SocketStatistics, before: Option<&SocketStatistics>, latency: Duration) -> SrtLinkStats {
    let receive_rate_bps = match before {
        Some(before) if now.elapsed_time > before.elapsed_time => {
            let bytes = now.rx_bytes.saturating_sub(before.rx_bytes);
            let seconds = (now.elapsed_time - before.elapsed_time).as_secs_f64();
            (bytes as f64 * 8.0 / seconds) as u64
        }
        _ => 0,
    };
    SrtLinkStats {
        rtt_ms: now.rx_average_rtt.as_secs_f64() * 1000.0,
        receive_rate_bps,
        packets_received: now.rx_data,
        packets_lost: now.rx_loss_data,
        packets_retransmitted: now.rx_retransmit_data,
        packets_dropped: now.rx_dropped_data,
        latency_ms: latency.as_millis() as u64,
    }
}
