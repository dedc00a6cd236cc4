//! End-to-end tests of the RTMP server with the real `ffmpeg` program as the
//! publisher and a raw client for hostile input. Every wait has a deadline.

mod support;

use std::sync::Arc;
use std::time::Duration;

use ingest::IngestConfig;
use media::{AudioCodec, CodecConfig, TrackKind};
use scuffle_amf0::Amf0Value;
use scuffle_rtmp::messages::MessageType;
use support::{Ffmpeg, Flow, Harness, RawClient, TempDir, drain, eventually, run_tool, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_audio_and_video() {
    require_ffmpeg!();
    let mut h = Harness::start(&["key-av-1234"], IngestConfig::default()).await;
    let ffmpeg = Ffmpeg::publish_test_pattern(&h.url("key-av-1234?token=abc"), 2, false, &[]);
    let mut grant = h.next_grant(10 * SECOND).await;
    assert_eq!((grant.app.as_str(), grant.key.as_str()), ("live", "key-av-1234"), "the ?query is not part of the key");
    let received = drain(&mut grant.rx, 12 * SECOND).await;
    let (status, stderr) = ffmpeg.finish(5 * SECOND).await;
    assert!(status.success(), "{stderr}");

    assert_eq!(received.tracks.len(), 1, "announced once");
    let tracks = &received.tracks[0];
    assert_eq!(tracks.iter().map(|t| t.kind).collect::<Vec<_>>(), [TrackKind::Video, TrackKind::Audio]);
    assert_eq!(tracks[0].resolution(), Some((320, 240)));
    assert_eq!(tracks[0].frame_rate, Some((30, 1)), "from onMetaData");
    // FFmpeg declares bits/1024 as "kbps": 500k becomes 488.28125 -> 488 281 bit/s.
    assert_eq!(tracks[0].bitrate, Some(488_281), "from onMetaData");
    assert!(matches!(&tracks[1].codec, CodecConfig::Aac(aac) if aac.sample_rate == 48_000));
    assert_eq!(tracks[1].timebase.0, 48_000);
    assert_eq!(tracks[1].bitrate, Some(93_750), "96k declared as 93.75");

    let video = received.of_track(0);
    assert_eq!(video.len(), 60, "2 s at 30 fps");
    let keyframes: Vec<usize> = video.iter().enumerate().filter(|(_, u)| u.keyframe).map(|(i, _)| i).collect();
    assert_eq!(keyframes, [0, 30]);
    assert!(video.iter().all(|u| u.pts == u.dts), "zerolatency has no B-frames");
    assert!(video.windows(2).all(|w| w[1].dts > w[0].dts));
    assert!(
        video
            .iter()
            .all(|u| u.data.len() > 4
                && u32::from_be_bytes(u.data[..4].try_into().unwrap()) as usize <= u.data.len() - 4)
    );

    let audio = received.of_track(1);
    assert!((90..=96).contains(&audio.len()), "{} AAC frames for 2 s at 48 kHz", audio.len());
    assert!(audio.windows(2).all(|w| w[1].dts - w[0].dts == 1024), "exactly one frame apart");
    assert!(audio[0].dts.abs() < 48_000 / 10 && video[0].dts < 9_000, "both start near 0");
    let arrivals: Vec<_> = received.units.iter().map(|(_, u)| u.arrival.instant).collect();
    assert!(arrivals.windows(2).all(|w| w[1] >= w[0]));

    let metadata = h.handler.metadata.lock().unwrap().clone();
    assert_eq!(metadata.len(), 1);
    assert_eq!(metadata[0].0, grant.publish_id);
    assert!(metadata[0].1.encoder.as_deref().is_some_and(|e| e.starts_with("Lavf")), "{:?}", metadata[0].1);
    eventually(2 * SECOND, "on_unpublish", || h.handler.unpublished() == [grant.publish_id]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_only_and_audio_only_publishers() {
    require_ffmpeg!();
    let mut h = Harness::start(&["video-only", "audio-only"], IngestConfig::default()).await;
    let video = Ffmpeg::publish_test_pattern(&h.url("video-only"), 2, false, &["-an"]);
    let audio = Ffmpeg::publish_test_pattern(&h.url("audio-only"), 2, false, &["-vn"]);
    for _ in 0..2 {
        let mut grant = h.next_grant(10 * SECOND).await;
        let received = drain(&mut grant.rx, 12 * SECOND).await;
        let kinds: Vec<TrackKind> = received.tracks.last().expect("announced").iter().map(|t| t.kind).collect();
        match grant.key.as_str() {
            "video-only" => {
                assert_eq!(kinds, [TrackKind::Video]);
                assert_eq!(received.of_track(0).len(), 60);
            }
            _ => {
                assert_eq!(kinds, [TrackKind::Audio]);
                assert!(received.of_track(0).len() >= 90);
            }
        }
        assert_eq!(received.tracks.len(), 1);
        assert!(received.units.iter().all(|(_, u)| u.track == 0));
    }
    for ffmpeg in [video, audio] {
        let (status, stderr) = ffmpeg.finish(5 * SECOND).await;
        assert!(status.success(), "{stderr}");
    }
    eventually(2 * SECOND, "both unpublished", || h.handler.unpublished().len() == 2).await;
}

/// MP3 and G.711 from the real `ffmpeg` are carried as their own codecs (for
/// the appliance to transcode), announced with the video, counted in samples.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mp3_and_g711_audio_are_carried() {
    require_ffmpeg!();
    let mut h = Harness::start(&["mp3", "alaw"], IngestConfig::default()).await;
    let mp3 = Ffmpeg::publish_test_pattern(&h.url("mp3"), 2, false, &["-c:a", "libmp3lame", "-ar", "44100"]);
    let alaw = Ffmpeg::publish_test_pattern(&h.url("alaw"), 2, false, &["-c:a", "pcm_alaw", "-ar", "8000", "-ac", "1"]);
    for _ in 0..2 {
        let mut grant = h.next_grant(10 * SECOND).await;
        let received = drain(&mut grant.rx, 12 * SECOND).await;
        assert_eq!(received.tracks.len(), 1, "{}: announced once, with the video", grant.key);
        let tracks = &received.tracks[0];
        assert_eq!(tracks.iter().map(|t| t.kind).collect::<Vec<_>>(), [TrackKind::Video, TrackKind::Audio]);
        let CodecConfig::OtherAudio(config) = &tracks[1].codec else { panic!("{:?}", tracks[1].codec) };
        let audio = received.of_track(1);
        assert!(audio.windows(2).all(|w| w[1].dts > w[0].dts));
        let seconds = (audio.last().unwrap().dts - audio[0].dts) as f64 / tracks[1].timebase.0 as f64;
        assert!((1.8..=2.1).contains(&seconds), "{}: {seconds} s of audio", grant.key);
        match grant.key.as_str() {
            "mp3" => {
                assert_eq!((config.codec, config.sample_rate, config.channels), (AudioCodec::Mp3, 44_100, 1));
                assert!(audio.windows(2).all(|w| w[1].dts - w[0].dts == 1152), "one MP3 frame apart");
            }
            _ => {
                assert_eq!((config.codec, config.sample_rate, config.channels), (AudioCodec::G711ALaw, 8_000, 1));
                assert!(audio.windows(2).all(|w| w[1].dts - w[0].dts == w[0].data.len() as i64), "a sample a byte");
            }
        }
        assert_eq!(tracks[1].timebase.0, config.sample_rate);
    }
    for ffmpeg in [mp3, alaw] {
        let (status, stderr) = ffmpeg.finish(5 * SECOND).await;
        assert!(status.success(), "{stderr}");
    }
}

/// x264 with B-frames: what ffprobe reads from the file is what the sink gets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_frames_keep_their_timestamps() {
    require_ffmpeg!();
    let dir = TempDir::new("bframes");
    let file = dir.0.join("bframes.flv");
    let file = file.to_str().unwrap();
    run_tool(
        "ffmpeg",
        &[
            "-hide_banner",
            "-nostdin",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=25",
            "-t",
            "3",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-bf",
            "2",
            "-g",
            "25",
            "-pix_fmt",
            "yuv420p",
            "-an",
            "-f",
            "flv",
            file,
        ],
    )
    .await;
    let probe = run_tool(
        "ffprobe",
        &["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts,dts", "-of", "csv=p=0", file],
    )
    .await;
    let expected: Vec<(i64, i64)> = probe
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (pts, dts) = l.trim().split_once(',').expect("pts,dts");
            (pts.parse().unwrap(), dts.parse().unwrap())
        })
        .collect();
    assert_eq!(expected.len(), 75);
    assert!(expected.iter().any(|(pts, dts)| pts != dts), "the file has B-frames: {expected:?}");

    let mut h = Harness::start(&["bframes"], IngestConfig::default()).await;
    let ffmpeg = Ffmpeg::spawn(&["-i", file, "-c", "copy", "-f", "flv", &h.url("bframes")]);
    let mut grant = h.next_grant(10 * SECOND).await;
    let received = drain(&mut grant.rx, 10 * SECOND).await;
    let (status, stderr) = ffmpeg.finish(5 * SECOND).await;
    assert!(status.success(), "{stderr}");

    let got: Vec<(i64, i64)> = received.of_track(0).iter().map(|u| (u.pts, u.dts)).collect();
    assert!(
        got.iter().all(|(pts, dts)| pts % 90 == 0 && dts % 90 == 0),
        "whole milliseconds in 90 kHz: {got:?}\n{expected:?}"
    );
    let got: Vec<(i64, i64)> = got.iter().map(|(pts, dts)| (pts / 90, dts / 90)).collect();
    let rebase = |v: &[(i64, i64)]| -> Vec<(i64, i64)> { v.iter().map(|(p, d)| (p - v[0].1, d - v[0].1)).collect() };
    assert_eq!(rebase(&got), rebase(&expected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_publisher_is_refused_and_the_live_one_is_untouched() {
    require_ffmpeg!();
    let mut h = Harness::start(&["shared-key"], IngestConfig::default()).await;
    let first = Ffmpeg::publish_test_pattern(&h.url("shared-key"), 6, true, &[]);
    let grant = h.next_grant(10 * SECOND).await;
    let flow = Flow::watch(grant.rx);
    eventually(5 * SECOND, "units from the first publisher", || flow.units() > 30).await;
    flow.reset_gap();

    let second = Ffmpeg::publish_test_pattern(&h.url("shared-key"), 1, false, &[]);
    let (status, stderr) = second.finish(10 * SECOND).await;
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("Server error: channel test is already live"), "{stderr}");
    for line in stderr.lines().filter(|l| l.contains("error") || l.contains("Error")) {
        println!("ffmpeg said: {line}");
    }

    let at_refusal = flow.units();
    eventually(3 * SECOND, "the first publisher to keep delivering", || flow.units() > at_refusal + 30).await;
    assert!(flow.max_gap() < Duration::from_millis(500), "gap {:?}", flow.max_gap());
    assert!(h.handler.unpublished().is_empty(), "the live publish was ended");
    assert!(h.grants.try_recv().is_err(), "the second publisher got a grant");
    let (status, stderr) = first.finish(10 * SECOND).await;
    assert!(status.success(), "{stderr}");
    eventually(2 * SECOND, "the first publish to end once", || h.handler.unpublished() == [grant.publish_id]).await;
}

/// Each hostile client is closed by the server, and a live publish on
/// another key keeps delivering without a gap meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_clients_do_not_disturb_a_live_publish() {
    require_ffmpeg!();
    let config = IngestConfig { publish_deadline: 3 * SECOND, ..IngestConfig::default() };
    let mut h = Harness::start(&["live-key"], config).await;
    let live = Ffmpeg::publish_test_pattern(&h.url("live-key"), 9, true, &[]);
    let grant = h.next_grant(10 * SECOND).await;
    let flow = Flow::watch(grant.rx);
    eventually(5 * SECOND, "units flowing", || flow.units() > 30).await;
    flow.reset_gap();
    let before = flow.units();

    let addr = h.addr();
    let limit = 5 * SECOND;
    let mut abusers = tokio::task::JoinSet::new();
    abusers.spawn(async move {
        let mut c = RawClient::connect(addr).await;
        let mut garbage: Vec<u8> = (0..64 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        garbage[0] = 3; // past the version check, into the handshake and the chunk reader
        let _ = c.send_raw(&garbage).await;
        ("byte garbage", c.closed_within(limit).await)
    });
    abusers.spawn(async move {
        let mut c = RawClient::connect(addr).await;
        let _ = c.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        ("an HTTP request", c.closed_within(limit).await)
    });
    abusers.spawn(async move {
        let mut c = RawClient::connect(addr).await;
        c.send_raw(&RawClient::c0c1()[..700]).await.unwrap();
        ("half a handshake, then silence", c.closed_within(limit).await)
    });
    abusers.spawn(async move {
        let c = RawClient::connect(addr).await;
        let (mut read, mut write) = c.stream.into_split();
        let trickle = tokio::spawn(async move {
            for byte in RawClient::c0c1() {
                if write.write_all(&[byte]).await.is_err() {
                    break;
                }
                // The attack under test: one byte every 200 ms.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        let start = std::time::Instant::now();
        let mut buf = [0u8; 4096];
        let closed = tokio::time::timeout(limit, async { while let Ok(1..) = read.read(&mut buf).await {} }).await;
        trickle.abort();
        ("slowloris handshake", closed.ok().map(|()| start.elapsed()))
    });
    abusers.spawn(async move {
        let mut c = RawClient::connect(addr).await;
        c.handshake().await;
        // Type 0 header on chunk stream 3: a 16 MB video message.
        let _ = c.send_raw(&[0x03, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0, 0xaa]).await;
        ("a chunk claiming a huge message", c.closed_within(limit).await)
    });
    abusers.spawn(async move {
        let mut c = RawClient::connect(addr).await;
        c.handshake().await;
        // 6 MB is within the limit of a publisher, not of a client that has not published.
        let _ = c.send_raw(&[0x03, 0, 0, 0, 0x60, 0, 0, 9, 1, 0, 0, 0]).await;
        let _ = c.send_raw(&[0u8; 128]).await;
        ("a 6 MB message before publish", c.closed_within(limit).await)
    });
    abusers.spawn(async move {
        let mut c = RawClient::connect(addr).await;
        c.handshake().await;
        let noise: Vec<u8> = (0..20_000u32).map(|i| (i.wrapping_mul(40_503) >> 7) as u8).collect();
        let _ = c.send_raw(&noise).await;
        ("random bytes after the handshake", c.closed_within(limit).await)
    });
    abusers.spawn(async move {
        let mut c = RawClient::connect(addr).await;
        c.handshake().await;
        // Without `amf0::check_amf0` this one command aborts the whole process.
        let mut bomb = vec![0x02, 0, 3, b'f', b'o', b'o', 0x00];
        bomb.extend_from_slice(&1.0f64.to_be_bytes());
        bomb.extend_from_slice(&[0x08, 0xff, 0xff, 0xff, 0xff]);
        let _ = c.message(MessageType::CommandAMF0, 0, 0, bomb).await;
        ("an AMF0 allocation bomb", c.closed_within(limit).await)
    });
    abusers.spawn(async move {
        let mut c = RawClient::connect(addr).await;
        c.handshake().await;
        let mut deep = vec![0x02, 0, 3, b'f', b'o', b'o', 0x00];
        deep.extend_from_slice(&1.0f64.to_be_bytes());
        for _ in 0..100_000 {
            deep.extend_from_slice(&[0x0a, 0, 0, 0, 1]);
        }
        let _ = c.message(MessageType::CommandAMF0, 0, 0, deep).await;
        ("deeply nested AMF0", c.closed_within(limit).await)
    });
    abusers.spawn(async move {
        let mut c = RawClient::connect(addr).await;
        c.handshake().await;
        let _ = c
            .command(
                0,
                &[
                    Amf0Value::String("play".into()),
                    Amf0Value::Number(4.0),
                    Amf0Value::Null,
                    Amf0Value::String("live-key".into()),
                ],
            )
            .await;
        ("a player", c.closed_within(limit).await)
    });
    let results = within(3 * limit, "the hostile clients", async {
        let mut results = Vec::new();
        while let Some(joined) = abusers.join_next().await {
            results.push(joined.expect("abuser task"));
        }
        results
    })
    .await;
    for (what, closed) in &results {
        println!("{what}: closed after {closed:?}");
        assert!(closed.is_some(), "{what}: the server kept the connection open");
    }
    let slowloris = results.iter().find(|(what, _)| what.starts_with("slowloris")).unwrap().1.unwrap();
    assert!(slowloris >= 2 * SECOND && slowloris < 4 * SECOND, "slowloris closed after {slowloris:?}");

    assert!(flow.units() > before + 60, "the live publish stalled: {} -> {}", before, flow.units());
    assert!(flow.max_gap() < Duration::from_millis(500), "gap {:?}", flow.max_gap());
    assert!(h.handler.unpublished().is_empty());
    assert!(!flow.closed.load(std::sync::atomic::Ordering::Relaxed));
    assert_eq!(h.handler.requests.lock().unwrap().len(), 1, "no hostile client reached publish");
    live.kill().await;
    eventually(5 * SECOND, "the live publish to end once", || h.handler.unpublished() == [grant.publish_id]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_and_publish_deadline() {
    let config = IngestConfig {
        max_connections: 2,
        max_unauthenticated: 2,
        max_unauthenticated_per_address: 2,
        publish_deadline: Duration::from_millis(1500),
        ..IngestConfig::default()
    };
    let h = Harness::start(&[], config).await;
    let mut silent = RawClient::connect(h.addr()).await;
    let trickler = RawClient::connect(h.addr()).await;
    eventually(2 * SECOND, "two connections served", || h.server.connections() == 2).await;
    let mut over = RawClient::connect(h.addr()).await;
    let closed = over.closed_within(SECOND).await;
    assert!(closed.is_some_and(|d| d < Duration::from_millis(500)), "over the limit: {closed:?}");

    let (mut read, mut write) = trickler.stream.into_split();
    let trickle = tokio::spawn(async move {
        for byte in RawClient::c0c1() {
            if write.write_all(&[byte]).await.is_err() {
                break;
            }
            // The attack under test: one byte every 100 ms.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let start = std::time::Instant::now();
    let mut buf = [0u8; 64];
    within(4 * SECOND, "the deadline to close the trickler", async {
        while let Ok(1..) = read.read(&mut buf).await {}
    })
    .await;
    let trickled = start.elapsed();
    trickle.abort();
    assert!(trickled >= Duration::from_millis(1200) && trickled < 3 * SECOND, "closed after {trickled:?}");
    assert!(silent.closed_within(2 * SECOND).await.is_some());
    eventually(2 * SECOND, "slots freed", || h.server.connections() == 0).await;
    let _again = RawClient::connect(h.addr()).await;
    eventually(2 * SECOND, "a new connection is served", || h.server.connections() == 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_publisher_times_out() {
    let config = IngestConfig { idle_timeout: Duration::from_millis(1500), ..IngestConfig::default() };
    let mut h = Harness::start(&["idle-key"], config).await;
    let mut client = RawClient::connect(h.addr()).await;
    client.handshake().await;
    client.start_publish("live", "idle-key").await.unwrap();
    let mut grant = h.next_grant(3 * SECOND).await;
    let start = std::time::Instant::now();
    // Keep the socket busy with acknowledgements (so scuffle's read timeout
    // never fires) but send no media.
    let (mut read, mut write) = client.stream.into_split();
    let keepalive = tokio::spawn(async move {
        loop {
            // Type 0 chunk on stream 2: Acknowledgement, 4 bytes.
            let ack = [0x02, 0, 0, 0, 0, 0, 4, 3, 0, 0, 0, 0, 0, 0, 0, 1];
            if write.write_all(&ack).await.is_err() {
                break;
            }
            // The client under test acknowledges every 300 ms and sends nothing else.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let received = drain(&mut grant.rx, 5 * SECOND).await;
    assert!(received.units.is_empty());
    let idle = start.elapsed();
    assert!(idle >= Duration::from_millis(1300) && idle < 3 * SECOND, "ended after {idle:?}");
    let mut buf = [0u8; 4096];
    within(2 * SECOND, "the server to close", async { while let Ok(1..) = read.read(&mut buf).await {} }).await;
    keepalive.abort();
    eventually(SECOND, "on_unpublish", || h.handler.unpublished() == [grant.publish_id]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gone_consumer_ends_the_publish() {
    require_ffmpeg!();
    let mut h = Harness::start(&["gone-key"], IngestConfig::default()).await;
    let ffmpeg = Ffmpeg::publish_test_pattern(&h.url("gone-key"), 5, true, &[]);
    let grant = h.next_grant(10 * SECOND).await;
    drop(grant.rx);
    let (status, _stderr) = ffmpeg.finish(5 * SECOND).await;
    assert!(!status.success(), "ffmpeg should notice the server closing");
    eventually(SECOND, "on_unpublish", || h.handler.unpublished() == [grant.publish_id]).await;
    eventually(SECOND, "the connection to close", || h.server.connections() == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_every_publish() {
    require_ffmpeg!();
    let mut h = Harness::start(&["stay-key"], IngestConfig::default()).await;
    let ffmpeg = Ffmpeg::publish_test_pattern(&h.url("stay-key"), 10, true, &[]);
    let grant = h.next_grant(10 * SECOND).await;
    let flow = Flow::watch(grant.rx);
    eventually(5 * SECOND, "units flowing", || flow.units() > 10).await;
    let handler = Arc::clone(&h.handler);
    within(6 * SECOND, "shutdown", h.server.shutdown()).await;
    assert_eq!(handler.unpublished(), [grant.publish_id]);
    eventually(SECOND, "the sink to close", || flow.closed.load(std::sync::atomic::Ordering::Relaxed)).await;
    let (status, _) = ffmpeg.finish(5 * SECOND).await;
    assert!(!status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_are_answered() {
    let h = Harness::start(&[], IngestConfig::default()).await;
    let mut client = RawClient::connect(h.addr()).await;
    client.handshake().await;
    // User control event 6 (ping request) with timestamp 0x01020304.
    client.message(MessageType::UserControlEvent, 0, 0, vec![0, 6, 1, 2, 3, 4]).await.unwrap();
    let mut seen = Vec::new();
    within(2 * SECOND, "a ping response", async {
        let mut buf = [0u8; 4096];
        while !seen.windows(6).any(|w| w == [0, 7, 1, 2, 3, 4]) {
            let n = client.stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before answering");
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await;
}

/// An Enhanced RTMP publisher (FourCC `avc1`) next to a track we do not carry (`hvc1`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enhanced_rtmp_avc_is_carried() {
    use media::test_vectors::AVCC_640X360 as AVCC;
    let mut h = Harness::start(&["enhanced"], IngestConfig::default()).await;
    let mut client = RawClient::connect(h.addr()).await;
    client.handshake().await;
    client.start_publish("live", "enhanced").await.unwrap();
    let mut grant = h.next_grant(3 * SECOND).await;
    client.message(MessageType::Video, 1, 0, [&[0x90][..], b"hvc1", &[1, 2, 3]].concat()).await.unwrap();
    client.message(MessageType::Video, 1, 0, [&[0x90][..], b"avc1", &AVCC[..]].concat()).await.unwrap();
    for i in 0..30u32 {
        // Key frame every 10th, CodedFrames with a composition offset of 40 ms, else CodedFramesX.
        let tag = if i % 10 == 0 {
            [&[0x91][..], b"avc1", &[0, 0, 40], &[0, 0, 0, 2, 0x65, 0x88]].concat()
        } else {
            [&[0xa3][..], b"avc1", &[0, 0, 0, 2, 0x41, 0x9a]].concat()
        };
        client.message(MessageType::Video, 1, 1000 + i * 40, tag).await.unwrap();
    }
    // Close cleanly: a close with our replies unread would reset the
    // connection, and a reset may discard what the server has not read yet.
    client.stream.shutdown().await.unwrap();
    assert!(client.closed_within(3 * SECOND).await.is_some());
    let received = drain(&mut grant.rx, 5 * SECOND).await;
    assert_eq!(received.tracks.len(), 1);
    assert_eq!(received.tracks[0][0].resolution(), Some((640, 360)));
    let units = received.of_track(0);
    assert_eq!(units.len(), 30);
    assert_eq!((units[0].dts, units[0].pts, units[0].keyframe), (0, 40 * 90, true));
    assert_eq!((units[1].dts, units[1].pts, units[1].keyframe), (40 * 90, 40 * 90, false));
    assert_eq!(&units[1].data[..], [0, 0, 0, 2, 0x41, 0x9a]);
    eventually(SECOND, "on_unpublish", || h.handler.unpublished() == [grant.publish_id]).await;
}

/// Until a publish is granted only small commands are taken, and `connect`
/// must come within its own (shorter) deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_publish_only_small_commands_in_time() {
    let config = IngestConfig { connect_deadline: SECOND, publish_deadline: 30 * SECOND, ..IngestConfig::default() };
    let mut h = Harness::start(&["in-time"], config).await;
    let mut connected = RawClient::connect(h.addr()).await;
    connected.handshake().await;
    connected.send_connect("live").await.unwrap();
    let mut silent = RawClient::connect(h.addr()).await;
    silent.handshake().await;

    let mut big = RawClient::connect(h.addr()).await;
    big.handshake().await;
    // A Type 0 header on chunk stream 3 for an 8193-byte AMF0 command.
    big.send_raw(&[0x03, 0, 0, 0, 0, 0x20, 0x01, 20, 0, 0, 0, 0]).await.unwrap();
    assert!(big.closed_within(5 * SECOND).await.is_some(), "a 8193-byte message before publish");
    let mut media = RawClient::connect(h.addr()).await;
    media.handshake().await;
    media.message(MessageType::Video, 1, 0, vec![0x17, 0, 0, 0, 0, 1, 0x64]).await.unwrap();
    assert!(media.closed_within(5 * SECOND).await.is_some(), "video before publish");

    assert!(silent.closed_within(10 * SECOND).await.is_some(), "no connect: closed by the connect deadline");
    assert!(connected.closed_within(Duration::from_millis(300)).await.is_none(), "connected in time: still open");
    connected.start_publish("live", "in-time").await.unwrap();
    let grant = h.next_grant(5 * SECOND).await;
    assert_eq!(grant.key, "in-time");
    assert!(h.handler.requests.lock().unwrap().len() == 1, "only the one publish reached the handler");
}
