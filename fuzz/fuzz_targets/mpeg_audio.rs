//! MPEG audio frame headers (MP3 has no sequence header: ingest reads every
//! tag's frames for the rate, channels and samples).

#![no_main]

use libfuzzer_sys::fuzz_target;
use media::OtherAudioConfig;
use media::mpeg_audio::{self, MpegAudioHeader};

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = MpegAudioHeader::parse(data) {
        assert!(header.sample_rate > 0 && (1..=2).contains(&header.channels));
        if let Some(len) = header.frame_len {
            assert!(len >= 4, "a frame shorter than its header: {header:?}");
        }
    }
    let _ = OtherAudioConfig::from_mp3_frame(data);
    let mut consumed = 0;
    for frame in mpeg_audio::frames(data) {
        match frame {
            Ok((_, bytes)) => consumed += bytes.len(),
            Err(_) => break,
        }
    }
    assert!(consumed <= data.len());
    let _ = mpeg_audio::samples_in(data);
});
