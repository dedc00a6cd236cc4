//! Thumbnails of live channels, end to end: the real `ffmpeg` program
//! publishes a test pattern; `/hls/{channel}/thumb.jpg` is a JPEG (ffprobe
//! decodes it) of the configured width, refreshed once per interval from
//! keyframes, and it is the picture of its time: its PSNR against the frame
//! the `ffmpeg` program extracts from the recording at the thumbnail's
//! presentation time is above 30 dB (and higher than against a frame a
//! second later). On a ladder it shows the top rung. It goes when the
//! session ends.

use std::path::Path;

use media::ChannelOutput;
use support::{MediaPlaylist, Publish, STEP_TIMEOUT, TestAppliance, eventually, finish, have_ffmpeg, recorded_channel};

/// Thumbnail interval of these tests (s): short, so a few come in one publish.
const INTERVAL: u64 = 2;
const WIDTH: u32 = 320;

async fn appliance() -> TestAppliance {
    TestAppliance::start_with(|config| {
        config.thumbnails.interval_seconds = INTERVAL;
        config.thumbnails.width = WIDTH;
        config.recording.keep_free_percent = 0;
    })
    .await
}

/// Creates a recorded channel and starts publishing `seconds` to it.
fn publish_recorded(app: &TestAppliance, name: &str, output: ChannelOutput, seconds: f64) -> tokio::process::Child {
    let created = app.appliance.store.create_channel(recorded_channel(name, output), true).unwrap();
    Publish { seconds, ..Publish::default() }.start(&app.rtmp_url(&created.stream_key))
}

/// One fetched thumbnail.
struct Fetched {
    jpeg: Vec<u8>,
    pts: i64,
    session: String,
    rendition: String,
    cache_control: String,
}

async fn fetch(app: &TestAppliance, channel: &str) -> Option<Fetched> {
    let response = app.http.get(app.url(&format!("/hls/{channel}/thumb.jpg"))).send().await.ok()?;
    if response.status().as_u16() != 200 {
        return None;
    }
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(String::from);
    assert_eq!(header("content-type").as_deref(), Some("image/jpeg"));
    let pts = header("x-thumbnail-pts")?.parse().ok()?;
    let (session, rendition) = (header("x-thumbnail-session")?, header("x-thumbnail-rendition")?);
    let cache_control = header("cache-control").unwrap_or_default();
    let jpeg = response.bytes().await.ok()?.to_vec();
    Some(Fetched { jpeg, pts, session, rendition, cache_control })
}

/// Waits for a thumbnail of `channel` taken at `after` (90 kHz) or later.
async fn thumbnail_after(app: &TestAppliance, channel: &str, after: i64) -> Fetched {
    eventually(STEP_TIMEOUT, || async { fetch(app, channel).await.filter(|t| t.pts >= after) })
        .await
        .unwrap_or_else(|| panic!("{channel} never had a thumbnail at or after pts {after}"))
}

/// (width, height, codec) of a picture, by ffprobe.
fn picture_size(file: &Path) -> (u32, u32, String) {
    let json = support::ffprobe_json(file, "stream=width,height,codec_name", &[]);
    let stream = &json["streams"][0];
    let size = |k: &str| stream[k].as_u64().unwrap_or(0) as u32;
    (size("width"), size("height"), stream["codec_name"].as_str().unwrap_or("?").to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passthrough_thumbnail_is_the_frame_of_its_time_at_the_configured_width() {
    if !have_ffmpeg() {
        return;
    }
    let app = appliance().await;
    let publisher = publish_recorded(&app, "thumbs", ChannelOutput::Passthrough, 9.0);

    let first = thumbnail_after(&app, "thumbs", 0).await;
    assert_eq!(first.rendition, "source");
    assert_eq!(first.cache_control, format!("public, max-age={INTERVAL}"));
    // Refreshed: a later keyframe, at least one interval of media later.
    let later = thumbnail_after(&app, "thumbs", first.pts + 1).await;
    assert!(later.pts - first.pts >= INTERVAL as i64 * 90_000, "{} then {}", first.pts, later.pts);
    let session = later.session.clone();

    let (ok, stderr) = finish(publisher).await;
    assert!(ok, "publisher failed: {stderr}");
    let gone = eventually(STEP_TIMEOUT, || async { fetch(&app, "thumbs").await.is_none().then_some(()) }).await;
    assert!(gone.is_some(), "the thumbnail goes with the session");
    let (status, _) = app.get_text("/hls/nothing/thumb.jpg").await;
    assert_eq!(status, 404);

    let dir = tempfile::tempdir().unwrap();
    let thumb = dir.path().join("thumb.jpg");
    std::fs::write(&thumb, &later.jpeg).unwrap();
    let (width, height, codec) = picture_size(&thumb);
    assert_eq!((width, height, codec.as_str()), (WIDTH, 180, "mjpeg"), "640x360 scaled to the configured width");

    // The frame at the thumbnail's time, as the `ffmpeg` program extracts it from the recording.
    let recording = eventually(STEP_TIMEOUT, || async {
        let path = format!("/hls/thumbs/recordings/{session}/source/index.m3u8");
        let (status, text) = app.get_text(&path).await;
        (status == 200).then(|| (path, MediaPlaylist::parse(&text)))
    })
    .await
    .expect("the session's catchup");
    let video = dir.path().join("recording.mp4");
    app.download_rendition(&recording.0, &recording.1, &video).await;
    let reference = dir.path().join("reference.png");
    support::frame_at(&video, later.pts, width, height, &reference);
    let psnr = support::psnr(&thumb, &reference);
    assert!(psnr > 30.0, "PSNR {psnr:.2} dB against the recording's frame at pts {}", later.pts);
    // And it is that frame, not just any frame of the pattern: a second later matches less.
    let a_second_later = dir.path().join("later.png");
    support::frame_at(&video, later.pts + 90_000, width, height, &a_second_later);
    let other = support::psnr(&thumb, &a_second_later);
    assert!(psnr > other + 3.0, "PSNR {psnr:.2} dB at its time, {other:.2} dB a second later");
    println!(
        "thumbnail PSNR {psnr:.2} dB at pts {} ({other:.2} dB a second later), {} bytes",
        later.pts,
        later.jpeg.len()
    );
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ladder_thumbnail_shows_the_top_rung() {
    if !have_ffmpeg() {
        return;
    }
    let app = appliance().await;
    let output = support::h264_ladder(&[(240, 400), (144, 150)], true);
    let publisher = publish_recorded(&app, "thumbs-abr", output, 6.0);
    let fetched = thumbnail_after(&app, "thumbs-abr", 0).await;
    assert_eq!(fetched.rendition, "240p", "the top rung");
    let dir = tempfile::tempdir().unwrap();
    let thumb = dir.path().join("thumb.jpg");
    std::fs::write(&thumb, &fetched.jpeg).unwrap();
    assert_eq!(picture_size(&thumb), (WIDTH, 180, "mjpeg".to_string()), "426x240 scaled to the configured width");
    let (ok, stderr) = finish(publisher).await;
    assert!(ok, "publisher failed: {stderr}");
    app.appliance.shutdown().await;
}

/// One cue of a WebVTT scrubbing track: start and end (ms), sprite, and x, y, w, h.
#[derive(Debug)]
struct Cue {
    start: u64,
    end: u64,
    sprite: String,
    xywh: [u32; 4],
}

/// `hh:mm:ss.ttt` in ms.
fn vtt_time(text: &str) -> u64 {
    let (clock, millis) = text.split_once('.').expect("hh:mm:ss.ttt");
    let parts: Vec<u64> = clock.split(':').map(|p| p.parse().expect("a number")).collect();
    assert_eq!(parts.len(), 3, "{text}");
    ((parts[0] * 60 + parts[1]) * 60 + parts[2]) * 1000 + millis.parse::<u64>().expect("ms")
}

/// Parses a WebVTT scrubbing track (cues of `sprite#xywh=x,y,w,h`).
fn parse_vtt(text: &str) -> Vec<Cue> {
    let mut blocks = text.split("\n\n");
    assert_eq!(blocks.next().map(str::trim_end), Some("WEBVTT"), "{text}");
    blocks
        .filter(|b| !b.trim().is_empty())
        .map(|block| {
            let mut lines = block.lines();
            let (start, end) = lines.next().unwrap().split_once(" --> ").expect("a cue's times");
            let (sprite, xywh) = lines.next().expect("a cue's picture").split_once("#xywh=").expect("#xywh=");
            let xywh: Vec<u32> = xywh.split(',').map(|v| v.parse().expect("a number")).collect();
            Cue {
                start: vtt_time(start),
                end: vtt_time(end),
                sprite: sprite.to_string(),
                xywh: xywh.try_into().unwrap(),
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recordings_scrubbing_track_covers_it_with_tiles_inside_their_sprites() {
    if !have_ffmpeg() {
        return;
    }
    let app = appliance().await;
    let publisher = publish_recorded(&app, "scrub", ChannelOutput::Passthrough, 9.0);
    let session = thumbnail_after(&app, "scrub", 0).await.session;
    let base = format!("/hls/scrub/recordings/{session}");
    let (status, _) = app.get_text(&format!("{base}/thumbnails.vtt")).await;
    assert_eq!(status, 404, "no scrubbing track before the recording is finished");
    let (ok, stderr) = finish(publisher).await;
    assert!(ok, "publisher failed: {stderr}");
    let playlist = eventually(STEP_TIMEOUT, || async {
        let (status, text) = app.get_text(&format!("{base}/source/index.m3u8")).await;
        (status == 200).then(|| MediaPlaylist::parse(&text))
    })
    .await
    .expect("the session's catchup");
    let recorded_ms = (playlist.segments.iter().filter_map(|s| s.duration).sum::<f64>() * 1000.0).round() as u64;

    let response = app.http.get(app.url(&format!("{base}/thumbnails.vtt"))).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/vtt"));
    let text = response.text().await.unwrap();
    let cues = parse_vtt(&text);
    // One thumbnail per interval (2 s) of about 9 s.
    assert!((4..=6).contains(&cues.len()), "{text}");
    assert_eq!(cues[0].start, 0, "from the start: {text}");
    for pair in cues.windows(2) {
        assert_eq!(pair[0].end, pair[1].start, "no gap, no overlap: {text}");
    }
    assert!(cues.iter().all(|c| c.start < c.end), "{text}");
    assert_eq!(cues.last().unwrap().end, recorded_ms, "to the recording's end: {text}");

    // ffprobe reads it as WebVTT too.
    let dir = tempfile::tempdir().unwrap();
    let vtt = dir.path().join("thumbnails.vtt");
    std::fs::write(&vtt, &text).unwrap();
    let packets = support::ffprobe_json(&vtt, "packet=pts", &[]);
    assert_eq!(packets["packets"].as_array().unwrap().len(), cues.len(), "ffprobe sees every cue");

    // Every tile lies inside its sprite sheet.
    let mut sheets = std::collections::HashMap::new();
    for cue in &cues {
        if !sheets.contains_key(&cue.sprite) {
            let file = dir.path().join(cue.sprite.replace('/', "-"));
            let response = app.http.get(app.url(&format!("{base}/{}", cue.sprite))).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 200, "{}", cue.sprite);
            assert_eq!(response.headers()["content-type"], "image/jpeg");
            std::fs::write(&file, response.bytes().await.unwrap()).unwrap();
            sheets.insert(cue.sprite.clone(), picture_size(&file));
        }
        let (width, height, codec) = &sheets[&cue.sprite];
        assert_eq!(codec, "mjpeg");
        let [x, y, w, h] = cue.xywh;
        assert_eq!((w, h), (WIDTH, 180), "a tile is a thumbnail: {cue:?}");
        assert!(x + w <= *width && y + h <= *height, "{cue:?} outside its {width}x{height} sheet");
    }
    // The API names the track and the export.
    let resource = app.get_json(&format!("/api/v1/channels/scrub/recordings/{session}")).await;
    assert!(resource["scrubbing_url"].as_str().unwrap().ends_with(&format!("{base}/thumbnails.vtt")), "{resource}");
    assert!(resource["export_url"].as_str().unwrap().ends_with(&format!("{base}/export.mp4")), "{resource}");
    let (status, _) = app.get_text(&format!("{base}/thumbnails/tiles.log")).await;
    assert_eq!(status, 404, "only the sheets are served");
    app.appliance.shutdown().await;
}
