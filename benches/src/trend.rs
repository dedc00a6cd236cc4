//! Whether a sampled figure (RSS, fds, threads) grows over a run: the median
//! of the last quarter of the samples after warm-up against the median of
//! the first quarter, so one spike or one quiet moment decides nothing, and
//! a least-squares slope for the report.

/// What a series did after warm-up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    /// Median of the first quarter of the samples.
    pub start: f64,
    /// Median of the last quarter.
    pub end: f64,
    /// Least-squares slope, in units per hour.
    pub slope_per_hour: f64,
}

impl Trend {
    /// The trend of `(seconds, value)` samples, or `None` with fewer than 8.
    pub fn of(samples: &[(f64, f64)]) -> Option<Trend> {
        if samples.len() < 8 {
            return None;
        }
        let quarter = samples.len() / 4;
        let start = median(samples[..quarter].iter().map(|s| s.1).collect());
        let end = median(samples[samples.len() - quarter..].iter().map(|s| s.1).collect());
        let n = samples.len() as f64;
        let (mean_t, mean_v) =
            (samples.iter().map(|s| s.0).sum::<f64>() / n, samples.iter().map(|s| s.1).sum::<f64>() / n);
        let covariance: f64 = samples.iter().map(|(t, v)| (t - mean_t) * (v - mean_v)).sum();
        let variance: f64 = samples.iter().map(|(t, _)| (t - mean_t).powi(2)).sum();
        let slope = if variance > 0.0 { covariance / variance } else { 0.0 };
        Some(Trend { start, end, slope_per_hour: slope * 3600.0 })
    }

    pub fn growth(&self) -> f64 {
        self.end - self.start
    }

    /// Whether it grew by more than `absolute` and more than `relative` of its start.
    pub fn grows(&self, absolute: f64, relative: f64) -> bool {
        self.growth() > absolute && self.growth() > relative * self.start
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(f: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
        (0..60).map(|i| (i as f64 * 10.0, f(i as f64))).collect()
    }

    #[test]
    fn growth_is_told_from_noise_and_spikes() {
        let noisy = |i: f64| 100.0 + if (i as u64).is_multiple_of(2) { 3.0 } else { -3.0 };
        // (name, (x, y) points, whether it grows)
        type Case<'a> = (&'a str, Vec<(f64, f64)>, bool);
        let cases: [Case; 5] = [
            ("flat", series(|_| 100.0), false),
            ("noise", series(noisy), false),
            ("one spike", series(|i| if i == 30.0 { 400.0 } else { 100.0 }), false),
            ("steady growth", series(|i| 100.0 + i), true),
            ("a step up that stays", series(|i| if i < 30.0 { 100.0 } else { 130.0 }), true),
        ];
        for (name, samples, grows) in cases {
            let trend = Trend::of(&samples).unwrap();
            assert_eq!(trend.grows(8.0, 0.05), grows, "{name}: {trend:?}");
        }
        let steady = Trend::of(&series(|i| 100.0 + i)).unwrap();
        assert!((steady.slope_per_hour - 360.0).abs() < 1e-6, "one per 10 s is 360 per hour: {steady:?}");
        assert_eq!(Trend::of(&series(|_| 1.0)[..7]), None);
    }
}
