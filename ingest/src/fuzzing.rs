//! Entry points for the cargo-fuzz targets (`fuzz/` at the repository root)
//! and their seed cutter, behind the `fuzzing` feature. Each feeds arbitrary
//! bytes to one parser of outside bytes the way the server does, and panics
//! only where the code broke one of its promises (a bound, an ordering).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use media::{StreamEvent, TrackKind, UnitReceiver, unit_channel};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

use crate::admission::Admission;
use crate::chunk::{ChunkReader, MAX_PARTIAL_BYTES, PRE_PUBLISH_MAX_MESSAGE};
use crate::handler::{IngestHandler, PublishGrant, PublishRequest, Refusal, RefusalKind};
use crate::ingest_config::IngestConfig;
use crate::memory_budget::MemoryBudget;
use crate::server_state::Shared;
use crate::session::{self, Admitted};
use crate::{Demuxer, amf0, command, flv, metadata};

/// One RTMP message as the chunk reader reassembled it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmpMessage {
    pub timestamp: u32,
    pub type_id: u8,
    pub payload: Bytes,
}

/// The messages of a client's chunk stream (what follows its handshake),
/// applying Set Chunk Size and Abort as the session does; stops at the first
/// error. For cutting seeds out of a recorded publish.
pub fn read_messages(stream: &[u8]) -> Vec<RtmpMessage> {
    let mut reader = ChunkReader::default();
    let mut buf = BytesMut::from(stream);
    let mut out = Vec::new();
    while let Ok(Some(m)) = reader.read(&mut buf) {
        if control(&mut reader, m.type_id, &m.payload).is_err() {
            break;
        }
        out.push(RtmpMessage { timestamp: m.timestamp, type_id: m.type_id, payload: m.payload });
    }
    out
}

/// What the session does itself with a protocol control message.
fn control(reader: &mut ChunkReader, type_id: u8, payload: &[u8]) -> Result<(), crate::IngestError> {
    let u32_at = || payload.get(..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    match type_id {
        1 => reader.set_chunk_size(u32_at().unwrap_or(0)),
        2 => {
            reader.abort(u32_at().unwrap_or(0));
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The chunk reader on its own: `data` is a client's chunk stream after the
/// handshake. Its first byte picks how the stream arrives (in pieces of 1 to
/// 64 bytes, or at once) and whether the reader is in its pre-publish mode
/// with a small shared budget.
pub fn chunk_stream(data: &[u8]) {
    let Some((&mode, data)) = data.split_first() else { return };
    let budget = MemoryBudget::new(16 * PRE_PUBLISH_MAX_MESSAGE);
    let mut reader =
        if mode & 0x80 != 0 { ChunkReader::before_publish(budget.account()) } else { ChunkReader::default() };
    let piece = match mode & 0x3f {
        0 => data.len().max(1),
        n => n as usize,
    };
    let mut buf = BytesMut::new();
    'feed: for part in data.chunks(piece) {
        buf.extend_from_slice(part);
        loop {
            match reader.read(&mut buf) {
                Ok(Some(m)) => {
                    let limit = if mode & 0x80 != 0 { PRE_PUBLISH_MAX_MESSAGE } else { crate::chunk::MAX_MESSAGE_SIZE };
                    assert!(
                        m.payload.len() <= limit,
                        "a {} byte message through a {limit} byte limit",
                        m.payload.len()
                    );
                    if control(&mut reader, m.type_id, &m.payload).is_err() {
                        break 'feed;
                    }
                }
                Ok(None) => break,
                Err(_) => break 'feed,
            }
            assert!(reader.partial_bytes() <= MAX_PARTIAL_BYTES);
            assert!(budget.used() <= budget.limit());
        }
    }
    drop(reader);
    assert_eq!(budget.used(), 0, "a dropped reader gives its budget back");
}

/// AMF0 as it arrives in command and data messages: the screen, the command
/// reader, the `onMetaData` reader, and what scuffle-amf0 and scuffle-rtmp
/// do with a payload the screen let through (they must not abort).
pub fn amf0(data: &[u8]) {
    let screened = amf0::check_amf0(data).is_ok();
    let _ = command::read(data);
    let _ = metadata::read(data);
    if screened {
        let _ = scuffle_amf0::Amf0Decoder::from_slice(data).decode_all();
        let _ = scuffle_rtmp::command_messages::Command::read(Bytes::copy_from_slice(data));
    }
}

/// FLV tag bodies (legacy and Enhanced RTMP) through the tag readers and a
/// `Demuxer`. `data` is an FLV file (header, then tags, as `ffmpeg -f flv`
/// writes); a tag runs to the end of the data when its size says more.
/// Checks what the demuxer promises its consumer: units only after an
/// announcement, track indices within it, `dts` strictly increasing per track.
pub fn flv_tags(data: &[u8]) {
    let mut demuxer = Demuxer::default();
    let mut checker = EventChecker::default();
    let mut out = Vec::new();
    let arrival = media::Arrival::now();
    let mut rest = data.get(13..).unwrap_or_default();
    while rest.len() >= 11 {
        let kind = rest[0] & 0x1f;
        let size = u32::from_be_bytes([0, rest[1], rest[2], rest[3]]) as usize;
        let timestamp = u32::from_be_bytes([rest[7], rest[4], rest[5], rest[6]]);
        let end = (11 + size).min(rest.len());
        let body = Bytes::copy_from_slice(&rest[11..end]);
        rest = rest.get(end + 4..).unwrap_or_default();
        match kind {
            8 => {
                if let Ok(flv::AudioTag::OtherFrame { data, .. }) = flv::read_audio(&body) {
                    let _ = media::mpeg_audio::samples_in(&data);
                    let _ = media::opus::packet_samples(&data);
                }
                demuxer.push_audio(timestamp, &body, arrival, &mut out);
            }
            9 => {
                if let Ok(flv::VideoTag::Frame { data, .. }) = flv::read_video(&body) {
                    for size in 1..=4 {
                        if let Ok(normalised) = flv::to_four_byte_lengths(data.clone(), size) {
                            assert!(normalised.len() >= data.len());
                        }
                    }
                }
                demuxer.push_video(timestamp, &body, arrival, &mut out);
            }
            18 => {
                if let Ok(Some(meta)) = metadata::read(&body) {
                    demuxer.set_metadata(&meta, &mut out);
                }
            }
            _ => {}
        }
        for event in out.drain(..) {
            checker.check(event);
        }
    }
}

/// What every consumer of a publish may rely on: units only after an
/// announcement, of the kind the announcement gives their index, and each
/// kind's decode time strictly increasing in seconds (a re-announcement may
/// change a track's clock, e.g. AAC at 44.1 kHz to G.711 at 8 kHz).
#[derive(Default)]
struct EventChecker {
    tracks: Vec<(TrackKind, u32)>,
    /// The last unit's (dts, timebase) per kind.
    last: [Option<(i64, u32)>; 2],
}

impl EventChecker {
    fn check(&mut self, event: StreamEvent) {
        match event {
            StreamEvent::Tracks(tracks) => {
                assert!(!tracks.is_empty(), "an empty announcement");
                self.tracks = tracks.iter().map(|t| (t.kind, t.timebase.0)).collect();
                assert!(self.tracks.iter().all(|&(_, tb)| tb > 0), "a zero timebase: {tracks:?}");
            }
            StreamEvent::Unit(unit) => {
                let &(kind, timebase) = self.tracks.get(unit.track).unwrap_or_else(|| {
                    panic!("a unit of track {} with {} tracks announced", unit.track, self.tracks.len())
                });
                assert_eq!(unit.kind, kind, "track {} is {kind:?}", unit.track);
                let last = &mut self.last[usize::from(kind == TrackKind::Audio)];
                if let Some((dts, tb)) = *last {
                    // unit.dts / timebase > dts / tb, exactly.
                    let (now, before) = (unit.dts as i128 * tb as i128, dts as i128 * timebase as i128);
                    assert!(now > before, "{kind:?}: dts {}/{timebase} after {dts}/{tb}", unit.dts);
                }
                *last = Some((unit.dts, timebase));
            }
        }
    }
}

/// A whole connection: a valid handshake, then `after_handshake` as the
/// client's chunk stream, then the client closes its side. Grants every
/// publish whose key does not start with `x` (refused as unknown) or `y`
/// (refused as live elsewhere); a consumer checks what the publish delivers.
/// Runs on a paused clock, so deadlines pass as soon as nothing else can happen.
pub fn session(after_handshake: &[u8]) {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("a tokio runtime");
    }
    RUNTIME.with(|runtime| runtime.block_on(run_session(after_handshake)));
}

async fn run_session(after_handshake: &[u8]) {
    let config = IngestConfig { unauthenticated_buffer: 16 * PRE_PUBLISH_MAX_MESSAGE, ..IngestConfig::default() };
    let admission = Admission::new(config.limits());
    let shared = Shared::new(config);
    let peer = SocketAddr::from(([127, 0, 0, 1], 50_000));
    let (ticket, eviction) = admission.admit(peer.ip()).expect("an empty server admits");
    let handler = Arc::new(CheckingHandler::default());
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let (client, server) = tokio::io::duplex(16 * 1024);
    let serve = session::serve(server, peer, handler.clone(), shared.clone(), Admitted { ticket, eviction }, stop_rx);
    let (mut from_server, mut to_server) = tokio::io::split(client);
    let client_writes = async move {
        let mut c0c1 = vec![3u8];
        c0c1.extend_from_slice(&[0; 8]);
        c0c1.extend((0..1528u32).map(|i| (i * 7) as u8));
        let c2 = [0u8; 1536];
        for part in [&c0c1[..], &c2[..], after_handshake] {
            if to_server.write_all(part).await.is_err() {
                return;
            }
        }
        let _ = to_server.shutdown().await;
    };
    let client_reads = async move {
        let mut sink = [0u8; 8192];
        while let Ok(1..) = from_server.read(&mut sink).await {}
    };
    let (_, _, ended) = tokio::join!(client_writes, client_reads, serve);
    let _ = ended;
    let consumers = std::mem::take(&mut *handler.consumers.lock().unwrap());
    for consumer in consumers {
        consumer.await.expect("the consumer's checks hold");
    }
    assert_eq!(handler.granted.load(Ordering::Relaxed), handler.unpublished.load(Ordering::Relaxed));
    assert_eq!(shared.budget.used(), 0, "an ended connection gives its budget back");
    assert_eq!(admission.open(), 0, "an ended connection frees its slot");
}

#[derive(Default)]
struct CheckingHandler {
    next_id: AtomicU64,
    granted: AtomicU64,
    unpublished: AtomicU64,
    consumers: Mutex<Vec<JoinHandle<()>>>,
}

impl IngestHandler for CheckingHandler {
    async fn on_publish(&self, req: PublishRequest) -> Result<PublishGrant, Refusal> {
        match req.stream_key.as_bytes().first() {
            Some(b'x') => return Err(Refusal::new(RefusalKind::UnknownKey, "unknown stream key")),
            Some(b'y') => return Err(Refusal::new(RefusalKind::AlreadyLive, "live elsewhere")),
            _ => {}
        }
        let publish_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.granted.fetch_add(1, Ordering::Relaxed);
        let (sink, rx) = unit_channel(64);
        self.consumers.lock().unwrap().push(tokio::spawn(consume(rx)));
        Ok(PublishGrant { sink, label: format!("fuzz-{publish_id}"), publish_id, keyframe_interval: None })
    }

    fn on_unpublish(&self, _publish_id: u64) {
        self.unpublished.fetch_add(1, Ordering::Relaxed);
    }
}

async fn consume(mut rx: UnitReceiver) {
    let mut checker = EventChecker::default();
    while let Some(event) = rx.recv().await {
        checker.check(event);
    }
}

/// Grants every publish and throws its units away: the server of the seed
/// recorder (`examples/record_seeds.rs`).
#[derive(Default)]
pub struct AcceptAll {
    next_id: AtomicU64,
}

impl IngestHandler for AcceptAll {
    async fn on_publish(&self, _req: PublishRequest) -> Result<PublishGrant, Refusal> {
        let publish_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (sink, mut rx) = unit_channel(1024);
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        Ok(PublishGrant { sink, label: format!("seed-{publish_id}"), publish_id, keyframe_interval: None })
    }

    fn on_unpublish(&self, _publish_id: u64) {}
}

/// MPEG-TS as an SRT caller sends it, through `TsDemuxer`: the first byte
/// picks the size of the pieces the rest is fed in (SRT messages are 1316
/// bytes, but a caller may send anything). Checks the events as
/// `flv_tags` does.
pub fn ts_stream(data: &[u8]) {
    let Some((&cut, stream)) = data.split_first() else { return };
    let piece = match cut % 4 {
        0 => 1316,
        1 => 188,
        2 => 1 + cut as usize,
        _ => stream.len().max(1),
    };
    let mut demuxer = crate::TsDemuxer::default();
    let mut checker = EventChecker::default();
    let mut out = Vec::new();
    let arrival = media::Arrival::now();
    for chunk in stream.chunks(piece) {
        demuxer.push(chunk, arrival, &mut out);
        for event in out.drain(..) {
            checker.check(event);
        }
    }
    demuxer.finish(&mut out);
    for event in out.drain(..) {
        checker.check(event);
    }
}

/// An SRT streamid (any bytes as text) through `parse_stream_id`: a key it
/// returns is never empty.
pub fn srt_stream_id(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(key) = crate::parse_stream_id(Some(&text)) {
        assert!(!key.is_empty(), "an empty key from {text:?}");
    }
}

/// A WHIP offer (SDP text from the request body) as the server takes it:
/// parsed by str0m and answered as our ICE-lite H.264/Opus peer. An answer
/// must name at least one kind of media and carry our candidate.
pub fn whip_offer(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(offer) = str0m::change::SdpOffer::from_sdp_string(text) else { return };
    let local: SocketAddr = "192.0.2.1:50000".parse().expect("an address");
    if let Ok((_, answer, kinds)) = crate::whip::negotiate(&crate::whip::WhipConfig::default(), local, offer) {
        assert!(kinds != (false, false), "an answer without media");
        assert!(answer.to_sdp_string().contains("192.0.2.1 50000 typ host"), "the answer lacks our candidate");
    }
}

/// Depacketized WebRTC media (what str0m hands over from RTP) through the
/// WHIP demuxer: each record is a kind byte (even: H.264 Annex B access unit,
/// odd: Opus packet), a 32-bit RTP time, a 16-bit length and the payload.
/// Decode times of every track must increase; units go only to announced tracks.
pub fn whip_media(data: &[u8]) {
    use crate::whip::rtp_media::{Frame, RtpDemuxer};
    let mut demuxer = RtpDemuxer::new(true, true);
    let start = std::time::Instant::now();
    let mut rest = data;
    let mut out = Vec::new();
    let mut last_dts: std::collections::HashMap<usize, i64> = std::collections::HashMap::new();
    let mut announced = 0usize;
    let mut step = 0u64;
    while rest.len() >= 7 {
        let kind = rest[0];
        let rtp_time = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]);
        let len = usize::from(u16::from_be_bytes([rest[5], rest[6]])).min(rest.len() - 7);
        let payload = Bytes::copy_from_slice(&rest[7..7 + len]);
        rest = &rest[7 + len..];
        step += 1;
        let network = start + std::time::Duration::from_millis(step * 20);
        let frame = if kind % 2 == 0 {
            Frame::Video { rtp_time, network, data: payload }
        } else {
            Frame::Audio { rtp_time, network, data: payload }
        };
        demuxer.push(frame, media::Arrival::now(), &mut out);
        for event in out.drain(..) {
            match event {
                StreamEvent::Tracks(tracks) => announced = tracks.len(),
                StreamEvent::Unit(unit) => {
                    assert!(unit.track < announced, "a unit for a track never announced");
                    if let Some(previous) = last_dts.insert(unit.track, unit.dts) {
                        assert!(unit.dts > previous, "decode time went from {previous} to {}", unit.dts);
                    }
                }
            }
        }
    }
}
