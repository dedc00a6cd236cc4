//! Records real `ffmpeg` RTMP publishes through a recording proxy in front of
//! our server, and cuts the fuzz targets' seed corpora from them (and from
//! the H.265 and Opus headers `ffmpeg` writes into files). From the
//! repository root:
//!
//! ```text
//! cargo run -p ingest --features fuzzing --example record_seeds -- fuzz/seeds
//! ```
//!
//! Writes `<dir>/<target>/<name>` for each fuzz target; every seed is cut
//! short to stay small (the fuzzer mutates from there).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ingest::fuzzing::{AcceptAll, RtmpMessage, read_messages};
use ingest::{IngestConfig, RtmpServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// C0 + C1 + C2 of the simple or complex handshake.
const HANDSHAKE: usize = 1 + 2 * 1536;
/// The largest seed written (the chunk streams are cut here).
const MAX_SEED: usize = 12 << 10;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let out = PathBuf::from(std::env::args().nth(1).expect("usage: record_seeds <seed dir>"));
    let server = RtmpServer::bind("127.0.0.1:0", IngestConfig::default(), Arc::new(AcceptAll::default()))
        .await
        .expect("bind the RTMP server")
        .spawn()
        .expect("spawn the RTMP server");
    let video = ["-f", "lavfi", "-i", "testsrc=size=160x120:rate=15", "-t", "1"];
    let x264 = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "15"];
    let tone = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "1"];
    let publishes: [(&str, Vec<&str>); 4] = [
        ("avc-aac", [&video[..], &tone, &x264, &["-c:a", "aac", "-b:a", "64k"]].concat()),
        (
            "avc-bframes-mp3",
            [
                &video[..],
                &tone,
                &["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast", "-bf", "2", "-g", "15"],
                &["-c:a", "libmp3lame"],
            ]
            .concat(),
        ),
        ("avc-alaw", [&video[..], &tone, &x264, &["-c:a", "pcm_alaw", "-ar", "8000", "-ac", "1"]].concat()),
        ("aac-only", [&tone[..], &["-c:a", "aac", "-b:a", "64k"]].concat()),
    ];
    let mut all_messages = Vec::new();
    for (name, args) in publishes {
        let recorded = record_publish(server.local_addr(), &args).await;
        assert!(recorded.len() > HANDSHAKE, "{name}: ffmpeg sent only {} bytes", recorded.len());
        let stream = &recorded[HANDSHAKE..];
        let messages = read_messages(stream);
        println!("{name}: {} bytes after the handshake, {} messages", stream.len(), messages.len());
        let cut = &stream[..stream.len().min(MAX_SEED)];
        write(&out, "rtmp_session", name, cut);
        write(&out, "chunk_stream", &format!("{name}-whole"), &[&[0x00][..], cut].concat());
        if name == "aac-only" {
            write(&out, "chunk_stream", &format!("{name}-pieces"), &[&[0x07][..], cut].concat());
        }
        write(
            &out,
            "chunk_stream",
            &format!("{name}-before-publish"),
            &[&[0x80][..], &cut[..cut.len().min(4096)]].concat(),
        );
        write(&out, "flv_tags", name, &flv_file(&messages));
        all_messages.push((name, messages));
    }
    cut_amf0_and_configs(&out, &all_messages);
    let hvcc = hevc_record().await;
    write(&out, "hvcc", "x265-160x120", &hvcc);
    let opus_head = opus_head().await;
    write(&out, "opus_head", "libopus-stereo", &opus_head);
    let (_, avc_aac) = &all_messages[0];
    write(&out, "flv_tags", "enhanced-avc-aac-hevc-opus", &enhanced_flv(avc_aac, &hvcc, &opus_head));
    write_origin_requests(&out);
    server.shutdown().await;
}

/// Publishes with `ffmpeg` through a proxy and returns what the client sent.
async fn record_publish(server: SocketAddr, args: &[&str]) -> Vec<u8> {
    let proxy = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
    let url = format!("rtmp://{}/live/seed-key", proxy.local_addr().expect("proxy address"));
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let copy = {
        let recorded = recorded.clone();
        tokio::spawn(async move {
            let (client, _) = proxy.accept().await.expect("ffmpeg connects");
            let upstream = TcpStream::connect(server).await.expect("connect to the server");
            let (mut client_read, mut client_write) = client.into_split();
            let (mut up_read, mut up_write) = upstream.into_split();
            let upward = async {
                let mut buf = vec![0u8; 64 << 10];
                while let Ok(n @ 1..) = client_read.read(&mut buf).await {
                    recorded.lock().unwrap().extend_from_slice(&buf[..n]);
                    if up_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = up_write.shutdown().await;
            };
            let downward = async {
                let _ = tokio::io::copy(&mut up_read, &mut client_write).await;
                let _ = client_write.shutdown().await;
            };
            tokio::join!(upward, downward);
        })
    };
    let status = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error"])
        .args(args)
        .args(["-f", "flv", &url])
        .status()
        .await
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg {args:?} failed");
    tokio::time::timeout(Duration::from_secs(10), copy).await.expect("the proxy to finish").expect("proxy task");
    std::mem::take(&mut *recorded.lock().unwrap())
}

/// Command and data payloads (one seed each, deduplicated), the AVC and AAC
/// sequence headers' records, and the first MP3 tag's frames.
fn cut_amf0_and_configs(out: &Path, all: &[(&str, Vec<RtmpMessage>)]) {
    let mut seen = BTreeSet::new();
    for (_, messages) in all {
        for m in messages.iter().filter(|m| matches!(m.type_id, 18 | 20)) {
            let name = amf0_name(&m.payload);
            if seen.insert(name.clone()) {
                write(out, "amf0", &name, &m.payload);
            }
        }
    }
    let (_, avc_aac) = &all[0];
    let video_header = avc_aac.iter().find(|m| m.type_id == 9 && m.payload.get(..2) == Some(&[0x17, 0]));
    write(out, "avcc", "x264-160x120", &video_header.expect("an AVC sequence header").payload[5..]);
    let audio_header = avc_aac.iter().find(|m| m.type_id == 8 && m.payload.get(1) == Some(&0));
    write(out, "audio_specific_config", "aac-lc-44100", &audio_header.expect("an AAC sequence header").payload[2..]);
    let (_, mp3) = &all[1];
    let frames = mp3.iter().find(|m| m.type_id == 8 && m.payload.first().is_some_and(|b| b >> 4 == 2));
    write(out, "mpeg_audio", "lame-44100", &frames.expect("an MP3 tag").payload[1..]);
}

/// The command's (or data message's) name, for the seed's file name.
fn amf0_name(payload: &[u8]) -> String {
    let name = match payload {
        [0x02, hi, lo, rest @ ..] => rest.get(..usize::from(u16::from_be_bytes([*hi, *lo]))).unwrap_or_default(),
        _ => b"unnamed",
    };
    String::from_utf8_lossy(name).chars().filter(char::is_ascii_alphanumeric).collect()
}

/// An FLV file of the audio, video and data messages (as `ffmpeg -f flv` writes one), cut at `MAX_SEED`.
fn flv_file(messages: &[RtmpMessage]) -> Vec<u8> {
    let mut out = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
    for m in messages.iter().filter(|m| matches!(m.type_id, 8 | 9 | 18)) {
        if out.len() + m.payload.len() > MAX_SEED {
            break;
        }
        push_tag(&mut out, m.type_id, m.timestamp, &m.payload);
    }
    out
}

fn push_tag(out: &mut Vec<u8>, type_id: u8, timestamp: u32, body: &[u8]) {
    let (size, ts) = ((body.len() as u32).to_be_bytes(), timestamp.to_be_bytes());
    out.extend_from_slice(&[type_id, size[1], size[2], size[3], ts[1], ts[2], ts[3], ts[0], 0, 0, 0]);
    out.extend_from_slice(body);
    out.extend_from_slice(&(11 + body.len() as u32).to_be_bytes());
}

/// The real AVC and AAC tags of a publish re-wrapped as Enhanced RTMP
/// (`avc1`, `mp4a`), then an `hvc1` sequence start with a real hvcC and an
/// `Opus` sequence start with a real `OpusHead` and a packet. FFmpeg 5.1
/// cannot publish Enhanced RTMP itself.
fn enhanced_flv(messages: &[RtmpMessage], hvcc: &[u8], opus_head: &[u8]) -> Vec<u8> {
    let mut out = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
    for m in messages {
        let body = &m.payload[..];
        let enhanced = match (m.type_id, body) {
            // Legacy AVC: frame type and codec, packet type, composition time, data.
            (9, [first, packet, rest @ ..]) if first & 0x0f == 7 && rest.len() >= 3 => {
                let (frame_type, (cts, data)) = ((first >> 4) & 0x07, rest.split_at(3));
                match packet {
                    0 => [&[0x80 | frame_type << 4][..], b"avc1", data].concat(),
                    1 if cts == [0, 0, 0] => [&[0x80 | frame_type << 4 | 3][..], b"avc1", data].concat(),
                    1 => [&[0x80 | frame_type << 4 | 1][..], b"avc1", rest].concat(),
                    _ => continue,
                }
            }
            // Legacy AAC: sound format 10, packet type, data.
            (8, [first, packet, data @ ..]) if first >> 4 == 10 => [&[0x90 | packet][..], b"mp4a", data].concat(),
            (18, _) => body.to_vec(),
            _ => continue,
        };
        if out.len() + enhanced.len() > MAX_SEED - 512 {
            break;
        }
        push_tag(&mut out, m.type_id, m.timestamp, &enhanced);
    }
    let last = messages.last().map_or(0, |m| m.timestamp);
    push_tag(&mut out, 9, last, &[&[0x90][..], b"hvc1", hvcc].concat());
    push_tag(&mut out, 8, last, &[&[0x90][..], b"Opus", opus_head].concat());
    // One 20 ms CELT packet (TOC config 31, one frame) after its head.
    push_tag(&mut out, 8, last + 20, &[&[0x91][..], b"Opus", &[0xf8, 0xff, 0xfe]].concat());
    out
}

/// The hvcC record of a one-frame x265 encode in an MP4.
async fn hevc_record() -> Vec<u8> {
    let mp4 = ffmpeg_to_file(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=15",
            "-frames:v",
            "1",
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libx265",
            "-x265-params",
            "log-level=error",
            "-tag:v",
            "hvc1",
        ],
        "mp4",
    )
    .await;
    let at = find(&mp4, b"hvcC").expect("an hvcC box");
    let size = u32::from_be_bytes(mp4[at - 4..at].try_into().unwrap()) as usize;
    mp4[at + 4..at - 4 + size].to_vec()
}

/// The `OpusHead` of a libopus encode in Ogg.
async fn opus_head() -> Vec<u8> {
    let ogg = ffmpeg_to_file(
        &["-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", "0.1", "-ac", "2", "-c:a", "libopus"],
        "ogg",
    )
    .await;
    let at = find(&ogg, b"OpusHead").expect("an OpusHead");
    ogg[at..at + 19].to_vec()
}

async fn ffmpeg_to_file(args: &[&str], format: &str) -> Vec<u8> {
    let path = std::env::temp_dir().join(format!("record-seeds-{}.{format}", std::process::id()));
    let status = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
        .args(args)
        .args(["-f", format])
        .arg(&path)
        .status()
        .await
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg {args:?} failed");
    let bytes = std::fs::read(&path).expect("read ffmpeg's output");
    let _ = std::fs::remove_file(&path);
    bytes
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The requests hls.js makes of an LL-HLS origin, on the fuzz target's store.
fn write_origin_requests(out: &Path) {
    let requests = [
        ("multivariant", "/hls/ch/index.m3u8"),
        ("playlist", "/hls/ch/s1/source/index.m3u8"),
        ("blocking", "/hls/ch/s1/source/index.m3u8?_HLS_msn=2&_HLS_part=1"),
        ("blocking-msn", "/hls/ch/s1/source/index.m3u8?_HLS_msn=3"),
        ("delta", "/hls/ch/s1/source/index.m3u8?_HLS_msn=2&_HLS_part=0&_HLS_skip=YES"),
        ("delta-v2", "/hls/ch/s1/source/index.m3u8?_HLS_skip=v2"),
        ("init", "/hls/ch/s1/source/init0.mp4"),
        ("segment", "/hls/ch/s1/source/seg1.m4s"),
        ("part", "/hls/ch/s1/source/part2.3.m4s"),
        ("encoded", "/hls/ch/s1/source/index.m3u8?_HLS_msn=%32&_HLS_part=1&other=x%20y"),
    ];
    for (name, request) in requests {
        write(out, "origin_request", name, request.as_bytes());
    }
}

fn write(out: &Path, target: &str, name: &str, bytes: &[u8]) {
    let dir = out.join(target);
    std::fs::create_dir_all(&dir).expect("create the seed directory");
    std::fs::write(dir.join(name), bytes).expect("write a seed");
}
