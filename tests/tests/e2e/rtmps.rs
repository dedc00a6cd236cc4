//! RTMPS ingest: the real `ffmpeg` program publishes `rtmps://` to the
//! appliance's own (self-signed) certificate and the channel goes live as
//! over RTMP; a wrong key is refused the same way, and a client that speaks
//! plain RTMP to the RTMPS port (or nothing at all) is dropped without
//! disturbing the live publish.

use std::time::Duration;

use media::LatencyMode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use support::{Publish, TestAppliance, finish, have_ffmpeg};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publishes_over_rtmps_and_wrong_keys_and_plain_rtmp_are_refused() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start_with(|config| config.tls.self_signed = true).await;
    let rtmps = app.appliance.rtmps_addr.expect("RTMPS on with the self-signed certificate");
    let url = |key: &str| format!("rtmps://{rtmps}/live/{key}");
    let channel = app.add_channel("tls-in", LatencyMode::UltraLow);
    let live = Publish { seconds: 12.0, ..Publish::default() }.start(&url(&channel.stream_key));
    let path = app.media_playlist_path("tls-in", None).await;
    let before = app.playlist_until(&path, |p| p.segments.iter().filter(|s| s.duration.is_some()).count() >= 2).await;
    assert!(!before.ended);

    let wrong = Publish { seconds: 2.0, ..Publish::default() }.start(&url("sk_not_a_real_key"));
    let (ok, stderr) = finish(wrong).await;
    assert!(!ok, "a publish with an unknown key fails over RTMPS too");
    assert!(!stderr.is_empty());

    // A plain RTMP handshake (C0 = 3, then C1) on the TLS port: not TLS, dropped.
    let mut plain = tokio::net::TcpStream::connect(rtmps).await.unwrap();
    let mut c0c1 = vec![3u8];
    c0c1.extend(std::iter::repeat_n(7u8, 1536));
    plain.write_all(&c0c1).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(10), plain.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))) || matches!(read, Ok(Ok(n)) if buf[0] == 0x15 && n > 0),
        "plain RTMP on the RTMPS port gets a closed connection or a TLS alert, never an RTMP answer: {read:?} {:?}",
        &buf[..4]
    );

    // The live publish went on in the same session, and ends cleanly.
    let after = app
        .playlist_until(&path, |p| {
            p.media_sequence + p.segments.len() as u64 > before.media_sequence + before.segments.len() as u64 + 1
        })
        .await;
    assert!(!after.ended);
    let (ok, stderr) = finish(live).await;
    assert!(ok, "the RTMPS publisher failed: {stderr}");
    let ended = app.playlist_until(&path, |p| p.ended).await;
    assert!(ended.segments.iter().filter(|s| s.duration.is_some()).count() >= 8, "about 12 s of 1 s segments");
    app.appliance.shutdown().await;
}
