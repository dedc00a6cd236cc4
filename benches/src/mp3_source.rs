//! A two-tone stereo MP3 (what an older encoder box or a browser-based
//! publisher sends), made once by the `ffmpeg` program, and its frames as
//! ingest would deliver them: the source of the audio benches.

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use media::{Arrival, CodecConfig, EncodedUnit, OtherAudioConfig, Timebase, TrackInfo, TrackKind};

/// `seconds` of 440 Hz left and 660 Hz right at `rate`, 128 kbit/s, in `dir` (made once).
pub fn mp3_file(dir: &Path, seconds: u32, rate: u32) -> PathBuf {
    let path = dir.join(format!("bench-tone-{seconds}s-{rate}.mp3"));
    if !path.exists() {
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
            .arg(format!("sine=f=440:d={seconds}:sample_rate={rate}"))
            .args(["-f", "lavfi", "-i"])
            .arg(format!("sine=f=660:d={seconds}:sample_rate={rate}"))
            .args(["-filter_complex", "[0][1]amerge=inputs=2", "-c:a", "libmp3lame", "-b:a", "128k"])
            .args(["-write_xing", "0", "-id3v2_version", "0", "-f", "mp3"])
            .arg(&path)
            .status()
            .expect("the ffmpeg program is needed for this benchmark");
        assert!(status.success(), "ffmpeg could not make the MP3");
    }
    path
}

/// The MP3 of `seconds` at `rate` in the target folder, its track and its units.
pub fn bench_source(seconds: u32, rate: u32) -> (PathBuf, TrackInfo, Vec<EncodedUnit>) {
    let file = mp3_file(&crate::target_dir(), seconds, rate);
    let (track, units) = units(&std::fs::read(&file).expect("the MP3 reads back"));
    (file, track, units)
}

/// The file's frames as ingest would deliver them (sample-counted timestamps).
pub fn units(mp3: &[u8]) -> (TrackInfo, Vec<EncodedUnit>) {
    let bytes = Bytes::copy_from_slice(mp3);
    let mut units = Vec::new();
    let mut pts = 0i64;
    let mut config = None;
    for frame in media::mpeg_audio::frames(mp3) {
        let (_, data) = frame.expect("whole MP3 frames");
        let start = data.as_ptr() as usize - mp3.as_ptr() as usize;
        config.get_or_insert_with(|| OtherAudioConfig::from_mp3_frame(data).expect("an MP3 header"));
        units.push(EncodedUnit {
            track: 1,
            kind: TrackKind::Audio,
            pts,
            dts: pts,
            keyframe: true,
            data: bytes.slice(start..start + data.len()),
            arrival: Arrival::now(),
        });
        pts += i64::from(media::mpeg_audio::samples_in(data).expect("an MP3 frame"));
    }
    let config = config.expect("frames");
    let track = TrackInfo {
        kind: TrackKind::Audio,
        timebase: Timebase(config.sample_rate),
        codec: CodecConfig::OtherAudio(config),
        frame_rate: None,
        bitrate: None,
    };
    (track, units)
}
