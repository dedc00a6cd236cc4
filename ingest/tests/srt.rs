//! The SRT listener against the real `ffmpeg` program as SRT caller: a
//! publish arrives as stream events; refused callers never reach `on_publish`.

mod support;

use std::process::Stdio;
use std::time::Duration;

use ingest::{SrtConfig, SrtServer};
use media::{CodecConfig, TrackKind};
use support::{TestHandler, drain, within};
use tokio::process::Command;

fn caller(url: &str, seconds: u32) -> tokio::process::Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25", "-f", "lavfi", "-i", "sine=sample_rate=48000"])
        .args(["-t", &seconds.to_string(), "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "aac"])
        .args(["-f", "mpegts", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publishes_over_srt() {
    require_ffmpeg!();
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let (handler, mut grants) = TestHandler::new(&["sk_live"], 4096);
    let server = SrtServer::bind("127.0.0.1:0".parse().unwrap(), SrtConfig::default(), handler.clone()).await.unwrap();
    let server = server.spawn();
    let addr = server.local_addr();

    let refused = caller(&format!("srt://{addr}?streamid=publish:sk_nope"), 2);
    let out = within(Duration::from_secs(20), "the refused caller to exit", refused.wait_with_output()).await.unwrap();
    assert!(!out.status.success(), "an unknown key is refused");
    assert!(handler.requests.lock().unwrap().is_empty(), "refused before on_publish");

    let publisher = caller(&format!("srt://{addr}?streamid=#!::r=sk_live,m=publish"), 3);
    let mut grant = within(Duration::from_secs(20), "a grant", grants.recv()).await.expect("granted");
    assert_eq!((grant.app.as_str(), grant.key.as_str()), (ingest::SRT_APP, "sk_live"));
    let received = drain(&mut grant.rx, Duration::from_secs(30)).await;
    let out = publisher.wait_with_output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tracks = &received.tracks[0];
    assert!(matches!(tracks[0].codec, CodecConfig::Avc(_)) && matches!(tracks[1].codec, CodecConfig::Aac(_)));
    let video = received.units.iter().filter(|(_, u)| u.kind == TrackKind::Video).count();
    assert!(video >= 70, "{video} video units of 75");
    // The sink closes just before `on_unpublish` runs.
    support::eventually(Duration::from_secs(5), "on_unpublish", || handler.unpublished() == [grant.publish_id]).await;
    server.shutdown().await;
}
