//! The DVR window over hours of synthetic media fed faster than real time:
//! its length, memory that stays flat, redirects into the recording for what
//! left memory, parts only at the live edge, and delta updates (`_HLS_skip`)
//! checked against the full playlist, over real HTTP too.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use media::test_vectors::AVCC_640X360 as AVCC;
use media::{Arrival, AvcConfig, CodecConfig, EncodedUnit, LatencyMode, StreamEvent, Timebase, TrackInfo, TrackKind};
use packager::playlist::MediaPlaylist;
use packager::{
    ArchivedFile, DvrConfig, LiveStream, OriginStore, Output, PlaylistView, Rendition, Segmenter, SegmenterConfig,
    WindowConfig,
};

const FPS: i64 = 30;
/// Two-second segments (a keyframe every two seconds), 200 ms parts.
const GOP: i64 = 2 * FPS;
const WINDOW_SEGMENTS: usize = 12;
const ARCHIVE: &str = "../../recordings/s1/source/";

fn video_track() -> TrackInfo {
    TrackInfo {
        kind: TrackKind::Video,
        timebase: Timebase::VIDEO,
        codec: CodecConfig::Avc(AvcConfig::from_record(Bytes::from_static(&AVCC)).unwrap()),
        frame_rate: Some((FPS as u32, 1)),
        bitrate: None,
    }
}

/// A 30 fps source whose clock (for retention) advances with its media.
struct Source {
    segmenter: Segmenter,
    rendition: Arc<Rendition>,
    frame: i64,
    start: Instant,
}

impl Source {
    fn new(rendition: Arc<Rendition>) -> Self {
        let config =
            SegmenterConfig { part_target: Duration::from_millis(200), segment_target: Duration::from_secs(2) };
        let mut source = Self { segmenter: Segmenter::new(config), rendition, frame: 0, start: Instant::now() };
        source.announce();
        source
    }

    /// Announces the track (again: a producer restart, a discontinuity).
    fn announce(&mut self) {
        let mut out = Vec::new();
        self.segmenter.push(StreamEvent::Tracks(vec![video_track()].into()), &mut out);
        self.rendition.apply(&out);
    }

    /// Feeds `seconds` of media, applied a second at a time.
    fn seconds(&mut self, seconds: u64) {
        for _ in 0..seconds {
            let mut out: Vec<Output> = Vec::new();
            for _ in 0..FPS {
                let dts = self.frame * 3000;
                let unit = EncodedUnit {
                    track: 0,
                    kind: TrackKind::Video,
                    pts: dts,
                    dts,
                    keyframe: self.frame % GOP == 0,
                    data: Bytes::from_static(&[0u8; 300]),
                    arrival: Arrival::now(),
                };
                self.segmenter.push(StreamEvent::Unit(unit), &mut out);
                self.frame += 1;
            }
            let now = self.start + Duration::from_millis((self.frame * 1000 / FPS) as u64);
            self.rendition.apply_at(&out, now);
        }
    }
}

fn rendition(dvr_window: Duration) -> Arc<Rendition> {
    let config = WindowConfig {
        mode: LatencyMode::UltraLow,
        window_segments: WINDOW_SEGMENTS,
        segment_target: Duration::from_secs(2),
    };
    let rendition = Rendition::new("source", config);
    Arc::new(rendition.with_dvr(DvrConfig { window: dvr_window, archive_uri: ARCHIVE.into() }))
}

fn listed_seconds(playlist: &MediaPlaylist) -> f64 {
    playlist.segments.iter().filter_map(|s| s.complete.as_ref()).map(|c| c.duration).sum()
}

/// The full playlist and its delta update agree: the same sequence numbers,
/// and the delta's segments are the full playlist's after the skipped ones;
/// what is skipped lies more than CAN-SKIP-UNTIL from the end, and no more is
/// kept than a segment beyond it.
fn check_delta(rendition: &Rendition, view: PlaylistView) -> (MediaPlaylist, MediaPlaylist) {
    let full = rendition.media_playlist(view, false, Vec::new());
    let delta = rendition.media_playlist(view, true, Vec::new());
    let skipped = delta.skipped_segments as usize;
    assert_eq!(full.skipped_segments, 0);
    assert_eq!(
        (delta.media_sequence, delta.discontinuity_sequence),
        (full.media_sequence, full.discontinuity_sequence)
    );
    assert_eq!(delta.segments[..], full.segments[skipped..], "the delta is the full playlist's tail");
    let until = full.can_skip_until.expect("LL-HLS playlists allow delta updates");
    assert!(until >= 6.0 * full.target_duration as f64, "CAN-SKIP-UNTIL is at least six target durations");
    let kept = listed_seconds(&delta);
    assert!(kept >= until, "kept {kept} s, less than CAN-SKIP-UNTIL {until}");
    if skipped > 0 {
        assert!(kept < until + full.target_duration as f64, "kept {kept} s: more could be skipped");
    }
    (full, delta)
}

#[test]
fn a_two_hour_window_is_listed_from_metadata_while_memory_stays_flat() {
    let window = Duration::from_secs(2 * 3600);
    let rendition = rendition(window);
    let mut source = Source::new(rendition.clone());
    let mut peak = (0, 0);
    // Two and a half hours of media; a producer restart at 20 minutes.
    for minute in 0..150 {
        if minute == 20 {
            source.announce();
        }
        source.seconds(60);
        let (segments, bytes) = rendition.memory();
        peak = (peak.0.max(segments), peak.1.max(bytes));
        if minute == 60 {
            // The restart is inside the window: listed, with its discontinuity, from the recording.
            let (full, _) = check_delta(&rendition, PlaylistView::Dvr);
            let restart = full.segments.iter().find(|s| s.discontinuity).expect("the restart is listed");
            let uri = &restart.complete.as_ref().unwrap().uri;
            let msn: u64 = uri.trim_start_matches("seg").trim_end_matches(".m4s").parse().unwrap();
            assert_eq!(rendition.archived_location(ArchivedFile::Segment(msn)), Some(format!("{ARCHIVE}{uri}")));
            assert_eq!(full.discontinuity_sequence, 0);
        }
    }
    // Memory holds the live window and the retired segments of three target durations, never the DVR window's media.
    assert!(peak.0 <= WINDOW_SEGMENTS + 4 + 1, "segments held peaked at {}", peak.0);
    assert!(peak.1 <= (WINDOW_SEGMENTS + 5) * 2 * 30 * 400, "bytes held peaked at {}", peak.1);

    let (full, delta) = check_delta(&rendition, PlaylistView::Dvr);
    let listed = listed_seconds(&full);
    assert!(listed <= window.as_secs_f64() && listed > window.as_secs_f64() - 2.0, "the DVR playlist lists {listed} s");
    assert_eq!(full.discontinuity_sequence, 1, "the restart left the window");
    assert!(full.segments.iter().all(|s| !s.discontinuity));
    let (archived, archived_seconds) = rendition.dvr_archived();
    assert!(archived > 3500 && archived_seconds > 7000.0, "{archived} segments, {archived_seconds} s archived");
    // Old segments are in the recording, the live window in memory; parts only at the edge.
    let live = rendition.media_playlist(PlaylistView::Live, false, Vec::new());
    let live_uris: Vec<&str> =
        live.segments.iter().filter_map(|s| s.complete.as_ref()).map(|c| c.uri.as_str()).collect();
    assert_eq!(live_uris.len(), WINDOW_SEGMENTS);
    let dvr_tail: Vec<&str> = full
        .segments
        .iter()
        .filter_map(|s| s.complete.as_ref())
        .map(|c| c.uri.as_str())
        .rev()
        .take(WINDOW_SEGMENTS)
        .collect();
    assert_eq!(dvr_tail.into_iter().rev().collect::<Vec<_>>(), live_uris, "the DVR window ends with the live window");
    let oldest = full.media_sequence;
    assert_eq!(full.segments[0].complete.as_ref().unwrap().uri, format!("seg{oldest}.m4s"));
    assert_eq!(full.segments[0].map_uri, "init0.mp4");
    let location = |msn| rendition.archived_location(ArchivedFile::Segment(msn));
    assert_eq!(location(oldest), Some(format!("{ARCHIVE}seg{oldest}.m4s")));
    assert_eq!(location(oldest - 1), None, "out of the window");
    assert_eq!(location(live.media_sequence), None, "in memory: served from there");
    let older = &full.segments[..full.segments.len() - WINDOW_SEGMENTS - 1];
    assert!(older.iter().all(|s| s.parts.is_empty()));
    let with_parts = full.segments.iter().filter(|s| !s.parts.is_empty()).count();
    assert!((1..=4).contains(&with_parts), "{with_parts} segments list parts");
    assert_eq!(full.segments.iter().filter(|s| !s.parts.is_empty()).count(), with_parts);
    assert_eq!(live.segments.iter().filter(|s| !s.parts.is_empty()).count(), with_parts, "the live edge is as before");

    // Reload sizes of the DVR playlist with and without _HLS_skip (figures for the report).
    let text = rendition.playlist_of(PlaylistView::Dvr, false, Vec::new()).unwrap();
    let skip = rendition.playlist_of(PlaylistView::Dvr, true, Vec::new()).unwrap();
    eprintln!(
        "2 h DVR playlist, {} segments: full {} B ({} B gzip), delta ({} skipped) {} B ({} B gzip)",
        full.segments.len(),
        text.text.len(),
        text.gzip.len(),
        delta.skipped_segments,
        skip.text.len(),
        skip.gzip.len()
    );
    assert!(skip.text.len() * 50 < text.text.len(), "a delta update is a small fraction of the full playlist");
    let rendered = std::str::from_utf8(&skip.text).unwrap();
    assert!(rendered.contains(&format!("#EXT-X-SKIP:SKIPPED-SEGMENTS={}\n", delta.skipped_segments)), "{rendered}");
    assert!(!rendered.contains("#EXT-X-PLAYLIST-TYPE"), "a sliding DVR window is neither EVENT nor VOD");
}

#[test]
fn the_end_lists_the_window_with_endlist_and_no_playlist_type() {
    let rendition = rendition(Duration::from_secs(600));
    let mut source = Source::new(rendition.clone());
    source.seconds(900);
    rendition.end();
    let text = rendition.playlist_of(PlaylistView::Dvr, false, Vec::new()).unwrap();
    let text = std::str::from_utf8(&text.text).unwrap();
    assert!(text.ends_with("#EXT-X-ENDLIST\n") && !text.contains("PLAYLIST-TYPE"), "{text}");
    assert!(!text.contains("PRELOAD-HINT"), "{text}");
    let full = rendition.media_playlist(PlaylistView::Dvr, false, Vec::new());
    let listed = listed_seconds(&full);
    assert!(listed <= 600.0 && listed > 598.0, "{listed}");
}

#[tokio::test]
async fn the_origin_serves_dvr_playlists_and_delta_updates() {
    let store = Arc::new(OriginStore::new(Duration::from_secs(60)));
    let rendition = rendition(Duration::from_secs(1800));
    let stream = Arc::new(LiveStream::new("ch", "s1", vec![rendition.clone()]));
    store.insert(stream);
    let mut source = Source::new(rendition.clone());
    source.seconds(1200);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, packager::router(store)).await.unwrap() });
    let get = |path: String| {
        let url = format!("{base}{path}");
        async move {
            let response = reqwest::get(url).await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let (status, multivariant) = get("/hls/ch/dvr.m3u8".into()).await;
    assert_eq!(status, 200, "{multivariant}");
    assert!(multivariant.contains("\ns1/source/dvr.m3u8\n"), "{multivariant}");
    let (status, full) = get("/hls/ch/s1/source/dvr.m3u8".into()).await;
    assert_eq!(status, 200);
    let complete = rendition.progress().last_complete.unwrap() as usize + 1;
    assert_eq!(complete, 599, "20 minutes of 2 s segments, the last one in progress");
    assert_eq!(full.matches("#EXTINF").count(), complete, "the whole session is inside the 30 min window");
    assert!(full.contains("#EXT-X-MAP:URI=\"init0.mp4\"\n"), "{}", &full[..600]);
    // What left memory is redirected into the recording, permanently; what is in memory is served.
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = client.get(format!("{base}/hls/ch/s1/source/seg0.m4s")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 301);
    assert_eq!(response.headers()["location"], format!("{ARCHIVE}seg0.m4s").as_str());
    assert!(response.headers()["cache-control"].to_str().unwrap().contains("immutable"));
    let last = rendition.progress().last_complete.unwrap();
    let response = client.get(format!("{base}/hls/ch/s1/source/seg{last}.m4s")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let (msn, part) = rendition.progress().last_part.unwrap();
    let (status, delta) =
        get(format!("/hls/ch/s1/source/dvr.m3u8?_HLS_msn={msn}&_HLS_part={part}&_HLS_skip=YES")).await;
    assert_eq!(status, 200, "{delta}");
    assert!(delta.contains(&format!("part{msn}.{part}.m4s")), "{delta}");
    let skipped: usize =
        delta.split("#EXT-X-SKIP:SKIPPED-SEGMENTS=").nth(1).unwrap().lines().next().unwrap().parse().unwrap();
    assert_eq!(skipped + delta.matches("#EXTINF").count(), complete);
    // A channel without a DVR window has no DVR playlists.
    let (status, _) = get("/hls/ch/s1/source/index.m3u8".into()).await;
    assert_eq!(status, 200);
    let plain = Arc::new(Rendition::new(
        "plain",
        WindowConfig { mode: LatencyMode::UltraLow, window_segments: 4, segment_target: Duration::from_secs(2) },
    ));
    assert!(plain.playlist_of(PlaylistView::Dvr, false, Vec::new()).is_none());
}
