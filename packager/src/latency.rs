//! Ingest-to-published latency of parts: wall time from reading the RTMP
//! message of a part's first frame to the part being visible in the playlist.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

/// Upper bounds (seconds) of the Prometheus buckets: parts are 0.2-0.33 s at
/// ultra-low latency, whole segments (2-6 s) in the other modes.
pub const BUCKET_BOUNDS_SECONDS: [f64; 14] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0];

/// A histogram of part latencies in microseconds (1 µs to 60 s, 3 significant
/// digits) for the logged percentiles, and cumulative counters per bucket of
/// `BUCKET_BOUNDS_SECONDS` for `/metrics` (read without walking the histogram).
#[derive(Debug)]
pub struct LatencyStats {
    histogram: Mutex<Histogram<u64>>,
    /// Parts at or below each bound.
    buckets: [AtomicU64; BUCKET_BOUNDS_SECONDS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

/// Percentiles of a latency histogram.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl std::fmt::Display for LatencySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "n={} p50={:.1}ms p95={:.1}ms p99={:.1}ms max={:.1}ms",
            self.count, self.p50_ms, self.p95_ms, self.p99_ms, self.max_ms
        )
    }
}

impl Default for LatencyStats {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyStats {
    pub fn new() -> Self {
        let histogram = Histogram::new_with_bounds(1, 60_000_000, 3).expect("static histogram bounds are valid");
        Self {
            histogram: Mutex::new(histogram),
            buckets: Default::default(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn record(&self, latency: Duration) {
        let micros = (latency.as_micros() as u64).clamp(1, 60_000_000);
        let seconds = micros as f64 / 1e6;
        for (bucket, bound) in self.buckets.iter().zip(BUCKET_BOUNDS_SECONDS) {
            if seconds <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        let mut histogram = self.histogram.lock().unwrap_or_else(|e| e.into_inner());
        let _ = histogram.record(micros);
    }

    /// Parts at or below each of `BUCKET_BOUNDS_SECONDS` (cumulative), the
    /// count and the sum in seconds: a Prometheus histogram, read at scrape time.
    pub fn cumulative(&self) -> (Vec<u64>, u64, f64) {
        let counts = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let count = self.count.load(Ordering::Relaxed);
        (counts, count, self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6)
    }

    pub fn summary(&self) -> LatencySummary {
        let h = self.histogram.lock().unwrap_or_else(|e| e.into_inner());
        let ms = |v: u64| v as f64 / 1000.0;
        LatencySummary {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarises_percentiles() {
        let stats = LatencyStats::new();
        for ms in 1..=100 {
            stats.record(Duration::from_millis(ms));
        }
        let s = stats.summary();
        assert_eq!(s.count, 100);
        assert!((s.p50_ms - 50.0).abs() < 0.1, "{s}");
        assert!((s.p99_ms - 99.0).abs() < 0.1, "{s}");
        assert!((s.max_ms - 100.0).abs() < 0.1, "{s}");
        let (counts, n, sum) = stats.cumulative();
        let at = |bound: f64| counts[BUCKET_BOUNDS_SECONDS.iter().position(|b| *b == bound).unwrap()];
        assert_eq!((at(0.005), at(0.01), at(0.05), at(0.1), at(30.0), n), (5, 10, 50, 100, 100, 100));
        assert!((sum - 5.05).abs() < 1e-9, "{sum}");
    }
}
