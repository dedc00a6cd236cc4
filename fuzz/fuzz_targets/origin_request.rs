//! The origin's request parsing: a request target (path and query, e.g.
//! `/hls/ch/s1/source/index.m3u8?_HLS_msn=3&_HLS_part=1`) through the axum
//! router over a store holding a live rendition, and the media file names
//! on their own. No request may end in a server error but the deliberate
//! 503s, and every name the parser accepts reads back the same.

#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, Uri};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use media::test_vectors::AVCC_640X360;
use media::{Arrival, AvcConfig, CodecConfig, EncodedUnit, LatencyMode, StreamEvent, Timebase, TrackInfo, TrackKind};
use packager::origin::{MediaFile, parse_file};
use packager::{DvrConfig, LiveStream, OriginStore, Output, Rendition, Segmenter, SegmenterConfig, WindowConfig};
use tower::ServiceExt;

/// A store with channel `ch`, session `s1`, rendition `source`: three
/// seconds of 30 fps video in 1 s segments and 200 ms parts, still live.
fn store() -> Arc<OriginStore> {
    let store = Arc::new(OriginStore::new(Duration::from_secs(3600)));
    let window =
        WindowConfig { mode: LatencyMode::UltraLow, window_segments: 12, segment_target: Duration::from_secs(1) };
    // With a DVR window, so `dvr.m3u8` and its redirects are fuzzed too.
    let dvr = DvrConfig { window: Duration::from_secs(3600), archive_uri: "../../recordings/s1/source/".into() };
    let rendition = Arc::new(Rendition::new("source", window).with_dvr(dvr));
    store.insert(Arc::new(LiveStream::new("ch", "s1", vec![rendition.clone()])));
    let mut segmenter = Segmenter::new(SegmenterConfig {
        part_target: Duration::from_millis(200),
        segment_target: Duration::from_secs(1),
    });
    let track = TrackInfo {
        kind: TrackKind::Video,
        timebase: Timebase::VIDEO,
        codec: CodecConfig::Avc(AvcConfig::from_record(Bytes::from_static(&AVCC_640X360)).expect("test avcC")),
        frame_rate: Some((30, 1)),
        bitrate: None,
    };
    let mut out: Vec<Output> = Vec::new();
    segmenter.push(StreamEvent::Tracks(vec![track].into()), &mut out);
    for frame in 0..95i64 {
        let unit = EncodedUnit {
            track: 0,
            kind: TrackKind::Video,
            pts: frame * 3000,
            dts: frame * 3000,
            keyframe: frame % 30 == 0,
            data: Bytes::from(vec![0u8; 64]),
            arrival: Arrival::now(),
        };
        segmenter.push(StreamEvent::Unit(unit), &mut out);
    }
    rendition.apply_at(&out, Instant::now());
    store
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    // A paused clock: a blocking reload's wait passes as soon as nothing else can happen.
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().expect("runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    static ROUTER: OnceLock<axum::Router> = OnceLock::new();
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some(parsed) = parse_file(text) {
        let name = match &parsed {
            MediaFile::Playlist => "index.m3u8".to_owned(),
            MediaFile::DvrPlaylist => "dvr.m3u8".to_owned(),
            MediaFile::Init(v) => format!("init{v}.mp4"),
            MediaFile::Segment(msn) => format!("seg{msn}.m4s"),
            MediaFile::Part(msn, i) => format!("part{msn}.{i}.m4s"),
        };
        assert_eq!(parse_file(&name), Some(parsed), "{text:?} read back as {name:?}");
    }
    let Ok(uri) = text.parse::<Uri>() else { return };
    if uri.scheme().is_some() || !text.starts_with('/') {
        return;
    }
    let router = ROUTER.get_or_init(|| runtime().block_on(async { packager::router(store()) })).clone();
    let request = Request::get(uri).body(Body::empty()).expect("a GET request");
    let response = runtime().block_on(router.oneshot(request)).expect("the router is infallible");
    let status = response.status();
    assert!(!status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE, "{text:?} answered {status}");
});
