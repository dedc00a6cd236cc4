//! Timebases and tick rescaling. Timestamps are `i64` ticks in a track's
//! timebase; RTMP's 32-bit milliseconds are widened and unwrapped at ingest.

use serde::{Deserialize, Serialize};

/// Ticks per second of a track's clock (1/90000 for video, 1/sample-rate for audio).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Timebase(pub u32);

impl Timebase {
    /// The MPEG video clock.
    pub const VIDEO: Timebase = Timebase(90_000);
    /// Milliseconds, RTMP's clock.
    pub const MILLIS: Timebase = Timebase(1_000);

    pub fn ticks_per_second(self) -> u32 {
        self.0
    }

    /// Rescales `ticks` from `self` to `to`, rounding to nearest (half away from zero).
    pub fn rescale(self, ticks: i64, to: Timebase) -> i64 {
        if self == to {
            return ticks;
        }
        let num = ticks as i128 * to.0 as i128;
        let den = self.0 as i128;
        let half = den / 2;
        let rounded = if num >= 0 { (num + half) / den } else { (num - half) / den };
        rounded as i64
    }

    /// Converts ticks to seconds.
    pub fn seconds(self, ticks: i64) -> f64 {
        ticks as f64 / self.0 as f64
    }

    /// Converts a duration to ticks, rounding to nearest.
    pub fn ticks(self, duration: std::time::Duration) -> i64 {
        (duration.as_nanos() as i128 * self.0 as i128 / 1_000_000_000) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rescale_table() {
        let cases = [
            (Timebase::MILLIS, 33, Timebase::VIDEO, 2_970),
            (Timebase::MILLIS, -1, Timebase::VIDEO, -90),
            (Timebase::VIDEO, 3_003, Timebase::MILLIS, 33),
            (Timebase::VIDEO, 45, Timebase::MILLIS, 1), // half rounds away from zero
            (Timebase(48_000), 1_024, Timebase::MILLIS, 21),
            (Timebase::MILLIS, 21, Timebase(44_100), 926),
            (Timebase::MILLIS, i32::MAX as i64 * 4, Timebase::VIDEO, i32::MAX as i64 * 360),
        ];
        for (from, ticks, to, want) in cases {
            assert_eq!(from.rescale(ticks, to), want, "{ticks} from {from:?} to {to:?}");
        }
    }
}
