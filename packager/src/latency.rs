//! Ingest-to-published latency of parts: wall time from reading the RTMP
//! message of a part's first frame to the part being visible in the playlist.

use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

/// A histogram of part latencies in microseconds (1 µs to 60 s, 3 significant digits).
#[derive(Debug)]
pub struct LatencyStats {
    histogram: Mutex<Histogram<u64>>,
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
        Self { histogram: Mutex::new(histogram) }
    }

    pub fn record(&self, latency: Duration) {
        let micros = (latency.as_micros() as u64).clamp(1, 60_000_000);
        let mut histogram = self.histogram.lock().unwrap_or_else(|e| e.into_inner());
        let _ = histogram.record(micros);
    }

    /// Cumulative counts at or below each bound (in seconds, ascending), the
    /// count and the sum in seconds: a Prometheus histogram, read at scrape time
    /// (recording stays one histogram update per part).
    pub fn cumulative(&self, bounds_seconds: &[f64]) -> (Vec<u64>, u64, f64) {
        let h = self.histogram.lock().unwrap_or_else(|e| e.into_inner());
        let mut counts = vec![0; bounds_seconds.len()];
        let mut sum_micros = 0.0;
        for v in h.iter_recorded() {
            let micros = h.lowest_equivalent(v.value_iterated_to());
            let n = v.count_at_value();
            sum_micros += micros as f64 * n as f64;
            let seconds = micros as f64 / 1e6;
            for (count, bound) in counts.iter_mut().zip(bounds_seconds) {
                if seconds <= *bound {
                    *count += n;
                }
            }
        }
        (counts, h.len(), sum_micros / 1e6)
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
        let (counts, n, sum) = stats.cumulative(&[0.010, 0.050, 1.0]);
        assert_eq!((counts, n), (vec![10, 50, 100], 100));
        assert!((sum - 5.05).abs() < 0.01, "{sum}");
    }
}
