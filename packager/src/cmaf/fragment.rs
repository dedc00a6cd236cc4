//! CMAF fragments: one `moof` (an `mfhd`, then a `traf` per track run) and
//! the single `mdat` that holds every run's samples.

use bytes::Bytes;

use super::boxes::Writer;

/// One sample of a track run, as the `trun` describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Decode duration in the track's timescale.
    pub duration: u32,
    /// Bytes of the sample; must equal the length of its `TrackRun::data` entry.
    pub size: u32,
    /// A sync sample. Every audio sample is one; the caller sets it.
    pub keyframe: bool,
    /// Presentation time minus decode time, in the track's timescale.
    pub composition_offset: i32,
}

/// The samples of one track in a fragment.
#[derive(Debug, Clone, Copy)]
pub struct TrackRun<'a> {
    /// The `track_id` of the init segment (track index + 1).
    pub track_id: u32,
    /// Decode time of the first sample, in the track's timescale.
    pub base_decode_time: u64,
    pub samples: &'a [Sample],
    /// One entry per sample, same order: each sample's bytes.
    pub data: &'a [Bytes],
}

/// `tfhd` flag: sample data offsets are relative to the start of the `moof`.
const TFHD_DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
/// `trun` flags: data-offset, sample-duration, -size, -flags, -composition-time-offset.
const TRUN_FLAGS: u32 = 0x00_0F01;
/// Sample flags of a sync sample: depends on no other (sample_depends_on = 2).
const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;
/// Sample flags of any other: depends on others (1), sample_is_non_sync_sample.
const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;

const MOOF_HEADER: usize = 8;
const MFHD_SIZE: usize = 16;
/// `traf` header + `tfhd` (16) + `tfdt` v1 (20) + `trun` v1 without its samples (20).
const TRAF_FIXED: usize = 8 + 16 + 20 + 20;
const TRUN_SAMPLE: usize = 16;
const MDAT_HEADER: usize = 8;
/// `mdat` header with a 64-bit `largesize`, for a payload past 4 GiB.
const MDAT_LARGE_HEADER: usize = 16;

/// Writes one fragment: a `moof` (`mfhd` + one `traf` per run with samples:
/// `tfhd`, `tfdt` v1, `trun` v1), then one `mdat` with every run's data in
/// run order, sample order. Runs without samples are left out, data and all.
///
/// Allocates once, exactly `fragment_size(runs)` bytes. Never panics on its
/// input: `samples` and `data` are written as given, so a caller that breaks
/// the `size == data.len()` contract gets a fragment that disagrees with
/// itself, not a crash. Two fields are 32-bit by definition and saturate
/// where a live fragment cannot reach: a `trun` `data_offset` (signed, so a
/// run starting more than 2 GiB after the `moof`) and a `sample_count` past
/// `u32::MAX`.
pub fn write_fragment(sequence_number: u32, runs: &[TrackRun]) -> Bytes {
    let moof_size = moof_size(runs);
    let payload = mdat_payload(runs);
    let mdat_header = mdat_header_size(payload);
    let mut w = Writer::with_capacity(moof_size.saturating_add(mdat_header).saturating_add(payload));

    w.boxed(b"moof", |w| {
        write_mfhd(w, sequence_number);
        let mut data_offset = moof_size.saturating_add(mdat_header);
        for run in runs.iter().filter(|r| !r.samples.is_empty()) {
            write_traf(w, run, data_offset);
            data_offset = data_offset.saturating_add(run_payload(run));
        }
    });

    if mdat_header == MDAT_HEADER {
        // Fits by the choice of header size.
        w.u32((MDAT_HEADER + payload) as u32);
        w.bytes(b"mdat");
    } else {
        w.u32(1);
        w.bytes(b"mdat");
        w.u64((MDAT_LARGE_HEADER as u64).saturating_add(payload as u64));
    }
    for run in runs.iter().filter(|r| !r.samples.is_empty()) {
        for data in run.data {
            w.bytes(data);
        }
    }
    w.into_bytes()
}

/// Total bytes `write_fragment` will produce for `runs`.
pub fn fragment_size(runs: &[TrackRun]) -> usize {
    let payload = mdat_payload(runs);
    moof_size(runs).saturating_add(mdat_header_size(payload)).saturating_add(payload)
}

fn moof_size(runs: &[TrackRun]) -> usize {
    runs.iter()
        .filter(|r| !r.samples.is_empty())
        // `len * 16` cannot overflow: the slice holds `len` 16-byte samples in memory.
        .map(|r| TRAF_FIXED + r.samples.len() * TRUN_SAMPLE)
        .fold(MOOF_HEADER + MFHD_SIZE, usize::saturating_add)
}

fn run_payload(run: &TrackRun) -> usize {
    if run.samples.is_empty() {
        return 0;
    }
    run.data.iter().map(Bytes::len).fold(0, usize::saturating_add)
}

fn mdat_payload(runs: &[TrackRun]) -> usize {
    runs.iter().map(run_payload).fold(0, usize::saturating_add)
}

fn mdat_header_size(payload: usize) -> usize {
    if payload <= u32::MAX as usize - MDAT_HEADER { MDAT_HEADER } else { MDAT_LARGE_HEADER }
}

fn write_mfhd(w: &mut Writer, sequence_number: u32) {
    w.full_box(b"mfhd", 0, 0, |w| w.u32(sequence_number));
}

/// Writes a `traf` whose samples start `data_offset` bytes after the `moof` start.
fn write_traf(w: &mut Writer, run: &TrackRun, data_offset: usize) {
    w.boxed(b"traf", |w| {
        w.full_box(b"tfhd", 0, TFHD_DEFAULT_BASE_IS_MOOF, |w| w.u32(run.track_id));
        w.full_box(b"tfdt", 1, 0, |w| w.u64(run.base_decode_time));
        w.full_box(b"trun", 1, TRUN_FLAGS, |w| {
            w.u32(u32::try_from(run.samples.len()).unwrap_or(u32::MAX));
            w.i32(i32::try_from(data_offset).unwrap_or(i32::MAX));
            for sample in run.samples {
                w.u32(sample.duration);
                w.u32(sample.size);
                w.u32(if sample.keyframe { SYNC_SAMPLE_FLAGS } else { NON_SYNC_SAMPLE_FLAGS });
                w.i32(sample.composition_offset);
            }
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIDEO_SAMPLES: [Sample; 2] = [
        Sample { duration: 3000, size: 5, keyframe: true, composition_offset: 6000 },
        Sample { duration: 3000, size: 3, keyframe: false, composition_offset: -3000 },
    ];
    const AUDIO_SAMPLES: [Sample; 1] = [Sample { duration: 1024, size: 4, keyframe: true, composition_offset: 0 }];

    fn video_data() -> [Bytes; 2] {
        [Bytes::from_static(&[0, 0, 0, 1, 0x65]), Bytes::from_static(&[0, 0, 0])]
    }

    fn audio_data() -> [Bytes; 1] {
        [Bytes::from_static(&[0x21, 0x10, 0x04, 0x60])]
    }

    #[rustfmt::skip]
    const MFHD_7: [u8; 16] = [
        0, 0, 0, 16, b'm', b'f', b'h', b'd', 0, 0, 0, 0,
        0, 0, 0, 7, // sequence_number
    ];

    /// `traf` of the two-sample video run, samples at offset 0x100 from the moof.
    #[rustfmt::skip]
    const VIDEO_TRAF: [u8; 96] = [
        0, 0, 0, 96, b't', b'r', b'a', b'f',
        0, 0, 0, 16, b't', b'f', b'h', b'd', 0, 0x02, 0, 0, // default-base-is-moof
        0, 0, 0, 1, // track_id
        0, 0, 0, 20, b't', b'f', b'd', b't', 1, 0, 0, 0,
        0, 0, 0, 1, 0, 0, 0, 2, // base_media_decode_time 0x1_0000_0002
        0, 0, 0, 52, b't', b'r', b'u', b'n', 1, 0, 0x0f, 0x01,
        0, 0, 0, 2, // sample_count
        0, 0, 1, 0, // data_offset 256
        0, 0, 0x0b, 0xb8, 0, 0, 0, 5, 0x02, 0, 0, 0, 0, 0, 0x17, 0x70, // 3000, 5, sync, +6000
        0, 0, 0x0b, 0xb8, 0, 0, 0, 3, 0x01, 0x01, 0, 0, 0xff, 0xff, 0xf4, 0x48, // 3000, 3, non-sync, -3000
    ];

    /// Video run (track 1) then audio run (track 2), sequence 7.
    #[rustfmt::skip]
    const TWO_RUN_FRAGMENT: [u8; 220] = [
        0, 0, 0, 200, b'm', b'o', b'o', b'f',
        0, 0, 0, 16, b'm', b'f', b'h', b'd', 0, 0, 0, 0, 0, 0, 0, 7,
        // video traf
        0, 0, 0, 96, b't', b'r', b'a', b'f',
        0, 0, 0, 16, b't', b'f', b'h', b'd', 0, 0x02, 0, 0, 0, 0, 0, 1,
        0, 0, 0, 20, b't', b'f', b'd', b't', 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b, 0xb8, // 3000
        0, 0, 0, 52, b't', b'r', b'u', b'n', 1, 0, 0x0f, 0x01,
        0, 0, 0, 2,
        0, 0, 0, 208, // data_offset: moof 200 + mdat header 8
        0, 0, 0x0b, 0xb8, 0, 0, 0, 5, 0x02, 0, 0, 0, 0, 0, 0x17, 0x70,
        0, 0, 0x0b, 0xb8, 0, 0, 0, 3, 0x01, 0x01, 0, 0, 0xff, 0xff, 0xf4, 0x48,
        // audio traf
        0, 0, 0, 80, b't', b'r', b'a', b'f',
        0, 0, 0, 16, b't', b'f', b'h', b'd', 0, 0x02, 0, 0, 0, 0, 0, 2,
        0, 0, 0, 20, b't', b'f', b'd', b't', 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x06, 0x00, // 1536
        0, 0, 0, 36, b't', b'r', b'u', b'n', 1, 0, 0x0f, 0x01,
        0, 0, 0, 1,
        0, 0, 0, 216, // data_offset: 208 + 8 video bytes
        0, 0, 0x04, 0x00, 0, 0, 0, 4, 0x02, 0, 0, 0, 0, 0, 0, 0,
        // mdat
        0, 0, 0, 20, b'm', b'd', b'a', b't',
        0, 0, 0, 1, 0x65, 0, 0, 0, // video
        0x21, 0x10, 0x04, 0x60, // audio
    ];

    #[test]
    fn golden_bytes() {
        let (video, audio) = (video_data(), audio_data());
        let video_run =
            |base_decode_time| TrackRun { track_id: 1, base_decode_time, samples: &VIDEO_SAMPLES, data: &video };
        let audio_run = TrackRun { track_id: 2, base_decode_time: 1536, samples: &AUDIO_SAMPLES, data: &audio };
        let traf = {
            let mut w = Writer::default();
            write_traf(&mut w, &video_run(0x1_0000_0002), 0x100);
            w.into_bytes()
        };
        let mfhd = {
            let mut w = Writer::default();
            write_mfhd(&mut w, 7);
            w.into_bytes()
        };
        let empty_audio = TrackRun { samples: &[], data: &audio, ..audio_run };
        let cases: [(&str, Bytes, &[u8]); 5] = [
            ("mfhd", mfhd, &MFHD_7),
            ("video traf with negative and positive composition offsets", traf, &VIDEO_TRAF),
            ("video and audio runs", write_fragment(7, &[video_run(3000), audio_run]), &TWO_RUN_FRAGMENT),
            // A run with no samples is skipped, its data included.
            (
                "empty run skipped",
                write_fragment(7, &[empty_audio, video_run(3000), empty_audio, audio_run]),
                &TWO_RUN_FRAGMENT,
            ),
            (
                "no runs",
                write_fragment(7, &[]),
                &[
                    0, 0, 0, 24, b'm', b'o', b'o', b'f', 0, 0, 0, 16, b'm', b'f', b'h', b'd', 0, 0, 0, 0, 0, 0, 0, 7,
                    0, 0, 0, 8, b'm', b'd', b'a', b't',
                ],
            ),
        ];
        for (name, got, want) in cases {
            assert_eq!(&got[..], want, "{name}");
        }
    }

    /// Reads the `data_offset` of the `traf` at `traf_start` (fixed layout above).
    fn data_offset(fragment: &[u8], traf_start: usize) -> usize {
        let at = traf_start + 8 + 16 + 20 + 16;
        i32::from_be_bytes(fragment[at..at + 4].try_into().unwrap()) as usize
    }

    #[test]
    fn data_offsets_point_at_each_runs_samples() {
        let (video, audio) = (video_data(), audio_data());
        let runs = [
            TrackRun { track_id: 1, base_decode_time: 3000, samples: &VIDEO_SAMPLES, data: &video },
            TrackRun { track_id: 2, base_decode_time: 1536, samples: &AUDIO_SAMPLES, data: &audio },
        ];
        let fragment = write_fragment(7, &runs);
        let video_at = data_offset(&fragment, 24);
        let audio_at = data_offset(&fragment, 24 + 96);
        assert_eq!(&fragment[video_at..video_at + 5], &video[0][..]);
        assert_eq!(&fragment[video_at + 5..video_at + 8], &video[1][..]);
        assert_eq!(&fragment[audio_at..audio_at + 4], &audio[0][..]);
        assert_eq!(audio_at + 4, fragment.len());
    }

    #[test]
    fn size_is_exact_and_odd_input_does_not_panic() {
        let (video, audio) = (video_data(), audio_data());
        let many: Vec<Sample> = (0..1000).map(|i| Sample { keyframe: i % 30 == 0, ..VIDEO_SAMPLES[1] }).collect();
        let many_data = vec![Bytes::from_static(&[1, 2, 3]); 1000];
        let extreme = [Sample { duration: u32::MAX, size: u32::MAX, keyframe: false, composition_offset: i32::MIN }];
        let cases: [(&str, Vec<TrackRun>); 6] = [
            ("none", vec![]),
            ("only empty", vec![TrackRun { track_id: 1, base_decode_time: 0, samples: &[], data: &video }]),
            (
                "two runs",
                vec![
                    TrackRun { track_id: 1, base_decode_time: 0, samples: &VIDEO_SAMPLES, data: &video },
                    TrackRun { track_id: 2, base_decode_time: 0, samples: &AUDIO_SAMPLES, data: &audio },
                ],
            ),
            ("1000 samples", vec![TrackRun { track_id: 1, base_decode_time: 0, samples: &many, data: &many_data }]),
            // Broken contract: fewer data entries than samples, sizes that lie.
            (
                "data shorter than samples",
                vec![TrackRun { track_id: 1, base_decode_time: u64::MAX, samples: &VIDEO_SAMPLES, data: &audio }],
            ),
            (
                "extreme values",
                vec![TrackRun { track_id: u32::MAX, base_decode_time: u64::MAX, samples: &extreme, data: &[] }],
            ),
        ];
        for (name, runs) in cases {
            let fragment = write_fragment(u32::MAX, &runs);
            assert_eq!(fragment.len(), fragment_size(&runs), "{name}");
            let moof = u32::from_be_bytes(fragment[..4].try_into().unwrap()) as usize;
            let mdat = u32::from_be_bytes(fragment[moof..moof + 4].try_into().unwrap()) as usize;
            assert_eq!(moof + mdat, fragment.len(), "{name}: moof and mdat sizes add up");
        }
    }

    #[test]
    fn mdat_header_goes_64_bit_past_4_gib() {
        let cases =
            [(0, MDAT_HEADER), (u32::MAX as usize - 8, MDAT_HEADER), (u32::MAX as usize - 7, MDAT_LARGE_HEADER)];
        for (payload, want) in cases {
            assert_eq!(mdat_header_size(payload), want, "{payload}");
        }
    }
}
