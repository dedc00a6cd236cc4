//! What a running pipeline measures per rung: frames and bytes out, and the
//! added latency of the transcode (the source unit's arrival to its encoded
//! unit leaving the encoder), as a histogram reported in percentiles.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Counters of one rung, shared between its encoder thread and whoever reports.
#[derive(Debug)]
pub struct RungMeter {
    pub name: String,
    frames: AtomicU64,
    bytes: AtomicU64,
    /// Frames the rate cap left out.
    capped: AtomicU64,
    size: Mutex<(u32, u32)>,
    latency_us: Mutex<Histogram<u64>>,
}

/// A snapshot of one rung.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RungStats {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub frames: u64,
    pub bytes: u64,
    pub capped_frames: u64,
    pub latency_ms_p50: f64,
    pub latency_ms_p95: f64,
    pub latency_ms_max: f64,
}

impl RungMeter {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            frames: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            capped: AtomicU64::new(0),
            size: Mutex::new((0, 0)),
            // 1 us to 1 hour, 3 significant digits: fixed memory.
            latency_us: Mutex::new(Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")),
        }
    }

    pub fn set_size(&self, width: u32, height: u32) {
        *self.size.lock().unwrap_or_else(|e| e.into_inner()) = (width, height);
    }

    pub fn record_frame(&self, bytes: usize, latency: Duration) {
        self.frames.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        let us = (latency.as_micros() as u64).clamp(1, 3_600_000_000);
        let _ = self.latency_us.lock().unwrap_or_else(|e| e.into_inner()).record(us);
    }

    pub fn record_capped(&self) {
        self.capped.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> RungStats {
        let h = self.latency_us.lock().unwrap_or_else(|e| e.into_inner());
        let ms = |us: u64| us as f64 / 1000.0;
        let (width, height) = *self.size.lock().unwrap_or_else(|e| e.into_inner());
        RungStats {
            name: self.name.clone(),
            width,
            height,
            frames: self.frames.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            capped_frames: self.capped.load(Ordering::Relaxed),
            latency_ms_p50: if h.is_empty() { 0.0 } else { ms(h.value_at_quantile(0.5)) },
            latency_ms_p95: if h.is_empty() { 0.0 } else { ms(h.value_at_quantile(0.95)) },
            latency_ms_max: if h.is_empty() { 0.0 } else { ms(h.max()) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_added_latency() {
        let m = RungMeter::new("360p");
        m.set_size(640, 360);
        for ms in 1..=100 {
            m.record_frame(1000, Duration::from_millis(ms));
        }
        m.record_capped();
        let s = m.snapshot();
        assert_eq!((s.frames, s.bytes, s.capped_frames, s.width), (100, 100_000, 1, 640));
        assert!((s.latency_ms_p50 - 50.0).abs() < 0.1, "{s:?}");
        assert!((s.latency_ms_p95 - 95.0).abs() < 0.1, "{s:?}");
        assert!((s.latency_ms_max - 100.0).abs() < 0.1, "{s:?}");
    }
}
