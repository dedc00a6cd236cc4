//! The MPEG-TS demuxer on streams the real `ffmpeg` program muxes (every
//! codec SRT callers send us), whole and with packets lost.

use std::process::{Command, Stdio};

use ingest::TsDemuxer;
use media::{Arrival, CodecConfig, StreamEvent, TrackKind};

/// Three seconds of 25 fps video and 48 kHz audio in TS, from `ffmpeg`.
fn mux(video: &[&str], audio: &[&str]) -> Option<Vec<u8>> {
    if !test_tools::have_ffmpeg() {
        return None;
    }
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "3"])
        .args(video)
        .args(audio)
        .args(["-f", "mpegts", "-"])
        .stdin(Stdio::null())
        .output()
        .expect("ffmpeg runs");
    assert!(output.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&output.stderr));
    Some(output.stdout)
}

struct Seen {
    tracks: Vec<(TrackKind, String)>,
    announcements: usize,
    video: Vec<(i64, i64, bool)>,
    audio: Vec<i64>,
}

fn demux(ts: &[u8], chunk: usize) -> (Seen, ingest::TsStats) {
    let mut demuxer = TsDemuxer::default();
    let mut events = Vec::new();
    for piece in ts.chunks(chunk) {
        demuxer.push(piece, Arrival::now(), &mut events);
    }
    demuxer.finish(&mut events);
    let mut seen = Seen { tracks: Vec::new(), announcements: 0, video: Vec::new(), audio: Vec::new() };
    for event in events {
        match event {
            StreamEvent::Tracks(tracks) => {
                seen.announcements += 1;
                seen.tracks = tracks.iter().map(|t| (t.kind, t.codec.name().to_owned())).collect();
                for t in tracks.iter() {
                    if let CodecConfig::Aac(aac) = &t.codec {
                        assert_eq!((aac.sample_rate, t.timebase.ticks_per_second()), (48_000, 48_000));
                    }
                }
            }
            StreamEvent::Unit(u) if u.kind == TrackKind::Video => seen.video.push((u.dts, u.pts, u.keyframe)),
            StreamEvent::Unit(u) => seen.audio.push(u.dts),
        }
    }
    (seen, demuxer.stats())
}

fn assert_timing(seen: &Seen) {
    assert!(seen.video.first().is_none_or(|v| v.2), "video starts on a keyframe");
    assert!(seen.video.windows(2).all(|w| w[1].0 > w[0].0), "video dts increases");
    assert!(seen.video.iter().all(|v| v.1 >= v.0), "pts >= dts");
    assert!(seen.audio.windows(2).all(|w| w[1] > w[0]), "audio dts increases");
}

#[test]
fn every_codec_srt_callers_send() {
    let h264 = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-bf", "2"];
    let hevc = ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=25:log-level=error"];
    // (video args, audio args, video codec, audio codec, least audio units a second)
    type Case<'a> = (&'a [&'a str], &'a [&'a str], &'a str, &'a str, usize);
    let cases: [Case; 4] = [
        (&h264, &["-c:a", "aac"], "H.264", "AAC", 46),
        (&hevc, &["-c:a", "aac"], "HEVC", "AAC", 46),
        (&h264, &["-c:a", "libmp3lame"], "H.264", "MP3", 1),
        (&h264, &["-c:a", "libopus"], "H.264", "Opus", 50),
    ];
    for (video, audio, video_name, audio_name, min_audio_per_s) in cases {
        let Some(ts) = mux(video, audio) else { return };
        for chunk in [1316, 188 * 3 + 5] {
            let (seen, stats) = demux(&ts, chunk);
            let names: Vec<&str> = seen.tracks.iter().map(|(_, n)| n.as_str()).collect();
            assert_eq!(names, [video_name, audio_name], "{video_name}/{audio_name}");
            assert_eq!(seen.announcements, 1);
            assert!((74..=75).contains(&seen.video.len()), "{video_name}: {} video units", seen.video.len());
            assert!(seen.audio.len() >= 3 * min_audio_per_s, "{audio_name}: {} audio units", seen.audio.len());
            assert_eq!((stats.continuity_errors, stats.dropped_units), (0, 0));
            assert_timing(&seen);
            // 25 fps: 3600 ticks per frame at 90 kHz, B-frames reordered by pts.
            let span = seen.video.last().unwrap().0 - seen.video[0].0;
            assert!((span - 73 * 3600).abs() <= 3600, "{video_name}: span {span}");
        }
    }
}

#[test]
fn lost_packets_are_counted_and_survived() {
    let Some(ts) = mux(&["-c:v", "libx264", "-preset", "ultrafast", "-g", "25"], &["-c:a", "aac"]) else { return };
    let (whole, _) = demux(&ts, 1316);
    // Every 97th packet lost, and some garbage between messages.
    let lossy: Vec<u8> = ts
        .chunks(188)
        .enumerate()
        .filter(|(i, _)| i % 97 != 50)
        .flat_map(|(i, p)| if i % 300 == 0 { [&[0x13, 0x37][..], p].concat() } else { p.to_vec() })
        .collect();
    let (seen, stats) = demux(&lossy, 1316);
    assert!(stats.continuity_errors > 0 && stats.dropped_units > 0, "{stats:?}");
    assert!(stats.skipped_bytes > 0, "{stats:?}");
    assert!(
        seen.video.len() > 10 && seen.video.len() < whole.video.len(),
        "{} of {}",
        seen.video.len(),
        whole.video.len()
    );
    assert!(seen.audio.len() > whole.audio.len() / 2);
    assert_timing(&seen);
}

#[test]
fn garbage_truncation_and_huge_lengths_never_panic() {
    let mut demuxer = TsDemuxer::default();
    let mut events = Vec::new();
    let mut state = 0x2545_f491_u32;
    let mut bytes = Vec::new();
    for round in 0..2000 {
        bytes.clear();
        for _ in 0..(round % 7 + 1) * 188 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            bytes.push(state as u8);
        }
        // Keep the sync bytes and PIDs 0/0x100 often, so tables and PES assembly are reached.
        for (n, packet) in bytes.chunks_mut(188).enumerate() {
            packet[0] = 0x47;
            if n % 2 == 0 {
                packet[1] = (packet[1] & 0xe0) | if round % 3 == 0 { 0 } else { 1 };
            }
        }
        demuxer.push(&bytes[..bytes.len() - (round % 188)], Arrival::now(), &mut events);
        events.clear();
    }
    demuxer.finish(&mut events);
}
