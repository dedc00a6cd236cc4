//! TS time (33-bit, 90 kHz) onto one timeline for every track: unwrapped
//! past 2^33 (26.5 hours), rebased so the first unit is 0, and moved when
//! the source jumps (an encoder restart) so that the timeline goes on.

/// Where 33-bit PTS/DTS wrap.
pub(crate) const WRAP: i64 = 1 << 33;
/// A step of a track's time larger than this (10 s) is a discontinuity.
pub(crate) const MAX_JUMP: i64 = 10 * 90_000;

/// One track's 33-bit times made continuous 64-bit ones.
#[derive(Debug, Default)]
pub(crate) struct Unwrapper {
    last: Option<i64>,
}

impl Unwrapper {
    /// The 64-bit time nearest to the previous one that ends in `raw`'s 33 bits.
    pub fn extend(&mut self, raw: i64) -> i64 {
        let raw = raw & (WRAP - 1);
        let ext = match self.last {
            None => raw,
            Some(last) => {
                let candidate = last - last.rem_euclid(WRAP) + raw;
                if candidate - last > WRAP / 2 {
                    candidate - WRAP
                } else if last - candidate > WRAP / 2 {
                    candidate + WRAP
                } else {
                    candidate
                }
            }
        };
        self.last = Some(ext);
        ext
    }
}

/// The difference `pts - dts` of two 33-bit times (the composition offset).
pub(crate) fn composition_offset(pts_raw: i64, dts_raw: i64) -> i64 {
    let d = (pts_raw - dts_raw).rem_euclid(WRAP);
    if d >= WRAP / 2 { d - WRAP } else { d }
}

/// One origin for every track of a publish.
#[derive(Debug, Default)]
pub(crate) struct Timeline {
    /// Unwrapped source time of timeline 0.
    origin: Option<i64>,
    /// The latest time placed.
    latest: Option<i64>,
}

impl Timeline {
    /// The timeline time (90 kHz since the first unit) of an unwrapped source
    /// time, and whether the source jumped (the timeline was rebased).
    pub fn place(&mut self, ext: i64) -> (i64, bool) {
        let origin = *self.origin.get_or_insert(ext);
        let mut t = ext - origin;
        let mut jumped = false;
        if let Some(latest) = self.latest
            && (t - latest).abs() > MAX_JUMP
        {
            self.origin = Some(ext - latest);
            t = latest;
            jumped = true;
        }
        self.latest = Some(self.latest.map_or(t, |l| l.max(t)));
        (t, jumped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwraps_past_33_bits() {
        let mut u = Unwrapper::default();
        let raws = [WRAP - 3003, WRAP - 1, 2, 3003, 1000, WRAP - 10];
        let got: Vec<i64> = raws.iter().map(|&r| u.extend(r)).collect();
        assert_eq!(got, [WRAP - 3003, WRAP - 1, WRAP + 2, WRAP + 3003, WRAP + 1000, WRAP - 10]);
        assert_eq!(composition_offset(1, WRAP - 2), 3);
        assert_eq!(composition_offset(WRAP - 2, 1), -3);
    }

    #[test]
    fn timeline_rebases_jumps() {
        let mut t = Timeline::default();
        let placed: Vec<(i64, bool)> =
            [900_000, 903_000, 901_500, 50_000_000, 50_003_000, 0].iter().map(|&e| t.place(e)).collect();
        assert_eq!(placed, [(0, false), (3000, false), (1500, false), (3000, true), (6000, false), (6000, true)]);
    }
}
