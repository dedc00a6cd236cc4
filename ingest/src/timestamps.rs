//! RTMP time to track time: 32-bit millisecond timestamps widened to `i64`
//! and unwrapped, rebased to start at 0 on one origin shared by audio and
//! video, discontinuities smoothed; per-track strictly increasing decode
//! times; audio decode times counted in samples.

use media::Timebase;

/// A jump forward larger than this between two messages is a discontinuity.
pub(crate) const MAX_FORWARD_JUMP_MS: i64 = 10_000;
/// A message this far behind the latest output time is a discontinuity
/// (smaller steps back are audio/video interleaving, or jitter the tracks clamp).
pub(crate) const MAX_BACKWARD_JUMP_MS: i64 = 1_000;

/// The shared millisecond timeline of one publish.
#[derive(Debug, Default)]
pub(crate) struct Timeline {
    last_raw: Option<u32>,
    unwrapped: i64,
    /// Output = unwrapped + offset.
    offset: i64,
    latest: i64,
    /// The last ordinary forward step, used to continue after a discontinuity.
    step: i64,
}

/// One timestamp placed on the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placed {
    /// Milliseconds since the first message of the publish.
    pub ms: i64,
    /// The source jumped here and the timeline was rebased.
    pub discontinuity: bool,
}

impl Timeline {
    /// Places a message's 32-bit RTMP timestamp on the timeline.
    pub fn place(&mut self, raw: u32) -> Placed {
        let Some(prev) = self.last_raw.replace(raw) else {
            self.unwrapped = raw as i64;
            self.offset = -self.unwrapped;
            self.latest = 0;
            return Placed { ms: 0, discontinuity: false };
        };
        // 32-bit wrap: the wrapping difference read as signed is the real step.
        let delta = raw.wrapping_sub(prev) as i32 as i64;
        self.unwrapped += delta;
        let mut ms = self.unwrapped + self.offset;
        let discontinuity = delta > MAX_FORWARD_JUMP_MS || ms < self.latest - MAX_BACKWARD_JUMP_MS;
        if discontinuity {
            ms = self.latest + self.step.max(1);
            self.offset = ms - self.unwrapped;
        } else if delta > 0 {
            self.step = delta.min(MAX_BACKWARD_JUMP_MS);
        }
        self.latest = self.latest.max(ms);
        Placed { ms, discontinuity }
    }

    /// The latest output time so far.
    pub fn latest(&self) -> i64 {
        self.latest
    }
}

/// Keeps one track's decode times strictly increasing.
#[derive(Debug, Default)]
pub(crate) struct Monotonic {
    last: Option<i64>,
}

impl Monotonic {
    /// Returns `dts`, or one tick after the previous one when it would not
    /// increase; the second value says whether it was clamped.
    pub fn next(&mut self, dts: i64) -> (i64, bool) {
        let (dts, clamped) = match self.last {
            Some(last) if dts <= last => (last + 1, true),
            _ => (dts, false),
        };
        self.last = Some(dts);
        (dts, clamped)
    }
}

/// Audio decode times in samples: each unit follows the previous one by the
/// samples it carried (1024 for AAC; what the frame headers, byte count or
/// Opus TOC say for the others), so the packager's durations are exact;
/// re-synced to the RTMP clock only when the two drift apart by more than
/// half a unit plus a margin. A unit whose length is unknown is timed by the
/// RTMP clock alone.
#[derive(Debug)]
pub(crate) struct AudioClock {
    timebase: Timebase,
    last: Option<i64>,
    /// Samples of the last unit; 0 when unknown.
    last_samples: u32,
}

/// How far beyond half a frame the counted clock may drift from RTMP time
/// before it is re-synced (RTMP's millisecond rounding is at most 1 ms).
pub(crate) const AUDIO_RESYNC_MARGIN_MS: i64 = 4;

impl AudioClock {
    pub fn new(sample_rate: u32) -> Self {
        Self { timebase: Timebase(sample_rate.max(1)), last: None, last_samples: 0 }
    }

    /// Continues in a new timebase (a configuration with another rate): the
    /// next unit follows the end of the last one, converted.
    pub fn set_sample_rate(&mut self, sample_rate: u32) {
        let timebase = Timebase(sample_rate.max(1));
        self.last = self.last.map(|last| self.timebase.rescale(last, timebase));
        self.last_samples = self.timebase.rescale(self.last_samples as i64, timebase).max(0) as u32;
        self.timebase = timebase;
    }

    pub fn timebase(&self) -> Timebase {
        self.timebase
    }

    /// The decode time of the next unit, whose RTMP time is `ms` on the
    /// timeline and which carries `samples` (0: unknown). The second value
    /// says whether the clock was re-synced.
    pub fn next(&mut self, ms: i64, samples: u32) -> (i64, bool) {
        let rtmp = Timebase::MILLIS.rescale(ms, self.timebase);
        let (dts, resync) = match self.last {
            None => (rtmp, false),
            Some(last) if self.last_samples == 0 => (rtmp.max(last + 1), false),
            Some(last) => {
                let expected = last + self.last_samples as i64;
                let tolerance =
                    self.last_samples as i64 / 2 + Timebase::MILLIS.rescale(AUDIO_RESYNC_MARGIN_MS, self.timebase);
                if (rtmp - expected).abs() > tolerance { (rtmp.max(last + 1), true) } else { (expected, false) }
            }
        };
        self.last = Some(dts);
        self.last_samples = samples;
        (dts, resync)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (output time, discontinuity or re-sync).
    type Out = (i64, bool);

    fn place_all(raws: &[u32]) -> Vec<(i64, bool)> {
        let mut timeline = Timeline::default();
        raws.iter().map(|&raw| timeline.place(raw)).map(|p| (p.ms, p.discontinuity)).collect()
    }

    #[test]
    fn timeline_cases() {
        let cases: Vec<(&str, Vec<u32>, Vec<Out>)> = vec![
            ("starts at zero", vec![0, 33, 66], vec![(0, false), (33, false), (66, false)]),
            (
                "non-zero start is rebased",
                vec![5_000, 5_033, 5_021, 5_066],
                vec![(0, false), (33, false), (21, false), (66, false)],
            ),
            (
                "32-bit wrap near u32::MAX",
                vec![u32::MAX - 40, u32::MAX - 7, 25, 58],
                vec![(0, false), (33, false), (66, false), (99, false)],
            ),
            (
                "wrap with the start exactly at u32::MAX",
                vec![u32::MAX, 0, 32],
                vec![(0, false), (1, false), (33, false)],
            ),
            (
                "interleaved audio slightly behind video is no jump",
                vec![1_000, 1_033, 990, 1_066, 1_012],
                vec![(0, false), (33, false), (-10, false), (66, false), (12, false)],
            ),
            (
                "backwards jump (encoder restart) continues after the latest time",
                vec![10_000, 10_033, 10_066, 500, 533],
                vec![(0, false), (33, false), (66, false), (99, true), (132, false)],
            ),
            (
                "big forward jump continues smoothly",
                vec![0, 40, 80, 3_600_000, 3_600_040],
                vec![(0, false), (40, false), (80, false), (120, true), (160, false)],
            ),
            ("a 9 s gap is real time, kept", vec![0, 40, 9_040], vec![(0, false), (40, false), (9_040, false)]),
            (
                "a jump across the wrap point backwards",
                vec![10, 50, u32::MAX - 100_000, u32::MAX - 99_960],
                vec![(0, false), (40, false), (80, true), (120, false)],
            ),
        ];
        for (name, raws, want) in cases {
            assert_eq!(place_all(&raws), want, "{name}");
        }
    }

    #[test]
    fn timeline_runs_past_32_bits() {
        let mut timeline = Timeline::default();
        let mut raw = u32::MAX - 1_000;
        let mut last = timeline.place(raw).ms;
        for _ in 0..200_000 {
            raw = raw.wrapping_add(33);
            let placed = timeline.place(raw);
            assert_eq!(placed.ms, last + 33);
            assert!(!placed.discontinuity);
            last = placed.ms;
        }
        assert_eq!(last, 33 * 200_000);
    }

    #[test]
    fn monotonic_clamps_by_one_tick() {
        let mut m = Monotonic::default();
        let got: Vec<(i64, bool)> = [0, 3_000, 3_000, 2_990, 6_000].into_iter().map(|d| m.next(d)).collect();
        assert_eq!(got, [(0, false), (3_000, false), (3_001, true), (3_002, true), (6_000, false)]);
    }

    #[test]
    fn audio_counts_samples_between_rounded_milliseconds() {
        // 48 kHz AAC: 21.333 ms per frame, RTMP rounds to whole milliseconds.
        let mut clock = AudioClock::new(48_000);
        let ms: Vec<i64> = (0..300).map(|i| (i as f64 * 1024.0 / 48.0).round() as i64).collect();
        let got: Vec<(i64, bool)> = ms.iter().map(|&m| clock.next(m, 1024)).collect();
        let want: Vec<(i64, bool)> = (0..300).map(|i| (i * 1024, false)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn audio_rate_change_continues_increasing() {
        let mut clock = AudioClock::new(48_000);
        assert_eq!(clock.next(0, 1024), (0, false));
        assert_eq!(clock.next(21, 1024), (1_024, false));
        clock.set_sample_rate(44_100);
        assert_eq!(clock.timebase(), Timebase(44_100));
        // 1024 samples at 48 kHz are 941 at 44.1 kHz; the next frame follows the last one's end.
        assert_eq!(clock.next(43, 1024), (941 + 941, false));
    }

    #[test]
    fn audio_resyncs_only_past_half_a_frame() {
        let cases: Vec<(&str, u32, Vec<i64>, Vec<Out>)> = vec![
            // 44.1 kHz: a frame is 23.2 ms; tolerance 512 + 176 samples (15.6 ms).
            ("steady", 44_100, vec![0, 23, 46, 70], vec![(0, false), (1_024, false), (2_048, false), (3_072, false)]),
            (
                "small jitter is absorbed",
                44_100,
                vec![0, 23, 58, 70],
                vec![(0, false), (1_024, false), (2_048, false), (3_072, false)],
            ),
            (
                "a gap of a frame re-syncs",
                44_100,
                vec![0, 23, 70, 93],
                vec![(0, false), (1_024, false), (3_087, true), (4_111, false)],
            ),
            (
                "overlap re-syncs but stays increasing",
                44_100,
                vec![0, 23, 46, 10],
                vec![(0, false), (1_024, false), (2_048, false), (2_049, true)],
            ),
            ("non-zero first frame", 48_000, vec![500, 521], vec![(24_000, false), (25_024, false)]),
        ];
        for (name, rate, ms, want) in cases {
            let mut clock = AudioClock::new(rate);
            let got: Vec<(i64, bool)> = ms.into_iter().map(|m| clock.next(m, 1024)).collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn audio_counts_the_samples_each_unit_carries() {
        // (ms, samples) -> (dts, re-synced).
        type Case = (&'static str, u32, Vec<(i64, u32)>, Vec<Out>);
        let cases: Vec<Case> = vec![
            (
                "MP3 at 44.1 kHz: 1152 samples (26.1 ms) per frame",
                44_100,
                vec![(0, 1152), (26, 1152), (52, 1152), (78, 1152)],
                vec![(0, false), (1_152, false), (2_304, false), (3_456, false)],
            ),
            (
                "G.711: 160 bytes (20 ms) a tag, then a 320-byte tag",
                8_000,
                vec![(0, 160), (20, 320), (60, 160)],
                vec![(0, false), (160, false), (480, false)],
            ),
            (
                "a unit of unknown length is timed by the RTMP clock",
                48_000,
                vec![(0, 0), (20, 960), (40, 960)],
                vec![(0, false), (960, false), (1_920, false)],
            ),
            ("unknown length never goes back", 48_000, vec![(0, 0), (0, 0)], vec![(0, false), (1, false)]),
            (
                "Opus 20 ms packets with a lost one re-sync",
                48_000,
                vec![(0, 960), (20, 960), (60, 960)],
                vec![(0, false), (960, false), (2_880, true)],
            ),
        ];
        for (name, rate, units, want) in cases {
            let mut clock = AudioClock::new(rate);
            let got: Vec<(i64, bool)> = units.into_iter().map(|(ms, n)| clock.next(ms, n)).collect();
            assert_eq!(got, want, "{name}");
        }
    }
}
