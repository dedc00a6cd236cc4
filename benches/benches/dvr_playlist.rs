//! The DVR playlist's reload cost: after each part of a stream whose 2 h DVR
//! window is full (1 s segments, 200 ms parts: 7200 segments listed), a
//! player's reload renders and gzips its playlist once. Measured in the same
//! run against the live playlist (24 segments), the reference: the DVR
//! playlist with `_HLS_skip=YES` (what LL-HLS players reload) and without it
//! (a player's first load), as ratios, with their sizes.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use media::test_vectors::AVCC_640X360 as AVCC;
use media::{Arrival, AvcConfig, CodecConfig, EncodedUnit, StreamEvent, Timebase, TrackInfo, TrackKind};
use packager::{DvrConfig, Output, PlaylistView, Rendition, Segmenter};

const FPS: i64 = 30;
const WINDOW: Duration = Duration::from_secs(2 * 3600);
/// Parts measured (each followed by one render per view).
const PARTS: usize = 300;

fn video_track() -> TrackInfo {
    TrackInfo {
        kind: TrackKind::Video,
        timebase: Timebase::VIDEO,
        codec: CodecConfig::Avc(AvcConfig::from_record(Bytes::from_static(&AVCC)).expect("test vector")),
        frame_rate: Some((FPS as u32, 1)),
        bitrate: None,
    }
}

/// Feeds frames; returns after each applied batch of outputs that published a part.
struct Source {
    segmenter: Segmenter,
    rendition: Arc<Rendition>,
    frame: i64,
    start: Instant,
}

impl Source {
    fn frame(&mut self) -> bool {
        let mut out: Vec<Output> = Vec::new();
        let dts = self.frame * 3000;
        let unit = EncodedUnit {
            track: 0,
            kind: TrackKind::Video,
            pts: dts,
            dts,
            keyframe: self.frame % FPS == 0,
            data: Bytes::from_static(&[0u8; 300]),
            arrival: Arrival::now(),
        };
        self.segmenter.push(StreamEvent::Unit(unit), &mut out);
        self.frame += 1;
        let now = self.start + Duration::from_millis((self.frame * 1000 / FPS) as u64);
        self.rendition.apply_at(&out, now);
        out.iter().any(|o| matches!(o, Output::Part(_)))
    }
}

/// Renders `view` after each of `PARTS` parts; returns (time per render, bytes of the last, gzip bytes).
fn measure(source: &mut Source, view: PlaylistView, skip: bool) -> (Duration, usize, usize) {
    let mut spent = Duration::ZERO;
    let mut last = (0, 0);
    for _ in 0..PARTS {
        while !source.frame() {}
        let started = Instant::now();
        let rendered = source.rendition.playlist_of(view, skip, Vec::new()).expect("the rendition has a DVR window");
        spent += started.elapsed();
        last = (rendered.text.len(), rendered.gzip.len());
        black_box(&rendered);
    }
    (spent / PARTS as u32, last.0, last.1)
}

fn main() {
    let rendition = benches::rendition("source");
    let archive_uri = "../../recordings/s/source/".to_string();
    let rendition = Arc::new(rendition.with_dvr(DvrConfig { window: WINDOW, archive_uri }));
    let mut source = Source {
        segmenter: Segmenter::new(benches::segmenter_config()),
        rendition: rendition.clone(),
        frame: 0,
        start: Instant::now(),
    };
    let mut out = Vec::new();
    source.segmenter.push(StreamEvent::Tracks(vec![video_track()].into()), &mut out);
    rendition.apply(&out);
    // Fill the window: 2 h and a minute of media.
    let fill = Instant::now();
    while source.frame < (WINDOW.as_secs() as i64 + 60) * FPS {
        source.frame();
    }
    let (archived, seconds) = rendition.dvr_archived();
    let (held, held_bytes) = rendition.memory();
    println!(
        "dvr_playlist: window filled in {:.1} s; {archived} segments ({seconds:.0} s) listed from metadata, {held} segments ({held_bytes} B) of media in memory",
        fill.elapsed().as_secs_f64()
    );
    let live = measure(&mut source, PlaylistView::Live, true);
    let delta = measure(&mut source, PlaylistView::Dvr, true);
    let full = measure(&mut source, PlaylistView::Dvr, false);
    for (name, (time, bytes, gzip)) in [("live (reference)", live), ("DVR, _HLS_skip=YES", delta), ("DVR, full", full)]
    {
        let ratio = time.as_secs_f64() / live.0.as_secs_f64();
        println!(
            "dvr_playlist: {name}: {:.1} us per reload ({ratio:.1}x the live playlist), {bytes} B ({gzip} B gzip)",
            time.as_secs_f64() * 1e6
        );
    }
}
