//! The link figures of SRT inputs (RTT, loss, retransmits, receive rate) as
//! ingest reports them per publish, found by the input's peer address when
//! the API shows a session's inputs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use serde::Serialize;
use utoipa::ToSchema;

/// An SRT input's link, as its last statistics (about once a second) say.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct SrtLinkFigures {
    /// Smoothed round-trip time in milliseconds; null while the SRT stack does not measure it.
    pub rtt_ms: Option<f64>,
    /// Received bits per second over the last second (with retransmissions).
    pub receive_rate_bps: u64,
    /// Data packets received so far (with retransmissions).
    pub packets_received: u64,
    /// Loss reports (NAKs) sent to the caller so far, each naming packets found missing.
    pub loss_reports: u64,
    /// Retransmitted data packets received so far.
    pub packets_retransmitted: u64,
    /// Packets given up on as too late so far: lost for good.
    pub packets_dropped: u64,
    /// The latency both sides agreed on, in milliseconds.
    pub latency_ms: u64,
}

impl From<&ingest::SrtLinkStats> for SrtLinkFigures {
    fn from(s: &ingest::SrtLinkStats) -> Self {
        SrtLinkFigures {
            rtt_ms: s.rtt_ms.map(|rtt| (rtt * 100.0).round() / 100.0),
            receive_rate_bps: s.receive_rate_bps,
            packets_received: s.packets_received,
            loss_reports: s.loss_reports,
            packets_retransmitted: s.packets_retransmitted,
            packets_dropped: s.packets_dropped,
            latency_ms: s.latency_ms,
        }
    }
}

/// The SRT publishes in progress: their peer and last link figures.
#[derive(Debug, Default)]
pub struct SrtLinks {
    by_publish: Mutex<HashMap<u64, (SocketAddr, Option<SrtLinkFigures>)>>,
}

impl SrtLinks {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (SocketAddr, Option<SrtLinkFigures>)>> {
        self.by_publish.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A granted SRT publish from `peer`.
    pub fn started(&self, publish_id: u64, peer: SocketAddr) {
        self.lock().insert(publish_id, (peer, None));
    }

    /// Its latest statistics (ignored for publishes not started as SRT).
    pub fn update(&self, publish_id: u64, stats: &ingest::SrtLinkStats) {
        if let Some((_, figures)) = self.lock().get_mut(&publish_id) {
            *figures = Some(stats.into());
        }
    }

    pub fn ended(&self, publish_id: u64) {
        self.lock().remove(&publish_id);
    }

    /// The link of the SRT input connected from `peer` (as `InputFigure::peer` writes it).
    pub fn of_peer(&self, peer: &str) -> Option<SrtLinkFigures> {
        self.lock().values().find(|(addr, _)| addr.to_string() == peer).and_then(|(_, figures)| *figures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_follow_a_publish_from_start_to_end() {
        let links = SrtLinks::default();
        let peer: SocketAddr = "192.0.2.7:4000".parse().unwrap();
        let stats =
            ingest::SrtLinkStats { rtt_ms: Some(1.234), loss_reports: 3, latency_ms: 120, ..Default::default() };
        links.update(9, &stats);
        links.started(9, peer);
        assert_eq!(links.of_peer("192.0.2.7:4000"), None, "no statistics yet");
        links.update(9, &stats);
        let figures = links.of_peer("192.0.2.7:4000").unwrap();
        assert_eq!((figures.rtt_ms, figures.loss_reports, figures.latency_ms), (Some(1.23), 3, 120));
        assert_eq!(links.of_peer("192.0.2.7:4001"), None);
        links.ended(9);
        assert_eq!(links.of_peer("192.0.2.7:4000"), None);
    }
}
