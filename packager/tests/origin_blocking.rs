//! The origin over real HTTP: blocking playlist reload, preload-hinted parts,
//! refusals, release on close, and a flat memory profile over a long stream.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use media::{Arrival, AvcConfig, CodecConfig, EncodedUnit, LatencyMode, StreamEvent, Timebase, TrackInfo, TrackKind};
use packager::{LiveStream, OriginStore, Output, Rendition, Segmenter, SegmenterConfig, WindowConfig};

use media::test_vectors::AVCC_640X360 as AVCC;

/// A synthetic 30 fps video source with a keyframe every second.
struct Source {
    segmenter: Segmenter,
    rendition: Arc<Rendition>,
    frame: i64,
}

impl Source {
    fn new(rendition: Arc<Rendition>) -> Self {
        let mut segmenter = Segmenter::new(SegmenterConfig {
            part_target: Duration::from_millis(200),
            segment_target: Duration::from_secs(1),
        });
        let track = TrackInfo {
            kind: TrackKind::Video,
            timebase: Timebase::VIDEO,
            codec: CodecConfig::Avc(AvcConfig::from_record(Bytes::from_static(&AVCC)).unwrap()),
            frame_rate: Some((30, 1)),
            bitrate: None,
        };
        let mut out = Vec::new();
        segmenter.push(StreamEvent::Tracks(vec![track].into()), &mut out);
        rendition.apply(&out);
        Self { segmenter, rendition, frame: 0 }
    }

    /// Pushes `frames` frames and publishes what they complete (at `now` for retention).
    fn frames(&mut self, frames: i64, now: Instant) {
        let mut out: Vec<Output> = Vec::new();
        for _ in 0..frames {
            let dts = self.frame * 3000;
            let unit = EncodedUnit {
                track: 0,
                kind: TrackKind::Video,
                pts: dts,
                dts,
                keyframe: self.frame % 30 == 0,
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, packager::router(store)).await.unwrap() });
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

#[tokio::test]
async fn blocking_reload_is_answered_when_the_part_appears() {
    let (store, _stream, mut source) = setup();
    source.frames(40, Instant::now());
    let base = serve(store).await;
    let client = reqwest::Client::new();
    let (msn, part) = source.rendition.next_part().unwrap();
    let url = format!("{base}/hls/ch/s1/source/index.m3u8?_HLS_msn={msn}&_HLS_part={part}");
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
    tokio::time::sleep(Duration::from_millis(300)).await;
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
    let live = source.rendition.progress().live_msn();
    assert_eq!(get("_HLS_part=1".into()).await.0, 400);
    assert_eq!(get(format!("_HLS_msn={}", live + 3)).await.0, 400);
    assert_eq!(get(format!("_HLS_msn={}&_HLS_part=-1", live)).await.0, 400);

    // Two segments ahead is allowed, but the stream is stalled: 503 after three target durations.
    let started = Instant::now();
    let (status, _) = get(format!("_HLS_msn={}&_HLS_part=0", live + 2)).await;
    assert_eq!(status, 503);
    assert!(started.elapsed() >= Duration::from_secs(3), "held for three target durations first");

    // Closing the stream releases every waiter with the final playlist.
    let waiter = tokio::spawn(get(format!("_HLS_msn={}&_HLS_part=0", live + 1)));
    tokio::time::sleep(Duration::from_millis(200)).await;
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
