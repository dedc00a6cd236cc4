//! Outside check of `cmaf`: packages real x264 (with B-frames) and AAC
//! output from the `ffmpeg` program into init + fragments, then has
//! `ffprobe` and `ffmpeg` read the file back: codecs, picture size, frame
//! counts, every packet's timestamps, and decoded frames in presentation order.

use std::path::Path;
use std::process::{Command, Output};

use bytes::Bytes;
use media::{AacConfig, AvcConfig, CodecConfig, Timebase, TrackInfo, TrackKind};
use packager::cmaf::{Sample, TrackRun, fragment_size, write_fragment, write_init};
use serde_json::Value;

const VIDEO_FRAMES: usize = 60;
const FRAMES_PER_FRAGMENT: usize = 10;
/// One frame at 30 fps in the 90 kHz video timescale.
const FRAME_TICKS: i64 = 3000;
const AAC_FRAME: u32 = media::codec::AAC_FRAME_SAMPLES;

#[test]
fn ffprobe_reads_our_fragments() {
    if !test_tools::have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let video = encode_video(dir.path());
    let audio = encode_audio(dir.path());
    assert_eq!(video.units.len(), VIDEO_FRAMES);

    let file = dir.path().join("out.mp4");
    std::fs::write(&file, package(&video, &audio)).unwrap();
    let file = file.to_str().unwrap();

    // Streams: codecs, size, and how many frames each decoder produced.
    let probe = ffprobe(&[
        "-count_frames",
        "-show_entries",
        "stream=codec_name,width,height,nb_read_frames",
        "-of",
        "json",
        file,
    ]);
    let streams = probe["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 2, "{probe}");
    assert_eq!(streams[0]["codec_name"], "h264");
    assert_eq!((streams[0]["width"].as_u64(), streams[0]["height"].as_u64()), (Some(320), Some(240)));
    assert_eq!(streams[0]["nb_read_frames"], VIDEO_FRAMES.to_string());
    assert_eq!(streams[1]["codec_name"], "aac");
    assert_eq!(streams[1]["nb_read_frames"], audio.frames.len().to_string());

    // A full decode of both streams reports nothing.
    let decode = run("ffmpeg", &["-v", "error", "-i", file, "-f", "null", "-"]);
    assert_eq!(String::from_utf8_lossy(&decode.stderr), "", "ffmpeg decode errors");

    // Video packets, in decode order, carry our dts and keyframe flags, and
    // our pts (negative composition offsets included) moved by one constant:
    // with no edit list, ffmpeg's mov demuxer adds its `dts_shift` (the largest
    // negative composition offset it has read) to every pts so that pts >= dts.
    // Readers that follow ISO/IEC 14496-12 (pts = dts + offset) see our pts.
    let probe = ffprobe(&[
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=time_base:packet=pts,dts,flags",
        "-of",
        "json",
        file,
    ]);
    assert_eq!(probe["streams"][0]["time_base"], "1/90000");
    let packets = probe["packets"].as_array().unwrap();
    let field = |name: &str| -> Vec<i64> { packets.iter().map(|p| p[name].as_i64().unwrap()).collect() };
    let fed_dts: Vec<i64> = video.units.iter().map(|u| u.dts).collect();
    assert_eq!(field("dts"), fed_dts, "packet dts");
    let ffmpeg_shift = video.units.iter().map(|u| u.dts - u.pts).max().unwrap().max(0);
    let fed_pts: Vec<i64> = video.units.iter().map(|u| u.pts).collect();
    let shifted: Vec<i64> = fed_pts.iter().map(|pts| pts + ffmpeg_shift).collect();
    assert_eq!(field("pts"), shifted, "packet pts in decode order, plus ffmpeg's shift of {ffmpeg_shift}");
    let got_keys: Vec<bool> = packets.iter().map(|p| p["flags"].as_str().unwrap().starts_with('K')).collect();
    let fed_keys: Vec<bool> = video.units.iter().map(|u| u.keyframe).collect();
    assert_eq!(got_keys, fed_keys, "keyframe flags");
    assert!(fed_keys[0] && fed_keys.contains(&false), "starts on an IDR, has other frames");

    // Decoded frames come out in presentation order with our pts: B-frames reordered.
    let probe = ffprobe(&["-select_streams", "v:0", "-show_entries", "frame=pts,pict_type", "-of", "json", file]);
    let frames = probe["frames"].as_array().unwrap();
    let frame_pts: Vec<i64> = frames.iter().map(|f| f["pts"].as_i64().unwrap()).collect();
    let mut presented = shifted.clone();
    presented.sort_unstable();
    assert_eq!(frame_pts, presented, "decoded frame pts");
    let evenly_spaced: Vec<i64> = (0..VIDEO_FRAMES as i64).map(|i| ffmpeg_shift + i * FRAME_TICKS).collect();
    assert_eq!(frame_pts, evenly_spaced, "one frame every 1/30 s");
    assert!(frames.iter().any(|f| f["pict_type"] == "B"), "the stream has B-frames");

    // Audio packets: one per ADTS frame, 1024 ticks apart from 0.
    let probe =
        ffprobe(&["-select_streams", "a:0", "-show_entries", "stream=time_base:packet=pts", "-of", "json", file]);
    assert_eq!(probe["streams"][0]["time_base"], "1/48000");
    let audio_pts: Vec<i64> = probe["packets"].as_array().unwrap().iter().map(|p| p["pts"].as_i64().unwrap()).collect();
    let want: Vec<i64> = (0..audio.frames.len() as i64).map(|i| i * i64::from(AAC_FRAME)).collect();
    assert_eq!(audio_pts, want, "audio packet pts");
}

fn run(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Runs `ffprobe -v error ARGS`, asserts it printed no error, returns its JSON.
fn ffprobe(args: &[&str]) -> Value {
    let out = run("ffprobe", &[&["-v", "error"], args].concat());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "ffprobe errors for {args:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A video access unit: length-prefixed NAL units and 90 kHz timing with the
/// first dts and the first presented pts at 0.
struct VideoUnit {
    pts: i64,
    dts: i64,
    keyframe: bool,
    data: Bytes,
}

struct Video {
    track: TrackInfo,
    units: Vec<VideoUnit>,
}

struct Audio {
    track: TrackInfo,
    frames: Vec<Bytes>,
}

/// Encodes two seconds of H.264 with B-frames. x264 writes an .mp4 so the
/// encoder's own pts/dts survive; `-c copy -f h264` then gives the Annex-B
/// stream, packet for packet in the same (decode) order, and ffprobe gives
/// the timestamps of those packets.
fn encode_video(dir: &Path) -> Video {
    let mp4 = dir.join("source.mp4");
    let annex_b = dir.join("source.h264");
    let (mp4, annex_b) = (mp4.to_str().unwrap(), annex_b.to_str().unwrap());
    #[rustfmt::skip]
    run("ffmpeg", &[
        "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-t", "2",
        "-pix_fmt", "yuv420p", "-c:v", "libx264", "-bf", "2", "-g", "30", mp4,
    ]);
    run("ffmpeg", &["-v", "error", "-i", mp4, "-c:v", "copy", "-f", "h264", annex_b]);
    let probe =
        ffprobe(&["-select_streams", "v:0", "-show_entries", "stream=time_base:packet=pts,dts", "-of", "json", mp4]);
    let timebase = match probe["streams"][0]["time_base"].as_str().unwrap().split_once('/') {
        Some(("1", den)) => Timebase(den.parse().unwrap()),
        other => panic!("unexpected time base {other:?}"),
    };
    let times: Vec<(i64, i64)> = probe["packets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let ticks = |k: &str| timebase.rescale(p[k].as_i64().unwrap(), Timebase::VIDEO);
            (ticks("pts"), ticks("dts"))
        })
        .collect();

    let stream = std::fs::read(annex_b).unwrap();
    let units = access_units(&nal_units(&stream));
    assert_eq!(units.len(), times.len(), "access units vs. ffprobe packets");
    let nal_type = |nal: &[u8]| nal[0] & 0x1f;
    let first_of = |t: u8| units.iter().flatten().find(|n| nal_type(n) == t).copied().unwrap();
    let (sps, pps) = (first_of(7), first_of(8));

    let first_dts = times[0].1;
    let first_pts = times.iter().map(|t| t.0).min().unwrap();
    let units = units
        .iter()
        .zip(&times)
        .map(|(nals, &(pts, dts))| {
            let mut data = Vec::new();
            // Parameter sets live in the avcC; access unit delimiters are dropped.
            for nal in nals.iter().filter(|n| !matches!(nal_type(n), 7..=9)) {
                data.extend_from_slice(&(nal.len() as u32).to_be_bytes());
                data.extend_from_slice(nal);
            }
            VideoUnit {
                pts: pts - first_pts,
                dts: dts - first_dts,
                keyframe: nals.iter().any(|n| nal_type(n) == 5),
                data: Bytes::from(data),
            }
        })
        .collect();
    let track = TrackInfo {
        kind: TrackKind::Video,
        timebase: Timebase::VIDEO,
        codec: CodecConfig::Avc(AvcConfig::from_record(avcc(sps, pps)).unwrap()),
        frame_rate: Some((30, 1)),
        bitrate: None,
    };
    Video { track, units }
}

/// NAL units of an Annex-B byte stream, without start codes or trailing zeros.
fn nal_units(stream: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    starts
        .iter()
        .enumerate()
        .map(|(k, &start)| {
            let end = starts.get(k + 1).map_or(stream.len(), |next| next - 3);
            let mut nal = &stream[start..end];
            while let [rest @ .., 0] = nal {
                nal = rest;
            }
            nal
        })
        .filter(|nal| !nal.is_empty())
        .collect()
}

/// Groups NAL units into access units (ITU-T H.264 7.4.1.2.3): a new one
/// starts at an AUD, SPS, PPS, SEI or prefix NAL, or at a slice with
/// first_mb_in_slice = 0, once the current one has a slice.
fn access_units<'a>(nals: &[&'a [u8]]) -> Vec<Vec<&'a [u8]>> {
    let mut units: Vec<Vec<&[u8]>> = Vec::new();
    let mut current = Vec::new();
    let mut has_slice = false;
    for &nal in nals {
        let nal_type = nal[0] & 0x1f;
        let is_slice = matches!(nal_type, 1..=5);
        // ue(v) first_mb_in_slice is 0 exactly when its first bit is 1.
        let first_slice = is_slice && nal.get(1).is_some_and(|b| b & 0x80 != 0);
        let starts_unit = match nal_type {
            6..=9 | 14..=18 => true,
            _ => first_slice,
        };
        if starts_unit && has_slice {
            units.push(std::mem::take(&mut current));
            has_slice = false;
        }
        current.push(nal);
        has_slice |= is_slice;
    }
    if !current.is_empty() {
        units.push(current);
    }
    units
}

/// An AVCDecoderConfigurationRecord for one SPS and one PPS, 4-byte lengths.
fn avcc(sps: &[u8], pps: &[u8]) -> Bytes {
    let mut record = vec![1, sps[1], sps[2], sps[3], 0xff, 0xe1];
    record.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    record.extend_from_slice(sps);
    record.push(1);
    record.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    record.extend_from_slice(pps);
    if matches!(sps[1], 100 | 110 | 122 | 144) {
        // High profiles carry chroma format and bit depths (14496-15 5.3.3.1.2):
        // the test encodes yuv420p 8-bit, and no SPS extensions.
        record.extend_from_slice(&[0xfc | 1, 0xf8, 0xf8, 0]);
    }
    Bytes::from(record)
}

/// Encodes two seconds of AAC as ADTS and splits it into raw frames.
fn encode_audio(dir: &Path) -> Audio {
    let adts = dir.join("source.aac");
    let adts = adts.to_str().unwrap();
    #[rustfmt::skip]
    run("ffmpeg", &[
        "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "2",
        "-c:a", "aac", "-f", "adts", adts,
    ]);
    let stream = Bytes::from(std::fs::read(adts).unwrap());
    let mut frames = Vec::new();
    let mut asc = None;
    let mut at = 0;
    while at < stream.len() {
        let h = &stream[at..];
        assert!(h.len() >= 7 && h[0] == 0xff && h[1] & 0xf0 == 0xf0, "ADTS sync at {at}");
        let protection_absent = h[1] & 1 == 1;
        let object_type = (h[2] >> 6) + 1;
        let frequency_index = (h[2] >> 2) & 0x0f;
        let channels = (h[2] & 1) << 2 | h[3] >> 6;
        let frame_length = usize::from(h[3] & 0x03) << 11 | usize::from(h[4]) << 3 | usize::from(h[5] >> 5);
        let header = if protection_absent { 7 } else { 9 };
        assert!(frame_length > header && at + frame_length <= stream.len(), "ADTS frame at {at}");
        let config = u16::from(object_type) << 11 | u16::from(frequency_index) << 7 | u16::from(channels) << 3;
        assert_eq!(*asc.get_or_insert(config), config, "ADTS configuration changed at {at}");
        frames.push(stream.slice(at + header..at + frame_length));
        at += frame_length;
    }
    let asc = Bytes::copy_from_slice(&asc.unwrap().to_be_bytes());
    let aac = AacConfig::from_asc(asc).unwrap();
    assert_eq!(aac.sample_rate, 48_000);
    let track = TrackInfo {
        kind: TrackKind::Audio,
        timebase: Timebase(aac.sample_rate),
        codec: CodecConfig::Aac(aac),
        frame_rate: None,
        bitrate: None,
    };
    Audio { track, frames }
}

/// Init segment, then one fragment per ten video frames (decode order) with
/// the audio frames that start before the next fragment's first video dts.
fn package(video: &Video, audio: &Audio) -> Vec<u8> {
    let mut out = write_init(&[video.track.clone(), audio.track.clone()]).expect("AVC and AAC are CMAF").to_vec();
    let video_samples: Vec<Sample> = video
        .units
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let next_dts = video.units.get(i + 1).map_or(u.dts + FRAME_TICKS, |n| n.dts);
            Sample {
                duration: (next_dts - u.dts) as u32,
                size: u.data.len() as u32,
                keyframe: u.keyframe,
                composition_offset: (u.pts - u.dts) as i32,
            }
        })
        .collect();
    assert!(video_samples.iter().any(|s| s.composition_offset < 0), "negative composition offsets exercised");
    let video_data: Vec<Bytes> = video.units.iter().map(|u| u.data.clone()).collect();
    let audio_samples: Vec<Sample> = audio
        .frames
        .iter()
        .map(|f| Sample { duration: AAC_FRAME, size: f.len() as u32, keyframe: true, composition_offset: 0 })
        .collect();
    // Start of audio frame `i` in video ticks.
    let audio_start = |i: usize| Timebase(48_000).rescale(i as i64 * i64::from(AAC_FRAME), Timebase::VIDEO);

    let mut next_audio = 0;
    for (sequence, first) in (1u32..).zip((0..video.units.len()).step_by(FRAMES_PER_FRAGMENT)) {
        let end = (first + FRAMES_PER_FRAGMENT).min(video.units.len());
        let audio_end = match video.units.get(end) {
            Some(next) => {
                (next_audio..audio.frames.len()).find(|&i| audio_start(i) >= next.dts).unwrap_or(audio.frames.len())
            }
            None => audio.frames.len(),
        };
        let runs = [
            TrackRun {
                track_id: 1,
                base_decode_time: video.units[first].dts as u64,
                samples: &video_samples[first..end],
                data: &video_data[first..end],
            },
            TrackRun {
                track_id: 2,
                base_decode_time: next_audio as u64 * u64::from(AAC_FRAME),
                samples: &audio_samples[next_audio..audio_end],
                data: &audio.frames[next_audio..audio_end],
            },
        ];
        let fragment = write_fragment(sequence, &runs);
        assert_eq!(fragment.len(), fragment_size(&runs));
        out.extend_from_slice(&fragment);
        next_audio = audio_end;
    }
    out
}
