//! The origin over real HTTP: blocking playlist reload, preload-hinted parts,
//! refusals, release on close, and a flat memory profile over a long stream.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use media::{Arrival, AvcConfig, CodecConfig, EncodedUnit, LatencyMode, StreamEvent, Timebase, TrackInfo, TrackKind};
use packager::{
    LiveStream, OriginStore, Output, PartDelivery, Rendition, Segmenter, SegmenterConfig, SoFar, WindowConfig,
};

use media::test_vectors::AVCC_640X360 as AVCC;

fn video_track() -> TrackInfo {
    TrackInfo {
        kind: TrackKind::Video,
        timebase: Timebase::VIDEO,
        codec: CodecConfig::Avc(AvcConfig::from_record(Bytes::from_static(&AVCC)).unwrap()),
        frame_rate: Some((30, 1)),
        bitrate: None,
    }
}

/// A synthetic 30 fps video source, a keyframe every `gop` frames (a second
/// unless a test says otherwise), optionally on RTMP's millisecond clock.
struct Source {
    segmenter: Segmenter,
    rendition: Arc<Rendition>,
    frame: i64,
    gop: i64,
    millisecond_clock: bool,
}

impl Source {
    fn new(rendition: Arc<Rendition>) -> Self {
        let mut segmenter = Segmenter::new(SegmenterConfig {
            part_target: Duration::from_millis(200),
            segment_target: Duration::from_secs(1),
        });
        let mut out = Vec::new();
        segmenter.push(StreamEvent::Tracks(vec![video_track()].into()), &mut out);
        rendition.apply(&out);
        Self { segmenter, rendition, frame: 0, gop: 30, millisecond_clock: false }
    }

    /// The producer restarts: the same track announced again (a transcode moved encoders).
    fn restart(&mut self) {
        let mut out = Vec::new();
        self.segmenter.push(StreamEvent::Tracks(vec![video_track()].into()), &mut out);
        self.rendition.apply(&out);
    }

    /// Pushes `frames` frames and publishes what they complete (at `now` for retention).
    fn frames(&mut self, frames: i64, now: Instant) {
        let mut out: Vec<Output> = Vec::new();
        for _ in 0..frames {
            let dts = if self.millisecond_clock { self.frame * 1000 / 30 * 90 } else { self.frame * 3000 };
            let unit = EncodedUnit {
                track: 0,
                kind: TrackKind::Video,
                pts: dts,
                dts,
                keyframe: self.frame % self.gop == 0,
                data: Bytes::from(vec![0u8; 2000]),
                arrival: Arrival::now(),
            };
            self.segmenter.push(StreamEvent::Unit(unit), &mut out);
            self.frame += 1;
        }
        self.rendition.apply_at(&out, now);
    }
}

async fn serve(store: Arc<OriginStore>) -> String {
    serve_with(store, PartDelivery::default()).await
}

async fn serve_with(store: Arc<OriginStore>, delivery: PartDelivery) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, packager::router_with(store, delivery)).await.unwrap() });
    format!("http://{addr}")
}

fn setup() -> (Arc<OriginStore>, Arc<LiveStream>, Source) {
    let store = Arc::new(OriginStore::new(Duration::from_secs(60)));
    let config =
        WindowConfig { mode: LatencyMode::UltraLow, window_segments: 12, segment_target: Duration::from_secs(1) };
    let rendition = Arc::new(Rendition::new("source", config));
    let stream = Arc::new(LiveStream::new("ch", "s1", vec![rendition.clone()]));
    store.insert(stream.clone());
    (store, stream, Source::new(rendition))
}

/// Waits (bounded) until `more` requests than `before` are held on `rendition`.
async fn held(rendition: &Rendition, before: usize, more: usize) {
    let held = test_tools::eventually(Duration::from_secs(10), || async {
        (rendition.watchers() >= before + more).then_some(())
    })
    .await;
    assert!(held.is_some(), "{more} requests were never held ({} watchers)", rendition.watchers());
}

#[tokio::test]
async fn blocking_reload_is_answered_when_the_part_appears() {
    let (store, _stream, mut source) = setup();
    source.frames(40, Instant::now());
    // Whole parts: the hinted part's response waits for the whole part.
    let base = serve_with(store, PartDelivery::WholeParts).await;
    let client = reqwest::Client::new();
    let (msn, part) = source.rendition.next_part().unwrap();
    let url = format!("{base}/hls/ch/s1/source/index.m3u8?_HLS_msn={msn}&_HLS_part={part}");
    let watching = source.rendition.watchers();
    let request = tokio::spawn({
        let client = client.clone();
        async move {
            let response = client.get(url).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap(), Instant::now())
        }
    });
    let hinted = tokio::spawn({
        let client = client.clone();
        let url = format!("{base}/hls/ch/s1/source/part{msn}.{part}.m4s");
        async move { client.get(url).send().await.unwrap().status().as_u16() }
    });
    held(&source.rendition, watching, 2).await;
    assert!(!request.is_finished(), "the request is held while the part does not exist");
    assert!(!hinted.is_finished(), "the hinted part is held too");
    source.frames(7, Instant::now());
    let published = Instant::now();
    let (status, body, answered) = tokio::time::timeout(Duration::from_secs(2), request).await.unwrap().unwrap();
    assert_eq!(status, 200);
    assert!(body.contains(&format!("part{msn}.{part}.m4s")), "{body}");
    assert_eq!(tokio::time::timeout(Duration::from_secs(2), hinted).await.unwrap().unwrap(), 200);
    eprintln!(
        "blocking reload answered {:?} after the part was published",
        answered.saturating_duration_since(published)
    );
}

/// The hinted part, and the segment in progress, are answered at once and
/// receive each frame's chunk as it is packaged; what arrives is exactly the
/// part (the segment) once made.
#[tokio::test]
async fn parts_and_segments_are_delivered_while_they_are_made() {
    let (store, _stream, mut source) = setup();
    source.frames(40, Instant::now());
    // Up to a part just published: the next one has no chunk yet.
    let closed = source.rendition.progress().last_part;
    while source.rendition.progress().last_part == closed {
        source.frames(1, Instant::now());
    }
    let base = serve(store).await;
    let client = reqwest::Client::new();
    let (msn, index) = source.rendition.next_part().unwrap();
    let get = |file: String| {
        let request = client.get(format!("{base}/hls/ch/s1/source/{file}"));
        async move { tokio::time::timeout(Duration::from_secs(2), request.send()).await.expect("answered at once").unwrap() }
    };
    let mut part = get(format!("part{msn}.{index}.m4s")).await;
    let mut segment = get(format!("seg{msn}.m4s")).await;
    for response in [&part, &segment] {
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "public, max-age=31536000, immutable");
        assert!(response.headers().get("content-length").is_none(), "chunked transfer");
    }
    // The segment so far (its finished parts) arrives at once.
    let finished: Vec<u8> = (0..index).flat_map(|i| source.rendition.part(msn, i).unwrap()).collect();
    let mut segment_bytes = Vec::new();
    while segment_bytes.len() < finished.len() {
        let chunk = tokio::time::timeout(Duration::from_secs(2), segment.chunk()).await.unwrap().unwrap().unwrap();
        segment_bytes.extend_from_slice(&chunk);
    }
    assert_eq!(segment_bytes, finished);
    // Each frame pushed (its duration known once the next arrives) is one chunk at the client.
    let mut part_bytes = Vec::new();
    for frame in 0..3 {
        source.frames(1, Instant::now());
        let chunk = tokio::time::timeout(Duration::from_secs(2), part.chunk())
            .await
            .unwrap_or_else(|_| panic!("frame {frame}'s chunk was not sent as it was made"))
            .unwrap()
            .unwrap();
        assert_eq!(chunk.windows(4).filter(|w| w == b"moof").count(), 1, "frame {frame}: one moof+mdat");
        part_bytes.extend_from_slice(&chunk);
    }
    source.frames(40, Instant::now());
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(2), part.chunk()).await.unwrap().unwrap() {
        part_bytes.extend_from_slice(&chunk);
    }
    assert_eq!(part_bytes, source.rendition.part(msn, index).unwrap().to_vec(), "the part as published");
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(2), segment.chunk()).await.unwrap().unwrap() {
        segment_bytes.extend_from_slice(&chunk);
    }
    assert_eq!(segment_bytes, source.rendition.segment(msn).unwrap().to_vec(), "the segment as published");
}

/// A part being followed when its stream ends without it is cut short (so
/// no cache keeps a truncated part), not completed.
#[tokio::test]
async fn a_part_cut_off_by_the_end_of_its_stream_is_not_completed() {
    let (store, stream, mut source) = setup();
    source.frames(41, Instant::now());
    let base = serve(store).await;
    let (msn, index) = source.rendition.next_part().unwrap();
    let mut part = reqwest::get(format!("{base}/hls/ch/s1/source/part{msn}.{index}.m4s")).await.unwrap();
    source.frames(1, Instant::now());
    assert!(tokio::time::timeout(Duration::from_secs(2), part.chunk()).await.unwrap().unwrap().is_some());
    stream.end();
    let cut = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match part.chunk().await {
                Ok(Some(_)) => continue,
                Ok(None) => return false,
                Err(_) => return true,
            }
        }
    })
    .await
    .unwrap();
    assert!(cut, "the body ended as if the part were whole");
}

/// RFC 8216bis 6.2.6: a hinted part must be made. Segments are cut on
/// keyframes, often right where a part ends (five 200 ms parts of a 1 s GOP):
/// the hint must already name part 0 of the next segment then.
#[test]
fn every_preload_hint_names_a_part_that_is_made() {
    for (gop, millisecond_clock) in [(30, false), (30, true), (15, true), (60, true), (45, false), (7, true)] {
        let (_store, _stream, mut source) = setup();
        source.gop = gop;
        source.millisecond_clock = millisecond_clock;
        let mut hints = Vec::new();
        for _ in 0..600 {
            source.frames(1, Instant::now());
            if let Some(hint) = source.rendition.next_part()
                && hints.last() != Some(&hint)
            {
                hints.push(hint);
            }
        }
        let pending = hints.pop();
        assert!(hints.len() > 50, "gop {gop}: {} hints", hints.len());
        for (msn, index) in hints {
            assert!(
                source.rendition.part(msn, index).is_some(),
                "gop {gop}, ms clock {millisecond_clock}: hinted part{msn}.{index} was never made"
            );
        }
        assert_eq!(source.rendition.part_so_far(pending.unwrap().0, pending.unwrap().1, false), SoFar::Coming);
    }
}

/// Only the hinted part is held; it is made even when the producer restarts
/// right after a part closed (the frame the segmenter holds makes it); a part
/// an ended stream never made is gone.
#[test]
fn the_hinted_part_is_made_across_a_producer_restart() {
    let (_store, stream, mut source) = setup();
    source.frames(75, Instant::now());
    let complete = source.rendition.progress().last_complete.unwrap();
    let count = (0..).take_while(|i| source.rendition.part(complete, *i).is_some()).count() as u32;
    assert_eq!(source.rendition.part_so_far(complete, count, false), SoFar::Gone, "past a segment's last part");
    // Push until a part of the segment in progress has just closed.
    let closed = |s: &Source| s.rendition.progress().last_part.map(|(_, i)| i);
    let before = closed(&source);
    while closed(&source) == before {
        source.frames(1, Instant::now());
    }
    let (msn, index) = source.rendition.next_part().unwrap();
    assert!(index > 0, "inside a segment");
    assert_eq!(source.rendition.part_so_far(msn, index, false), SoFar::Coming);
    assert_eq!(source.rendition.part_so_far(msn, index + 1, false), SoFar::Gone, "only the hinted part is held");
    source.restart();
    assert!(
        matches!(source.rendition.part_so_far(msn, index, false), SoFar::Made { complete: true, .. }),
        "the hinted part was made"
    );
    assert_eq!(source.rendition.progress().last_complete, Some(msn), "and its segment cut short");
    let (msn, index) = source.rendition.next_part().unwrap();
    assert_eq!((source.rendition.part_so_far(msn, index, false), index), (SoFar::Coming, 0));
    stream.end();
    assert_eq!(source.rendition.part_so_far(msn, index, false), SoFar::Gone);
}

/// RFC 8216bis 6.2.5.2: requests that could only be answered after a long
/// hold get 400 at once; those at the limits are held and answered.
#[tokio::test]
async fn directives_past_the_limits_are_refused_at_once() {
    let (store, _stream, mut source) = setup();
    source.frames(40, Instant::now());
    let base = serve(store).await;
    let client = reqwest::Client::new();
    let url = |q: String| format!("{base}/hls/ch/s1/source/index.m3u8?{q}");
    let progress = source.rendition.progress();
    let last = progress.last_complete.unwrap();
    let (last_msn, last_part) = progress.last_part.unwrap();
    assert_eq!(last_msn, last + 1, "a segment is in progress");
    // PART-TARGET is 0.206 s: the Advance Part Limit is 3 / 0.206 = 14.6 parts.
    for query in [format!("_HLS_msn={}", last + 3), format!("_HLS_msn={last_msn}&_HLS_part={}", last_part + 15)] {
        let response = tokio::time::timeout(Duration::from_secs(2), client.get(url(query.clone())).send())
            .await
            .unwrap_or_else(|_| panic!("{query} was held instead of refused"))
            .unwrap();
        assert_eq!(response.status(), 400, "{query}");
        assert_eq!(response.headers()["cache-control"], "no-store", "{query}");
    }
    // At the limits: held until the stream gets there.
    let limits = [format!("_HLS_msn={}", last + 2), format!("_HLS_msn={last_msn}&_HLS_part={}", last_part + 14)];
    let watching = source.rendition.watchers();
    let waiters: Vec<_> = limits.iter().map(|q| tokio::spawn(client.get(url(q.clone())).send())).collect();
    held(&source.rendition, watching, limits.len()).await;
    assert!(waiters.iter().all(|w| !w.is_finished()), "requests at the limits are held, not refused");
    source.frames(90, Instant::now());
    for (query, waiter) in limits.iter().zip(waiters) {
        let response = tokio::time::timeout(Duration::from_secs(2), waiter).await.unwrap().unwrap().unwrap();
        assert_eq!(response.status(), 200, "{query}");
    }
}

#[tokio::test]
async fn refusals_timeouts_and_close() {
    let (store, stream, mut source) = setup();
    source.frames(40, Instant::now());
    let base = serve(store).await;
    let client = reqwest::Client::new();
    let get = |q: String| {
        let client = client.clone();
        let url = format!("{base}/hls/ch/s1/source/index.m3u8?{q}");
        async move {
            let r = client.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let last = source.rendition.progress().last_complete.unwrap();
    assert_eq!(get("_HLS_part=1".into()).await.0, 400);
    assert_eq!(get(format!("_HLS_msn={}", last + 3)).await.0, 400);
    assert_eq!(get(format!("_HLS_msn={}&_HLS_part=-1", last)).await.0, 400);

    // Two segments past the last is allowed, but the stream is stalled: 503 after three target durations.
    let started = Instant::now();
    let (status, _) = get(format!("_HLS_msn={}&_HLS_part=0", last + 2)).await;
    assert_eq!(status, 503);
    assert!(started.elapsed() >= Duration::from_secs(3), "held for three target durations first");

    // Closing the stream releases every waiter with the final playlist.
    let watching = source.rendition.watchers();
    let waiter = tokio::spawn(get(format!("_HLS_msn={}&_HLS_part=0", last + 2)));
    held(&source.rendition, watching, 1).await;
    stream.end();
    let (status, body) = tokio::time::timeout(Duration::from_secs(2), waiter).await.unwrap().unwrap();
    assert_eq!(status, 200);
    assert!(body.ends_with("#EXT-X-ENDLIST\n"), "{body}");
}

#[tokio::test]
async fn memory_stays_flat_over_a_long_stream() {
    let (_store, _stream, mut source) = setup();
    let start = Instant::now();
    let mut peak = (0, 0);
    // One hour of media, one second of simulated wall time per second of media.
    for second in 0..3600u64 {
        source.frames(30, start + Duration::from_secs(second));
        let (segments, bytes) = source.rendition.memory();
        peak = (peak.0.max(segments), peak.1.max(bytes));
    }
    // 12 listed + up to 3 target durations of retired ones + the one in progress.
    assert!(peak.0 <= 12 + 4 + 1, "segments held peaked at {}", peak.0);
    assert!(peak.1 <= 17 * 30 * 2100, "bytes held peaked at {}", peak.1);
    let playlist = source.rendition.playlist(false, Vec::new());
    let text = std::str::from_utf8(&playlist.text).unwrap();
    assert_eq!(text.matches("#EXTINF").count(), 12, "{text}");
}

#[tokio::test]
async fn parts_stay_downloadable_after_leaving_the_playlist() {
    let (store, _stream, mut source) = setup();
    let base = serve(store).await;
    let start = Instant::now();
    source.frames(45, start);
    let early = source.rendition.playlist(false, Vec::new());
    let early = std::str::from_utf8(&early.text).unwrap().to_string();
    assert!(early.contains("part0.0.m4s"), "{early}");
    // Five more seconds: segment 0's parts leave the playlist (older than three target durations).
    for second in 1..=5 {
        source.frames(30, start + Duration::from_secs(second));
    }
    let later = source.rendition.playlist(false, Vec::new());
    let later = std::str::from_utf8(&later.text).unwrap();
    assert!(!later.contains("part0.0.m4s") && later.contains("seg0.m4s"), "{later}");
    let status = reqwest::get(format!("{base}/hls/ch/s1/source/part0.0.m4s")).await.unwrap().status();
    assert_eq!(status, 200, "a part that left the playlist is still served");
}

#[test]
fn sibling_renditions_report_each_other() {
    let config =
        WindowConfig { mode: LatencyMode::UltraLow, window_segments: 12, segment_target: Duration::from_secs(1) };
    let high = Arc::new(Rendition::new("high", config));
    let low = Arc::new(Rendition::new("low", config));
    let stream = LiveStream::new("ch", "s1", vec![high.clone(), low.clone()]);
    let (mut a, mut b) = (Source::new(high), Source::new(low));
    a.frames(40, Instant::now());
    b.frames(40, Instant::now());
    let reports = stream.reports_for("high");
    assert_eq!(reports.len(), 1);
    let (msn, part) = b.rendition.progress().last_part.unwrap();
    assert_eq!(
        (reports[0].uri.as_str(), reports[0].last_msn, reports[0].last_part),
        ("../low/index.m3u8", msn, Some(part as u64))
    );
    let text = a.rendition.playlist(false, reports).text.clone();
    let text = std::str::from_utf8(&text).unwrap();
    assert!(
        text.contains(&format!("#EXT-X-RENDITION-REPORT:URI=\"../low/index.m3u8\",LAST-MSN={msn},LAST-PART={part}")),
        "{text}"
    );
    // A single rendition has no reports.
    let single = LiveStream::new("ch", "s2", vec![a.rendition.clone()]);
    assert!(single.reports_for("high").is_empty());
    // The multivariant playlist lists both variants.
    let master = stream.multivariant();
    assert!(master.contains("s1/high/index.m3u8") && master.contains("s1/low/index.m3u8"), "{master}");
}

/// Every kind of response carries the caching a CDN needs (RFC 8216bis
/// Appendix B.1), and nothing varies by `Origin` (one cache entry for all sites).
#[tokio::test]
async fn cache_headers_for_browsers_and_shared_caches() {
    let (store, stream, mut source) = setup();
    source.frames(40, Instant::now());
    let base = serve(store).await;
    let client = reqwest::Client::new();
    let get = |path: String| {
        let request = client.get(format!("{base}/hls/ch/{path}")).header("origin", "https://viewer.example");
        async move { request.send().await.unwrap() }
    };
    let (msn, part) = source.rendition.progress().last_part.unwrap();
    let cases = [
        ("index.m3u8".to_string(), 200, "public, max-age=0, s-maxage=0", Some("Accept-Encoding")),
        ("s1/source/index.m3u8".into(), 200, "public, max-age=0, s-maxage=0", Some("Accept-Encoding")),
        (
            format!("s1/source/index.m3u8?_HLS_msn={msn}&_HLS_part={part}"),
            200,
            "public, max-age=6",
            Some("Accept-Encoding"),
        ),
        ("s1/source/init0.mp4".into(), 200, "public, max-age=31536000, immutable", None),
        ("s1/source/seg0.m4s".into(), 200, "public, max-age=31536000, immutable", None),
        (format!("s1/source/part{msn}.{part}.m4s"), 200, "public, max-age=31536000, immutable", None),
        (format!("s1/source/part{msn}.{}.m4s", part + 2), 404, "no-store", None),
        ("s1/source/seg99.m4s".into(), 404, "no-store", None),
        ("s1/nope/index.m3u8".into(), 404, "no-store", None),
        ("s1/source/index.m3u8?_HLS_msn=99".into(), 400, "no-store", None),
    ];
    for (path, status, cache_control, vary) in cases {
        let response = get(path.clone()).await;
        assert_eq!(response.status(), status, "{path}");
        let headers = response.headers();
        assert_eq!(headers["cache-control"], cache_control, "{path}");
        assert_eq!(headers.get("vary").map(|v| v.to_str().unwrap()), vary, "{path}");
        assert_eq!(headers["access-control-allow-origin"], "*", "{path}");
    }
    // Once ended, the playlist is final, and directives are ignored (answered at once).
    stream.end();
    let response = get("s1/source/index.m3u8?_HLS_msn=99&_HLS_part=3&_HLS_skip=YES".into()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "public, max-age=6");
    let text = response.text().await.unwrap();
    assert!(text.ends_with("#EXT-X-ENDLIST\n") && !text.contains("#EXT-X-SKIP"), "{text}");
}

/// A new stream's playlists wait for its first complete segment: a playlist
/// of parts alone is legal, but Shaka Player cannot start from one.
#[tokio::test]
async fn a_new_streams_playlists_wait_for_its_first_segment() {
    let (store, _stream, mut source) = setup();
    source.frames(12, Instant::now());
    let base = serve(store).await;
    let client = reqwest::Client::new();
    let watching = source.rendition.watchers();
    let get = |path: &str| {
        let (client, url) = (client.clone(), format!("{base}{path}"));
        tokio::spawn(async move {
            let response = client.get(url).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        })
    };
    let multivariant = get("/hls/ch/index.m3u8");
    let media = get("/hls/ch/s1/source/index.m3u8");
    held(&source.rendition, watching, 2).await;
    assert!(!multivariant.is_finished() && !media.is_finished(), "both held while there are only parts");
    source.frames(30, Instant::now());
    let (status, body) = tokio::time::timeout(Duration::from_secs(2), media).await.unwrap().unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("#EXTINF:1"), "{body}");
    let (status, body) = tokio::time::timeout(Duration::from_secs(2), multivariant).await.unwrap().unwrap();
    assert_eq!((status, body.contains("s1/source/index.m3u8")), (200, true), "{body}");
}
