//! MP4 export of a recording, end to end: the real `ffmpeg` program
//! publishes to a recorded channel (a keyframe a second); the finished
//! recording's `export.mp4` of a range is a standard MP4 with its index at
//! the front (`moov` before `mdat`), ffprobe and a full ffmpeg decode find
//! no error, and it lasts the range asked for within one GOP, starting at
//! the keyframe at or before the start; ranges of it can be fetched; the
//! whole recording exports too.

use std::path::Path;

use media::ChannelOutput;
use support::{MediaPlaylist, Publish, STEP_TIMEOUT, TestAppliance, eventually, finish, have_ffmpeg, probe};

/// The publisher's GOP: a keyframe a second.
const GOP_SECONDS: f64 = 1.0;

/// The top-level boxes of an MP4 file, in order.
fn top_level_boxes(file: &Path) -> Vec<String> {
    let bytes = std::fs::read(file).unwrap();
    let mut boxes = Vec::new();
    let mut at = 0usize;
    while at + 8 <= bytes.len() {
        let mut size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as u64;
        let kind = String::from_utf8_lossy(&bytes[at + 4..at + 8]).into_owned();
        if size == 1 {
            size = u64::from_be_bytes(bytes[at + 8..at + 16].try_into().unwrap());
        }
        assert!(size >= 8, "a box of {size} bytes at {at}");
        boxes.push(kind);
        at += size as usize;
    }
    assert_eq!(at, bytes.len(), "the boxes fill the file");
    boxes
}

fn duration_of(file: &Path) -> f64 {
    let json = support::ffprobe_json(file, "format=duration", &[]);
    json["format"]["duration"].as_str().unwrap().parse().unwrap()
}

async fn download(app: &TestAppliance, path: &str, file: &Path) -> reqwest::header::HeaderMap {
    let response = app.http.get(app.url(path)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "GET {path}");
    let headers = response.headers().clone();
    std::fs::write(file, response.bytes().await.unwrap()).unwrap();
    headers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_of_a_recording_exports_as_a_faststart_mp4_of_that_length() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start_with(|config| config.recording.keep_free_percent = 0).await;
    let new = support::recorded_channel("export", ChannelOutput::Passthrough);
    let key = app.appliance.store.create_channel(new, true).unwrap().stream_key;
    let (ok, stderr) = finish(Publish { seconds: 10.0, ..Publish::default() }.start(&app.rtmp_url(&key))).await;
    assert!(ok, "publisher failed: {stderr}");
    let session = eventually(STEP_TIMEOUT, || async {
        let list = app.appliance.recordings.catalog().list("export").ok()?;
        list.first().filter(|r| r.meta.state.is_finished()).map(|r| r.meta.session.clone())
    })
    .await
    .expect("a finished recording");
    let base = format!("/hls/export/recordings/{session}");
    let (_, text) = app.get_text(&format!("{base}/source/index.m3u8")).await;
    let recorded: f64 = MediaPlaylist::parse(&text).segments.iter().filter_map(|s| s.duration).sum();

    let dir = tempfile::tempdir().unwrap();
    let (start, duration) = (3.0, 4.0);
    let ranged = dir.path().join("range.mp4");
    let headers = download(&app, &format!("{base}/export.mp4?start={start}&duration={duration}"), &ranged).await;
    assert_eq!(headers["content-type"], "video/mp4");
    let boxes = top_level_boxes(&ranged);
    let (moov, mdat) = (boxes.iter().position(|b| b == "moov"), boxes.iter().position(|b| b == "mdat"));
    assert!(moov.is_some() && moov < mdat, "faststart: moov before mdat: {boxes:?}");
    assert!(!boxes.iter().any(|b| b == "moof"), "a standard MP4, not fragmented: {boxes:?}");
    let probed = probe(&ranged);
    assert_eq!(probed.errors, "", "the export decodes without error");
    assert_eq!((probed.width, probed.height), (640, 360));
    assert!(probed.audio_frames > 0, "with its audio");
    let exported = duration_of(&ranged);
    assert!((exported - duration).abs() <= GOP_SECONDS + 0.1, "{exported} s exported for {duration} s asked");
    let cut: f64 = headers["x-export-start"].to_str().unwrap().parse().unwrap();
    assert!(cut <= start && cut > start - GOP_SECONDS - 0.1, "starts at the keyframe at or before {start}: {cut}");
    println!(
        "export of {start}+{duration} s: from {cut} s, {exported} s long, {} bytes",
        std::fs::metadata(&ranged).unwrap().len()
    );

    // Served from a file: ranges work.
    let part = app.http.get(app.url(&format!("{base}/export.mp4?start=3&duration=4"))).header("Range", "bytes=0-99");
    let part = part.send().await.unwrap();
    assert_eq!(part.status().as_u16(), 206);
    assert_eq!(part.bytes().await.unwrap(), std::fs::read(&ranged).unwrap()[..100]);

    // The whole recording.
    let whole = dir.path().join("whole.mp4");
    download(&app, &format!("{base}/export.mp4"), &whole).await;
    let probed = probe(&whole);
    assert_eq!(probed.errors, "");
    let all = duration_of(&whole);
    assert!((all - recorded).abs() <= 0.2, "the whole recording: {all} s of {recorded} s");

    for bad in ["start=-1", "duration=0", "duration=x", "bogus=1"] {
        let (status, _) = app.get_text(&format!("{base}/export.mp4?{bad}")).await;
        assert_eq!(status, 400, "{bad}");
    }
    let (status, _) = app.get_text("/hls/export/recordings/nothing/export.mp4").await;
    assert_eq!(status, 404);
    // Nothing of the exports is left behind.
    let exports = app.data.path().join("recordings/.exports");
    let left = std::fs::read_dir(&exports).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "export files removed");
    app.appliance.shutdown().await;
}
