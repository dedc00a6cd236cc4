//! One continuous output timeline over the inputs a session puts on air in
//! turn: each input (and the slate) has its own clock, so when one goes on
//! air its timestamps are rebased to start right where the output so far
//! ends, and every track's decode times keep increasing across the switch
//! (a unit that would go back is dropped). The new input's video starts
//! exactly where the output's video ends (players buffer by the intersection
//! of audio and video: a hole in the video is a stall); its audio follows
//! with the same offset, an overlap dropped. The first input keeps its own
//! timestamps.

use media::{EncodedUnit, Timebase, TrackKind};

/// The output's clock, in 90 kHz ticks.
const CLOCK: Timebase = Timebase::VIDEO;

/// The last unit of one kind of track on the output.
#[derive(Debug, Clone, Copy)]
struct Last {
    /// Its decode time on the output, in `CLOCK` ticks.
    dts: i64,
    /// Its duration (the step from the unit before), in `CLOCK` ticks.
    step: i64,
}

/// The output timeline of a session.
#[derive(Debug, Default, Clone)]
pub struct Timeline {
    /// Added to the input on air's timestamps, in `CLOCK` ticks; None until something went on air.
    offset: Option<i64>,
    video: Option<Last>,
    audio: Option<Last>,
    /// Per kind (video, audio): the next unit is the first after a switch, whose step is the jump, not a duration.
    switched: [bool; 2],
}

impl Timeline {
    /// Where the output so far ends, in `CLOCK` ticks: after its last video frame (after its last audio without video).
    fn end(&self) -> Option<i64> {
        self.video.or(self.audio).map(|last| last.dts + last.step.max(1))
    }

    /// A new input goes on air with a unit at `dts` (in `timebase`): its clock
    /// is rebased so that unit lands where the output ends.
    pub fn switch_to(&mut self, dts: i64, timebase: Timebase) {
        let first = timebase.rescale(dts, CLOCK);
        self.offset = Some(match (self.offset, self.end()) {
            (None, _) | (_, None) => 0,
            (Some(_), Some(end)) => end - first,
        });
        self.switched = [true, true];
    }

    /// The unit on the output timeline; None when it would not come after the
    /// last unit of its kind (the overlap of a switch).
    pub fn map(&mut self, mut unit: EncodedUnit, timebase: Timebase) -> Option<EncodedUnit> {
        let shift = CLOCK.rescale(self.offset.unwrap_or(0), timebase);
        unit.dts += shift;
        unit.pts += shift;
        let dts = timebase.rescale(unit.dts, CLOCK);
        let (last, switched) = match unit.kind {
            TrackKind::Video => (&mut self.video, &mut self.switched[0]),
            TrackKind::Audio => (&mut self.audio, &mut self.switched[1]),
        };
        let step = match *last {
            Some(previous) if dts <= previous.dts => return None,
            Some(previous) if *switched => previous.step,
            Some(previous) => dts - previous.dts,
            None => 0,
        };
        *last = Some(Last { dts, step });
        *switched = false;
        Some(unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use media::Arrival;

    const AUDIO: Timebase = Timebase(48_000);

    fn unit(kind: TrackKind, dts: i64) -> EncodedUnit {
        EncodedUnit { track: 0, kind, pts: dts, dts, keyframe: true, data: Bytes::new(), arrival: Arrival::now() }
    }

    /// Feeds (kind, dts in its timebase) and returns what came out (None: dropped).
    fn feed(timeline: &mut Timeline, units: &[(TrackKind, i64)]) -> Vec<Option<i64>> {
        units
            .iter()
            .map(|&(kind, dts)| {
                let timebase = if kind == TrackKind::Video { CLOCK } else { AUDIO };
                timeline.map(unit(kind, dts), timebase).map(|u| u.dts)
            })
            .collect()
    }

    #[test]
    fn the_first_input_keeps_its_clock_and_the_next_starts_where_the_output_ends() {
        use TrackKind::{Audio as A, Video as V};
        let mut timeline = Timeline::default();
        timeline.switch_to(3000, CLOCK);
        // 30 fps video (3000 ticks) and AAC at 48 kHz (1024 samples).
        assert_eq!(
            feed(&mut timeline, &[(V, 3000), (A, 1600), (V, 6000), (A, 2624), (V, 9000)]),
            [Some(3000), Some(1600), Some(6000), Some(2624), Some(9000)]
        );
        // The backup's clock is far ahead; its keyframe lands one frame after the last video frame.
        timeline.switch_to(900_000, CLOCK);
        assert_eq!(
            feed(&mut timeline, &[(V, 900_000), (A, 480_000), (V, 903_000)]),
            [Some(12_000), Some(6400), Some(15_000)]
        );
        // Back to a clock behind the output: still forward, never back.
        timeline.switch_to(0, CLOCK);
        let out = feed(&mut timeline, &[(A, 0), (V, 0), (A, 1024), (V, 3000)]);
        assert_eq!(out, [Some(9600), Some(18_000), Some(10_624), Some(21_000)]);
    }

    #[test]
    fn the_video_is_contiguous_and_overlapping_audio_is_dropped() {
        use TrackKind::{Audio as A, Video as V};
        let mut timeline = Timeline::default();
        timeline.switch_to(0, CLOCK);
        // Audio runs ahead of video at the cut (interleaving): four AAC frames, three video frames.
        let first = [(V, 0), (A, 0), (A, 1024), (V, 3000), (A, 2048), (V, 6000), (A, 3072)];
        assert!(feed(&mut timeline, &first).iter().all(Option::is_some));
        timeline.switch_to(90_000, CLOCK);
        let out = feed(&mut timeline, &[(A, 48_000 - 2048), (A, 48_000 - 1024), (V, 90_000), (A, 48_000), (V, 93_000)]);
        assert_eq!(out[2], Some(9000), "the keyframe right after the last video frame");
        assert_eq!(out[4], Some(12_000));
        assert_eq!(out[0], None, "audio before the output's last audio frame is dropped");
        // 48k ticks: the last audio out was 3072; the new audio follows without going back.
        let audio: Vec<i64> = [out[1], out[3]].into_iter().flatten().collect();
        assert!(audio.iter().all(|dts| *dts > 3072) && audio.windows(2).all(|w| w[1] > w[0]), "{out:?}");
        assert_eq!(out[3], Some(CLOCK.rescale(9000, AUDIO)), "the audio at the keyframe lands with it");
    }
}
