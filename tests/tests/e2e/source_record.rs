//! The source record of a ladder channel, end to end: the real `ffmpeg`
//! program publishes 480p to a channel with one 240p rung whose ladder does
//! not offer the source; recording asks for the source, so the session
//! packages it as a hidden rendition: in neither live multivariant playlist,
//! recorded beside the rung with the source's size and codec (ffprobe on
//! its MP4 export), and `renditions: "source"` records it alone.

use std::time::Duration;

use appliance::recordings::Recording;
use appliance::state::{Channel, NewChannel, RecordRenditions, RecordingSettings};
use media::{ChannelOutput, EncoderPolicy, Ladder, LatencyMode, RenditionSpec};
use support::{Publish, STEP_TIMEOUT, TestAppliance, eventually, finish, have_ffmpeg, probe};

fn ladder_channel(name: &str, recording: RecordingSettings) -> NewChannel {
    let rung = RenditionSpec::h264(240, 300);
    NewChannel {
        name: name.into(),
        latency_mode: LatencyMode::Low,
        output: ChannelOutput::Ladder { ladder: Ladder { rungs: vec![rung], include_source: false } },
        encoder_policy: EncoderPolicy::Software,
        recording,
        ..NewChannel::default()
    }
}

/// Publishes 480p for `seconds`; checks, while it is live, that no multivariant playlist lists the
/// source (`dvr`: whether the rung is recorded, so that there is a DVR playlist); returns the
/// finished recording.
async fn publish_and_record(app: &TestAppliance, channel: &Channel, seconds: f64, dvr: bool) -> Recording {
    let name = channel.name.as_str();
    let publisher =
        Publish { seconds, size: "854x480", ..Publish::default() }.start(&app.rtmp_url(&channel.stream_key));
    let playlists: &[&str] = if dvr { &["index.m3u8", "dvr.m3u8"] } else { &["index.m3u8"] };
    for playlist in playlists {
        let path = format!("/hls/{name}/{playlist}");
        let text = eventually(STEP_TIMEOUT, || async {
            let (status, text) = app.get_text(&path).await;
            (status == 200).then_some(text)
        })
        .await
        .unwrap_or_else(|| panic!("{path} never appeared"));
        assert!(text.contains("/240p/") && !text.contains("/source/"), "the source is hidden: {text}");
    }
    if !dvr {
        let (status, _) = app.get_text(&format!("/hls/{name}/dvr.m3u8")).await;
        assert_eq!(status, 404, "only the hidden source has a DVR window: no DVR playlist to offer");
    }
    let (ok, stderr) = finish(publisher).await;
    assert!(ok, "publisher failed: {stderr}");
    let catalog = app.appliance.recordings.catalog();
    eventually(STEP_TIMEOUT + Duration::from_secs(10), || async {
        let list = catalog.list(name).ok()?;
        list.into_iter().find(|r| r.meta.state.is_finished())
    })
    .await
    .unwrap_or_else(|| panic!("{name} never had a finished recording"))
}

/// The source rendition's MP4 export, probed: 854x480 H.264 as published.
async fn source_export_is_the_published_source(app: &TestAppliance, name: &str, recording: &Recording) {
    let path = format!("/hls/{name}/recordings/{}/export.mp4?rendition=source", recording.meta.session);
    let response = app.http.get(app.url(&path)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "GET {path}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("source.mp4");
    std::fs::write(&file, response.bytes().await.unwrap()).unwrap();
    let probed = probe(&file);
    assert_eq!(probed.errors, "", "the source record decodes without error");
    assert_eq!((probed.width, probed.height), (854, 480), "the source's size, not a rung's");
    assert!(probed.codecs.iter().any(|c| c == "h264"), "{:?}", probed.codecs);
    let meta = recording.meta.renditions.iter().find(|r| r.name == "source").expect("a source rendition");
    assert_eq!(meta.resolution, Some((854, 480)));
    assert!(meta.codecs.iter().any(|c| c.starts_with("avc1.")), "{:?}", meta.codecs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ladder_channel_records_its_source_hidden_besides_or_instead_of_the_rungs() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start_with(|config| config.recording.keep_free_percent = 0).await;
    let besides = RecordingSettings { enabled: true, source: true, ..RecordingSettings::default() };
    let instead = RecordingSettings { enabled: true, renditions: RecordRenditions::Source, ..besides };
    let [besides, instead] = [("src-besides", besides), ("src-instead", instead)]
        .map(|(name, settings)| app.appliance.store.create_channel(ladder_channel(name, settings), true).unwrap());

    let recording = publish_and_record(&app, &besides, 6.0, true).await;
    assert_eq!(recording.rendition_names(), ["240p", "source"], "the rung and the source");
    source_export_is_the_published_source(&app, "src-besides", &recording).await;

    let recording = publish_and_record(&app, &instead, 6.0, false).await;
    assert_eq!(recording.rendition_names(), ["source"], "the source alone");
    source_export_is_the_published_source(&app, "src-instead", &recording).await;
    app.appliance.shutdown().await;
}
