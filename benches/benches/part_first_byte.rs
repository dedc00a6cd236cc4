//! Ingest to first byte at the client for parts delivered while they are
//! made (`PartDelivery::Chunks`) against parts delivered whole
//! (`PartDelivery::WholeParts`, the reference: RFC 8216bis 6.2.6's rule and
//! the origin's behaviour before), in the same run.
//!
//! The recording's video tags are replayed in real time through our FLV
//! demuxer into the packaging task, each stamped on arrival as the RTMP
//! session stamps a message it reads. A client on loopback follows the
//! preload hints like Shaka Player or Safari (the hinted part and the
//! blocking playlist that will list it, on two keep-alive connections) and
//! notes when each CMAF chunk's `moof` is complete in what it received. Two
//! figures per mode: the first byte of every part after its first frame's
//! arrival, and every frame's bytes after that frame's arrival.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use benches::{Tag, read_flv, recording, rendition, segmenter_config, target_dir};
use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::header::HOST;
use hyper_util::rt::TokioIo;
use media::{Arrival, StreamEvent};
use packager::{LatencyStats, LatencySummary, LiveStream, OriginStore, PartDelivery};
use tokio::net::TcpStream;

/// Seconds of the recording replayed per mode.
const SECONDS: u32 = 30;

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;
type Error = Box<dyn std::error::Error + Send + Sync>;

/// What one mode measured.
struct Measured {
    part_first_byte: LatencySummary,
    frame_bytes: LatencySummary,
}

fn main() {
    if benches::skip_without_ffmpeg() {
        return;
    }
    let tags: Vec<Tag> = read_flv(&recording(&target_dir()))
        .into_iter()
        .filter(|t| t.kind == 9 && t.timestamp <= SECONDS * 1000)
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let whole = runtime.block_on(measure(&tags, PartDelivery::WholeParts));
    let chunks = runtime.block_on(measure(&tags, PartDelivery::Chunks));

    println!(
        "part first byte: {SECONDS} s of 720p30 (4 Mb/s, a keyframe a second) replayed in real time, 200 ms parts, \
         a hint-following client on loopback"
    );
    println!("{:<44} {:>9} {:>9} {:>9} {:>9}", "", "p50 ms", "p95 ms", "p99 ms", "n");
    for (name, m) in [("whole parts (reference)", &whole), ("chunks while made (ours)", &chunks)] {
        for (what, s) in [("first byte of a part", m.part_first_byte), ("every frame's bytes", m.frame_bytes)] {
            println!(
                "{:<44} {:>9.1} {:>9.1} {:>9.1} {:>9}",
                format!("{name}: {what}"),
                s.p50_ms,
                s.p95_ms,
                s.p99_ms,
                s.count
            );
        }
    }
    let ratio = whole.part_first_byte.p50_ms / chunks.part_first_byte.p50_ms;
    let frame_ratio = whole.frame_bytes.p50_ms / chunks.frame_bytes.p50_ms;
    println!("ratio: a part's first byte arrives {ratio:.1}x sooner (p50); a frame's bytes {frame_ratio:.1}x sooner");
    println!(
        "{}",
        serde_json::json!({
            "bench": "part_first_byte",
            "seconds": SECONDS,
            "whole_parts": { "part_first_byte": whole.part_first_byte, "frame_bytes": whole.frame_bytes },
            "chunks": { "part_first_byte": chunks.part_first_byte, "frame_bytes": chunks.frame_bytes },
            "part_first_byte_ratio_p50": ratio,
            "frame_bytes_ratio_p50": frame_ratio,
        })
    );
}

/// Replays `tags` into a fresh origin delivering parts as `delivery` says
/// and measures what a hint-following client receives.
async fn measure(tags: &[Tag], delivery: PartDelivery) -> Measured {
    let store = Arc::new(OriginStore::new(Duration::from_secs(60)));
    let rendition = Arc::new(rendition("source"));
    store.insert(Arc::new(LiveStream::new("bench", "s", vec![rendition.clone()])));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Served as the appliance serves it (plain axum::serve).
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, packager::router_with(store, delivery)).await;
    });

    let (mut units, events) = media::unit_channel(1024);
    let packaging =
        tokio::spawn(packager::package(events, rendition.clone(), segmenter_config(), Arc::new(LatencyStats::new())));
    // When each video frame (by decode time) reached the demuxer.
    let arrivals: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let feeder = {
        let (tags, arrivals) =
            (tags.iter().map(|t| (t.timestamp, t.data.clone())).collect::<Vec<_>>(), arrivals.clone());
        tokio::spawn(async move {
            let mut demuxer = ingest::Demuxer::default();
            let mut out = Vec::new();
            let start = tokio::time::Instant::now();
            for (timestamp, data) in tags {
                tokio::time::sleep_until(start + Duration::from_millis(timestamp as u64)).await;
                let arrival = Arrival::now();
                demuxer.push_video(timestamp, &data, arrival, &mut out);
                for event in out.drain(..) {
                    match event {
                        StreamEvent::Tracks(tracks) => units.send_tracks(tracks).await.unwrap(),
                        StreamEvent::Unit(unit) => {
                            arrivals.lock().unwrap().insert(unit.dts, arrival.instant);
                            units.send_unit(unit).unwrap();
                        }
                    }
                }
            }
        })
    };

    let (part_first_byte, frame_bytes) = (LatencyStats::new(), LatencyStats::new());
    let follow = follow_hints(addr, &arrivals, &part_first_byte, &frame_bytes);
    tokio::select! {
        result = follow => result.expect("the client follows the hints"),
        _ = feeder => {}
    }
    packaging.abort();
    server.abort();
    Measured { part_first_byte: part_first_byte.summary(), frame_bytes: frame_bytes.summary() }
}

/// Follows the preload hints until the stream stops: each hinted part is
/// requested with the blocking playlist that will list it.
async fn follow_hints(
    addr: SocketAddr,
    arrivals: &Mutex<HashMap<i64, Instant>>,
    part_first_byte: &LatencyStats,
    frame_bytes: &LatencyStats,
) -> Result<(), Error> {
    let base = "/hls/bench/s/source/";
    let (mut parts, mut playlists) = (connect(addr).await?, connect(addr).await?);
    let mut hint = loop {
        let (status, body) = collect(&mut playlists, &format!("{base}index.m3u8")).await?;
        if let Some(hint) = (status == 200).then(|| preload_hint(&body)).flatten() {
            break hint;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    loop {
        let (msn, index) = hint;
        let (part_path, playlist_path) =
            (format!("{base}part{msn}.{index}.m4s"), format!("{base}index.m3u8?_HLS_msn={msn}&_HLS_part={index}"));
        let part = follow_part(&mut parts, &part_path, arrivals, part_first_byte, frame_bytes);
        let playlist = collect(&mut playlists, &playlist_path);
        let (part, playlist) = tokio::join!(part, playlist);
        part?;
        let (status, body) = playlist?;
        if status != 200 {
            return Err(format!("blocking playlist answered {status}").into());
        }
        hint = preload_hint(&body).ok_or("no preload hint")?;
    }
}

/// Reads one part as it arrives, noting when each `moof` is complete.
async fn follow_part(
    sender: &mut Sender,
    path: &str,
    arrivals: &Mutex<HashMap<i64, Instant>>,
    part_first_byte: &LatencyStats,
    frame_bytes: &LatencyStats,
) -> Result<(), Error> {
    let request = Request::get(path).header(HOST, "127.0.0.1").body(Empty::new())?;
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    if response.status() != 200 {
        return Err(format!("{path}: {}", response.status()).into());
    }
    let mut body = response.into_body();
    let mut buffer = BytesMut::new();
    let mut first = true;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else { continue };
        let now = Instant::now();
        buffer.extend_from_slice(&data);
        // Every whole box received: a `moof` names its frame by decode time.
        while buffer.len() >= 8 {
            let size = u32::from_be_bytes(buffer[..4].try_into().unwrap()) as usize;
            if size < 8 || buffer.len() < size {
                break;
            }
            let one = buffer.split_to(size).freeze();
            if &one[4..8] != b"moof" {
                continue;
            }
            let dts = decode_time(&one).ok_or("a moof without tfdt")?;
            let arrived = *arrivals.lock().unwrap().get(&dts).ok_or("a frame that was never sent")?;
            let latency = now.saturating_duration_since(arrived);
            frame_bytes.record(latency);
            if first {
                part_first_byte.record(latency);
                first = false;
            }
        }
    }
    Ok(())
}

/// `tfdt`'s base media decode time in a `moof` (one video track).
fn decode_time(moof: &[u8]) -> Option<i64> {
    let at = moof.windows(4).position(|w| w == b"tfdt")? + 4;
    let mut rest = &moof[at..];
    let version = rest.first().copied()?;
    rest.advance(4);
    Some(if version == 1 { rest.get_u64() as i64 } else { rest.get_u32() as i64 })
}

/// The preload hint of a media playlist as (msn, part).
fn preload_hint(playlist: &[u8]) -> Option<(u64, u32)> {
    let text = std::str::from_utf8(playlist).ok()?;
    let uri = text.lines().find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\""))?;
    let (msn, index) = uri.trim_end_matches('"').strip_prefix("part")?.strip_suffix(".m4s")?.split_once('.')?;
    Some((msn.parse().ok()?, index.parse().ok()?))
}

async fn collect(sender: &mut Sender, path: &str) -> Result<(u16, Bytes), Error> {
    let request = Request::get(path).header(HOST, "127.0.0.1").body(Empty::new())?;
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    Ok((status, response.into_body().collect().await?.to_bytes()))
}

async fn connect(addr: SocketAddr) -> Result<Sender, Error> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}
