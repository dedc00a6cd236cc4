//! Decisions taken on the source's timeline so that every rung agrees: where
//! keyframes are forced (the same source timestamps in every rung, so segment
//! boundaries align and players can switch) and which frames a rung with a
//! frame-rate cap keeps (never dropping a forced keyframe).

/// Timestamps are in 90 kHz ticks.
pub const TICKS_PER_SECOND: i64 = 90_000;

/// Forces a keyframe on the first frame, then on the first frame at or after
/// each interval; a source keyframe a little early (from three quarters of
/// the interval) is taken instead, so a publisher whose GOP matches the
/// segment target keeps its own cadence (and the source rendition aligns).
#[derive(Debug, Clone)]
pub struct KeyframeCadence {
    interval: i64,
    last: Option<i64>,
}

impl KeyframeCadence {
    pub fn new(interval_ticks: i64) -> Self {
        Self { interval: interval_ticks.max(1), last: None }
    }

    /// Forces a keyframe on the next frame again (the source switched inputs:
    /// every rung starts a GOP there, so renditions stay aligned).
    pub fn restart(&mut self) {
        self.last = None;
    }

    /// Whether the frame at `pts` must be a keyframe in every rung.
    pub fn decide(&mut self, pts: i64, source_keyframe: bool) -> bool {
        let force = match self.last {
            None => true,
            Some(last) if pts < last => true, // timestamps went back: a new timeline
            Some(last) => {
                let elapsed = pts - last;
                elapsed >= self.interval || (source_keyframe && elapsed * 4 >= self.interval * 3)
            }
        };
        if force {
            self.last = Some(pts);
        }
        force
    }
}

/// A rung's frame-rate cap: keeps frames on an accumulating schedule of the
/// capped rate (so 50 -> 30 fps keeps 30, not 25) and always keeps forced keyframes.
#[derive(Debug, Clone)]
pub struct FrameRateCap {
    interval: Option<f64>,
    next: Option<f64>,
}

/// Timestamp jitter tolerated (RTMP's millisecond clock): 2 ms.
const JITTER_TICKS: f64 = 180.0;

impl FrameRateCap {
    /// `max_fps` None or 0 keeps every frame.
    pub fn new(max_fps: Option<u32>) -> Self {
        Self { interval: max_fps.filter(|f| *f > 0).map(|f| TICKS_PER_SECOND as f64 / f as f64), next: None }
    }

    pub fn keep(&mut self, pts: i64, forced_keyframe: bool) -> bool {
        let Some(interval) = self.interval else { return true };
        let pts = pts as f64;
        let due = self.next.is_none_or(|next| pts >= next - JITTER_TICKS);
        if !(due || forced_keyframe) {
            return false;
        }
        self.next = Some(match self.next {
            Some(next) if !forced_keyframe && pts < next + interval => next + interval,
            _ => pts + interval,
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyframes_on_the_interval_or_a_source_keyframe_close_to_it() {
        let second = TICKS_PER_SECOND;
        // (pts in ms, source keyframe, forced)
        let cases = [
            (0, false, true),
            (500, true, false), // a source keyframe too early: ignored
            (767, true, true),  // a source keyframe past 3/4 of the interval: taken
            (1_500, false, false),
            (1_767, false, true), // the interval passed
            (2_000, false, false),
            (100, false, true), // timestamps went back
        ];
        let mut cadence = KeyframeCadence::new(second);
        for (ms, source_key, want) in cases {
            assert_eq!(cadence.decide(ms * 90, source_key), want, "{ms} ms");
        }
    }

    #[test]
    fn a_restart_forces_the_next_frame() {
        let mut c = KeyframeCadence::new(2 * TICKS_PER_SECOND);
        assert!(c.decide(0, true));
        assert!(!c.decide(3000, false));
        c.restart();
        assert!(c.decide(6000, false), "the switch's first frame");
        assert!(!c.decide(9000, false));
        assert!(c.decide(6000 + 2 * TICKS_PER_SECOND, false), "the interval counts from the switch");
    }

    #[test]
    fn every_rung_forces_the_same_frames() {
        let frames: Vec<(i64, bool)> = (0..300).map(|i| (i * 3003, i % 50 == 0)).collect();
        let run = || {
            let mut c = KeyframeCadence::new(2 * TICKS_PER_SECOND);
            frames.iter().filter(|(pts, key)| c.decide(*pts, *key)).map(|(pts, _)| *pts).collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
        // Source keyframes every 1.67 s are adopted (past 3/4 of the 2 s interval).
        assert_eq!(run().len(), 6, "10 s of 29.97 fps");
    }

    #[test]
    fn frame_rate_caps() {
        let kept = |source_fps: f64, cap: Option<u32>, forced_every: Option<usize>| {
            let mut c = FrameRateCap::new(cap);
            (0..(source_fps * 10.0).round() as usize)
                .filter(|i| {
                    let pts = (*i as f64 * TICKS_PER_SECOND as f64 / source_fps) as i64;
                    c.keep(pts, forced_every.is_some_and(|n| i % n == 0))
                })
                .count()
        };
        assert_eq!(kept(30.0, None, None), 300);
        assert_eq!(kept(30.0, Some(30), None), 300);
        assert_eq!(kept(60.0, Some(30), None), 300);
        assert_eq!(kept(50.0, Some(30), None), 300);
        assert_eq!(kept(59.94, Some(30), None), 300);
        // Forced keyframes survive the cap: one per second at 60 fps lands on kept frames or adds one.
        let with_keys = kept(60.0, Some(25), Some(61));
        assert!((250..=262).contains(&with_keys), "{with_keys}");
    }
}
